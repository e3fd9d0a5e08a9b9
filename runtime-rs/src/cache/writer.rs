//! Write-behind for the disk tier.
//!
//! Storing an entry on disk (a private temporary file, then a rename) costs
//! about a millisecond on a slow node, and a small plan stores a few dozen
//! entries: written before a run returns, they would cost more than the run.
//! A [`Writer`] takes the encoded bytes, keeps them readable by this process
//! until they are on disk, and writes them from one background thread.
//!
//! Bounded: past [`MAX_PENDING`] entries or [`MAX_PENDING_BYTES`] bytes,
//! [`Writer::push`] refuses (no unbounded queue). The disk is then slower
//! than the runs, so the caller weighs [`Writer::write_cost`], what a write
//! has been taking, against recomputing the entry: it writes inline only
//! what is dearer to recompute, and keeps the rest in memory. [`Writer::flush`] waits until everything pushed is on
//! disk; dropping the writer flushes and joins the thread. Entries lost when
//! the process is killed are only misses later, never wrong results.

use std::collections::{HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::key::Key;

/// Entries waiting to be written, at most (the bytes bound memory; this
/// bounds the index).
pub(super) const MAX_PENDING: usize = 1024;
/// Bytes waiting to be written, at most.
pub(super) const MAX_PENDING_BYTES: usize = 32 << 20;

/// Writes one entry's bytes to disk (counting what it did).
pub(super) type WriteFn = dyn Fn(&Key, &[u8]) + Send + Sync;

/// A background writer of encoded entries.
pub(super) struct Writer {
    shared: Arc<Shared>,
    limits: (usize, usize),
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when work arrives or the writer closes.
    work: Condvar,
    /// Signalled when entries reach the disk.
    written: Condvar,
    /// Moving average of one write's duration, in nanoseconds.
    cost: AtomicU64,
}

#[derive(Default)]
struct State {
    /// Bytes of every entry not yet on disk (those being written included),
    /// so reads in this process never miss them.
    pending: HashMap<Key, Arc<Vec<u8>>>,
    /// Keys not yet taken by the thread, oldest first.
    queue: VecDeque<Key>,
    /// Sum of the pending entries' sizes.
    bytes: usize,
    /// Entries queued since the start, and of those, written or discarded:
    /// the thread takes them in order, so a flush waits for `done` to reach
    /// what was queued when it began.
    queued: u64,
    done: u64,
    closed: bool,
}

fn lock(shared: &Shared) -> MutexGuard<'_, State> {
    shared.state.lock().unwrap_or_else(|e| e.into_inner())
}

impl Writer {
    /// Starts the thread; None when it cannot be started (the cache then
    /// writes inline).
    pub(super) fn start(write: Box<WriteFn>) -> Option<Writer> {
        Writer::with_limits(write, MAX_PENDING, MAX_PENDING_BYTES)
    }

