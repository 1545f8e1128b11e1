//! The Rust core: plain safe Rust, no N-API and no Node.js vocabulary. It knows HTTP, form
//! encoding, tokens, JWTs and what kind of failure happened; the binding layer
//! (`crate::binding`, `lib.rs`) checks JavaScript arguments and maps these types to
//! JavaScript, error codes included.
#![forbid(unsafe_code)]

pub mod api;
pub mod client;
pub mod error;
pub mod grant;
pub mod manager;
pub mod run;
pub mod runtime;
pub mod secret;
pub mod store;
pub mod tls;
pub mod token;
