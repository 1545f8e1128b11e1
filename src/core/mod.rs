//! The Rust core: plain Rust, no N-API. The binding layer (`crate::binding`, `lib.rs`)
//! checks JavaScript arguments and maps these types to JavaScript.

pub mod client;
pub mod error;
pub mod grant;
pub mod manager;
pub mod run;
pub mod secret;
pub mod token;
