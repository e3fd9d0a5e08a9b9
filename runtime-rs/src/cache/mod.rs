//! The node-local cache of plan intermediates.
//!
//! Entries are content-addressed: a [`Key`] hashes the compiler's node key
//! (operation, parameters, input keys, dataset fingerprint, fold rows) with
//! this runtime's identity (version and a hash of its source), so a code
//! change never reads an older runtime's results. Two tiers: memory (shared
//! by reference, LRU within a byte budget; with a disk tier, only entries up
//! to 1 MiB, large ones being left to the page cache) and a private directory
//! that every process of the user on the node shares (atomic writes, entries
//! checksummed with a key only the directory's owner can read, LRU eviction
//! within a byte budget). A damaged or forged entry is counted, removed and
//! recomputed, never returned. A run stores its entries with
//! [`NodeCache::put_behind`]: a background writer puts them on disk while
//! this process already reads them (see `writer`).
//!
//! Admission is cost-aware: a value is kept when it is small, or when
//! recomputing it from what is cached would take longer than storing and
//! reading it back.

mod codec;
mod disk;
mod key;
mod memory;
mod secure;
mod writer;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use codec::Corrupt;
pub use codec::{decode, encode, reseal, Corrupt as CorruptEntry, Entry, Secret};
use disk::Read;
pub use key::{Key, FORMAT, RUNTIME_ID};
use secure::Opened;
pub use secure::{Reason, Refused};
use writer::Writer;

use crate::error::{Result, RuntimeError};

/// Values up to this size are always admitted.
const SMALL_ENTRY: usize = 1 << 20;
/// A large value is kept only if recomputing it takes longer than moving it
/// through the cache at this rate. Storing (encode, checksum, write through
/// the page cache) runs at ~0.3 GB/s and loading at ~1 GB/s on a 2-core
/// node; the margin covers values that are stored but never read again.
const ADMIT_BYTES_PER_SECOND: f64 = 1.5e8;

/// Where the cache lives and how much it may hold.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Directory of the disk tier (shared by the node's processes).
    pub dir: PathBuf,
    /// Budget of the memory tier; 0 disables it.
    pub memory_bytes: u64,
    /// Budget of the disk tier; 0 disables it.
    pub disk_bytes: u64,
}

/// Cache counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Lookups answered (either tier).
    pub hits: u64,
    /// Of the hits, answered from memory.
    pub memory_hits: u64,
    /// Lookups not answered.
    pub misses: u64,
    /// Bytes read from disk.
    pub bytes_read: u64,
    /// Bytes written to disk.
    pub bytes_written: u64,
    /// Entries stored.
    pub stores: u64,
    /// Entries evicted from either tier.
    pub evictions: u64,
    /// Damaged entries found (and removed).
    pub corrupt: u64,
    /// Disk reads or writes that failed (the run went on without them).
    pub io_errors: u64,
    /// Entries kept in memory only: the disk writer was behind, and they
    /// were cheaper to recompute than to write. (Totals written before this
    /// counter existed read as zero.)
    #[serde(default)]
    pub disk_skipped: u64,
}

impl Stats {
    fn add(&mut self, other: &Stats) {
        self.hits += other.hits;
        self.memory_hits += other.memory_hits;
        self.misses += other.misses;
        self.bytes_read += other.bytes_read;
        self.bytes_written += other.bytes_written;
        self.stores += other.stores;
        self.evictions += other.evictions;
        self.corrupt += other.corrupt;
        self.io_errors += other.io_errors;
        self.disk_skipped += other.disk_skipped;
    }

    fn minus(&self, earlier: &Stats) -> Stats {
        Stats {
            hits: self.hits - earlier.hits,
            memory_hits: self.memory_hits - earlier.memory_hits,
            misses: self.misses - earlier.misses,
            bytes_read: self.bytes_read - earlier.bytes_read,
            bytes_written: self.bytes_written - earlier.bytes_written,
            stores: self.stores - earlier.stores,
            evictions: self.evictions - earlier.evictions,
            corrupt: self.corrupt - earlier.corrupt,
            io_errors: self.io_errors - earlier.io_errors,
            disk_skipped: self.disk_skipped - earlier.disk_skipped,
        }
    }
}

/// What a cache directory holds, for `academy-ml cache stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Entries on disk.
    pub entries: u64,
    /// Bytes on disk.
    pub bytes: u64,
    /// Counters of every process that used the directory since it was cleared.
    pub totals: Stats,
}

