//! The helpers every binding goes through: [`guard`] turns a Rust panic into
//! `academy_ml.exceptions.InternalError` (never pyo3's `PanicException`), and
//! [`detach_interruptible`] releases the GIL around long work, runs it on a
//! worker thread, and keeps checking for Ctrl-C so a user can interrupt a
//! long batch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use pyo3::{PyErr, PyResult, Python};

use super::errors;
use crate::error::{catch_panic, Result, RuntimeError};

/// How often the waiting thread looks for pending signals.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// Runs the body of the binding named `what`; a panic in it becomes an
/// `InternalError` naming the binding.
pub fn guard<T>(what: &str, body: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    catch_panic(what, body).map_err(errors::to_py)?
}

/// Runs `work` without the GIL. If a signal handler raises (Ctrl-C), sets
/// `cancel` so the work stops early, waits for it, and returns that error;
/// otherwise returns what `work` did, its error (or panic) as the matching
/// Python exception.
pub fn detach_interruptible<T, F>(py: Python<'_>, cancel: &AtomicBool, work: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce() -> Result<T> + Send,
{
    let mut interrupt: Option<PyErr> = None;
    let outcome = py.detach(|| {
        std::thread::scope(|scope| {
            let waiter = std::thread::current();
            let handle = scope.spawn(move || {
                let out = catch_panic("the runtime", work).and_then(|out| out);
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
        (None, Ok(out)) => out.map_err(errors::to_py),
        // The worker catches its own panics; only waking the waiter is left.
        (None, Err(payload)) => Err(errors::to_py(RuntimeError::from_panic(
            "the runtime's worker thread",
            &*payload,
        ))),
    }
}
