#![deny(clippy::all)]
#![deny(clippy::undocumented_unsafe_blocks)]
//! sonetel-auth: access tokens for the Sonetel REST API.
//!
//! Three layers: the JavaScript face (`src/face`, the public API), the binding
//! (`src/binding`, an internal native engine with typed inputs), and the core (`src/core`,
//! plain safe Rust that speaks no Node.js).

mod binding;
pub mod core;
