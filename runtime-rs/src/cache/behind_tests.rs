//! The node cache with its entries written behind runs.

use std::fs;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::data::{Matrix, Value};

const SLOW: Duration = Duration::from_secs(10);

fn open(dir: &Path, memory_bytes: u64) -> NodeCache {
    NodeCache::open(&CacheConfig {
        dir: dir.to_path_buf(),
        memory_bytes,
        disk_bytes: 1 << 30,
    })
    .unwrap()
}

fn matrix(seed: f64) -> Entry {
    Entry::Value(Value::Matrix(Arc::new(Matrix::from_fn(8, 3, |i, j| {
        seed + i as f64 - 0.5 * j as f64
    }))))
}

fn first_cell(entry: Option<Entry>) -> Option<f64> {
    match entry? {
        Entry::Value(Value::Matrix(m)) => Some(m[(0, 0)]),
        _ => None,
    }
}

fn files(dir: &Path) -> usize {
    fs::read_dir(dir.join("entries"))
        .unwrap()
        .map(|shard| fs::read_dir(shard.unwrap().path()).unwrap().count())
        .sum()
}

fn key(i: usize) -> Key {
    Key::for_node(&format!("node {i}"))
}

#[test]
fn entries_written_behind_are_read_at_once_and_on_disk_after_flush() {
    let dir = tempfile::tempdir().unwrap();
    // No memory tier: every read goes to the pending entries or the disk.
    let cache = open(dir.path(), 0);
    for i in 0..100 {
        assert!(cache.put_behind(&key(i), &matrix(i as f64), SLOW));
        assert_eq!(first_cell(cache.get(&key(i), |_| true)), Some(i as f64));
    }
    cache.flush().unwrap();
    assert_eq!(files(dir.path()), 100);
    assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    let stats = cache.stats();
    assert_eq!(
        (stats.stores, stats.hits, stats.misses, stats.memory_hits),
        (100, 100, 0, 0)
    );
    let one = codec::encoded_len(&matrix(0.0)).unwrap() as u64;
    assert_eq!(stats.bytes_written, 100 * one);
    // Another process sees them all once flushed.
    let other = open(dir.path(), 0);
    for i in 0..100 {
        assert_eq!(first_cell(other.get(&key(i), |_| true)), Some(i as f64));
    }
    assert_eq!(NodeCache::summary(dir.path()).unwrap().totals.stores, 100);
}

#[test]
fn dropping_the_cache_writes_what_is_pending() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), 1 << 20);
    for i in 0..300 {
        cache.put_behind(&key(i), &matrix(i as f64), SLOW);
    }
    drop(cache);
    assert_eq!(files(dir.path()), 300);
    let other = open(dir.path(), 0);
    assert!((0..300).all(|i| first_cell(other.get(&key(i), |_| true)) == Some(i as f64)));
}

#[test]
fn clear_forgets_entries_waiting_to_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), 1 << 20);
    for i in 0..50 {
        cache.put_behind(&key(i), &matrix(i as f64), SLOW);
    }
    cache.clear().unwrap();
    assert!((0..50).all(|i| cache.get(&key(i), |_| true).is_none()));
    cache.flush().unwrap();
    assert_eq!(files(dir.path()), 0);
}

#[test]
fn large_entries_are_written_before_put_behind_returns() {
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), 1 << 30);
    let large = Entry::Value(Value::Matrix(Arc::new(Matrix::from_fn(
        40_000,
        4,
        |i, _| i as f64,
    ))));
    assert!(codec::encoded_len(&large).unwrap() > SMALL_ENTRY);
    assert!(cache.put_behind(&key(0), &large, SLOW));
    assert_eq!(files(dir.path()), 1, "on disk without a flush");
}

