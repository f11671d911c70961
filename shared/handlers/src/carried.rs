//! Batches that travel inline when small and by reference when not (the claim-check pattern).
//!
//! Step Functions limits a state's input and output to 256 KiB, so a stage whose output
//! would be large writes it to the staging area (the data lake's `staging/` prefix) and
//! passes a small reference instead. On the wire a carried value is either the value itself
//! (an array of events, say) or `{"staged": "<key>", "count": N, "bytes": B}`. When the whole
//! state machine runs in this process the staged value may stay in memory under its key
//! ([`crate::kept`]); the reference on the wire is the same.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

pub use pipeline_domain::canonical::encoded_size;
use pipeline_domain::ports::BatchStaging;
use pipeline_domain::stages::enriched_batch::EnrichedBatch;
use pipeline_domain::stages::inference::RiskScore;
use pipeline_domain::stages::validate::{RejectedRecord, ValidEvent};
use serde::de::{self, DeserializeOwned, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::error::{ErrorName, HandlerError};
use crate::kept::KeptValues;

/// Where a staged value is, and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedRef {
    /// The staging key, under `staging/`.
    pub staged: String,
    /// How many items it holds (1 for a single value).
    pub count: usize,
    /// Its size in bytes.
    pub bytes: usize,
}

/// A value carried from one stage to the next.
#[derive(Debug, Clone, PartialEq)]
pub enum Carried<T> {
    Inline(T),
    Staged(StagedRef),
}

/// Something that can be carried: how many items it holds, and its JSON.
pub trait Countable: Serialize + Sized {
    fn item_count(&self) -> usize;

    /// The length of its compact JSON.
    fn encoded_size(&self) -> usize {
        encoded_size(self)
    }

    /// Its compact JSON.
    fn encode(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(self)
    }
}

/// An item of a carried batch. A type whose JSON is written by hand (faster than the
/// derived `Serialize`, with the same bytes) sizes and encodes its batches that way.
pub trait CarriedItem: Serialize + Sized {
    fn batch_size(items: &[Self]) -> usize {
        encoded_size(&items)
    }

    fn batch_json(items: &[Self]) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(items)
    }
}

impl<T: CarriedItem> Countable for Vec<T> {
    fn item_count(&self) -> usize {
        self.len()
    }

    fn encoded_size(&self) -> usize {
        T::batch_size(self)
    }

    fn encode(&self) -> serde_json::Result<Vec<u8>> {
        T::batch_json(self)
    }
}

/// An enriched batch has its JSON written when it is made: its size is that text's length,
/// and its encoding a copy of it.
impl Countable for EnrichedBatch {
    fn item_count(&self) -> usize {
        self.len()
    }

    fn encoded_size(&self) -> usize {
        self.json().len()
    }

    fn encode(&self) -> serde_json::Result<Vec<u8>> {
        Ok(self.json().as_bytes().to_vec())
    }
}

impl CarriedItem for ValidEvent {}
impl CarriedItem for RejectedRecord {}
impl CarriedItem for RiskScore {}

/// Where one invocation stages values and reads them back: the staging store and, when the
/// whole state machine runs in this process, the values its execution keeps in memory
/// ([`KeptValues`]).
#[derive(Clone, Copy)]
pub struct StagingScope<'a> {
    pub store: &'a dyn BatchStaging,
    /// The process's kept values and the name of the execution this invocation belongs to.
    pub kept: Option<(&'a KeptValues, &'a str)>,
}

impl StagingScope<'_> {
    /// The value this execution kept under `key`, when it was kept as a `U`: for a stage
    /// that reads only part of what an earlier stage kept (`aggregate` reads the `event` of
    /// each enriched event), so that it borrows the value instead of encoding and parsing it.
    pub fn kept_as<U: Send + Sync + 'static>(&self, key: &str) -> Option<Arc<U>> {
        let (kept, execution) = self.kept?;
        kept.get(execution, key)?.into_any().downcast::<U>().ok()
    }
}

fn contract_error(key: &str, error: impl fmt::Display) -> HandlerError {
    HandlerError::new(
        ErrorName::InvalidStageInput,
        format!("the staged object {key} does not match its contract: {error}"),
    )
}