/// A two-tier cache; share one per process (it is `Sync`).
pub struct NodeCache {
    dir: PathBuf,
    memory: Option<memory::Lru>,
    /// The disk tier and the key of its entries' checksums.
    disk: Option<(Arc<disk::Store>, Secret)>,
    /// Writes the disk tier's entries behind runs (with the disk tier, when
    /// its thread could start).
    writer: Option<Writer>,
    stats: Arc<Mutex<Stats>>,
    /// Counters already added to the directory's totals.
    flushed: Mutex<Stats>,
    /// When a run last added its counters to the totals (None: never).
    last_flush: Mutex<Option<Instant>>,
}

/// Runs add their counters to the directory's totals at most this often: a
/// worker serving many small plans would otherwise lock and rewrite the
/// totals file for each (dropping the cache flushes the rest).
const FLUSH_EVERY: Duration = Duration::from_secs(1);

impl NodeCache {
    /// Opens the cache; when the disk tier is on, creates its directory
    /// (private) or checks that the existing one is, and loads (or creates)
    /// its checksum secret.
    pub fn open(config: &CacheConfig) -> Result<NodeCache> {
        let disk = if config.disk_bytes > 0 {
            let store = disk::Store::open(&config.dir, config.disk_bytes).map_err(refused)?;
            let secret = secure::load_or_create_secret(&config.dir, &store.temp_dir()).map_err(
                |reason| {
                    refused(Refused {
                        path: config.dir.clone(),
                        reason,
                    })
                },
            )?;
            Some((Arc::new(store), Secret::new(secret)))
        } else {
            None
        };
        let stats = Arc::<Mutex<Stats>>::default();
        let writer = disk.as_ref().and_then(|(store, _)| {
            let (store, stats) = (Arc::clone(store), Arc::clone(&stats));
            Writer::start(Box::new(move |key, bytes| {
                write_entry(&store, &stats, key, bytes);
            }))
        });
        Ok(NodeCache {
            dir: config.dir.clone(),
            memory: (config.memory_bytes > 0).then(|| memory::Lru::new(config.memory_bytes)),
            disk,
            writer,
            stats,
            flushed: Mutex::default(),
            last_flush: Mutex::default(),
        })
    }

    fn count(&self, update: impl FnOnce(&mut Stats)) {
        count(&self.stats, update);
    }

    /// Looks `key` up in memory, then among entries waiting to be written,
    /// then on disk; `accept` may refuse a stored value that cannot serve
    /// this request (a neighbour list that is too short). Damaged entries are
    /// removed and counted.
    pub fn get(&self, key: &Key, accept: impl Fn(&Entry) -> bool) -> Option<Entry> {
        if let Some(entry) = self.memory.as_ref().and_then(|m| m.get(key)) {
            if accept(&entry) {
                self.count(|s| {
                    s.hits += 1;
                    s.memory_hits += 1;
                });
                return Some(entry);
            }
        }
        let Some((disk, secret)) = &self.disk else {
            self.count(|s| s.misses += 1);
            return None;
        };
        let pending = self.writer.as_ref().and_then(|w| w.pending(key));
        let (bytes, from_disk) = match pending {
            Some(bytes) => (bytes, false),
            None => self.read(disk, key)?,
        };
        match codec::decode(secret, key, &bytes) {
            Ok(entry) if accept(&entry) => {
                self.count(|s| {
                    s.hits += 1;
                    s.bytes_read += if from_disk { bytes.len() as u64 } else { 0 };
                });
                self.remember(*key, &entry, bytes.len());
                Some(entry)
            }
            Ok(_) => {
                self.count(|s| s.misses += 1);
                None
            }
            Err(Corrupt(_)) => {
                disk.remove(key);
                self.count(|s| {
                    s.corrupt += 1;
                    s.misses += 1;
                });
                None
            }
        }
    }

    /// `key`'s bytes on disk (and that they came from disk), or None (counted
    /// as a miss).
    fn read(&self, disk: &disk::Store, key: &Key) -> Option<(Arc<Vec<u8>>, bool)> {
        match disk.read(key) {
            Ok(Read::Bytes(bytes)) => Some((Arc::new(bytes), true)),
            Ok(Read::Missing) => {
                self.count(|s| s.misses += 1);
                None
            }
            Ok(Read::Refused) => {
                self.count(|s| {
                    s.corrupt += 1;
                    s.misses += 1;
                });
                None
            }
            Err(_) => {
                self.count(|s| {
                    s.io_errors += 1;
                    s.misses += 1;
                });
                None
            }
        }
    }

