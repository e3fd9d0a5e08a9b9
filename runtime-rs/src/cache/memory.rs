//! The in-process tier: entries shared by reference (no copy, no encoding),
//! least recently used first out once the byte budget is exceeded.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use super::codec::Entry;
use super::key::Key;

/// A byte-budgeted LRU map of entries.
pub(super) struct Lru {
    budget: u64,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    map: HashMap<Key, Slot>,
    /// Last-use tick -> key; the first entry is the least recently used.
    order: BTreeMap<u64, Key>,
    used: u64,
    tick: u64,
}

struct Slot {
    entry: Entry,
    size: u64,
    tick: u64,
}

impl Lru {
    pub(super) fn new(budget: u64) -> Self {
        Lru {
            budget,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The entry under `key`, marked as just used.
    pub(super) fn get(&self, key: &Key) -> Option<Entry> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let slot = inner.map.get_mut(key)?;
        let old = std::mem::replace(&mut slot.tick, tick);
        let entry = slot.entry.clone();
        inner.order.remove(&old);
        inner.order.insert(tick, *key);
        Some(entry)
    }

    /// Stores `entry` (of `size` bytes); returns how many entries were evicted
    /// to make room. Entries larger than the whole budget are not kept.
    pub(super) fn insert(&self, key: Key, entry: Entry, size: u64) -> u64 {
        if size > self.budget {
            return 0;
        }
        let mut inner = self.lock();
        inner.remove(&key);
        inner.tick += 1;
        let tick = inner.tick;
        inner.order.insert(tick, key);
        inner.map.insert(key, Slot { entry, size, tick });
        inner.used += size;
        let mut evicted = 0;
        while inner.used > self.budget {
            let Some((_, oldest)) = inner.order.pop_first() else {
                break;
            };
            if let Some(slot) = inner.map.remove(&oldest) {
                inner.used -= slot.size;
                evicted += 1;
            }
        }
        evicted
    }

    /// Forgets every entry.
    pub(super) fn clear(&self) {
        *self.lock() = Inner::default();
    }

    /// Bytes held.
    pub(super) fn used(&self) -> u64 {
        self.lock().used
    }
}

impl Inner {
    fn remove(&mut self, key: &Key) {
        if let Some(slot) = self.map.remove(key) {
            self.order.remove(&slot.tick);
            self.used -= slot.size;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::data::Value;

    fn entry(x: f64) -> Entry {
        Entry::Value(Value::Scalar(x))
    }

    fn scalar(entry: Option<Entry>) -> Option<f64> {
        match entry? {
            Entry::Value(Value::Scalar(x)) => Some(x),
            _ => None,
        }
    }

    #[test]
    fn evicts_least_recently_used_within_budget() {
        let lru = Lru::new(300);
        assert_eq!(lru.insert(Key([1; 32]), entry(1.0), 100), 0);
        assert_eq!(lru.insert(Key([2; 32]), entry(2.0), 100), 0);
        assert_eq!(lru.insert(Key([3; 32]), entry(3.0), 100), 0);
        assert_eq!(scalar(lru.get(&Key([1; 32]))), Some(1.0));
        assert_eq!(lru.insert(Key([4; 32]), entry(4.0), 100), 1);
        assert_eq!(scalar(lru.get(&Key([2; 32]))), None, "2 was the oldest");
        assert_eq!(scalar(lru.get(&Key([1; 32]))), Some(1.0));
        assert_eq!(lru.used(), 300);
    }

    #[test]
    fn oversized_entries_are_not_kept_and_replacing_keeps_accounts() {
        let lru = Lru::new(100);
        assert_eq!(lru.insert(Key([1; 32]), entry(1.0), 101), 0);
        assert!(lru.get(&Key([1; 32])).is_none());
        lru.insert(Key([1; 32]), entry(1.0), 60);
        lru.insert(Key([1; 32]), entry(2.0), 70);
        assert_eq!(lru.used(), 70);
        assert_eq!(scalar(lru.get(&Key([1; 32]))), Some(2.0));
        lru.insert(Key([2; 32]), Entry::Blob(Arc::new(vec![1])), 1);
        lru.clear();
        assert_eq!(lru.used(), 0);
    }
}