/// Threads storing and reading the same and different keys, with and
/// without a memory tier; every thread reads back what it stored, and a
/// second cache reads everything once the first is flushed.
#[test]
fn many_threads_store_behind_and_read_back_without_a_miss() {
    for memory_bytes in [0, 1 << 20, 4096] {
        let dir = tempfile::tempdir().unwrap();
        let cache = Arc::new(open(dir.path(), memory_bytes));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let cache = Arc::clone(&cache);
                std::thread::spawn(move || {
                    for i in 0..150 {
                        // Even keys are shared by every thread.
                        let n = if i % 2 == 0 { i } else { 1000 * (t + 1) + i };
                        cache.put_behind(&key(n), &matrix(n as f64), SLOW);
                        assert_eq!(first_cell(cache.get(&key(n), |_| true)), Some(n as f64));
                        let earlier = n.saturating_sub(2);
                        let seen = first_cell(cache.get(&key(earlier), |_| true));
                        assert!(seen.is_none_or(|v| v == earlier as f64));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        cache.flush().unwrap();
        assert_eq!(cache.stats().corrupt + cache.stats().io_errors, 0);
        let other = open(dir.path(), 0);
        for t in 0..8 {
            for i in 0..150 {
                let n = if i % 2 == 0 { i } else { 1000 * (t + 1) + i };
                assert_eq!(first_cell(other.get(&key(n), |_| true)), Some(n as f64));
            }
        }
        assert_eq!(files(dir.path()), 75 + 8 * 75);
    }
}

/// A cache whose writer waits for `gate` (the disk falls behind) and whose
/// writes are known to cost at least `cost`.
fn behind_disk(dir: &Path, gate: &Arc<std::sync::atomic::AtomicBool>, cost: Duration) -> NodeCache {
    use std::sync::atomic::Ordering;
    let mut cache = open(dir, 1 << 20);
    let (store, stats) = (
        Arc::clone(&cache.disk.as_ref().unwrap().0),
        Arc::clone(&cache.stats),
    );
    let gate = Arc::clone(gate);
    cache.writer = Writer::with_limits(
        Box::new(move |key, bytes| {
            std::thread::sleep(cost);
            while !gate.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(1));
            }
            write_entry(&store, &stats, key, bytes);
        }),
        4,
        1 << 20,
    );
    cache
}

#[test]
fn with_the_disk_behind_cheap_entries_stay_in_memory_and_dear_ones_go_inline() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(AtomicBool::new(true));
    let cache = behind_disk(dir.path(), &gate, Duration::from_millis(20));
    // One write teaches the writer what a write costs (at least 20 ms).
    assert!(cache.put_behind(&key(0), &matrix(0.0), SLOW));
    cache.flush().unwrap();
    assert!(cache.writer.as_ref().unwrap().write_cost() >= Duration::from_millis(20));
    gate.store(false, Ordering::SeqCst);
    let cheap = Duration::from_micros(1);
    // The thread holds one entry and the queue takes 4: the rest find it full.
    for i in 1..=100 {
        assert!(cache.put_behind(&key(i), &matrix(i as f64), cheap));
    }
    let written = cache.stats().bytes_written;
    let one = codec::encoded_len(&matrix(0.0)).unwrap() as u64;
    assert_eq!(
        written, one,
        "nothing written inline while the writer is stuck"
    );
    assert!(cache.stats().disk_skipped >= 100 - 5);
    // Every entry still reads back in this process.
    assert!((1..=100).all(|i| first_cell(cache.get(&key(i), |_| true)) == Some(i as f64)));
    // An entry dearer to recompute than to write is written before returning.
    assert!(cache.put_behind(&key(1000), &matrix(1000.0), SLOW));
    assert_eq!(cache.stats().bytes_written, 2 * one);
    gate.store(true, Ordering::SeqCst);
    cache.flush().unwrap();
    let on_disk = files(dir.path()) as u64;
    assert_eq!(on_disk + cache.stats().disk_skipped, 102);
}

#[test]
fn without_a_memory_tier_a_full_queue_still_writes_inline() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(AtomicBool::new(true));
    let mut cache = behind_disk(dir.path(), &gate, Duration::from_millis(20));
    cache.memory = None;
    assert!(cache.put_behind(&key(0), &matrix(0.0), SLOW));
    cache.flush().unwrap();
    gate.store(false, Ordering::SeqCst);
    for i in 1..=20 {
        assert!(cache.put_behind(&key(i), &matrix(i as f64), Duration::from_micros(1)));
    }
    assert_eq!(cache.stats().disk_skipped, 0);
    assert!((1..=20).all(|i| first_cell(cache.get(&key(i), |_| true)) == Some(i as f64)));
    gate.store(true, Ordering::SeqCst);
    cache.flush().unwrap();
    assert_eq!(files(dir.path()), 21);
}
