//! The on-disk tier, shared by every process of one user on the node.
//!
//! Entries live at `entries/<2 hex>/<62 hex>` in a private directory (see
//! `secure`). A writer writes a private temporary file and renames it into
//! place, so a reader sees a whole entry or none, and two processes storing
//! the same key both leave a valid one (the bytes are equal). Reads refresh
//! the file's modification time; eviction removes the least recently used
//! entries once the byte budget is exceeded. No locks: a file removed under a
//! reader simply reads as a miss. Anything at an entry's path that is not a
//! regular file of this user (a planted link or FIFO) is removed unread.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::key::Key;
use super::secure::{self, Opened, Reason, Refused};

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

/// What reading an entry found.
pub(super) enum Read {
    /// No entry.
    Missing,
    /// The entry's bytes.
    Bytes(Vec<u8>),
    /// Something that is not an entry (a link, a FIFO, an oversized file);
    /// it was removed unread.
    Refused,
}

impl Store {
    /// Opens the store at `root`, creating it (mode 0700) when absent.
    pub(super) fn open(root: &Path, budget: u64) -> Result<Store, Refused> {
        let refused = |reason| Refused {
            path: root.to_path_buf(),
            reason,
        };
        secure::create_private_dir(root).map_err(refused)?;
        for sub in ["entries", "tmp"] {
            secure::create_subdir(&root.join(sub))
                .map_err(|e| refused(Reason::Io(format!("cannot create {sub}/: {e}"))))?;
        }
        remove_stale_temps(&root.join("tmp"));
        Ok(Store::at(root, budget))
    }

    /// Opens the store at `root` without creating anything: `root` must be
    /// a private directory a cache made.
    pub(super) fn existing(root: &Path) -> Result<Store, Refused> {
        let refused = |reason| Refused {
            path: root.to_path_buf(),
            reason,
        };
        secure::check_private_dir(root).map_err(refused)?;
        if !fs::symlink_metadata(root.join("entries")).is_ok_and(|m| m.is_dir()) {
            return Err(refused(Reason::NotACache));
        }
        Ok(Store::at(root, u64::MAX))
    }

    fn at(root: &Path, budget: u64) -> Store {
        let store = Store {
            root: root.to_path_buf(),
            budget,
            usage: AtomicU64::new(0),
            evicting: Mutex::new(()),
        };
        store
            .usage
            .store(store.scan().iter().map(|f| f.size).sum(), Ordering::Relaxed);
        store
    }

    /// The directory of temporary files.
    pub(super) fn temp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    fn path(&self, key: &Key) -> PathBuf {
        let hex = key.hex();
        self.root.join("entries").join(&hex[..2]).join(&hex[2..])
    }

    /// Largest entry this store writes (and so reads).
    fn largest(&self) -> u64 {
        self.budget / 2
    }

    /// The stored bytes of `key`. The entry is opened without following a
    /// link or blocking on a FIFO, and checked on the open descriptor.
    pub(super) fn read(&self, key: &Key) -> io::Result<Read> {
        let path = self.path(key);
        let (file, meta) = match secure::open_regular(&path, false)? {
            Opened::File(file, meta) => (file, meta),
            Opened::Missing => return Ok(Read::Missing),
            Opened::Unsafe(_) => {
                let _ = fs::remove_file(&path);
                return Ok(Read::Refused);
            }
        };
        // Recency for eviction, on the descriptor just opened; failing to
        // record it loses nothing.
        let _ = file.set_modified(SystemTime::now());
        match secure::read_bounded(file, meta.len(), self.largest())? {
            Some(bytes) => Ok(Read::Bytes(bytes)),
            None => {
                self.remove(key);
                Ok(Read::Refused)
            }
        }
    }

    /// Stores `bytes` under `key` atomically; returns the number of entries
    /// evicted to stay within budget. Entries above half the budget are not
    /// stored (they would evict everything else).
    pub(super) fn write(&self, key: &Key, bytes: &[u8]) -> io::Result<u64> {
        let size = bytes.len() as u64;
        if size > self.largest() {
            return Ok(0);
        }
        let path = self.path(key);
        secure::create_subdir(path.parent().expect("entries have a parent"))?;
        secure::replace(&path, &self.temp_dir(), "entry-", bytes)?;
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
        if let Ok(meta) = fs::symlink_metadata(&path) {
            if fs::remove_file(&path).is_ok() && meta.is_file() {
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

    /// Every file in the entry shards (real directories only): path, size,
    /// last use, and whether it is a regular file (only those are entries).
    fn files(&self) -> Vec<(Found, bool)> {
        let mut found = Vec::new();
        let Ok(shards) = fs::read_dir(self.root.join("entries")) else {
            return found;
        };
        for shard in shards.flatten() {
            if !shard.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let Ok(files) = fs::read_dir(shard.path()) else {
                continue;
            };
            for file in files.flatten() {
                // `DirEntry::metadata` does not follow symbolic links.
                if let Ok(meta) = file.metadata() {
                    let entry = Found {
                        path: file.path(),
                        size: meta.len(),
                        used: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    };
                    found.push((entry, meta.is_file()));
                }
            }
        }
        found
    }

    /// Every entry: path, size, last use.
    fn scan(&self) -> Vec<Found> {
        self.files()
            .into_iter()
            .filter_map(|(f, regular)| regular.then_some(f))
            .collect()
    }

    /// (entries, bytes) on disk now.
    pub(super) fn usage(&self) -> (u64, u64) {
        let found = self.scan();
        (found.len() as u64, found.iter().map(|f| f.size).sum())
    }

    /// Removes every entry, and anything else planted among them; returns
    /// how many entries.
    pub(super) fn clear(&self) -> u64 {
        let mut removed = 0;
        for (entry, regular) in self.files() {
            if fs::remove_file(&entry.path).is_ok() && regular {
                removed += 1;
            }
        }
        self.usage.store(0, Ordering::Relaxed);
        removed
    }
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
            matches!(store.read(&b).unwrap(), Read::Missing),
            "b was least recently used"
        );
        assert!(matches!(store.read(&a).unwrap(), Read::Bytes(v) if v == vec![1; 400]));
        assert_eq!(store.usage(), (2, 800));
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn oversized_entries_are_skipped_and_clear_empties() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 100).unwrap();
        store.write(&Key([1; 32]), &[0; 51]).unwrap();
        assert!(matches!(store.read(&Key([1; 32])).unwrap(), Read::Missing));
        store.write(&Key([2; 32]), &[0; 10]).unwrap();
        let reopened = Store::open(dir.path(), 100).unwrap();
        assert_eq!(reopened.usage.load(Ordering::Relaxed), 10);
        assert_eq!(reopened.clear(), 1);
        assert_eq!(reopened.usage(), (0, 0));
    }
}