    /// Stores `entry` if it is worth keeping: small, or slower to recompute
    /// (`recompute`) than to read back; on disk before returning. Returns
    /// whether it was stored.
    pub fn put(&self, key: &Key, entry: &Entry, recompute: Duration) -> bool {
        self.store(key, entry, recompute, false)
    }

    /// [`NodeCache::put`], the disk write left to the background writer
    /// (this process reads the entry meanwhile; other processes see it once
    /// written, at the latest after [`NodeCache::flush`]). Large entries, and
    /// any when the writer's queue is full, are written before returning.
    pub fn put_behind(&self, key: &Key, entry: &Entry, recompute: Duration) -> bool {
        self.store(key, entry, recompute, true)
    }

    fn store(&self, key: &Key, entry: &Entry, recompute: Duration, behind: bool) -> bool {
        let sealing = self.disk.as_ref().map_or(&NO_SECRET, |(_, secret)| secret);
        let mut encoded = None;
        let size = match codec::encoded_len(entry) {
            Some(size) => size,
            None => encoded.insert(codec::encode(sealing, key, entry)).len(),
        };
        let load_seconds = size as f64 / ADMIT_BYTES_PER_SECOND;
        if size > SMALL_ENTRY && recompute.as_secs_f64() < load_seconds {
            return false;
        }
        if let Some((disk, secret)) = &self.disk {
            let bytes = encoded.unwrap_or_else(|| codec::encode(secret, key, entry));
            let inline = match &self.writer {
                Some(writer) if behind && size <= SMALL_ENTRY => match writer.push(*key, bytes) {
                    Ok(()) => None,
                    // The queue is full: runs store faster than the disk
                    // writes. Cheaper to recompute than to write, the entry
                    // stays in memory only (elsewhere a later miss, here no wait).
                    Err(_) if self.memory.is_some() && recompute < writer.write_cost() => {
                        self.count(|s| s.disk_skipped += 1);
                        None
                    }
                    Err(bytes) => Some(bytes),
                },
                _ => Some(bytes),
            };
            if let Some(bytes) = inline {
                write_entry(disk, &self.stats, key, &bytes);
            }
        }
        self.remember(*key, entry, size);
        self.count(|s| s.stores += 1);
        true
    }

    /// Keeps an entry in the memory tier. With a disk tier, large entries
    /// stay on disk only: the OS page cache keeps hot ones in RAM, shared by
    /// every process and outside this one's footprint.
    fn remember(&self, key: Key, entry: &Entry, size: usize) {
        if self.disk.is_some() && size > SMALL_ENTRY {
            return;
        }
        if let Some(memory) = &self.memory {
            let evicted = memory.insert(key, entry.clone(), size as u64);
            self.count(|s| s.evictions += evicted);
        }
    }

