//! Memory accounting, hang detection and case serialisation.
//!
//! Every case holds one global lock (cases never overlap, even though the
//! harness runs tests on several threads), so the counting allocator can
//! charge all growth of the heap to the running case, and a watchdog thread
//! can abort with the offending input when a case hangs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use _runtime::data::MAX_COLUMNS;
use _runtime::exec;
use faer::Mat;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::fixtures::N_ROWS;

/// Growth of live heap memory a single case may cause. The largest matrix a
/// step may build on the fixtures is `N_ROWS x MAX_COLUMNS` f64 (96 MiB): the
/// last level of a doubling `hstack` chain, built while its half-width input
/// (48 MiB) and the gather's two 16-byte entries per column (32 MiB) are
/// live. That is 176 MiB; the rest is headroom for the allocator and pool.
pub const SOFT_LIMIT: usize = 256 << 20;
const WIDEST: usize = N_ROWS * MAX_COLUMNS * 8;
const _: () = assert!(WIDEST + WIDEST / 2 + 32 * MAX_COLUMNS <= SOFT_LIMIT);

/// Single requests above this are refused outright (the process then aborts
/// with "memory allocation of N bytes failed"), so a runaway case cannot take
/// the machine down before the soft limit is checked.
const HARD_LIMIT: usize = 2 * SOFT_LIMIT;
/// A case running longer than this is reported as a hang.
const HANG_LIMIT: Duration = Duration::from_secs(60);

struct Counting;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static BASE: AtomicUsize = AtomicUsize::new(usize::MAX);
static LARGEST: AtomicUsize = AtomicUsize::new(0);
/// Passed to `exec::run` as its cancel flag: set by the allocator as soon as
/// the running case exceeds [`SOFT_LIMIT`], so a memory blow-up stops at the
/// next node instead of exhausting the machine.
pub static CANCEL: AtomicBool = AtomicBool::new(false);

impl Counting {
    fn grew(size: usize) {
        let live = LIVE.fetch_add(size, Relaxed) + size;
        PEAK.fetch_max(live, Relaxed);
        LARGEST.fetch_max(size, Relaxed);
        if live.saturating_sub(BASE.load(Relaxed)) > SOFT_LIMIT {
            CANCEL.store(true, Relaxed);
        }
    }

    /// Forwards a request the hard limit allows; on success counts `size`
    /// bytes as live in place of `freed`.
    fn counted(size: usize, freed: usize, alloc: impl FnOnce() -> *mut u8) -> *mut u8 {
        if size > HARD_LIMIT {
            return std::ptr::null_mut();
        }
        let ptr = alloc();
        if !ptr.is_null() {
            LIVE.fetch_sub(freed, Relaxed);
            Self::grew(size);
        }
        ptr
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments and
// only adds relaxed counter updates, which neither allocate nor unwind.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::counted(layout.size(), 0, || unsafe { System.alloc(layout) })
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::counted(layout.size(), 0, || unsafe { System.alloc_zeroed(layout) })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::counted(new_size, layout.size(), || unsafe {
            System.realloc(ptr, layout, new_size)
        })
    }
}

/// Serialises cases across the harness's test threads.
static SERIAL: Mutex<()> = Mutex::new(());
/// The running case: when it started and what its input is.
static WATCHED: Mutex<Option<(Instant, String)>> = Mutex::new(None);

fn lock<T>(m: &'static Mutex<T>) -> MutexGuard<'static, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn start_watchdog() {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        // The default hook symbolises a backtrace when RUST_BACKTRACE is set,
        // which allocates tens of MB: a test failing on one thread would be
        // charged to the case running on another. Message and location do.
        std::panic::set_hook(Box::new(|info| eprintln!("{info}")));
        // The matrix-product backend reserves a per-thread packing buffer
        // (twice the L3 cache) on first use: a fixed cost, paid here rather
        // than by whichever case first multiplies matrices.
        exec::pool(Some(1)).expect("a one-thread pool").install(|| {
            let a = Mat::<f64>::from_fn(256, 256, |i, j| (i * 3 + j) as f64);
            std::hint::black_box(&a * &a);
        });
        std::thread::spawn(|| loop {
            std::thread::sleep(Duration::from_millis(250));
            let watched = lock(&WATCHED);
            if let Some((since, what)) = watched.as_ref() {
                if since.elapsed() > HANG_LIMIT {
                    // Straight to the stream: the harness captures `eprintln!`
                    // and the capture is lost when the process aborts.
                    let _ = writeln!(
                        std::io::stderr(),
                        "plan_fuzz: a case has run for more than {HANG_LIMIT:?}; input:\n{what}"
                    );
                    std::process::abort();
                }
            }
        });
    });
}

/// One fuzz case: exclusive, timed and memory-accounted until dropped.
pub struct Case {
    _serial: MutexGuard<'static, ()>,
}

impl Case {
    /// Starts a case; `what` describes its input for the hang report.
    pub fn start(what: impl FnOnce() -> String) -> Case {
        start_watchdog();
        let serial = lock(&SERIAL);
        *lock(&WATCHED) = Some((Instant::now(), what()));
        let live = LIVE.load(Relaxed);
        BASE.store(live, Relaxed);
        PEAK.store(live, Relaxed);
        LARGEST.store(0, Relaxed);
        CANCEL.store(false, Relaxed);
        Case { _serial: serial }
    }

    /// Fails the case if it grew the heap by more than [`SOFT_LIMIT`].
    pub fn memory(&self) -> Result<(), TestCaseError> {
        let grown = PEAK.load(Relaxed).saturating_sub(BASE.load(Relaxed));
        let largest = LARGEST.load(Relaxed);
        prop_assert!(
            grown <= SOFT_LIMIT && !CANCEL.load(Relaxed),
            "memory blow-up: the case grew the heap by {grown} bytes (largest request {largest})"
        );
        Ok(())
    }

    /// Ends a deterministic case, panicking if it blew up memory.
    pub fn finish(self) {
        if let Err(e) = self.memory() {
            panic!("{e}");
        }
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        *lock(&WATCHED) = None;
        BASE.store(usize::MAX, Relaxed);
    }
}

/// `cases` cases, times `PLAN_FUZZ_SCALE` when set (for longer local runs,
/// e.g. `PLAN_FUZZ_SCALE=30 cargo test --test plan_fuzz`).
pub fn config(cases: u32) -> ProptestConfig {
    let scale = std::env::var("PLAN_FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
        .unwrap_or(1);
    ProptestConfig {
        cases: cases.saturating_mul(scale.max(1)),
        // Never write regression files into the repository.
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..ProptestConfig::default()
    }
}
