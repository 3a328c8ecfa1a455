//! Runs SQLite's writer thread at a lower CPU priority (`database.sqlite_writer_nice`).
//!
//! sqlx runs each SQLite connection on a thread of its own. On a busy core
//! the writer's commits (history batches, room creations, webhook outcomes)
//! take turns with the threads that deliver messages, and a message arriving
//! during a commit and its WAL checkpoint waited for both: that was most of
//! the small rooms' p99 latency in `docs/performance.md`. At a higher
//! niceness the scheduler lets a waking delivery preempt the writer sooner.
//!
//! Nothing on the delivery path waits for the writer: history is written
//! behind the fan-out. When the core is saturated the writer still runs,
//! because its queue is bounded: publishers that find it full wait, the
//! deliveries drain, and the idle core goes to the writer. Requests that wait
//! for a commit (a REST publish, a room creation) wait longer under load,
//! never forever: that is the price, measured in `docs/performance.md`.

/// The writer connection's thread name, which is how this module finds it.
pub(super) const WRITER_THREAD: &str = "sqlite-writer";

/// The readers' thread name, so profiles tell them from the writer.
pub(super) const READER_THREAD: &str = "sqlite-reader";

/// Sets every thread of this process named [`WRITER_THREAD`] to niceness
/// `nice`. Called after each writer connection opens (a pool may replace its
/// connection, and with it the thread); threads already lowered are lowered
/// again, which changes nothing. Elsewhere than Linux, and at 0, the writer
/// keeps the process's priority.
///
/// # Errors
///
/// `/proc/self/task` cannot be read, or the kernel refuses the change.
#[cfg(target_os = "linux")]
pub(super) fn lower_writer_priority(nice: u8) -> std::io::Result<()> {
    if nice == 0 {
        return Ok(());
    }
    for task in std::fs::read_dir("/proc/self/task")? {
        let task = task?;
        // A thread that ended meanwhile has no `comm` left: not ours to lower.
        let Ok(name) = std::fs::read_to_string(task.path().join("comm")) else { continue };
        let Some(tid) = task.file_name().to_str().and_then(|tid| tid.parse::<libc::id_t>().ok()) else { continue };
        if name.trim_end() != WRITER_THREAD {
            continue;
        }
        // SAFETY: `setpriority` only reads its integer arguments; on Linux,
        // PRIO_PROCESS with a thread id applies to that one thread.
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, libc::c_int::from(nice)) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
pub(super) fn lower_writer_priority(_nice: u8) -> std::io::Result<()> {
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    /// The niceness in a thread's `stat` file.
    fn nice_in(stat: &str) -> i64 {
        // Fields after the parenthesised name start at the third, the state;
        // niceness is the nineteenth.
        let after_name = &stat[stat.rfind(')').unwrap() + 1..];
        after_name.split_whitespace().nth(19 - 3).unwrap().parse().unwrap()
    }

    /// The niceness of each of this process's threads named `name`.
    fn nice_of_threads(name: &str) -> Vec<i64> {
        let mut nice = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap() {
            let path = task.unwrap().path();
            let (Ok(comm), Ok(stat)) =
                (std::fs::read_to_string(path.join("comm")), std::fs::read_to_string(path.join("stat")))
            else {
                continue;
            };
            if comm.trim_end() == name {
                nice.push(nice_in(&stat));
            }
        }
        nice
    }

    #[tokio::test]
    async fn the_writer_thread_runs_at_the_configured_niceness_and_readers_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let _store =
            SqliteStore::open(&format!("sqlite://{}", dir.path().join("comms.db").display()), 2, 12).await.unwrap();
        let writers = nice_of_threads(WRITER_THREAD);
        assert!(!writers.is_empty(), "no thread named {WRITER_THREAD}");
        // Other tests' stores, opened at 0, keep their writers as they are:
        // only this one's asks for 12.
        assert!(writers.contains(&12), "writers' niceness: {writers:?}");
        let readers = nice_of_threads(READER_THREAD);
        assert!(!readers.is_empty(), "no thread named {READER_THREAD}");
        let ours = nice_in(&std::fs::read_to_string("/proc/thread-self/stat").unwrap());
        assert!(readers.iter().all(|&nice| nice == ours), "readers' niceness: {readers:?}, ours: {ours}");
    }
}
