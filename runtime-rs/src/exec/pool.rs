//! Worker pools: one rayon pool per requested size, at most [`KEPT_POOLS`]
//! sizes per process, and never more threads than the process has cores.
//!
//! Every distinct size used to keep its pool (and its threads) forever, so a
//! few requests with odd `threads` values left thousands of idle threads, and
//! `threads=100000` hung starting them.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, OnceLock};

use rayon::ThreadPool;

use crate::error::{Result, RuntimeError};

/// Pool sizes kept per process (least recently used evicted first).
pub const KEPT_POOLS: usize = 4;

/// The most worker threads a run may ask for: the cores this process may
/// use (affinity mask and cgroup quota included).
pub fn max_threads() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// A rayon pool with `threads` workers (all cores when `None`), reused by
/// later runs of the same size.
///
/// A child forked from a process that ran plans (multiprocessing's and
/// Globus Compute's process pools fork) inherits the pools but not their
/// threads; handing work to them would hang, so each process builds its own.
pub fn pool(threads: Option<usize>) -> Result<Arc<ThreadPool>> {
    static POOLS: OnceLock<Mutex<Pools>> = OnceLock::new();
    let limit = max_threads();
    let size = match threads {
        None => limit,
        Some(0) => return Err(RuntimeError::parameter("threads must be at least 1")),
        Some(n) if n > limit => {
            return Err(RuntimeError::parameter(format!(
                "threads must be at most {limit} (the cores available to this process), got {n}"
            )))
        }
        Some(n) => n,
    };
    let mut pools = POOLS
        .get_or_init(|| Mutex::new(Pools::new(KEPT_POOLS)))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    if pools.pid != pid {
        // The parent's pools: their threads are not in this process, so they
        // are leaked rather than dropped (dropping would signal those threads).
        std::mem::forget(std::mem::take(&mut pools.kept));
        pools.pid = pid;
    }
    pools.get(size)
}

/// Pools built so far, least recently used first, and the process that built them.
struct Pools {
    pid: u32,
    capacity: usize,
    kept: Vec<(usize, Arc<ThreadPool>)>,
}

impl Pools {
    fn new(capacity: usize) -> Self {
        Pools {
            pid: std::process::id(),
            capacity,
            kept: Vec::with_capacity(capacity + 1),
        }
    }

    /// The pool of `size` threads, built if not kept. Evicting a pool only
    /// drops this set's handle: a run still using it holds its own `Arc`, and
    /// the threads end when the last handle goes.
    fn get(&mut self, size: usize) -> Result<Arc<ThreadPool>> {
        if let Some(at) = self.kept.iter().position(|(s, _)| *s == size) {
            let entry = self.kept.remove(at);
            let pool = entry.1.clone();
            self.kept.push(entry);
            return Ok(pool);
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(size)
            .thread_name(|i| format!("academy-ml-{i}"))
            .build()
            .map_err(|e| RuntimeError::numerical(format!("cannot start worker threads: {e}")))?;
        let pool = Arc::new(pool);
        if self.kept.len() >= self.capacity {
            self.kept.remove(0);
        }
        self.kept.push((size, pool.clone()));
        Ok(pool)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_sizes_keep_a_bounded_set_of_pools() {
        let mut pools = Pools::new(3);
        let first = pools.get(1).unwrap();
        assert!(Arc::ptr_eq(&first, &pools.get(1).unwrap()));
        let mut evicted = Vec::new();
        for size in 2..=12 {
            evicted.push(pools.get(size).unwrap());
            assert!(pools.kept.len() <= 3, "{} pools kept", pools.kept.len());
        }
        let sizes: Vec<usize> = pools.kept.iter().map(|(s, _)| *s).collect();
        assert_eq!(sizes, [10, 11, 12]);
        // Evicted pools still serve whoever holds them.
        assert_eq!(first.install(rayon::current_num_threads), 1);
        assert_eq!(evicted[0].install(rayon::current_num_threads), 2);
        // Using a kept size makes it the most recent: 11 is evicted next, not 10.
        pools.get(10).unwrap();
        pools.get(5).unwrap();
        let sizes: Vec<usize> = pools.kept.iter().map(|(s, _)| *s).collect();
        assert_eq!(sizes, [12, 10, 5]);
    }

    #[test]
    fn threads_beyond_the_cores_are_refused_naming_the_limit() {
        let limit = max_threads();
        for asked in [limit + 1, 100_000, usize::MAX] {
            match pool(Some(asked)) {
                Err(RuntimeError::Parameter(message)) => {
                    assert!(message.contains(&format!("at most {limit}")), "{message}");
                    assert!(message.contains(&asked.to_string()), "{message}");
                }
                other => panic!("threads={asked} gave {other:?}"),
            }
        }
        assert!(matches!(pool(Some(0)), Err(RuntimeError::Parameter(_))));
        let all = pool(None).unwrap();
        assert_eq!(all.current_num_threads(), limit);
        assert!(Arc::ptr_eq(&all, &pool(Some(limit)).unwrap()));
    }
}
