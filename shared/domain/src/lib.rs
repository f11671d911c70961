//! The pipeline's domain: the event contract, source decoding and the five stages.
//!
//! This crate does no I/O of its own. Everything that touches the outside world (tables,
//! object storage, notifications, search, the risk model) is reached through the small
//! traits in [`ports`], which adapters implement. It depends on no Lambda runtime, no AWS
//! SDK and no database; `tests/domain_dependencies.rs` enforces that by reading `Cargo.toml`.

pub mod canonical;
pub mod error;
pub mod event;
mod event_data;
pub mod ports;
pub mod schema;
pub mod sources;
pub mod stages;
pub mod synth;
pub mod training;

pub use error::{ErrorClass, StorageError};
pub use event::{EventData, SourceKind, SourceRef, UserEvent};
