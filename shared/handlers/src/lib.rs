//! The Lambda handlers: each translates its JSON input, calls the domain, translates out.
//!
//! Shared by the five stage functions (through [`lambda::serve`]), the direct-trigger
//! function `ingest` (through [`lambda::serve_direct`]) and the `pipeline` command (through
//! [`invoke::invoke`] and [`direct::process_direct`]), so what runs locally is what runs
//! deployed.

pub mod allocator;
pub mod carried;
pub mod deps;
pub mod direct;
pub mod error;
pub mod invoke;
pub mod kept;
pub mod lambda;
pub mod logging;
pub mod orchestrator;
pub mod stage;
pub mod wire;

pub use deps::Dependencies;
pub use error::{ErrorName, HandlerError};
pub use invoke::invoke;
pub use stage::Stage;
