//! How the local database's connections wait for a lock another connection holds.
//!
//! SQLite's own busy timeout (`sqlite3_busy_timeout`) sleeps 1, 2, 5, 10, 15, 20 and 25 ms
//! between tries, and up to 100 ms later on. The writer thread, held back 15 ms by a
//! checkpoint, would begin its transaction after 18 ms, and the longer a wait the later it
//! ends after the lock is free, with every caller queued behind the writer; the checkpointer,
//! asleep while the writer commits, would find the writer's next transaction begun each time
//! it woke. So every connection tries again after a short pause instead.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// The pause between two tries for a lock.
const PAUSE: Duration = Duration::from_micros(250);

std::thread_local! {
    /// When this thread's connection began to wait for the lock it wants.
    static WAITING_SINCE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// A busy handler (`Connection::busy_handler`) that tries again every [`PAUSE`] for up to
/// `TIMEOUT_MS` milliseconds, then lets the operation fail as busy. `tries` is 0 on the first
/// call for a lock, so the wait is timed from there; each connection is used by one thread
/// at a time, so the start is kept per thread.
pub(super) fn wait_for_lock<const TIMEOUT_MS: u64>(tries: i32) -> bool {
    let now = Instant::now();
    let since = WAITING_SINCE.with(|since| match since.get() {
        Some(first) if tries > 0 => first,
        _ => {
            since.set(Some(now));
            now
        }
    });
    if now.duration_since(since) >= Duration::from_millis(TIMEOUT_MS) {
        return false;
    }
    std::thread::sleep(PAUSE);
    true
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use rusqlite::{Connection, ErrorCode};

    use super::wait_for_lock;

    #[test]
    fn a_write_waits_for_the_lock_until_its_timeout_then_fails_as_busy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.db");
        let holder = Connection::open(&path).unwrap();
        holder
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x); BEGIN IMMEDIATE;")
            .unwrap();
        let waiter = Connection::open(&path).unwrap();
        waiter.busy_handler(Some(wait_for_lock::<200>)).unwrap();

        let start = Instant::now();
        let error = waiter.execute_batch("BEGIN IMMEDIATE").unwrap_err();
        let waited = start.elapsed();
        assert_eq!(error.sqlite_error_code(), Some(ErrorCode::DatabaseBusy));
        assert!(
            waited >= Duration::from_millis(200),
            "gave up after {waited:?}"
        );

        // A second wait is timed from its own start, not the first one's.
        let start = Instant::now();
        assert!(waiter.execute_batch("BEGIN IMMEDIATE").is_err());
        assert!(start.elapsed() >= Duration::from_millis(200));
    }

    #[test]
    fn the_handler_tries_again_after_short_pauses_until_its_timeout() {
        let start = Instant::now();
        let mut tries = 0;
        while wait_for_lock::<100>(tries) {
            tries += 1;
        }
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(100),
            "gave up after {waited:?}"
        );
        // SQLite's own timeout tries 8 times in its first 100 ms; pauses of 250 µs give many
        // more, unless the system leaves the thread asleep for milliseconds each time.
        assert!(tries > 30, "tried {tries} times in {waited:?}");
    }
}