impl<T> Carried<T>
where
    T: Serialize + DeserializeOwned + Countable + Clone + Send + Sync + 'static,
{
    /// Keeps `value` inline when its JSON is at most `inline_limit` bytes, and stages it at
    /// `key` otherwise: in the execution's kept values when they have room, else in the store.
    pub async fn pack(
        value: T,
        key: String,
        inline_limit: usize,
        staging: StagingScope<'_>,
    ) -> Result<Self, HandlerError> {
        let bytes = value.encoded_size();
        if bytes <= inline_limit {
            return Ok(Carried::Inline(value));
        }
        let count = value.item_count();
        let value = Arc::new(value);
        let kept = staging
            .kept
            .is_some_and(|(kept, execution)| kept.keep(execution, &key, value.clone(), bytes));
        if !kept {
            let body = value.encode().map_err(|error| {
                HandlerError::new(
                    ErrorName::InvalidStageInput,
                    format!("{key} could not be encoded: {error}"),
                )
            })?;
            staging.store.put_staged(&key, body).await?;
        }
        Ok(Carried::Staged(StagedRef {
            staged: key,
            count,
            bytes,
        }))
    }

    /// The value, read back from where it was staged when it was.
    pub async fn unpack(self, staging: StagingScope<'_>) -> Result<T, HandlerError> {
        match self {
            Carried::Inline(value) => Ok(value),
            staged => Ok(Arc::unwrap_or_clone(staged.unpack_shared(staging).await?)),
        }
    }

    /// The value, shared rather than copied when this process kept it: for a stage that
    /// only reads it.
    pub async fn unpack_shared(self, staging: StagingScope<'_>) -> Result<Arc<T>, HandlerError> {
        let reference = match self {
            Carried::Inline(value) => return Ok(Arc::new(value)),
            Carried::Staged(reference) => reference,
        };
        let key = reference.staged.as_str();
        let kept = staging
            .kept
            .and_then(|(kept, execution)| kept.get(execution, key));
        let body = match kept {
            // Kept as another type (a definition that hands one stage's output to a stage
            // expecting another): read it as its JSON, as a deployed stage would.
            Some(value) => match value.clone().into_any().downcast::<T>() {
                Ok(value) => return Ok(value),
                Err(_) => value.encode().map_err(|error| contract_error(key, error))?,
            },
            None => staging.store.get_staged(key).await?,
        };
        serde_json::from_slice(&body)
            .map(Arc::new)
            .map_err(|error| contract_error(key, error))
    }
}

impl<T: Countable> Carried<T> {
    /// How many items are carried, without reading a staged value.
    pub fn count(&self) -> usize {
        match self {
            Carried::Inline(value) => value.item_count(),
            Carried::Staged(reference) => reference.count,
        }
    }
}

impl<T> Default for Carried<Vec<T>> {
    fn default() -> Self {
        Carried::Inline(Vec::new())
    }
}

impl<T: Serialize> Serialize for Carried<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Carried::Inline(value) => value.serialize(serializer),
            Carried::Staged(reference) => reference.serialize(serializer),
        }
    }
}

/// Arrays are inline values, read through the caller's deserializer so that errors keep
/// their path; an object is a staged reference when it has a `staged` key, and an inline
/// value otherwise.
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Carried<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CarriedVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for CarriedVisitor<T> {
            type Value = Carried<T>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("an inline value or {\"staged\", \"count\", \"bytes\"}")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, sequence: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::SeqAccessDeserializer::new(sequence)).map(Carried::Inline)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let value = Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
                if value.get("staged").is_some() {
                    StagedRef::deserialize(value)
                        .map(Carried::Staged)
                        .map_err(de::Error::custom)
                } else {
                    T::deserialize(value)
                        .map(Carried::Inline)
                        .map_err(de::Error::custom)
                }
            }
        }

        deserializer.deserialize_any(CarriedVisitor(PhantomData))
    }
}

/// The staging key of `what` for a batch or part.
pub fn staging_key(batch_id: &str, what: &str) -> String {
    format!("staging/{batch_id}/{what}.json")
}

/// The staging prefix of a batch or part, removed once it is stored.
pub fn staging_prefix(batch_id: &str) -> String {
    format!("staging/{batch_id}")
}