    /// Counters of this process.
    pub fn stats(&self) -> Stats {
        *self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes held by the memory tier.
    pub fn memory_used(&self) -> u64 {
        self.memory.as_ref().map_or(0, memory::Lru::used)
    }

    /// Empties both tiers and the directory's totals; returns the number of
    /// disk entries removed.
    pub fn clear(&self) -> Result<u64> {
        if let Some(writer) = &self.writer {
            writer.discard();
        }
        if let Some(memory) = &self.memory {
            memory.clear();
        }
        *self.flushed.lock().unwrap_or_else(|e| e.into_inner()) = self.stats();
        match &self.disk {
            Some((store, _)) => clear_store(store, &self.dir),
            None => Ok(0),
        }
    }

    /// Waits until every entry stored so far is on disk (visible to other
    /// processes), then adds the counters to the directory's totals.
    pub fn flush(&self) -> Result<()> {
        if let Some(writer) = &self.writer {
            writer.flush();
        }
        self.flush_stats()
    }

    /// Adds this process's counters since the last flush to the directory's
    /// totals (shared by every process, updated under a file lock).
    pub fn flush_stats(&self) -> Result<()> {
        let Some((store, _)) = &self.disk else {
            return Ok(());
        };
        let now = self.stats();
        let mut flushed = self.flushed.lock().unwrap_or_else(|e| e.into_inner());
        let delta = now.minus(&flushed);
        if delta == Stats::default() {
            return Ok(());
        }
        with_totals(&self.dir, &store.temp_dir(), |totals| totals.add(&delta))
            .map_err(cache_error)?;
        *flushed = now;
        Ok(())
    }

    /// Flushes the counters when the last flush of a run is older than
    /// [`FLUSH_EVERY`]. Best effort: counters that cannot be written stay
    /// pending, and a run that computed its results does not fail over them.
    pub fn flush_stats_if_due(&self) {
        {
            let mut last = self.last_flush.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|at| at.elapsed() < FLUSH_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        let _ = self.flush_stats();
    }

    /// What the directory holds and its totals, without opening a cache or
    /// creating anything: `dir` must be a private directory a cache made.
    pub fn summary(dir: &Path) -> Result<Summary> {
        let store = disk::Store::existing(dir).map_err(refused)?;
        let (entries, bytes) = store.usage();
        Ok(Summary {
            entries,
            bytes,
            totals: read_totals(dir).map_err(cache_error)?,
        })
    }

    /// Empties the cache directory `dir` and its totals without opening a
    /// cache; `dir` must be a private directory a cache made. Returns the
    /// number of entries removed.
    pub fn clear_dir(dir: &Path) -> Result<u64> {
        let store = disk::Store::existing(dir).map_err(refused)?;
        clear_store(&store, dir)
    }
}

impl Drop for NodeCache {
    fn drop(&mut self) {
        // Best effort: a process exiting must not fail because of counters.
        let _ = self.flush();
    }
}

fn count(stats: &Mutex<Stats>, update: impl FnOnce(&mut Stats)) {
    update(&mut stats.lock().unwrap_or_else(|e| e.into_inner()));
}

/// Writes one encoded entry to the disk tier, counting what it did.
fn write_entry(disk: &disk::Store, stats: &Mutex<Stats>, key: &Key, bytes: &[u8]) {
    match disk.write(key, bytes) {
        Ok(evicted) => count(stats, |s| {
            s.bytes_written += bytes.len() as u64;
            s.evictions += evicted;
        }),
        Err(_) => count(stats, |s| s.io_errors += 1),
    }
}

fn cache_error(e: io::Error) -> RuntimeError {
    RuntimeError::Cache(format!("cache directory: {e}"))
}

fn refused(refused: Refused) -> RuntimeError {
    RuntimeError::Cache(refused.to_string())
}

/// Seals encodings that are only sized (no disk tier to store them).
const NO_SECRET: Secret = Secret::new([0; 32]);

const TOTALS_FILE: &str = "stats.msgpack";
/// The totals are a few dozen bytes; anything larger is not ours.
const TOTALS_LIMIT: u64 = 4096;

fn clear_store(store: &disk::Store, dir: &Path) -> Result<u64> {
    let removed = store.clear();
    with_totals(dir, &store.temp_dir(), |totals| *totals = Stats::default())
        .map_err(cache_error)?;
    Ok(removed)
}

/// The directory's persisted totals. Unreadable ones (a torn write from a
/// crash, something planted) read as zero.
fn read_totals(dir: &Path) -> io::Result<Stats> {
    let bytes = match secure::open_regular(&dir.join(TOTALS_FILE), false)? {
        Opened::File(file, meta) => secure::read_bounded(file, meta.len(), TOTALS_LIMIT)?,
        Opened::Missing | Opened::Unsafe(_) => None,
    };
    Ok(bytes
        .and_then(|b| rmp_serde::from_slice(&b).ok())
        .unwrap_or_default())
}

/// Runs `update` on the directory's persisted totals under an exclusive lock;
/// the new totals are written to a private temporary file in `temp_dir` and
/// renamed into place.
fn with_totals(dir: &Path, temp_dir: &Path, update: impl FnOnce(&mut Stats)) -> io::Result<()> {
    let lock = match secure::open_regular(&dir.join("stats.lock"), true)? {
        Opened::File(file, _) => file,
        Opened::Missing | Opened::Unsafe(_) => {
            return Err(io::Error::other(format!(
                "{} is not a regular file of this user",
                dir.join("stats.lock").display()
            )))
        }
    };
    lock.lock()?;
    let mut totals = read_totals(dir)?;
    update(&mut totals);
    let bytes = rmp_serde::to_vec_named(&totals).expect("stats serialise");
    secure::replace(&dir.join(TOTALS_FILE), temp_dir, "stats-", &bytes)?;
    lock.unlock()
}

#[cfg(test)]
mod behind_tests;
#[cfg(test)]
mod tests;