    /// [`Writer::start`] with other bounds (tests use tiny ones).
    pub(super) fn with_limits(
        write: Box<WriteFn>,
        max_entries: usize,
        max_bytes: usize,
    ) -> Option<Writer> {
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            work: Condvar::new(),
            written: Condvar::new(),
            cost: AtomicU64::new(0),
        });
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("academy-ml-cache-writer".into())
            .spawn(move || run(&worker, &*write))
            .ok()?;
        Some(Writer {
            shared,
            limits: (max_entries, max_bytes),
            thread: Some(thread),
        })
    }

    /// Queues `bytes` for `key`; gives them back when the queue is full (the
    /// caller writes them itself). A key already pending is not queued twice
    /// (entries are content-addressed: the bytes are the same).
    pub(super) fn push(&self, key: Key, bytes: Vec<u8>) -> Result<(), Vec<u8>> {
        let mut state = lock(&self.shared);
        if state.pending.contains_key(&key) {
            return Ok(());
        }
        let (max_entries, max_bytes) = self.limits;
        if state.closed
            || state.pending.len() >= max_entries
            || state.bytes + bytes.len() > max_bytes
        {
            return Err(bytes);
        }
        state.bytes += bytes.len();
        state.pending.insert(key, Arc::new(bytes));
        state.queue.push_back(key);
        state.queued += 1;
        self.shared.work.notify_one();
        Ok(())
    }

    /// What writing one entry has been taking lately (zero before the first
    /// write).
    pub(super) fn write_cost(&self) -> Duration {
        Duration::from_nanos(self.shared.cost.load(Ordering::Relaxed))
    }

    /// The bytes of `key` if they are waiting to be written.
    pub(super) fn pending(&self, key: &Key) -> Option<Arc<Vec<u8>>> {
        lock(&self.shared).pending.get(key).cloned()
    }

    /// Waits until every entry pushed so far is on disk (or failed to be
    /// written, which counts as an I/O error).
    pub(super) fn flush(&self) {
        let mut state = lock(&self.shared);
        let target = state.queued;
        while state.done < target {
            state = self
                .shared
                .written
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Forgets entries not yet taken by the thread (the cache is being
    /// cleared), then waits for the ones being written.
    pub(super) fn discard(&self) {
        {
            let mut state = lock(&self.shared);
            let queued: Vec<Key> = state.queue.drain(..).collect();
            state.done += queued.len() as u64;
            for key in queued {
                if let Some(bytes) = state.pending.remove(&key) {
                    state.bytes -= bytes.len();
                }
            }
        }
        self.flush();
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        lock(&self.shared).closed = true;
        self.shared.work.notify_all();
        if let Some(thread) = self.thread.take() {
            // The thread catches panics of `write`: joining cannot fail.
            let _ = thread.join();
        }
    }
}

/// The thread: takes the oldest queued key, writes it outside the lock,
/// then drops its bytes; exits once closed and drained.
fn run(shared: &Shared, write: &WriteFn) {
    loop {
        let (key, bytes) = {
            let mut state = lock(shared);
            loop {
                if let Some(key) = state.queue.pop_front() {
                    // Every queued key is pending (`discard` empties both).
                    if let Some(bytes) = state.pending.get(&key) {
                        break (key, Arc::clone(bytes));
                    }
                    state.done += 1;
                } else if state.closed {
                    return;
                } else {
                    state = shared.work.wait(state).unwrap_or_else(|e| e.into_inner());
                }
            }
        };
        // A panic while writing loses this entry (a later miss), not the
        // thread: flushes would otherwise wait forever.
        let began = Instant::now();
        let _ = catch_unwind(AssertUnwindSafe(|| write(&key, &bytes)));
        record_cost(&shared.cost, began.elapsed());
        let mut state = lock(shared);
        if state.pending.remove(&key).is_some() {
            state.bytes -= bytes.len();
        }
        state.done += 1;
        drop(state);
        shared.written.notify_all();
    }
}

/// Folds one write's duration into the moving average (weight 1/8: a few
/// slow writes raise it, one fast write does not reset it).
fn record_cost(cost: &AtomicU64, took: Duration) {
    let took = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
    let _ = cost.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
        Some(if old == 0 {
            took
        } else {
            old - old / 8 + took / 8
        })
    });
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    type Written = Arc<Mutex<Vec<(Key, Vec<u8>)>>>;

    /// A writer whose writes wait until `open` is set (the test keeps
    /// entries pending meanwhile) and are recorded in order.
    fn gated(open: &Arc<AtomicBool>, max_entries: usize, max_bytes: usize) -> (Writer, Written) {
        let written = Written::default();
        let (open, log) = (Arc::clone(open), Arc::clone(&written));
        let writer = Writer::with_limits(
            Box::new(move |key, bytes| {
                while !open.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                log.lock().unwrap().push((*key, bytes.to_vec()));
            }),
            max_entries,
            max_bytes,
        )
        .unwrap();
        (writer, written)
    }

    #[test]
    fn pending_entries_are_readable_until_flushed_to_disk() {
        let gate = Arc::new(AtomicBool::new(false));
        let (writer, written) = gated(&gate, 8, 1 << 20);
        writer.push(Key([1; 32]), vec![1; 10]).unwrap();
        writer.push(Key([2; 32]), vec![2; 10]).unwrap();
        assert_eq!(writer.pending(&Key([1; 32])).as_deref(), Some(&vec![1; 10]));
        assert_eq!(writer.pending(&Key([2; 32])).as_deref(), Some(&vec![2; 10]));
        assert!(writer.pending(&Key([3; 32])).is_none());
        gate.store(true, Ordering::SeqCst);
        writer.flush();
        assert!(writer.pending(&Key([1; 32])).is_none());
        let keys: Vec<Key> = written.lock().unwrap().iter().map(|(k, _)| *k).collect();
        assert_eq!(
            keys,
            [Key([1; 32]), Key([2; 32])],
            "written once each, in order"
        );
    }

    #[test]
    fn a_full_queue_gives_the_bytes_back_and_drop_writes_the_rest() {
        let gate = Arc::new(AtomicBool::new(false));
        let (writer, written) = gated(&gate, 2, 25);
        writer.push(Key([1; 32]), vec![1; 10]).unwrap();
        writer.push(Key([1; 32]), vec![1; 10]).unwrap();
        writer.push(Key([2; 32]), vec![2; 10]).unwrap();
        assert_eq!(
            writer.push(Key([3; 32]), vec![3; 1]),
            Err(vec![3; 1]),
            "2 entries"
        );
        gate.store(true, Ordering::SeqCst);
        writer.flush();
        let small_gate = Arc::new(AtomicBool::new(false));
        let small = gated(&small_gate, 8, 25).0;
        small.push(Key([4; 32]), vec![4; 20]).unwrap();
        assert_eq!(
            small.push(Key([5; 32]), vec![5; 6]),
            Err(vec![5; 6]),
            "25 bytes"
        );
        small_gate.store(true, Ordering::SeqCst);
        drop(small);
        drop(writer);
        assert_eq!(written.lock().unwrap().len(), 2);
    }

    #[test]
    fn dropping_the_writer_writes_everything_pending() {
        let gate = Arc::new(AtomicBool::new(true));
        let (writer, written) = gated(&gate, 1000, 1 << 20);
        for i in 0..200u8 {
            writer.push(Key([i; 32]), vec![i; 100]).unwrap();
        }
        drop(writer);
        assert_eq!(written.lock().unwrap().len(), 200);
    }

    #[test]
    fn a_panicking_write_loses_its_entry_not_the_thread() {
        let writes = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&writes);
        let writer = Writer::start(Box::new(move |key, _| {
            assert_ne!(key.0[0], 1, "injected failure");
            counted.fetch_add(1, Ordering::SeqCst);
        }))
        .unwrap();
        writer.push(Key([1; 32]), vec![1]).unwrap();
        writer.push(Key([2; 32]), vec![2]).unwrap();
        writer.flush();
        assert_eq!(writes.load(Ordering::SeqCst), 1);
        assert!(writer.pending(&Key([1; 32])).is_none());
    }

    #[test]
    fn discard_forgets_queued_entries() {
        let gate = Arc::new(AtomicBool::new(false));
        let (writer, written) = gated(&gate, 100, 1 << 20);
        for i in 0..10u8 {
            writer.push(Key([i; 32]), vec![i]).unwrap();
        }
        // The thread may hold the first entry (blocked on the gate): discard
        // waits for that one, so let it through from another thread.
        let opener = {
            let gate = Arc::clone(&gate);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                gate.store(true, Ordering::SeqCst);
            })
        };
        writer.discard();
        opener.join().unwrap();
        assert!(written.lock().unwrap().len() <= 1);
        assert!((0..10u8).all(|i| writer.pending(&Key([i; 32])).is_none()));
        writer.flush();
    }

    #[test]
    fn many_threads_pushing_and_reading_with_a_tiny_queue() {
        let written = Arc::new(Mutex::new(HashMap::<Key, Vec<u8>>::new()));
        let log = Arc::clone(&written);
        let writer = Arc::new(
            Writer::with_limits(
                Box::new(move |key, bytes| {
                    // Injected delay: the queue stays full.
                    std::thread::sleep(Duration::from_micros(200 * u64::from(key.0[1] % 3)));
                    let previous = log.lock().unwrap().insert(*key, bytes.to_vec());
                    assert!(previous.is_none_or(|p| p == bytes));
                }),
                3,
                1 << 20,
            )
            .unwrap(),
        );
        let threads: Vec<_> = (0..8u8)
            .map(|t| {
                let (writer, written) = (Arc::clone(&writer), Arc::clone(&written));
                std::thread::spawn(move || {
                    for i in 0..60u8 {
                        // Half the keys are shared by every thread.
                        let owner = if i % 2 == 0 { 0 } else { t + 1 };
                        let mut key = Key([0; 32]);
                        (key.0[0], key.0[1]) = (i, owner);
                        let bytes = vec![i ^ owner; 1 + usize::from(i)];
                        if writer.push(key, bytes.clone()).is_err() {
                            written.lock().unwrap().insert(key, bytes.clone());
                        }
                        // Pushed: pending, or already written; never lost.
                        let seen = writer
                            .pending(&key)
                            .map(|b| b.to_vec())
                            .or_else(|| written.lock().unwrap().get(&key).cloned());
                        assert_eq!(seen, Some(bytes));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        writer.flush();
        assert_eq!(written.lock().unwrap().len(), 30 + 8 * 30);
    }
}
