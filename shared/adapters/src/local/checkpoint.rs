//! Checkpoints of the database's write-ahead log, on a thread of their own.
//!
//! By default SQLite checkpoints on the connection whose commit passes the threshold: the
//! writer thread would stop to copy every page written since the last checkpoint into the
//! database file and sync it, while every caller waits for its commit. Here the writer never
//! checkpoints (`wal_autocheckpoint = 0`); after its commits it nudges this thread, which
//! runs passive checkpoints on its own connection beside the writer. A passive checkpoint
//! never blocks the writer, so under a steady stream of commits it may not catch up with the
//! log's end, and the log cannot start over; once the log passes [`RESTART_PAGES`] a restart
//! checkpoint waits for the writer between two commits, finishes, and lets the log start over.
//!
//! A log that starts over is written into pages the system already holds for the file; a
//! log that only grows is written into new ones, which the kernel must find (reclaiming
//! others when its page cache is full), zero where a frame covers a page only in part, and
//! later write back. In `pipeline demo` the log used to grow to 269 MB, just past its limit
//! of 256 MiB; with a limit of 16 MiB it stays under about 45 MB (docs/benchmarks.md).
//!
//! A restart waits for the writer's commit and for readers to leave the log, and new commits
//! wait while it does; so it waits at most [`RESTART_WAIT_MS`] and is tried again later. Once it
//! has the log to itself it copies what the last passive checkpoint left and syncs the file,
//! and commits wait for that too: in `pipeline demo` the writer waited 0.38 to 0.54 s of a
//! 3.1 to 4.2 s run, about 45 ms a restart: for the restart to copy the megabytes committed
//! while the passive checkpoint before it ran, and in SQLite's growing sleeps between tries
//! for the lock (now short pauses, `busy.rs`). So passive checkpoints run again, each copying
//! what was committed during the one before, until one finds little to copy
//! ([`RESTART_LEFTOVER_PAGES`]); only then does the restart take the log.

use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;

use super::busy;

/// How long to let commits gather before a checkpoint: one checkpoint copies a page written
/// by many commits once.
const GATHER: Duration = Duration::from_millis(200);

/// Log pages past which the log is made to start over: 16 MiB with the 8 KiB pages of a
/// file this version made, 8 MiB in a file an older version made with 4 KiB pages.
pub(super) const RESTART_PAGES: i64 = 2_048;

/// What a passive checkpoint may find to copy for the restart to follow it: the pages the
/// next restart will copy while commits wait are about what was committed while that
/// checkpoint ran. 2 MiB with 8 KiB pages.
const RESTART_LEFTOVER_PAGES: i64 = 256;

/// Passive checkpoints at most after the one that found the log past its limit, before the
/// restart is made anyway: under commits faster than a checkpoint copies, they would never
/// find little to copy.
const CATCH_UP_ROUNDS: usize = 4;

/// How long a restart checkpoint waits for the writer to finish its commit, or for readers
/// to leave the log, before it gives up until after later commits, in milliseconds. While it
/// waits, new commits wait too: with the connection's usual busy timeout of seconds, a reader
/// holding a snapshot (another process) held back every commit that long.
const RESTART_WAIT_MS: u64 = 100;

/// Checkpoints `connection`'s database each time commits were signalled, until the sender
/// is gone (the writer has stopped); then one last passive checkpoint. The log is made to
/// start over once it passes `restart_pages` ([`RESTART_PAGES`] for the pipeline's database).
pub(super) fn run_checkpointer(
    connection: Connection,
    commits: mpsc::Receiver<()>,
    restart_pages: i64,
) {
    // Passive checkpoints never wait; only a restart does.
    let _ = connection.busy_handler(Some(busy::wait_for_lock::<RESTART_WAIT_MS>));
    while commits.recv().is_ok() {
        std::thread::sleep(GATHER);
        // The nudges sent while this thread slept are covered by the checkpoint below.
        while commits.try_recv().is_ok() {}
        checkpoint(&connection, restart_pages);
    }
    checkpoint(&connection, restart_pages);
}

/// One passive checkpoint; if the log is longer than `restart_pages`, more passive ones
/// until one finds at most [`RESTART_LEFTOVER_PAGES`] to copy (at most [`CATCH_UP_ROUNDS`]),
/// then a restart. A checkpoint that fails (another process holds the database busy) is
/// simply tried again after later commits: the log only grows meanwhile, and no write
/// depends on it.
fn checkpoint(connection: &Connection, restart_pages: i64) {
    let Some(mut last) = passive_checkpoint(connection) else {
        return;
    };
    if last.log_pages <= restart_pages {
        return;
    }
    for _ in 0..CATCH_UP_ROUNDS {
        let Some(next) = passive_checkpoint(connection) else {
            return;
        };
        let found = next.log_pages - last.copied_pages;
        last = next;
        if found <= RESTART_LEFTOVER_PAGES {
            break;
        }
    }
    let _ = connection.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()));
}

/// What a checkpoint reports: the log's length in pages when it started, and how many of
/// them are in the database file now.
#[derive(Debug, Clone, Copy)]
struct Progress {
    log_pages: i64,
    copied_pages: i64,
}

