//! Handing a run to its pool's threads while the calling thread watches.
//!
//! A Python binding releases the GIL and must keep polling for Ctrl-C on the
//! thread that called it (Python runs signal handlers on the main thread
//! only), so the run itself goes to another thread. That thread is one of
//! the run's rayon pool, which the process keeps: starting a thread per
//! call cost about 0.1-0.2 ms per task on a loaded node, the price of a
//! whole small plan.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rayon::ThreadPool;

use crate::error::{catch_panic, Result, RuntimeError};

/// Runs `work` on one of `pool`'s threads and calls `watch` on this thread
/// every `every` until it is done (`watch` tells the work to stop, through
/// whatever flag the work reads). Returns what `work` returned; a panic in
/// it becomes [`RuntimeError::Internal`].
///
/// Must not be called from one of `pool`'s own threads (the work would then
/// run on the caller, which could not watch it).
pub fn run_watched<T: Send>(
    pool: &ThreadPool,
    every: Duration,
    work: impl FnOnce() -> Result<T> + Send,
    mut watch: impl FnMut(),
) -> Result<T> {
    let done = AtomicBool::new(false);
    let mut outcome = None;
    let waiter = std::thread::current();
    pool.in_place_scope(|scope| {
        let (done, outcome) = (&done, &mut outcome);
        scope.spawn(move |_| {
            *outcome = Some(catch_panic("the runtime", work).and_then(|out| out));
            done.store(true, Ordering::Release);
            waiter.unpark();
        });
        while !done.load(Ordering::Acquire) {
            std::thread::park_timeout(every);
            if !done.load(Ordering::Acquire) {
                watch();
            }
        }
    });
    outcome.unwrap_or_else(|| {
        Err(RuntimeError::internal(
            "the runtime's worker left no outcome",
        ))
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    use super::*;

    fn pool(threads: usize) -> ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    }

    #[test]
    fn runs_go_to_the_pools_threads_not_to_a_new_thread_each() {
        let pool = pool(2);
        let caller = std::thread::current().id();
        let mut seen = HashSet::new();
        for i in 0..100 {
            let ran_on = run_watched(
                &pool,
                Duration::from_millis(50),
                || Ok((i, std::thread::current().id())),
                || {},
            )
            .unwrap();
            assert_eq!(ran_on.0, i);
            seen.insert(ran_on.1);
        }
        assert!(!seen.contains(&caller), "the caller only watches");
        assert!(seen.len() <= 2, "{} threads for 100 runs", seen.len());
    }

    #[test]
    fn the_watcher_is_called_until_the_work_stops() {
        let pool = pool(1);
        let cancel = AtomicBool::new(false);
        let mut watched = 0;
        let out: Result<()> = run_watched(
            &pool,
            Duration::from_millis(1),
            || {
                while !cancel.load(Ordering::Relaxed) {
                    std::thread::yield_now();
                }
                Err(RuntimeError::Interrupted)
            },
            || {
                watched += 1;
                if watched == 3 {
                    cancel.store(true, Ordering::Relaxed);
                }
            },
        );
        assert!(matches!(out, Err(RuntimeError::Interrupted)));
        assert!(watched >= 3);
    }

    #[test]
    fn a_panic_in_the_work_is_an_internal_error_and_the_pool_lives_on() {
        let pool = pool(1);
        let out: Result<()> = run_watched(
            &pool,
            Duration::from_millis(50),
            || panic!("injected"),
            || {},
        );
        match out {
            Err(RuntimeError::Internal(message)) => assert!(message.contains("injected")),
            other => panic!("expected an internal error, got {other:?}"),
        }
        let again = run_watched(&pool, Duration::from_millis(50), || Ok(7), || {});
        assert_eq!(again.unwrap(), 7);
    }

    #[test]
    fn many_callers_share_a_one_thread_pool() {
        let pool = Arc::new(pool(1));
        let total = Arc::new(AtomicUsize::new(0));
        let callers: Vec<_> = (0..8)
            .map(|t| {
                let (pool, total) = (Arc::clone(&pool), Arc::clone(&total));
                std::thread::spawn(move || {
                    for i in 0..25 {
                        // Work that itself uses the pool, as a run does.
                        let sum = run_watched(
                            &pool,
                            Duration::from_millis(1),
                            || {
                                Ok(pool.install(|| {
                                    use rayon::prelude::*;
                                    (0..100usize).into_par_iter().map(|x| x * t).sum::<usize>()
                                }))
                            },
                            || {},
                        )
                        .unwrap();
                        assert_eq!(sum, 4950 * t);
                        total.fetch_add(i, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for caller in callers {
            caller.join().unwrap();
        }
        assert_eq!(total.load(Ordering::Relaxed), 8 * 300);
    }
}
