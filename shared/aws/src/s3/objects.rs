//! Source objects of S3 notifications, read as blocking streams from inside async code.
//!
//! The [`ObjectSource`] port is synchronous (decoding is a plain function over a reader),
//! but it is called from async handlers on runtimes of either flavour: current-thread in
//! tests, multi-thread in Lambda. A read that waited for the caller's own runtime would
//! block the very thread that has to drive the download. So the adapter owns a small
//! runtime of its own, and its own S3 client whose connections live there: the download
//! runs on that runtime and hands its chunks to the caller's thread through a bounded
//! channel (see [`reader`](super::reader)).

use std::io::Read;
use std::sync::Arc;
use std::sync::mpsc::sync_channel;

use aws_config::SdkConfig;
use aws_sdk_s3::config::IdentityCache;
use pipeline_domain::StorageError;
use pipeline_domain::ports::ObjectSource;
use tokio::runtime::Runtime;
use tokio::sync::Notify;

use super::object_url;
use super::reader::{CHUNKS_IN_FLIGHT, ObjectReader, download};

pub struct S3Objects {
    client: aws_sdk_s3::Client,
    /// Always present until the adapter is dropped; `Drop` takes it out to shut it down.
    runtime: Option<Runtime>,
}

impl S3Objects {
    /// Starts the adapter's runtime (one worker thread) and builds its S3 client from
    /// `config`, path-style when an endpoint URL is configured, as [`AwsClients`] does.
    ///
    /// The client gets a fresh HTTP client and credentials cache rather than the ones
    /// `config` may carry: a pooled connection, or a credentials refresh, started on the
    /// caller's runtime would be driven by that runtime, which is blocked while it waits
    /// for a read.
    ///
    /// [`AwsClients`]: crate::AwsClients
    pub fn new(config: &SdkConfig) -> Result<Self, StorageError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("s3-objects")
            .enable_all()
            .build()
            .map_err(|error| {
                StorageError::permanent("start the runtime of the S3 object reader", error)
            })?;
        let mut builder = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(config.endpoint_url().is_some())
            .identity_cache(IdentityCache::lazy().build());
        builder.set_http_client(None);
        Ok(Self {
            client: aws_sdk_s3::Client::from_conf(builder.build()),
            runtime: Some(runtime),
        })
    }
}

impl ObjectSource for S3Objects {
    /// Sends GetObject on the adapter's runtime and waits for the answer, so that a missing
    /// object or bucket fails here, permanently, and throttling or a 5xx transiently. The
    /// body is then read chunk by chunk as the returned reader asks for it.
    fn open(&self, bucket: &str, key: &str) -> Result<Box<dyn Read + Send>, StorageError> {
        let url = object_url(bucket, key);
        let stopped = || {
            StorageError::transient(
                format!("open {url}"),
                "the S3 object reader's runtime stopped before GetObject answered",
            )
        };
        let Some(runtime) = &self.runtime else {
            return Err(stopped());
        };
        let (opened_sender, opened) = sync_channel(1);
        let (chunk_sender, chunks) = sync_channel(CHUNKS_IN_FLIGHT);
        let space = Arc::new(Notify::new());
        let request = self.client.get_object().bucket(bucket).key(key);
        runtime.spawn(download(
            request,
            url.clone(),
            opened_sender,
            chunk_sender,
            space.clone(),
        ));
        match opened.recv() {
            Ok(Ok(())) => Ok(Box::new(ObjectReader::new(url, chunks, space))),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(stopped()),
        }
    }
}

impl Drop for S3Objects {
    /// Shuts the runtime down without waiting for its tasks: the adapter may be dropped
    /// inside async code, where a blocking shutdown panics. Readers still open then end with
    /// an error instead of the rest of their object.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