/// One passive checkpoint; `None` when it failed.
fn passive_checkpoint(connection: &Connection) -> Option<Progress> {
    connection
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok(Progress {
                log_pages: row.get(1)?,
                copied_pages: row.get(2)?,
            })
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, mpsc};

    use rusqlite::Connection;

    use super::run_checkpointer;

    const PAGE_BYTES: u64 = 4096;
    const COMMITS: usize = 400;
    const ROW_BYTES: usize = 64 * 1024;

    fn connection(path: &Path) -> Connection {
        let connection = Connection::open(path).unwrap();
        connection
            .busy_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        connection
            .execute_batch(
                "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; \
                 PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0;",
            )
            .unwrap();
        connection
    }

    /// A database whose log only its checkpointer copies: a writer connection, its table,
    /// and the checkpointer running with `restart_pages` on a thread of its own.
    struct Logged {
        /// Holds the directory the database is in until the test ends.
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
        writer: Connection,
        commits: mpsc::SyncSender<()>,
        checkpointer: std::thread::JoinHandle<()>,
    }

    impl Logged {
        fn new(restart_pages: i64) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("test.db");
            let writer = connection(&path);
            writer
                .execute_batch("CREATE TABLE rows (id INTEGER PRIMARY KEY, body BLOB NOT NULL);")
                .unwrap();
            let (commits, nudges) = mpsc::sync_channel(1);
            let checkpoint_connection = connection(&path);
            let checkpointer = std::thread::spawn(move || {
                run_checkpointer(checkpoint_connection, nudges, restart_pages)
            });
            Self {
                _dir: dir,
                path,
                writer,
                commits,
                checkpointer,
            }
        }

        fn connection(&self) -> Connection {
            connection(&self.path)
        }

        fn log_bytes(&self) -> u64 {
            std::fs::metadata(self.path.with_extension("db-wal"))
                .unwrap()
                .len()
        }

        /// Commits one row of `ROW_BYTES`, nudges the checkpointer, and says how long the
        /// commit took.
        fn commit_row(&self) -> std::time::Duration {
            let body = vec![7u8; ROW_BYTES];
            let start = std::time::Instant::now();
            self.writer
                .execute("INSERT INTO rows (body) VALUES (?1)", [&body])
                .unwrap();
            let took = start.elapsed();
            let _ = self.commits.try_send(());
            took
        }

        /// Stops the checkpointer and returns the rows committed.
        fn finish(self) -> i64 {
            drop(self.commits);
            self.checkpointer.join().unwrap();
            self.writer
                .query_row("SELECT count(*) FROM rows", [], |row| row.get(0))
                .unwrap()
        }
    }

    /// Commits `COMMITS` rows of 64 KiB, one every few milliseconds as the writer thread
    /// does, while another connection reads all along, as the stages do, and the
    /// checkpointer runs with `restart_pages`; returns the log's largest size seen after a
    /// commit.
    fn largest_log(restart_pages: i64) -> u64 {
        let logged = Logged::new(restart_pages);
        let reading = Arc::new(AtomicBool::new(true));
        let reader = {
            let connection = logged.connection();
            let reading = Arc::clone(&reading);
            std::thread::spawn(move || {
                while reading.load(Ordering::Relaxed) {
                    let _: i64 = connection
                        .query_row("SELECT count(*) FROM rows", [], |row| row.get(0))
                        .unwrap();
                }
            })
        };
        let mut largest = 0;
        for _ in 0..COMMITS {
            logged.commit_row();
            largest = largest.max(logged.log_bytes());
            // Commits come over a few seconds, so the checkpointer runs some ten times.
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        reading.store(false, Ordering::Relaxed);
        reader.join().unwrap();
        assert_eq!(logged.finish(), COMMITS as i64);
        largest
    }

    #[test]
    fn a_reader_that_keeps_the_log_holds_up_commits_only_briefly() {
        let logged = Logged::new(16);
        // A reader (another process, say) holds one snapshot for two seconds, so the log
        // cannot start over until it ends.
        let (started, reading) = mpsc::channel();
        let reader = {
            let connection = logged.connection();
            std::thread::spawn(move || {
                connection.execute_batch("BEGIN").unwrap();
                let _: i64 = connection
                    .query_row("SELECT count(*) FROM rows", [], |row| row.get(0))
                    .unwrap();
                started.send(()).unwrap();
                std::thread::sleep(std::time::Duration::from_secs(2));
                connection.execute_batch("COMMIT").unwrap();
            })
        };
        reading.recv().unwrap();
        let mut slowest = std::time::Duration::ZERO;
        for _ in 0..200 {
            slowest = slowest.max(logged.commit_row());
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        reader.join().unwrap();
        assert_eq!(logged.finish(), 200);
        // A restart waits for the reader while holding new commits back; it gives up soon
        // and is tried again after later commits.
        assert!(
            slowest < std::time::Duration::from_millis(1000),
            "a commit waited {slowest:?} for the checkpointer"
        );
    }

    #[test]
    fn the_log_starts_over_once_it_passes_its_limit_while_commits_and_reads_go_on() {
        // 400 commits of 64 KiB write about 26 MB to the log over two or three seconds.
        // Made to start over past 1 MiB (256 pages of 4 KiB), it stays within a few MiB:
        // what the commits add between two checkpoints, which wait 200 ms for commits to
        // gather. With passive checkpoints alone it grows by every commit, because a reader
        // is always there when the writer could start the log over.
        let limit = 256;
        let largest = largest_log(limit);
        let written = (COMMITS * ROW_BYTES) as u64;
        assert!(
            largest < written / 3,
            "the log grew to {largest} bytes of the {written} written, with a limit of {} bytes",
            (limit as u64).saturating_mul(PAGE_BYTES)
        );
    }
}
