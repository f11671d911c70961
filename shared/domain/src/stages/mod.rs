//! The five stages, as plain functions over plain types.

pub mod aggregate;
pub mod enrich;
pub mod enriched_batch;
mod event_json;
pub mod inference;
pub mod store;
pub mod validate;
