//! The two ends of one object download: the task on the adapter's runtime that pulls the
//! body's chunks ([`download`]), and the blocking reader the decoder reads ([`ObjectReader`]).
//!
//! They meet at a bounded channel a few chunks deep, so an object of any size takes a few
//! chunks of memory. The task never blocks its runtime's only worker on a full channel: it
//! tries to send, and when the channel is full it waits for the reader to signal, after
//! each chunk it takes, that there is room again. When the reader is dropped, the task's
//! next send fails and the task ends, dropping the body and its connection.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

use aws_sdk_s3::operation::get_object::builders::GetObjectFluentBuilder;
use pipeline_domain::StorageError;
use tokio::sync::Notify;

use crate::error::classify;

/// How many body chunks may wait in the channel.
pub(super) const CHUNKS_IN_FLIGHT: usize = 4;

/// A piece of the body, as the HTTP client produced it (no copy is made on the way).
type Chunk = Box<dyn AsRef<[u8]> + Send>;

/// What the task sends: a chunk, the end of the body (`None`), or a read failure.
type Message = io::Result<Option<Chunk>>;

/// Sends GetObject, reports the outcome on `opened`, then forwards the body on `chunks`.
pub(super) async fn download(
    request: GetObjectFluentBuilder,
    url: String,
    opened: SyncSender<Result<(), StorageError>>,
    chunks: SyncSender<Message>,
    space: Arc<Notify>,
) {
    let mut body = match request.send().await {
        Ok(output) => output.body,
        Err(error) => {
            let _ = opened.send(Err(classify(format!("open {url}"), error)));
            return;
        }
    };
    // The channel holds one answer and this is the only one, so the send never waits.
    if opened.send(Ok(())).is_err() {
        return;
    }
    loop {
        let message = match body.next().await {
            Some(Ok(bytes)) => Ok(Some(Box::new(bytes) as Chunk)),
            Some(Err(error)) => Err(io::Error::other(format!("reading {url} failed: {error}"))),
            None => Ok(None),
        };
        let last = !matches!(message, Ok(Some(_)));
        if !offer(&chunks, &space, message).await || last {
            return;
        }
    }
}

/// Puts `message` in the channel once there is room; false when the reader is gone.
async fn offer(chunks: &SyncSender<Message>, space: &Notify, mut message: Message) -> bool {
    loop {
        match chunks.try_send(message) {
            Ok(()) => return true,
            Err(TrySendError::Full(back)) => {
                message = back;
                // A signal given between the failed send and this wait is kept by
                // `Notify` as a permit, so no wake-up is lost.
                space.notified().await;
            }
            Err(TrySendError::Disconnected(_)) => return false,
        }
    }
}

/// The reader handed to the decoder: each `read` copies from the current chunk, and blocks
/// on the channel only when that chunk is used up.
pub(super) struct ObjectReader {
    url: String,
    /// `None` once the body has ended, failed, or the reader is being dropped.
    chunks: Option<Receiver<Message>>,
    space: Arc<Notify>,
    current: Option<Chunk>,
    position: usize,
}

impl ObjectReader {
    pub(super) fn new(url: String, chunks: Receiver<Message>, space: Arc<Notify>) -> Self {
        Self {
            url,
            chunks: Some(chunks),
            space,
            current: None,
            position: 0,
        }
    }

    /// Drops the receiving end and wakes the task, whose next send then fails.
    fn close(&mut self) {
        self.chunks = None;
        self.space.notify_one();
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if buffer.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(chunk) = &self.current {
                let rest = &(**chunk).as_ref()[self.position..];
                if !rest.is_empty() {
                    let count = rest.len().min(buffer.len());
                    buffer[..count].copy_from_slice(&rest[..count]);
                    self.position += count;
                    return Ok(count);
                }
                self.current = None;
            }
            let Some(chunks) = &self.chunks else {
                return Ok(0);
            };
            let received = chunks.recv();
            self.space.notify_one();
            match received {
                Ok(Ok(Some(chunk))) => {
                    self.current = Some(chunk);
                    self.position = 0;
                }
                Ok(Ok(None)) => {
                    self.close();
                    return Ok(0);
                }
                Ok(Err(error)) => {
                    self.close();
                    return Err(error);
                }
                Err(_) => {
                    self.close();
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("the download of {} stopped before its end", self.url),
                    ));
                }
            }
        }
    }
}

impl Drop for ObjectReader {
    fn drop(&mut self) {
        self.close();
    }
}
