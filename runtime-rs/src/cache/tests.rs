use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::value::{Matrix, Value};

const SLOW: Duration = Duration::from_secs(10);

fn config(dir: &Path, memory_bytes: u64, disk_bytes: u64) -> CacheConfig {
    CacheConfig {
        dir: dir.to_path_buf(),
        memory_bytes,
        disk_bytes,
    }
}

fn matrix(rows: usize, seed: f64) -> Entry {
    Entry::Value(Value::Matrix(Arc::new(Matrix::from_fn(rows, 4, |i, j| {
        seed + i as f64 * 0.25 - j as f64
    }))))
}

fn as_matrix(entry: Option<Entry>) -> Option<Matrix> {
    match entry? {
        Entry::Value(Value::Matrix(m)) => Some((*m).clone()),
        _ => None,
    }
}

fn entry_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for shard in fs::read_dir(dir.join("entries")).unwrap() {
        for file in fs::read_dir(shard.unwrap().path()).unwrap() {
            files.push(file.unwrap().path());
        }
    }
    files
}

#[test]
fn keys_depend_on_node_key_and_runtime() {
    assert_eq!(Key::for_node("a"), Key::for_node("a"));
    assert_ne!(Key::for_node("a"), Key::for_node("b"));
    assert_eq!(Key::for_node("a").hex().len(), 64);
    assert!(RUNTIME_ID.starts_with(env!("CARGO_PKG_VERSION")));
}

#[test]
fn memory_then_disk_tier_and_other_processes_see_entries() {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::for_node("m");
    let first = NodeCache::open(&config(dir.path(), 1 << 20, 1 << 30)).unwrap();
    assert!(first.get(&key, |_| true).is_none());
    assert!(first.put(&key, &matrix(10, 1.0), SLOW));
    assert_eq!(
        as_matrix(first.get(&key, |_| true)),
        as_matrix(Some(matrix(10, 1.0)))
    );
    let stats = first.stats();
    assert_eq!(
        (stats.hits, stats.memory_hits, stats.misses, stats.stores),
        (1, 1, 1, 1)
    );
    // A second cache on the same directory stands for another process.
    let second = NodeCache::open(&config(dir.path(), 1 << 20, 1 << 30)).unwrap();
    assert_eq!(
        as_matrix(second.get(&key, |_| true)),
        as_matrix(Some(matrix(10, 1.0)))
    );
    let stats = second.stats();
    assert_eq!((stats.hits, stats.memory_hits), (1, 0));
    assert_eq!(stats.bytes_read, first.stats().bytes_written);
    // Now it is in the second cache's memory too.
    second.get(&key, |_| true);
    assert_eq!(second.stats().memory_hits, 1);
}

#[test]
fn memory_budget_evicts_and_disk_still_answers() {
    let dir = tempfile::tempdir().unwrap();
    let one = codec::encoded_len(&matrix(100, 0.0)).unwrap() as u64;
    let cache = NodeCache::open(&config(dir.path(), 2 * one, 1 << 30)).unwrap();
    for i in 0..3 {
        cache.put(&Key::for_node(&i.to_string()), &matrix(100, i as f64), SLOW);
    }
    assert_eq!(cache.stats().evictions, 1);
    assert_eq!(cache.memory_used(), 2 * one);
    let oldest = cache.get(&Key::for_node("0"), |_| true);
    assert_eq!(as_matrix(oldest), as_matrix(Some(matrix(100, 0.0))));
    assert_eq!(cache.stats().memory_hits, 0, "served from disk");
}

#[test]
fn disk_budget_evicts_least_recently_used() {
    let dir = tempfile::tempdir().unwrap();
    let one = codec::encoded_len(&matrix(1000, 0.0)).unwrap() as u64;
    let cache = NodeCache::open(&config(dir.path(), 0, 3 * one)).unwrap();
    for i in 0..4 {
        cache.put(
            &Key::for_node(&i.to_string()),
            &matrix(1000, i as f64),
            SLOW,
        );
    }
    assert!(cache.stats().evictions >= 1);
    let summary = NodeCache::summary(dir.path()).unwrap();
    assert!(summary.bytes <= 3 * one, "{} > {}", summary.bytes, 3 * one);
    assert!(
        cache.get(&Key::for_node("3"), |_| true).is_some(),
        "newest survives"
    );
}

