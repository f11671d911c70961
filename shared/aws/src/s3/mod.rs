//! The S3 adapters: the data lake and the staging area of large batches ([`S3Lake`], one
//! bucket), and the source objects of S3 notifications, read as streams ([`S3Objects`]).

mod lake;
mod objects;
mod reader;
mod staging;

pub use lake::{PARQUET_CONTENT_TYPE, S3Lake};
pub use objects::S3Objects;

/// The address of an object, as error messages and logs name it.
pub(crate) fn object_url(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}
