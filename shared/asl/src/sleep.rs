//! How an execution waits (Wait states and the delays between retries): for real with Tokio,
//! or not at all with a recorder for tests and dry runs.

use std::sync::Mutex;
use std::time::Duration;

/// Waits for a duration. Implementations must be shareable across concurrent executions.
#[async_trait::async_trait]
pub trait Sleeper: Send + Sync {
    async fn sleep(&self, duration: Duration);
}

/// Sleeps with `tokio::time::sleep` (so paused Tokio time applies in tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleeper;

#[async_trait::async_trait]
impl Sleeper for TokioSleeper {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// Records each requested duration and returns at once: for tests and dry runs.
#[derive(Debug, Default)]
pub struct RecordingSleeper {
    requested: Mutex<Vec<Duration>>,
}

impl RecordingSleeper {
    pub fn new() -> Self {
        RecordingSleeper::default()
    }

    /// The durations requested so far, in order.
    pub fn slept(&self) -> Vec<Duration> {
        match self.requested.lock() {
            Ok(requested) => requested.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

#[async_trait::async_trait]
impl Sleeper for RecordingSleeper {
    async fn sleep(&self, duration: Duration) {
        match self.requested.lock() {
            Ok(mut requested) => requested.push(duration),
            Err(poisoned) => poisoned.into_inner().push(duration),
        }
    }
}
