//! The N-API side: argument checks, JavaScript error objects, promises and signals, and
//! the state each JavaScript environment owns. No HTTP here; everything that talks to
//! Sonetel lives in `crate::core`.

pub mod api;
pub mod args;
pub mod call;
pub mod error;
pub mod events;
pub mod instance;
pub mod js;
