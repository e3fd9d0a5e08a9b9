//! The helpers every binding goes through: [`guard`] turns a Rust panic into
//! `academy_ml.exceptions.InternalError` (never pyo3's `PanicException`), and
//! [`detach_interruptible`] releases the GIL around long work, runs it on a
//! thread of the run's pool, and keeps checking for Ctrl-C and for [`interrupt_runs`] so
//! a user (or a shutting-down process) can interrupt a long batch.
//!
//! Ctrl-C alone cannot stop a run on a worker thread: Python runs signal
//! handlers on the main thread only, so `check_signals` elsewhere never
//! fails. A process that is stopping calls [`interrupt_runs`] instead, which
//! reaches every run in flight, whatever thread started it.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use pyo3::{pyfunction, PyErr, PyResult, Python};
use rayon::ThreadPool;

use super::errors;
use crate::error::{catch_panic, Result};
use crate::exec::run_watched;

pyo3::import_exception!(academy_ml.exceptions, RunInterrupted);

/// How often the waiting thread looks for pending signals and interrupts.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// Bumped by [`interrupt_runs`]; a run that began under an older value stops.
/// A counter rather than a flag, so runs started afterwards are unaffected
/// and nothing has to be reset.
static EPOCH: AtomicU64 = AtomicU64::new(0);

/// Runs inside [`detach_interruptible`] right now (for the caller's log).
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Interrupts every runtime call in flight in this process, on any thread:
/// each stops at its next node and raises `RunInterrupted`. Calls started
/// afterwards run normally. Returns how many were in flight.
#[pyfunction]
pub fn interrupt_runs() -> usize {
    // Read before the bump: a run counted here has already taken its epoch.
    let in_flight = IN_FLIGHT.load(Ordering::SeqCst);
    EPOCH.fetch_add(1, Ordering::SeqCst);
    in_flight
}

/// Counts a run in flight for as long as it lives.
struct InFlight;

impl InFlight {
    fn enter() -> Self {
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        Self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs the body of the binding named `what`; a panic in it becomes an
/// `InternalError` naming the binding.
pub fn guard<T>(what: &str, body: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    catch_panic(what, body).map_err(errors::to_py)?
}

/// Runs `work` without the GIL on one of `pool`'s threads (kept by the
/// process: no thread is started per call). If a signal handler raises
/// (Ctrl-C on the main thread) or [`interrupt_runs`] is called, sets `cancel`
/// so the work stops early, waits for it, and returns that error; otherwise
/// returns what `work` did, its error (or panic) as the matching Python
/// exception.
pub fn detach_interruptible<T, F>(
    py: Python<'_>,
    pool: &ThreadPool,
    cancel: &AtomicBool,
    work: F,
) -> PyResult<T>
where
    T: Send,
    F: FnOnce() -> Result<T> + Send,
{
    let _counted = InFlight::enter();
    let epoch = EPOCH.load(Ordering::SeqCst);
    let mut interrupt: Option<PyErr> = None;
    let outcome = py.detach(|| {
        run_watched(pool, SIGNAL_POLL, work, || {
            if interrupt.is_none() {
                interrupt = pending_interrupt(epoch);
                if interrupt.is_some() {
                    cancel.store(true, Ordering::Relaxed);
                }
            }
        })
    });
    match interrupt {
        Some(err) => Err(err),
        None => outcome.map_err(errors::to_py),
    }
}

/// Why a run that began at `epoch` must stop now, if it must: a signal
/// handler's error, or `RunInterrupted` after [`interrupt_runs`].
fn pending_interrupt(epoch: u64) -> Option<PyErr> {
    if EPOCH.load(Ordering::SeqCst) != epoch {
        return Some(RunInterrupted::new_err(
            "the runtime call was interrupted: academy_ml._runtime.interrupt_runs() \
             was called (the process is stopping)",
        ));
    }
    Python::attach(|py| py.check_signals()).err()
}
