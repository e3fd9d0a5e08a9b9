//! The on-disk tier, shared by every process on the node.
//!
//! Entries live at `entries/<2 hex>/<62 hex>`. A writer writes a private
//! temporary file and renames it into place, so a reader sees a whole entry or
//! none, and two processes storing the same key both leave a valid one (the
//! bytes are equal). Reads refresh the file's modification time; eviction
//! removes the least recently used entries once the byte budget is exceeded.
//! No locks: a file removed under a reader simply reads as a miss.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::Key;

/// Eviction brings usage down to this fraction of the budget, so it does not
/// rescan the directory on every write.
const EVICT_TO: f64 = 0.9;
/// Temporary files older than this were left by a crashed writer.
const STALE_TEMP: Duration = Duration::from_secs(3600);

/// A directory of entries with a byte budget.
pub(super) struct Store {
    root: PathBuf,
    budget: u64,
    /// Bytes on disk as last scanned plus what this process wrote since.
    usage: AtomicU64,
    evicting: Mutex<()>,
}

/// One stored entry, as a scan sees it.
struct Found {
    path: PathBuf,
    size: u64,
    used: SystemTime,
}

impl Store {
    /// Opens (creating) the store at `root`.
    pub(super) fn open(root: &Path, budget: u64) -> io::Result<Store> {
        fs::create_dir_all(root.join("entries"))?;
        fs::create_dir_all(root.join("tmp"))?;
        remove_stale_temps(&root.join("tmp"));
        let store = Store {
            root: root.to_path_buf(),
            budget,
            usage: AtomicU64::new(0),
            evicting: Mutex::new(()),
        };
        store
            .usage
            .store(store.scan().iter().map(|f| f.size).sum(), Ordering::Relaxed);
        Ok(store)
    }

    fn path(&self, key: &Key) -> PathBuf {
        let hex = key.hex();
        self.root.join("entries").join(&hex[..2]).join(&hex[2..])
    }

    /// The stored bytes of `key`, or None when there is no such entry.
    pub(super) fn read(&self, key: &Key) -> io::Result<Option<Vec<u8>>> {
        let path = self.path(key);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        // Recency for eviction; failing to record it loses nothing.
        if let Ok(file) = fs::File::options().append(true).open(&path) {
            let _ = file.set_modified(SystemTime::now());
        }
        Ok(Some(bytes))
    }

    /// Stores `bytes` under `key` atomically; returns the number of entries
    /// evicted to stay within budget. Entries above half the budget are not
    /// stored (they would evict everything else).
    pub(super) fn write(&self, key: &Key, bytes: &[u8]) -> io::Result<u64> {
        let size = bytes.len() as u64;
        if size as f64 > self.budget as f64 / 2.0 {
            return Ok(0);
        }
        let path = self.path(key);
        let temp = self.root.join("tmp").join(temp_name());
        let written = (|| {
            let mut file = fs::File::create(&temp)?;
            file.write_all(bytes)?;
            drop(file);
            fs::create_dir_all(path.parent().expect("entries have a parent"))?;
            fs::rename(&temp, &path)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
        let usage = self.usage.fetch_add(size, Ordering::Relaxed) + size;
        Ok(if usage > self.budget {
            self.evict(&path)
        } else {
            0
        })
    }

    /// Removes `key`'s entry (a damaged one).
    pub(super) fn remove(&self, key: &Key) {
        let path = self.path(key);
        if let Ok(meta) = fs::metadata(&path) {
            if fs::remove_file(&path).is_ok() {
                let _ = self
                    .usage
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                        Some(u.saturating_sub(meta.len()))
                    });
            }
        }
    }

    /// Removes the least recently used entries (never `keep`, the entry just
    /// written) until usage is back under budget; returns how many.
    fn evict(&self, keep: &Path) -> u64 {
        let _one_at_a_time = self.evicting.lock().unwrap_or_else(|e| e.into_inner());
        let counted = self.usage.load(Ordering::Relaxed);
        let mut found = self.scan();
        let mut total: u64 = found.iter().map(|f| f.size).sum();
        let mut evicted = 0;
        if total > self.budget {
            let target = (self.budget as f64 * EVICT_TO) as u64;
            found.sort_by_key(|f| f.used);
            for entry in found.into_iter().filter(|f| f.path != keep) {
                if total <= target {
                    break;
                }
                // Another process may have removed it already: either way it is gone.
                if fs::remove_file(&entry.path).is_ok() {
                    evicted += 1;
                }
                total = total.saturating_sub(entry.size);
            }
        }
        // Swap what was counted before the scan for what the scan found,
        // keeping bytes that other threads added meanwhile.
        if total >= counted {
            self.usage.fetch_add(total - counted, Ordering::Relaxed);
        } else {
            let _ = self
                .usage
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                    Some(u.saturating_sub(counted - total))
                });
        }
        evicted
    }

    /// Every entry file: path, size, last use.
    fn scan(&self) -> Vec<Found> {
        let mut found = Vec::new();
        let Ok(shards) = fs::read_dir(self.root.join("entries")) else {
            return found;
        };
        for shard in shards.flatten() {
            let Ok(files) = fs::read_dir(shard.path()) else {
                continue;
            };
            for file in files.flatten() {
                if let Ok(meta) = file.metadata() {
                    if meta.is_file() {
                        found.push(Found {
                            path: file.path(),
                            size: meta.len(),
                            used: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                        });
                    }
                }
            }
        }
        found
    }

    /// (entries, bytes) on disk now.
    pub(super) fn usage(&self) -> (u64, u64) {
        let found = self.scan();
        (found.len() as u64, found.iter().map(|f| f.size).sum())
    }

    /// Removes every entry; returns how many.
    pub(super) fn clear(&self) -> u64 {
        let mut removed = 0;
        for entry in self.scan() {
            if fs::remove_file(&entry.path).is_ok() {
                removed += 1;
            }
        }
        self.usage.store(0, Ordering::Relaxed);
        removed
    }
}

fn temp_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}-{nanos}-{n}.tmp", std::process::id())
}

fn remove_stale_temps(dir: &Path) {
    let Ok(files) = fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for file in files.flatten() {
        let old = file
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > STALE_TEMP);
        if old {
            let _ = fs::remove_file(file.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_whole_and_budget_evicts_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 1000).unwrap();
        let (a, b, c) = (Key([1; 32]), Key([2; 32]), Key([3; 32]));
        assert_eq!(store.write(&a, &[1; 400]).unwrap(), 0);
        assert_eq!(store.write(&b, &[2; 400]).unwrap(), 0);
        let long_ago = SystemTime::now() - Duration::from_secs(60);
        fs::File::options()
            .append(true)
            .open(store.path(&b))
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        assert_eq!(store.write(&c, &[3; 400]).unwrap(), 1);
        assert!(
            store.read(&b).unwrap().is_none(),
            "b was least recently used"
        );
        assert_eq!(store.read(&a).unwrap().unwrap(), vec![1; 400]);
        assert_eq!(store.usage(), (2, 800));
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn oversized_entries_are_skipped_and_clear_empties() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 100).unwrap();
        store.write(&Key([1; 32]), &[0; 51]).unwrap();
        assert!(store.read(&Key([1; 32])).unwrap().is_none());
        store.write(&Key([2; 32]), &[0; 10]).unwrap();
        let reopened = Store::open(dir.path(), 100).unwrap();
        assert_eq!(reopened.usage.load(Ordering::Relaxed), 10);
        assert_eq!(reopened.clear(), 1);
        assert_eq!(reopened.usage(), (0, 0));
    }
}
