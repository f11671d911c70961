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

use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;

/// How long to let commits gather before a checkpoint: one checkpoint copies a page written
/// by many commits once.
const GATHER: Duration = Duration::from_millis(200);

/// Log pages past which the log is made to start over: 256 MiB with the 8 KiB pages of a
/// file this version made, 128 MiB in a file an older version made with 4 KiB pages.
const RESTART_PAGES: i64 = 32_768;

/// Checkpoints `connection`'s database each time commits were signalled, until the sender
/// is gone (the writer has stopped); then one last passive checkpoint.
pub(super) fn run_checkpointer(connection: Connection, commits: mpsc::Receiver<()>) {
    while commits.recv().is_ok() {
        std::thread::sleep(GATHER);
        // The nudges sent while this thread slept are covered by the checkpoint below.
        while commits.try_recv().is_ok() {}
        checkpoint(&connection);
    }
    checkpoint(&connection);
}

/// One passive checkpoint, and a restart if the log is too long. A checkpoint that fails
/// (another process holds the database busy) is simply tried again after later commits: the
/// log only grows meanwhile, and no write depends on it.
fn checkpoint(connection: &Connection) {
    let log_pages = connection
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            row.get::<_, i64>(1)
        })
        .unwrap_or(0);
    if log_pages > RESTART_PAGES {
        let _ = connection.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()));
    }
}
