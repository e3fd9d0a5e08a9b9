//! The one helper every long Rust call goes through: it releases the GIL,
//! runs the work on a worker thread, and keeps checking for Ctrl-C so a user
//! can interrupt a long batch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pyo3::{PyErr, PyResult, Python};

/// How often the waiting thread looks for pending signals.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// Runs `work` without the GIL. If a signal handler raises (Ctrl-C), sets
/// `cancel` so the work stops early, waits for it, and returns that error.
pub fn detach_interruptible<T, F>(py: Python<'_>, cancel: &AtomicBool, work: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    let mut interrupt: Option<PyErr> = None;
    let outcome = py.detach(|| {
        std::thread::scope(|scope| {
            let waiter = std::thread::current();
            let handle = scope.spawn(move || {
                let out = work();
                waiter.unpark();
                out
            });
            while !handle.is_finished() {
                std::thread::park_timeout(SIGNAL_POLL);
                if interrupt.is_none() && !handle.is_finished() {
                    if let Err(err) = Python::attach(|py| py.check_signals()) {
                        cancel.store(true, Ordering::Relaxed);
                        interrupt = Some(err);
                    }
                }
            }
            handle.join()
        })
    });
    match (interrupt, outcome) {
        (Some(err), _) => Err(err),
        (None, Ok(out)) => Ok(out),
        (None, Err(panic)) => std::panic::resume_unwind(panic),
    }
}
