//! `academy_ml._runtime.NodeCache`: the runtime's cache, held by
//! `academy_ml.Cache` and passed to `run_plan`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use super::{errors, gil};
use crate::cache::{CacheConfig, Entry, Key, NodeCache, Stats};

/// A two-tier node cache (memory LRU + a directory shared by the node).
#[pyclass(name = "NodeCache", module = "academy_ml._runtime", frozen)]
pub struct PyNodeCache {
    pub(super) inner: NodeCache,
}

#[pymethods]
impl PyNodeCache {
    #[new]
    fn new(path: PathBuf, memory_bytes: u64, disk_bytes: u64) -> PyResult<Self> {
        let config = CacheConfig {
            dir: path,
            memory_bytes,
            disk_bytes,
        };
        gil::guard("NodeCache", || {
            let inner = NodeCache::open(&config).map_err(errors::to_py)?;
            Ok(PyNodeCache { inner })
        })
    }

    /// This process's counters.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        gil::guard("NodeCache.stats", || stats_dict(py, &self.inner.stats()))
    }

    /// Bytes held by the memory tier.
    fn memory_used(&self) -> PyResult<u64> {
        gil::guard("NodeCache.memory_used", || Ok(self.inner.memory_used()))
    }

    /// Empties both tiers; returns the number of disk entries removed.
    fn clear(&self) -> PyResult<u64> {
        gil::guard("NodeCache.clear", || {
            self.inner.clear().map_err(errors::to_py)
        })
    }

    /// Empties the cache directory `path` without opening a cache (nothing is
    /// created; a path that is not a private cache directory is refused);
    /// returns the number of entries removed.
    #[staticmethod]
    fn clear_dir(py: Python<'_>, path: PathBuf) -> PyResult<u64> {
        py.detach(|| NodeCache::clear_dir(&path))
            .map_err(errors::to_py)
    }

    /// Waits until every entry stored so far is on disk (other processes see
    /// it), then adds this process's counters to the directory's totals.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        gil::guard("NodeCache.flush", || {
            py.detach(|| self.inner.flush()).map_err(errors::to_py)
        })
    }

    /// Bytes stored by `put_blob` under `key`, or None.
    fn get_blob<'py>(&self, py: Python<'py>, key: &str) -> PyResult<Option<Bound<'py, PyBytes>>> {
        gil::guard("NodeCache.get_blob", || {
            let key = Key::for_node(key);
            let found = py.detach(|| self.inner.get(&key, |e| matches!(e, Entry::Blob(_))));
            Ok(match found {
                Some(Entry::Blob(bytes)) => Some(PyBytes::new(py, &bytes)),
                _ => None,
            })
        })
    }

    /// Stores `data` under `key` (small results computed on the Python side).
    fn put_blob(&self, py: Python<'_>, key: &str, data: Vec<u8>) -> PyResult<bool> {
        gil::guard("NodeCache.put_blob", || {
            let key = Key::for_node(key);
            let entry = Entry::Blob(Arc::new(data));
            Ok(py.detach(|| self.inner.put(&key, &entry, Duration::MAX)))
        })
    }
}

/// `(entries, bytes, totals)` of a cache directory, for `academy-ml cache
/// stats`; nothing is created, and a path that is not a private cache
/// directory is refused.
#[pyfunction]
pub fn cache_summary(py: Python<'_>, path: PathBuf) -> PyResult<(u64, u64, Bound<'_, PyDict>)> {
    gil::guard("cache_summary", || {
        let summary = py
            .detach(|| NodeCache::summary(&path))
            .map_err(errors::to_py)?;
        Ok((
            summary.entries,
            summary.bytes,
            stats_dict(py, &summary.totals)?,
        ))
    })
}

fn stats_dict<'py>(py: Python<'py>, stats: &Stats) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (name, value) in [
        ("hits", stats.hits),
        ("memory_hits", stats.memory_hits),
        ("misses", stats.misses),
        ("bytes_read", stats.bytes_read),
        ("bytes_written", stats.bytes_written),
        ("stores", stats.stores),
        ("evictions", stats.evictions),
        ("corrupt", stats.corrupt),
        ("io_errors", stats.io_errors),
        ("disk_skipped", stats.disk_skipped),
    ] {
        dict.set_item(name, value)?;
    }
    Ok(dict)
}