#[test]
fn damaged_entries_are_counted_removed_and_never_returned() {
    let dir = tempfile::tempdir().unwrap();
    let cache = NodeCache::open(&config(dir.path(), 0, 1 << 30)).unwrap();
    let (a, b) = (Key::for_node("a"), Key::for_node("b"));
    cache.put(&a, &matrix(50, 1.0), SLOW);
    cache.put(&b, &matrix(50, 2.0), SLOW);
    for (n, path) in entry_files(dir.path()).into_iter().enumerate() {
        let mut bytes = fs::read(&path).unwrap();
        if n == 0 {
            bytes.truncate(bytes.len() / 2);
        } else {
            let last = bytes.len() - 1;
            bytes[last] ^= 0xff;
        }
        fs::write(&path, bytes).unwrap();
    }
    assert!(cache.get(&a, |_| true).is_none());
    assert!(cache.get(&b, |_| true).is_none());
    let stats = cache.stats();
    assert_eq!((stats.corrupt, stats.misses, stats.hits), (2, 2, 0));
    assert!(
        entry_files(dir.path()).is_empty(),
        "damaged entries are removed"
    );
    cache.put(&a, &matrix(50, 1.0), SLOW);
    assert!(cache.get(&a, |_| true).is_some());
}

#[test]
fn admission_keeps_small_or_expensive_values_only() {
    let dir = tempfile::tempdir().unwrap();
    let cache = NodeCache::open(&config(dir.path(), 1 << 30, 1 << 30)).unwrap();
    let big = matrix(SMALL_ENTRY / 16, 0.0);
    assert!(!cache.put(&Key::for_node("cheap"), &big, Duration::from_micros(1)));
    assert!(cache.put(&Key::for_node("dear"), &big, SLOW));
    assert!(cache.put(&Key::for_node("small"), &matrix(4, 0.0), Duration::ZERO));
    assert_eq!(cache.stats().stores, 2);
}

#[test]
fn refused_entries_are_misses() {
    let dir = tempfile::tempdir().unwrap();
    let cache = NodeCache::open(&config(dir.path(), 1 << 20, 1 << 30)).unwrap();
    cache.put(&Key::for_node("a"), &matrix(3, 0.0), SLOW);
    assert!(cache.get(&Key::for_node("a"), |_| false).is_none());
    assert_eq!(cache.stats().misses, 1);
    assert_eq!(cache.stats().corrupt, 0);
}

#[test]
fn totals_add_up_across_processes_and_clear_resets() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["x", "y"] {
        let cache = NodeCache::open(&config(dir.path(), 0, 1 << 30)).unwrap();
        cache.get(&Key::for_node(name), |_| true);
        cache.put(&Key::for_node(name), &matrix(2, 0.0), SLOW);
        cache.flush_stats().unwrap();
        cache.flush_stats().unwrap();
    }
    let summary = NodeCache::summary(dir.path()).unwrap();
    assert_eq!(
        (
            summary.entries,
            summary.totals.misses,
            summary.totals.stores
        ),
        (2, 2, 2)
    );
    let cache = NodeCache::open(&config(dir.path(), 0, 1 << 30)).unwrap();
    assert_eq!(cache.clear().unwrap(), 2);
    let summary = NodeCache::summary(dir.path()).unwrap();
    assert_eq!((summary.entries, summary.totals), (0, Stats::default()));
}

#[test]
fn unusable_directories_are_cache_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    fs::write(&file, b"not a directory").unwrap();
    let err = NodeCache::open(&config(&file, 0, 1)).err().unwrap();
    assert!(matches!(err, RuntimeError::Cache(_)), "{err:?}");
    assert!(NodeCache::open(&config(&file, 1, 0)).is_ok(), "memory only");
}
