//! The N-API side: argument checks, JavaScript error objects, promises and signals.
//! No HTTP here; everything that talks to Sonetel lives in `crate::core`.

pub mod args;
pub mod call;
pub mod js;
