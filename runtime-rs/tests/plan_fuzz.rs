//! Plan bytes are untrusted input: this file fuzzes `Plan::decode`,
//! `Plan::check` and `exec::run` with random, mutated, truncated and
//! semantically hostile plans.
//!
//! Every property holds one global lock per case (cases never overlap, even
//! though the test harness runs tests on several threads), which lets each
//! case measure its own memory through the counting allocator below and
//! lets a watchdog thread abort with the offending input if a case hangs.
//!
//! What is checked, for every input:
//! - decoding returns `Ok` or `Err(RuntimeError::Plan)`, never panics;
//! - structurally broken plans are refused by `Plan::check` with
//!   `RuntimeError::Plan`;
//! - plans that pass `check` run to `Ok(report)` or `Err(Plan | Data)`; the
//!   outcomes have the kinds `check` promised, and no node failure is an
//!   "internal error" (the executor's report of a panicking kernel);
//! - no case allocates more than [`SOFT_LIMIT`] bytes beyond what was live
//!   when it started, and none runs longer than [`HANG_LIMIT`].

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, Once, OnceLock};
use std::time::{Duration, Instant};

use _runtime::error::RuntimeError;
use _runtime::exec::{self, Dataset};
use _runtime::metrics::Metric;
use _runtime::ops::impute::Strategy as ImputeStrategy;
use _runtime::ops::knn::Weights;
use _runtime::ops::select::ScoreFunc;
use _runtime::ops::Estimator;
use _runtime::plan::{Node, Op, Plan, MAX_INPUTS, PLAN_VERSION};
use _runtime::value::Kind;
use faer::Mat;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

// ---------------------------------------------------------------------------
// Memory accounting, hang detection and case serialisation.
// ---------------------------------------------------------------------------

/// Growth of live heap memory a single case may cause.
const SOFT_LIMIT: usize = 64 << 20;
/// Single requests above this are refused outright (the process then aborts
/// with "memory allocation of N bytes failed") so a runaway case cannot take
/// the machine down before the soft limit is checked.
const HARD_LIMIT: usize = 512 << 20;
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
static CANCEL: AtomicBool = AtomicBool::new(false);

impl Counting {
    fn grew(size: usize) {
        let live = LIVE.fetch_add(size, Relaxed) + size;
        PEAK.fetch_max(live, Relaxed);
        LARGEST.fetch_max(size, Relaxed);
        if live.saturating_sub(BASE.load(Relaxed)) > SOFT_LIMIT {
            CANCEL.store(true, Relaxed);
        }
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments and
// only adds relaxed counter updates, which neither allocate nor unwind.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > HARD_LIMIT {
            return std::ptr::null_mut();
        }
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            Self::grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > HARD_LIMIT {
            return std::ptr::null_mut();
        }
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            Self::grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > HARD_LIMIT {
            return std::ptr::null_mut();
        }
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE.fetch_sub(layout.size(), Relaxed);
            Self::grew(new_size);
        }
        new
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
struct Case {
    _serial: MutexGuard<'static, ()>,
}

impl Case {
    fn start(what: impl FnOnce() -> String) -> Case {
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
    fn memory(&self) -> Result<(), TestCaseError> {
        let grown = PEAK.load(Relaxed).saturating_sub(BASE.load(Relaxed));
        let largest = LARGEST.load(Relaxed);
        prop_assert!(
            grown <= SOFT_LIMIT && !CANCEL.load(Relaxed),
            "memory blow-up: the case grew the heap by {grown} bytes (largest request {largest})"
        );
        Ok(())
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
fn config(cases: u32) -> ProptestConfig {
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

// ---------------------------------------------------------------------------
// Datasets.
// ---------------------------------------------------------------------------

const N_ROWS: usize = 12;
const TARGETS: [&str; 4] = ["y", "yc", "yr", "yw"];
/// Index names valid plans may use (all rows in range).
const INDICES: [&str; 7] = ["tr", "te", "all", "empty", "dup", "one", "rev"];
/// Index names holding rows outside `0..N_ROWS`.
const BAD_INDICES: [&str; 2] = ["oob", "neg"];

struct Fixture {
    x: Mat<f64>,
    targets: Vec<(&'static str, Vec<f64>)>,
    indices: Vec<(&'static str, Vec<i64>)>,
}

impl Fixture {
    fn dataset(&self) -> Dataset<'_> {
        Dataset {
            x: self.x.as_ref(),
            targets: self
                .targets
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_slice()))
                .collect::<HashMap<_, _>>(),
            indices: self
                .indices
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_slice()))
                .collect::<HashMap<_, _>>(),
        }
    }
}

/// Three 12 x 3 datasets: one with a NaN (the usual case), one clean (so
/// models get to predict and scorers to score), one with extreme values.
fn fixtures() -> &'static [Fixture; 3] {
    static FIXTURES: OnceLock<[Fixture; 3]> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let base = |i: usize, j: usize| ((i * 5 + j * 3) % 7) as f64 * 0.5 - 1.0 + j as f64;
        let mut with_nan = Mat::from_fn(N_ROWS, 3, base);
        with_nan[(4, 1)] = f64::NAN;
        let clean = Mat::from_fn(N_ROWS, 3, |i, j| base(i, j) + 0.01 * (i * i) as f64);
        let extreme = Mat::from_fn(N_ROWS, 3, |i, j| match (j, i % 4) {
            (0, 0) => 1e300,
            (0, 1) => -1e300,
            (0, 2) => 1e-300,
            (0, _) => f64::MAX,
            (1, _) if i == 7 => f64::INFINITY,
            (1, _) => 2.0,
            (_, 0) => 5e-324,
            (_, 1) => -0.0,
            (_, _) => -(i as f64),
        });
        let targets = vec![
            (
                "y",
                (0..N_ROWS).map(|i| ((i * 7 + 3) % 5 % 2) as f64).collect(),
            ),
            ("yc", (0..N_ROWS).map(|i| (i % 3) as f64).collect()),
            (
                "yr",
                (0..N_ROWS).map(|i| (i as f64 * 1.3).sin() * 4.0).collect(),
            ),
            (
                "yw",
                (0..N_ROWS)
                    .map(|i| match i {
                        2 => f64::NAN,
                        5 => f64::INFINITY,
                        9 => 1e308,
                        _ => i as f64 - 0.5,
                    })
                    .collect(),
            ),
        ];
        let indices = vec![
            ("tr", (0..8).collect()),
            ("te", (8..12).collect()),
            ("all", (0..12).collect()),
            ("empty", vec![]),
            ("dup", vec![3; 5]),
            ("one", vec![4]),
            ("rev", (0..12).rev().collect()),
            ("oob", vec![0, 12]),
            ("neg", vec![-1, 2]),
        ];
        [with_nan, clean, extreme].map(|x| Fixture {
            x,
            targets: targets.clone(),
            indices: indices.clone(),
        })
    })
}

// ---------------------------------------------------------------------------
// Generators of well-formed plans.
// ---------------------------------------------------------------------------

/// Floats a hostile plan may carry.
fn special_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(0.0),
        Just(-0.0),
        Just(-1.0),
        Just(f64::MAX),
        Just(f64::MIN),
        Just(f64::MIN_POSITIVE),
        Just(5e-324),
        Just(1e300),
        Just(-1e-300),
        any::<f64>(),
    ]
}

fn float(lo: f64, hi: f64) -> impl Strategy<Value = f64> {
    prop_oneof![4 => lo..hi, 1 => special_f64()]
}

/// Counts (`k`, `n_neighbors`, `n_components`, ...), huge ones included.
fn count() -> impl Strategy<Value = u32> {
    prop_oneof![
        6 => 0u32..6,
        1 => 6u32..20,
        1 => Just(u32::MAX),
        1 => Just(1u32 << 31),
        1 => any::<u32>(),
    ]
}

fn estimator() -> impl Strategy<Value = Estimator> {
    prop_oneof![3 => transformer(), 2 => model()]
}

/// Steps whose application yields a matrix.
fn transformer() -> impl Strategy<Value = Estimator> {
    let strategy = prop_oneof![
        Just(ImputeStrategy::Mean),
        Just(ImputeStrategy::Median),
        Just(ImputeStrategy::MostFrequent),
        Just(ImputeStrategy::Constant),
    ];
    let range = prop_oneof![
        3 => Just((0.0, 1.0)),
        3 => (-5.0..5.0, -5.0..5.0),
        1 => (special_f64(), special_f64()),
    ];
    let degree = prop_oneof![4 => 1u32..=2, 1 => Just(0u32), 1 => Just(3u32), 1 => Just(u32::MAX)];
    let score_func = prop_oneof![Just(ScoreFunc::FRegression), Just(ScoreFunc::FClassif)];
    prop_oneof![
        (strategy, float(-5.0, 5.0)).prop_map(|(strategy, fill_value)| {
            Estimator::SimpleImputer {
                strategy,
                fill_value,
            }
        }),
        (any::<bool>(), any::<bool>()).prop_map(|(with_mean, with_std)| {
            Estimator::StandardScaler {
                with_mean,
                with_std,
            }
        }),
        (range, any::<bool>()).prop_map(|((low, high), clip)| Estimator::MinMaxScaler {
            low,
            high,
            clip
        }),
        Just(Estimator::MaxAbsScaler),
        Just(Estimator::OneHotEncoder),
        (degree, any::<bool>(), any::<bool>()).prop_map(
            |(degree, interaction_only, include_bias)| Estimator::PolynomialFeatures {
                degree,
                interaction_only,
                include_bias,
            }
        ),
        (count(), any::<bool>()).prop_map(|(n_components, whiten)| Estimator::Pca {
            n_components,
            whiten
        }),
        (score_func, count()).prop_map(|(score_func, k)| Estimator::SelectKBest { score_func, k }),
    ]
}

/// Steps whose application yields a prediction.
fn model() -> impl Strategy<Value = Estimator> {
    let weights = prop_oneof![Just(Weights::Uniform), Just(Weights::Distance)];
    // Iteration counts stay modest: a genuine `max_iter = u32::MAX` request
    // is the caller's to make, not a hang.
    let max_iter = prop_oneof![0u32..=5, Just(100u32), Just(1000u32)];
    prop_oneof![
        any::<bool>().prop_map(|fit_intercept| Estimator::LinearRegression { fit_intercept }),
        (float(0.0, 10.0), any::<bool>()).prop_map(|(alpha, fit_intercept)| Estimator::Ridge {
            alpha,
            fit_intercept
        }),
        (
            float(0.01, 10.0),
            any::<bool>(),
            max_iter,
            float(1e-8, 1e-2)
        )
            .prop_map(
                |(c, fit_intercept, max_iter, tol)| Estimator::LogisticRegression {
                    c,
                    fit_intercept,
                    max_iter,
                    tol,
                }
            ),
        (count(), weights, any::<bool>()).prop_map(|(n_neighbors, weights, classifier)| {
            Estimator::KNeighbors {
                n_neighbors,
                weights,
                classifier,
            }
        }),
    ]
}

fn metric() -> impl Strategy<Value = Metric> {
    prop_oneof![
        Just(Metric::R2),
        Just(Metric::NegMeanSquaredError),
        Just(Metric::NegRootMeanSquaredError),
        Just(Metric::NegMeanAbsoluteError),
        Just(Metric::Accuracy),
        Just(Metric::BalancedAccuracy),
        Just(Metric::F1),
        Just(Metric::RocAuc),
        Just(Metric::NegLogLoss),
    ]
}

fn column() -> impl Strategy<Value = u32> {
    prop_oneof![8 => 0u32..4, 1 => 4u32..70, 1 => Just(u32::MAX), 1 => any::<u32>()]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => Just(Op::SourceX),
        1 => (0..TARGETS.len()).prop_map(|t| Op::SourceY {
            target: TARGETS[t].into()
        }),
        2 => (0..INDICES.len()).prop_map(|i| Op::TakeRows {
            index: INDICES[i].into()
        }),
        1 => vec(column(), 0..5).prop_map(|cols| Op::SelectCols { cols }),
        1 => Just(Op::Hstack),
        6 => estimator().prop_map(|estimator| Op::Fit { estimator }),
        7 => Just(Op::Apply),
        1 => any::<bool>().prop_map(|fit_intercept| Op::Gram { fit_intercept }),
        1 => float(0.0, 5.0).prop_map(|alpha| Op::Solve { alpha }),
        4 => (metric(), prop_oneof![Just(1.0), Just(0.0), Just(2.0), special_f64()])
            .prop_map(|(metric, pos_label)| Op::Score { metric, pos_label }),
    ]
}

/// The op an msgpack map of `fields` (key, value, ...) decodes to, if any.
fn decode_op(fields: &[Token]) -> Option<Op> {
    let mut bytes = Vec::new();
    Token::Map(fields.len() as u8 / 2).encode(&mut bytes);
    for field in fields {
        field.encode(&mut bytes);
    }
    rmp_serde::from_slice::<Op>(&bytes).ok()
}

fn word(w: &str) -> Token {
    Token::Str(w.into())
}

/// Ops given in their msgpack form and decoded through serde, so that ops
/// this file does not name are fuzzed as soon as the format has them
/// (`None` while it does not): KNN's `neighbors` and `knn_predict`.
fn decoded_ops() -> impl Strategy<Value = (Option<Op>, Option<Op>)> {
    let weights = prop_oneof![Just("uniform"), Just("distance")];
    (
        count(),
        prop::option::weighted(0.3, count()),
        weights,
        any::<bool>(),
    )
        .prop_map(|(k, other_k, weights, classifier)| {
            let uint = |k: u32| Token::UInt(u64::from(k));
            let neighbors = decode_op(&[word("kind"), word("neighbors"), word("k"), uint(k)]);
            let predict = decode_op(&[
                word("kind"),
                word("knn_predict"),
                word("k"),
                uint(other_k.unwrap_or(k)),
                word("weights"),
                word(weights),
                word("classifier"),
                Token::Bool(classifier),
            ]);
            (neighbors, predict)
        })
}

/// How a pipeline gets from its (transformed) training rows to a
/// prediction for its test rows.
#[derive(Debug, Clone)]
enum Route {
    /// `fit` the model, then `apply` it.
    Fit,
    /// `gram` and `solve` (a linear model), then `apply` it.
    Gram { fit_intercept: bool, alpha: f64 },
    /// Decoded ops (see [`decoded_ops`]): the first reads
    /// `[train X, test X]`, the second `[first, train y]` and predicts; `Fit`
    /// when the format lacks them.
    Decoded(Option<Op>, Option<Op>),
}

fn route() -> impl Strategy<Value = Route> {
    prop_oneof![
        5 => Just(Route::Fit),
        2 => (any::<bool>(), float(0.0, 5.0))
            .prop_map(|(fit_intercept, alpha)| Route::Gram { fit_intercept, alpha }),
        2 => decoded_ops().prop_map(|(a, b)| Route::Decoded(a, b)),
    ]
}

/// One random step of a generated plan.
#[derive(Debug, Clone)]
enum Step {
    /// One operation reading earlier nodes.
    Op {
        op: Op,
        /// Input selectors; small values pick recent nodes.
        picks: [u8; 4],
        /// Whether to prefer inputs that fit together (same rows, width).
        smart: bool,
    },
    /// A whole pipeline on the train/test split: transformers fitted on the
    /// training rows and applied to both splits, then a model (fitted, or
    /// solved from a gram) predicting the test rows, then a score.
    Pipeline {
        /// Train rows, test rows and target (indexes into [`INDICES`] and
        /// [`TARGETS`]) instead of the plan's split.
        split: Option<(usize, usize, usize)>,
        transformers: Vec<Estimator>,
        model: Estimator,
        route: Route,
        metric: Metric,
        pos_label: f64,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let pick = || prop_oneof![3 => 0u8..2, 1 => any::<u8>()];
    let any_op = prop_oneof![
        6 => op(),
        1 => (op(), decoded_ops(), any::<bool>()).prop_map(|(named, (a, b), first)| {
            if first { a } else { b }.unwrap_or(named)
        }),
    ];
    let one = (
        any_op,
        [pick(), pick(), pick(), pick()],
        prop::bool::weighted(0.75),
    )
        .prop_map(|(op, picks, smart)| Step::Op { op, picks, smart });
    let split = prop_oneof![
        2 => Just(None),
        1 => (0..INDICES.len(), 0..INDICES.len(), 0..TARGETS.len()).prop_map(Some),
    ];
    let pipeline = (
        split,
        vec(transformer(), 0..3),
        model(),
        route(),
        metric(),
        prop_oneof![3 => Just(1.0), 1 => special_f64()],
    )
        .prop_map(
            |(split, transformers, model, route, metric, pos_label)| Step::Pipeline {
                split,
                transformers,
                model,
                route,
                metric,
                pos_label,
            },
        );
    prop_oneof![3 => one, 1 => pipeline]
}

#[derive(Debug, Clone)]
struct PlanSpec {
    fixture: usize,
    target: usize,
    impute: bool,
    steps: Vec<Step>,
    extra_outputs: Vec<u8>,
}

fn plan_spec() -> impl Strategy<Value = PlanSpec> {
    (
        prop_oneof![1 => Just(0usize), 2 => Just(1usize), 1 => Just(2usize)],
        0..TARGETS.len(),
        prop::bool::weighted(0.6),
        vec(step(), 0..10),
        vec(any::<u8>(), 0..3),
    )
        .prop_map(|(fixture, target, impute, steps, extra_outputs)| PlanSpec {
            fixture,
            target,
            impute,
            steps,
            extra_outputs,
        })
}

/// Widest matrix a generated plan may build, so that random plans stay
/// small (width blow-ups have their own deterministic tests).
const MAX_WIDTH: u64 = 64;

#[derive(Debug, Clone)]
struct Info {
    kind: Kind,
    /// Tag of the row set (which index chain picked the rows).
    rows: u64,
    /// Columns of a matrix; training columns of a gram.
    width: u64,
    /// For fitted nodes: what was fitted, on how many columns.
    fitted: Option<(Option<Estimator>, u64)>,
}

#[derive(Default)]
struct Builder {
    nodes: Vec<Node>,
    info: Vec<Info>,
    /// Training X, test X, training y, test y.
    split: [u32; 4],
}

fn row_tag(parent: u64, index: &str) -> u64 {
    let mut h = parent ^ 0xcbf2_9ce4_8422_2325;
    for b in index.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h | 1
}

/// Upper bound on the columns a fitted transformer outputs for `p` inputs.
fn transformed_width(estimator: &Estimator, p: u64) -> u64 {
    match estimator {
        Estimator::OneHotEncoder => p.saturating_mul(N_ROWS as u64 + 1),
        Estimator::PolynomialFeatures { degree, .. } if *degree >= 2 => {
            1 + p + p.saturating_mul(p + 1) / 2
        }
        Estimator::PolynomialFeatures { .. } => 1 + p,
        Estimator::Pca { n_components, .. } => p.min(u64::from(*n_components)),
        _ => p,
    }
}

impl Builder {
    /// Appends `op` reading `inputs` if it type-checks and stays small.
    fn push(&mut self, op: Op, inputs: Vec<u32>) -> Option<u32> {
        let ins: Vec<&Info> = inputs.iter().map(|&i| &self.info[i as usize]).collect();
        let kinds: Vec<Kind> = ins.iter().map(|i| i.kind).collect();
        let kind = op.output_kind(&kinds).ok()?;
        let first_rows = ins.first().map_or(0, |i| i.rows);
        let (rows, width, fitted) = match &op {
            Op::SourceX => (0, 3, None),
            Op::TakeRows { index } => (row_tag(first_rows, index), ins[0].width, None),
            Op::SelectCols { cols } => (first_rows, cols.len() as u64, None),
            Op::Hstack => (first_rows, ins.iter().map(|i| i.width).sum(), None),
            Op::Fit { estimator } => (first_rows, 0, Some((Some(estimator.clone()), ins[0].width))),
            Op::Gram { .. } => (first_rows, ins[0].width, None),
            Op::Solve { .. } => (first_rows, 0, Some((None, ins[0].width))),
            Op::Apply => {
                let width = match &ins[0].fitted {
                    Some((Some(estimator), _)) if kind == Kind::Matrix => {
                        transformed_width(estimator, ins[1].width)
                    }
                    _ => 0,
                };
                (ins[1].rows, width, None)
            }
            // Vectors, scores and anything else that is no matrix.
            _ => (first_rows, 0, None),
        };
        if width > MAX_WIDTH {
            return None;
        }
        self.nodes.push(Node { op, inputs });
        self.info.push(Info {
            kind,
            rows,
            width,
            fitted,
        });
        Some(self.nodes.len() as u32 - 1)
    }

    fn ids(&self, keep: impl Fn(&Info) -> bool) -> Vec<u32> {
        (0..self.info.len() as u32)
            .filter(|&i| keep(&self.info[i as usize]))
            .collect()
    }

    /// A node among `ids`, recent ones first for small `pick`s.
    fn choose(ids: &[u32], pick: u8) -> Option<u32> {
        (!ids.is_empty()).then(|| ids[ids.len() - 1 - pick as usize % ids.len()])
    }

    /// Chooses among `preferred` when `smart` and there are any, else
    /// among `all`.
    fn choose_smart(smart: bool, preferred: &[u32], all: &[u32], pick: u8) -> Option<u32> {
        if smart && !preferred.is_empty() {
            Self::choose(preferred, pick)
        } else {
            Self::choose(all, pick)
        }
    }

    /// Inputs for an op this file does not name: every combination of up to
    /// three kinds present in the plan is tried, and nodes of one that
    /// type-checks are picked.
    fn generic_inputs(&self, op: &Op, picks: [u8; 4]) -> Option<Vec<u32>> {
        let mut kinds: Vec<Kind> = Vec::new();
        for info in &self.info {
            if !kinds.contains(&info.kind) {
                kinds.push(info.kind);
            }
        }
        let mut fitting: Vec<Vec<Kind>> = Vec::new();
        for arity in 1..=3u32 {
            for combo in 0..kinds.len().pow(arity) {
                let tuple: Vec<Kind> = (0..arity)
                    .scan(combo, |rest, _| {
                        let kind = kinds[*rest % kinds.len()];
                        *rest /= kinds.len();
                        Some(kind)
                    })
                    .collect();
                if op.output_kind(&tuple).is_ok() {
                    fitting.push(tuple);
                }
            }
        }
        let tuple = fitting.get(usize::from(picks[3]) % fitting.len().max(1))?;
        tuple
            .iter()
            .zip(picks)
            .map(|(&kind, p)| Self::choose(&self.ids(|i| i.kind == kind), p))
            .collect()
    }

    /// Appends a pipeline; a step that does not type-check or grows too
    /// wide ends it early.
    fn pipeline(
        &mut self,
        split: Option<(usize, usize, usize)>,
        transformers: &[Estimator],
        model: &Estimator,
        route: &Route,
        score: Op,
    ) -> Option<u32> {
        let [mut tr, mut te, ytr, yte] = match split {
            None => self.split,
            Some((train, test, target)) => {
                let target = TARGETS[target].into();
                let y = self.push(Op::SourceY { target }, vec![])?;
                let mut take = |index: &str, input: u32| {
                    let index = index.into();
                    self.push(Op::TakeRows { index }, vec![input])
                };
                [
                    take(INDICES[train], 0)?,
                    take(INDICES[test], 0)?,
                    take(INDICES[train], y)?,
                    take(INDICES[test], y)?,
                ]
            }
        };
        for estimator in transformers {
            let inputs = if estimator.needs_target() {
                vec![tr, ytr]
            } else {
                vec![tr]
            };
            let estimator = estimator.clone();
            let fitted = self.push(Op::Fit { estimator }, inputs)?;
            tr = self.push(Op::Apply, vec![fitted, tr])?;
            te = self.push(Op::Apply, vec![fitted, te])?;
        }
        let prediction = match route {
            Route::Gram {
                fit_intercept,
                alpha,
            } => {
                let fit_intercept = *fit_intercept;
                let gram = self.push(Op::Gram { fit_intercept }, vec![tr, ytr])?;
                let alpha = *alpha;
                let model = self.push(Op::Solve { alpha }, vec![gram])?;
                self.push(Op::Apply, vec![model, te])?
            }
            Route::Decoded(Some(first), Some(second)) => {
                let found = self.push(first.clone(), vec![tr, te])?;
                self.push(second.clone(), vec![found, ytr])?
            }
            _ => {
                let estimator = model.clone();
                let model = self.push(Op::Fit { estimator }, vec![tr, ytr])?;
                self.push(Op::Apply, vec![model, te])?
            }
        };
        self.push(score, vec![yte, prediction])
    }

    fn add(&mut self, step: &Step) {
        let (op, [p0, p1, p2, p3], smart) = match step {
            Step::Op { op, picks, smart } => (op, *picks, *smart),
            Step::Pipeline {
                split,
                transformers,
                model,
                route,
                metric,
                pos_label,
            } => {
                let score = Op::Score {
                    metric: *metric,
                    pos_label: *pos_label,
                };
                self.pipeline(*split, transformers, model, route, score);
                return;
            }
        };
        let is = |k: Kind| move |i: &Info| i.kind == k;
        let matrices = self.ids(is(Kind::Matrix));
        let vectors = self.ids(is(Kind::Vector));
        let vector_like = |rows: u64| {
            let same = self.ids(|i| i.kind == Kind::Vector && i.rows == rows);
            Self::choose_smart(smart, &same, &vectors, p1)
        };
        let inputs = match op {
            _ if op.output_kind(&[]).is_ok() => Some(vec![]),
            Op::TakeRows { .. } => {
                // Real plans pick rows of whole-dataset values.
                let data = |i: &Info| matches!(i.kind, Kind::Matrix | Kind::Vector);
                let whole = self.ids(|i| data(i) && i.rows == 0);
                Self::choose_smart(smart, &whole, &self.ids(data), p0).map(|a| vec![a])
            }
            Op::SelectCols { .. } => Self::choose(&matrices, p0).map(|a| vec![a]),
            Op::Hstack => Self::choose(&matrices, p0).map(|first| {
                let rows = self.info[first as usize].rows;
                let same = self.ids(|i| i.kind == Kind::Matrix && i.rows == rows);
                let mut inputs = vec![first];
                for p in [p1, p2].into_iter().take(p3 as usize % 3) {
                    inputs.extend(Self::choose_smart(smart, &same, &matrices, p));
                }
                inputs
            }),
            Op::Fit { estimator } => Self::choose(&matrices, p0).and_then(|m| {
                if estimator.needs_target() || p3 % 4 == 0 {
                    vector_like(self.info[m as usize].rows).map(|v| vec![m, v])
                } else {
                    Some(vec![m])
                }
            }),
            Op::Apply => {
                let fitted = self.ids(|i| matches!(i.kind, Kind::Transformer | Kind::Model));
                Self::choose(&fitted, p0).and_then(|f| {
                    let width = self.info[f as usize].fitted.as_ref().map_or(0, |w| w.1);
                    let same = self.ids(|i| i.kind == Kind::Matrix && i.width == width);
                    Self::choose_smart(smart, &same, &matrices, p1).map(|m| vec![f, m])
                })
            }
            Op::Gram { .. } => Self::choose(&matrices, p0)
                .and_then(|m| vector_like(self.info[m as usize].rows).map(|v| vec![m, v])),
            Op::Solve { .. } => Self::choose(&self.ids(is(Kind::Gram)), p0).map(|g| vec![g]),
            Op::Score { .. } => Self::choose(&self.ids(is(Kind::Prediction)), p0)
                .and_then(|p| vector_like(self.info[p as usize].rows).map(|v| vec![v, p])),
            _ => self.generic_inputs(op, [p0, p1, p2, p3]),
        };
        if let Some(inputs) = inputs {
            self.push(op.clone(), inputs);
        }
    }
}

/// Builds the well-formed plan `spec` describes: the train/test split of X
/// and a target, an optional imputer, then the random steps; every scorer
/// is an output.
fn build(spec: &PlanSpec) -> Plan {
    let mut b = Builder::default();
    let take = |index: &str| Op::TakeRows {
        index: index.into(),
    };
    b.push(Op::SourceX, vec![]);
    b.push(
        Op::SourceY {
            target: TARGETS[spec.target].into(),
        },
        vec![],
    );
    b.push(take("tr"), vec![0]);
    b.push(take("tr"), vec![1]);
    b.push(take("te"), vec![0]);
    b.push(take("te"), vec![1]);
    if spec.impute {
        let estimator = Estimator::SimpleImputer {
            strategy: ImputeStrategy::Mean,
            fill_value: 0.0,
        };
        b.push(Op::Fit { estimator }, vec![2]);
        b.push(Op::Apply, vec![6, 2]);
        b.push(Op::Apply, vec![6, 4]);
        b.split = [7, 8, 3, 5];
    } else {
        b.split = [2, 4, 3, 5];
    }
    for step in &spec.steps {
        b.add(step);
    }
    let n = b.nodes.len() as u32;
    let mut outputs = b.ids(|i| i.kind == Kind::Scalar);
    outputs.extend(spec.extra_outputs.iter().map(|&e| u32::from(e) % n));
    let plan = Plan {
        version: PLAN_VERSION,
        nodes: b.nodes,
        outputs,
    };
    debug_assert!(plan.check().is_ok());
    plan
}

// ---------------------------------------------------------------------------
// Running a plan and checking what comes back.
// ---------------------------------------------------------------------------

/// What a hostile plan must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Well-formed: `check` accepts it and `run` returns a report.
    Pass,
    /// Structurally broken: `check` refuses it.
    Reject,
    /// Names an unknown target or index: `run` refuses it as a plan error.
    RunPlanError,
    /// Names an index with rows out of range: `run` refuses it as bad data.
    RunDataError,
    /// Anything, as long as nothing panics, hangs or blows up.
    Any,
}

static NN: [AtomicUsize; 4] = [AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0)];
fn is_plan_error(r: &RuntimeError) -> bool {
    matches!(r, RuntimeError::Plan(_))
}

/// Checks `plan` the ways the runtime can see it (in memory, re-encoded and
/// decoded, run) and that every answer is one the contract allows.
fn check_and_run(
    case: &Case,
    plan: &Plan,
    fixture: usize,
    expect: Expect,
) -> Result<(), TestCaseError> {
    let checked = plan.check();
    let bytes = plan.encode();
    match (&checked, Plan::decode(&bytes)) {
        (Ok(_), Ok(decoded)) => prop_assert_eq!(decoded.encode(), bytes, "re-encoding differs"),
        (Err(RuntimeError::Plan(a)), Err(RuntimeError::Plan(b))) => prop_assert_eq!(a, &b),
        (c, d) => prop_assert!(false, "check gave {:?} but decode gave {:?}", c, d),
    }
    let kinds = match checked {
        Ok(kinds) => {
            prop_assert!(
                expect != Expect::Reject,
                "check accepted a broken plan: {:?}",
                plan
            );
            Some(kinds)
        }
        Err(e) => {
            prop_assert!(
                is_plan_error(&e),
                "check failed with a non-plan error: {e:?}"
            );
            prop_assert!(
                expect != Expect::Pass,
                "check refused a well-formed plan: {e}\n{plan:?}"
            );
            None
        }
    };

    // Every node is computed whatever the outputs are; making them all
    // outputs lets the run show the failure of each.
    let mut observed = plan.clone();
    observed.outputs.extend(0..plan.nodes.len() as u32);
    let pool = exec::pool(Some(1)).expect("a one-thread pool");
    let data = fixtures()[fixture].dataset();
    let result = exec::run(&observed, &data, &pool, &CANCEL);
    let (report, kinds) = match (result, kinds) {
        (Err(e), None) => {
            prop_assert!(is_plan_error(&e), "run of an ill-formed plan gave {e:?}");
            return case.memory();
        }
        (Ok(_), None) => {
            return Err(TestCaseError::fail(format!(
                "run accepted a plan that check refuses: {plan:?}"
            )));
        }
        (Err(e), Some(_)) => {
            case.memory()?;
            match expect {
                Expect::RunPlanError => prop_assert!(is_plan_error(&e), "{e:?}"),
                Expect::RunDataError => prop_assert!(matches!(e, RuntimeError::Data(_)), "{e:?}"),
                Expect::Pass => prop_assert!(false, "run refused a well-formed plan: {e:?}"),
                Expect::Any | Expect::Reject => prop_assert!(
                    matches!(e, RuntimeError::Plan(_) | RuntimeError::Data(_)),
                    "run failed with {e:?}"
                ),
            }
            return Ok(());
        }
        (Ok(report), Some(kinds)) => (report, kinds),
    };
    for (outcome, &id) in report.outputs.iter().zip(&observed.outputs) {
        if let Err(failure) = outcome {
            let message = failure.error.to_string();
            if message.contains("internal error in take_rows") && std::env::var("MASK").is_ok() { continue; }
            let node = observed.nodes.get(failure.node as usize);
            prop_assert!(
                !message.contains("internal error"),
                "a kernel panicked: {message}\nin node {} = {node:?}\nfixture {fixture}, plan:\n{plan:#?}",
                failure.node
            );
            prop_assert!(node.is_some(), "failure names no node: {failure:?}");
            if matches!(failure.error, RuntimeError::Interrupted) {
                case.memory()?;
                prop_assert!(false, "output {id} interrupted");
            }
        }
    }
    case.memory()?;
    prop_assert!(
        !matches!(expect, Expect::RunPlanError | Expect::RunDataError),
        "run accepted a plan naming a bad target or index: {plan:?}"
    );
    prop_assert_eq!(report.outputs.len(), observed.outputs.len());
    prop_assert!(report.executed <= plan.nodes.len());
    for (outcome, &id) in report.outputs.iter().zip(&observed.outputs) {
        let name = observed.nodes[id as usize].op.name();
        if name == "neighbors" || name == "knn_predict" {
            let i = usize::from(name == "knn_predict") * 2 + usize::from(outcome.is_ok());
            let n = NN[i].fetch_add(1, Relaxed);
            if n % 500 == 0 { let _ = writeln!(std::io::stderr(), "NN stats {:?} last {:?}", NN.iter().map(|a| a.load(Relaxed)).collect::<Vec<_>>(), outcome.as_ref().err()); }
        }
        if let Ok(value) = outcome {
            prop_assert_eq!(value.kind(), kinds[id as usize], "kind of output {}", id);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Semantic attacks on well-formed plans.
// ---------------------------------------------------------------------------

/// Rewirings whose effect is not predicted (anything may happen).
#[derive(Debug, Clone)]
enum Twist {
    Rewire { node: Index, slot: Index, to: u32 },
    Swap { a: Index, b: Index },
    Remove { node: Index },
    Outputs(Vec<u32>),
}

fn twist() -> impl Strategy<Value = Twist> {
    let id = prop_oneof![4 => 0u32..40, 1 => any::<u32>()];
    prop_oneof![
        (any::<Index>(), any::<Index>(), id.clone()).prop_map(|(node, slot, to)| Twist::Rewire {
            node,
            slot,
            to
        }),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Twist::Swap { a, b }),
        any::<Index>().prop_map(|node| Twist::Remove { node }),
        vec(id, 0..4).prop_map(Twist::Outputs),
    ]
}

fn pick(index: &Index, len: usize) -> Option<usize> {
    (len > 0).then(|| index.index(len))
}

fn apply_twist(plan: &mut Plan, twist: &Twist) {
    let n = plan.nodes.len();
    match twist {
        Twist::Rewire { node, slot, to } => {
            if let Some(node) = pick(node, n) {
                let inputs = &mut plan.nodes[node].inputs;
                match pick(slot, inputs.len()) {
                    Some(slot) => inputs[slot] = *to,
                    None => inputs.push(*to),
                }
            }
        }
        Twist::Swap { a, b } => {
            if let (Some(a), Some(b)) = (pick(a, n), pick(b, n)) {
                plan.nodes.swap(a, b);
            }
        }
        Twist::Remove { node } => {
            if let Some(node) = pick(node, n) {
                plan.nodes.remove(node);
            }
        }
        Twist::Outputs(outputs) => plan.outputs.clone_from(outputs),
    }
}

/// A last, targeted change whose outcome is known.
#[derive(Debug, Clone)]
enum Attack {
    Nothing,
    ForwardRef {
        node: Index,
        slot: Index,
        ahead: u32,
    },
    SelfRef {
        node: Index,
        slot: Index,
    },
    WrongArity {
        node: Index,
        more: bool,
    },
    WrongKind {
        node: Index,
        slot: Index,
        pick: Index,
    },
    TooManyInputs {
        node: Index,
    },
    BadOutput {
        past: u32,
    },
    Version(u32),
    NoNodes {
        outputs: bool,
    },
    UnknownTarget {
        node: Index,
        name: Index,
    },
    UnknownIndex {
        node: Index,
        name: Index,
    },
    BadRows {
        node: Index,
        name: Index,
    },
    BadCols {
        node: Index,
        cols: Vec<u32>,
    },
}

fn attack() -> impl Strategy<Value = Attack> {
    let ahead = prop_oneof![3 => 0u32..4, 1 => any::<u32>()];
    prop_oneof![
        12 => Just(Attack::Nothing),
        1 => (any::<Index>(), any::<Index>(), ahead)
            .prop_map(|(node, slot, ahead)| Attack::ForwardRef { node, slot, ahead }),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(node, slot)| Attack::SelfRef { node, slot }),
        1 => (any::<Index>(), any::<bool>()).prop_map(|(node, more)| Attack::WrongArity { node, more }),
        2 => (any::<Index>(), any::<Index>(), any::<Index>())
            .prop_map(|(node, slot, pick)| Attack::WrongKind { node, slot, pick }),
        1 => any::<Index>().prop_map(|node| Attack::TooManyInputs { node }),
        1 => prop_oneof![0u32..3, Just(u32::MAX)].prop_map(|past| Attack::BadOutput { past }),
        1 => prop_oneof![Just(0u32), Just(2u32), Just(u32::MAX)].prop_map(Attack::Version),
        1 => any::<bool>().prop_map(|outputs| Attack::NoNodes { outputs }),
        1 => (any::<Index>(), any::<Index>())
            .prop_map(|(node, name)| Attack::UnknownTarget { node, name }),
        1 => (any::<Index>(), any::<Index>())
            .prop_map(|(node, name)| Attack::UnknownIndex { node, name }),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(node, name)| Attack::BadRows { node, name }),
        1 => (any::<Index>(), vec(column(), 0..4)).prop_map(|(node, cols)| Attack::BadCols { node, cols }),
    ]
}

const UNKNOWN_NAMES: [&str; 6] = ["nope", "", "TR", "tr ", "y\u{0}", "\u{1F600}"];

/// Kinds a slot of `op` accepts in some well-typed use (from the plan
/// docs); `None` for ops this file does not describe.
fn accepted(op: &Op, slot: usize) -> Option<&'static [Kind]> {
    use Kind::*;
    Some(match (op, slot) {
        (Op::TakeRows { .. }, 0) => &[Matrix, Vector],
        (Op::SelectCols { .. }, 0) | (Op::Hstack, _) => &[Matrix],
        (Op::Fit { .. }, 0) | (Op::Gram { .. }, 0) | (Op::Apply, 1) => &[Matrix],
        (Op::Fit { .. }, 1) | (Op::Gram { .. }, 1) | (Op::Score { .. }, 0) => &[Vector],
        (Op::Apply, 0) => &[Transformer, Model],
        (Op::Solve { .. }, 0) => &[Gram],
        (Op::Score { .. }, 1) => &[Prediction],
        _ => return None,
    })
}

/// Kinds of the longest well-typed prefix of `plan`'s nodes.
fn typed_prefix(plan: &Plan) -> Vec<Kind> {
    let mut kinds = Vec::new();
    for node in &plan.nodes {
        let Some(ins) = node
            .inputs
            .iter()
            .map(|&i| kinds.get(i as usize).copied())
            .collect::<Option<Vec<Kind>>>()
        else {
            break;
        };
        match node.op.output_kind(&ins) {
            Ok(kind) => kinds.push(kind),
            Err(_) => break,
        }
    }
    kinds
}

/// Renames the target/index of a node `rename` accepts, or appends a node
/// reading `name`; either way the plan's typing is unchanged.
fn rename(plan: &mut Plan, node: &Index, name: &str, target: bool) {
    let named: Vec<usize> = (0..plan.nodes.len())
        .filter(|&i| match plan.nodes[i].op {
            Op::SourceY { .. } => target,
            Op::TakeRows { .. } => !target,
            _ => false,
        })
        .collect();
    match pick(node, named.len()).map(|i| &mut plan.nodes[named[i]].op) {
        Some(Op::SourceY { target }) => *target = name.into(),
        Some(Op::TakeRows { index }) => *index = name.into(),
        _ if target => plan.nodes.push(Node {
            op: Op::SourceY {
                target: name.into(),
            },
            inputs: vec![],
        }),
        _ => {
            let x = plan.nodes.len() as u32;
            plan.nodes.push(Node {
                op: Op::SourceX,
                inputs: vec![],
            });
            plan.nodes.push(Node {
                op: Op::TakeRows { index: name.into() },
                inputs: vec![x],
            });
        }
    }
}

fn apply_attack(plan: &mut Plan, attack: &Attack, pristine: bool) -> Expect {
    let n = plan.nodes.len();
    let otherwise = if pristine { Expect::Pass } else { Expect::Any };
    match attack {
        Attack::Nothing => otherwise,
        Attack::ForwardRef { node, slot, .. } | Attack::SelfRef { node, slot } if n > 0 => {
            let node = pick(node, n).unwrap_or(0);
            let ahead = match attack {
                Attack::ForwardRef { ahead, .. } => *ahead,
                _ => 0,
            };
            let target = (node as u32).saturating_add(ahead);
            let inputs = &mut plan.nodes[node].inputs;
            match pick(slot, inputs.len()) {
                Some(slot) => inputs[slot] = target,
                None => inputs.push(target),
            }
            Expect::Reject
        }
        Attack::WrongArity { node, more } if n > 0 => {
            let node = pick(node, n).unwrap_or(0);
            let Node { op, inputs } = &mut plan.nodes[node];
            let arity = match op {
                Op::TakeRows { .. } | Op::SelectCols { .. } | Op::Solve { .. } => 1,
                Op::Apply | Op::Gram { .. } | Op::Score { .. } => 2,
                Op::Hstack => {
                    inputs.clear();
                    return Expect::Reject;
                }
                Op::Fit { .. } => {
                    if *more {
                        inputs.resize(3, 0);
                    } else {
                        inputs.clear();
                    }
                    return Expect::Reject;
                }
                // Sources read nothing; ops this file does not know are
                // left alone.
                _ if op.output_kind(&[]).is_ok() => 0,
                _ => return otherwise,
            };
            inputs.resize(
                if *more || arity == 0 {
                    arity + 1
                } else {
                    arity - 1
                },
                0,
            );
            Expect::Reject
        }
        Attack::WrongKind {
            node,
            slot,
            pick: which,
        } => {
            let kinds = typed_prefix(plan);
            let nodes: Vec<usize> = (0..kinds.len())
                .filter(|&i| !plan.nodes[i].inputs.is_empty())
                .collect();
            let Some(node) = pick(node, nodes.len()).map(|i| nodes[i]) else {
                return otherwise;
            };
            let Node { op, inputs } = &mut plan.nodes[node];
            let slot = pick(slot, inputs.len()).unwrap_or(0);
            let Some(ok) = accepted(op, slot) else {
                return otherwise;
            };
            let wrong: Vec<usize> = (0..node).filter(|&j| !ok.contains(&kinds[j])).collect();
            match pick(which, wrong.len()) {
                Some(j) => {
                    inputs[slot] = wrong[j] as u32;
                    Expect::Reject
                }
                None => otherwise,
            }
        }
        Attack::TooManyInputs { node } if n > 0 => {
            let node = pick(node, n).unwrap_or(0);
            plan.nodes[node].op = Op::Hstack;
            plan.nodes[node].inputs = vec![0; MAX_INPUTS + 1];
            Expect::Reject
        }
        Attack::BadOutput { past } => {
            plan.outputs.push((n as u32).saturating_add(*past));
            Expect::Reject
        }
        Attack::Version(version) => {
            plan.version = *version;
            Expect::Reject
        }
        Attack::NoNodes { outputs } => {
            plan.nodes.clear();
            plan.outputs = if *outputs { vec![0] } else { vec![] };
            if *outputs {
                Expect::Reject
            } else {
                Expect::Pass
            }
        }
        Attack::UnknownTarget { node, name } | Attack::UnknownIndex { node, name } => {
            let target = matches!(attack, Attack::UnknownTarget { .. });
            let name = UNKNOWN_NAMES[name.index(UNKNOWN_NAMES.len())];
            rename(plan, node, name, target);
            Expect::RunPlanError
        }
        Attack::BadRows { node, name } => {
            let name = BAD_INDICES[name.index(BAD_INDICES.len())];
            rename(plan, node, name, false);
            Expect::RunDataError
        }
        Attack::BadCols { node, cols } => {
            let selects: Vec<usize> = (0..n)
                .filter(|&i| matches!(plan.nodes[i].op, Op::SelectCols { .. }))
                .collect();
            match pick(node, selects.len()) {
                Some(i) => plan.nodes[selects[i]].op = Op::SelectCols { cols: cols.clone() },
                None => {
                    let x = n as u32;
                    plan.nodes.push(Node {
                        op: Op::SourceX,
                        inputs: vec![],
                    });
                    plan.nodes.push(Node {
                        op: Op::SelectCols { cols: cols.clone() },
                        inputs: vec![x],
                    });
                    plan.outputs.push(x + 1);
                }
            }
            Expect::Any
        }
        // Structural attacks on an empty plan: nothing to attack.
        _ => otherwise,
    }
}

// ---------------------------------------------------------------------------
// msgpack: a tolerant walker and a small writer, for byte-level mutations.
// ---------------------------------------------------------------------------

/// Where one encoded value sits: `start..end`, the first `header` bytes
/// being its marker and length.
#[derive(Debug, Clone, Copy)]
struct Extent {
    start: usize,
    header: usize,
    end: usize,
}

/// Header length, payload length and number of nested values of the value
/// starting at `b[0]`, if its header is complete.
fn header_of(b: &[u8]) -> Option<(usize, usize, u64)> {
    let be = |at: usize, len: usize| -> Option<u64> {
        let bytes = b.get(at..at + len)?;
        Some(bytes.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    };
    let marker = *b.first()?;
    Some(match marker {
        0x00..=0x7f | 0xc0..=0xc3 | 0xe0..=0xff => (1, 0, 0),
        0x80..=0x8f => (1, 0, 2 * u64::from(marker & 0x0f)),
        0x90..=0x9f => (1, 0, u64::from(marker & 0x0f)),
        0xa0..=0xbf => (1, usize::from(marker & 0x1f), 0),
        0xc4 | 0xd9 => (2, be(1, 1)? as usize, 0),
        0xc5 | 0xda => (3, be(1, 2)? as usize, 0),
        0xc6 | 0xdb => (5, be(1, 4)? as usize, 0),
        0xc7 => (3, be(1, 1)? as usize, 0),
        0xc8 => (4, be(1, 2)? as usize, 0),
        0xc9 => (6, be(1, 4)? as usize, 0),
        0xca | 0xce | 0xd2 => (1, 4, 0),
        0xcb | 0xcf | 0xd3 => (1, 8, 0),
        0xcc | 0xd0 => (1, 1, 0),
        0xcd | 0xd1 => (1, 2, 0),
        0xd4 => (2, 1, 0),
        0xd5 => (2, 2, 0),
        0xd6 => (2, 4, 0),
        0xd7 => (2, 8, 0),
        0xd8 => (2, 16, 0),
        0xdc => (3, 0, be(1, 2)?),
        0xdd => (5, 0, be(1, 4)?),
        0xde => (3, 0, 2 * be(1, 2)?),
        0xdf => (5, 0, 2 * be(1, 4)?),
    })
}

/// Extents of the values of the first top-level value of `bytes`, in
/// preorder; stops quietly at the first malformed or truncated value.
fn walk(bytes: &[u8]) -> Vec<Extent> {
    let mut out: Vec<Extent> = Vec::new();
    let mut open: Vec<(usize, u64)> = Vec::new();
    let mut pos = 0;
    loop {
        while let Some(&(idx, 0)) = open.last() {
            out[idx].end = pos;
            open.pop();
        }
        if open.is_empty() && !out.is_empty() {
            break;
        }
        let Some((header, payload, children)) = header_of(&bytes[pos.min(bytes.len())..]) else {
            break;
        };
        if let Some(top) = open.last_mut() {
            top.1 -= 1;
        }
        let start = pos;
        pos = (pos + header).saturating_add(payload).min(bytes.len());
        out.push(Extent {
            start,
            header: header.min(bytes.len() - start),
            end: pos,
        });
        if children > 0 {
            open.push((out.len() - 1, children));
        }
    }
    for (idx, _) in open {
        out[idx].end = pos;
    }
    out
}

/// Containers and blobs that claim far more content than any input holds.
#[derive(Debug, Clone, Copy)]
enum Huge {
    Array16,
    Array32,
    Map16,
    Map32,
    Str16,
    Str32,
    Bin32,
    Ext32,
}

fn huge() -> impl Strategy<Value = Huge> {
    prop_oneof![
        Just(Huge::Array16),
        Just(Huge::Array32),
        Just(Huge::Map16),
        Just(Huge::Map32),
        Just(Huge::Str16),
        Just(Huge::Str32),
        Just(Huge::Bin32),
        Just(Huge::Ext32),
    ]
}

fn huge_count() -> impl Strategy<Value = u32> {
    prop_oneof![
        3 => Just(u32::MAX),
        1 => Just(1u32 << 31),
        1 => Just(0x0001_0000),
        1 => 0u32..8,
        1 => any::<u32>(),
    ]
}

impl Huge {
    const ALL: [Huge; 8] = [
        Huge::Array16,
        Huge::Array32,
        Huge::Map16,
        Huge::Map32,
        Huge::Str16,
        Huge::Str32,
        Huge::Bin32,
        Huge::Ext32,
    ];

    fn header(self, count: u32) -> Vec<u8> {
        let short = (count.min(u32::from(u16::MAX)) as u16).to_be_bytes();
        let long = count.to_be_bytes();
        let (marker, len): (u8, &[u8]) = match self {
            Huge::Array16 => (0xdc, &short),
            Huge::Array32 => (0xdd, &long),
            Huge::Map16 => (0xde, &short),
            Huge::Map32 => (0xdf, &long),
            Huge::Str16 => (0xda, &short),
            Huge::Str32 => (0xdb, &long),
            Huge::Bin32 => (0xc6, &long),
            Huge::Ext32 => (0xc9, &long),
        };
        let mut out = vec![marker];
        out.extend_from_slice(len);
        if let Huge::Ext32 = self {
            out.push(7);
        }
        out
    }
}

/// Every string the plan format uses, so random values look plausible.
const WORDS: [&str; 72] = [
    "version",
    "nodes",
    "outputs",
    "op",
    "inputs",
    "kind",
    "source_x",
    "source_y",
    "take_rows",
    "select_cols",
    "hstack",
    "fit",
    "apply",
    "gram",
    "solve",
    "score",
    "target",
    "index",
    "cols",
    "estimator",
    "fit_intercept",
    "alpha",
    "metric",
    "pos_label",
    "name",
    "simple_imputer",
    "standard_scaler",
    "min_max_scaler",
    "max_abs_scaler",
    "one_hot_encoder",
    "polynomial_features",
    "pca",
    "select_k_best",
    "linear_regression",
    "ridge",
    "logistic_regression",
    "k_neighbors",
    "strategy",
    "fill_value",
    "with_mean",
    "with_std",
    "low",
    "high",
    "clip",
    "degree",
    "interaction_only",
    "include_bias",
    "n_components",
    "whiten",
    "score_func",
    "k",
    "c",
    "max_iter",
    "tol",
    "n_neighbors",
    "weights",
    "classifier",
    "mean",
    "median",
    "most_frequent",
    "constant",
    "f_regression",
    "f_classif",
    "uniform",
    "distance",
    "r2",
    "accuracy",
    "roc_auc",
    "neg_log_loss",
    "y",
    "neighbors",
    "knn_predict",
];

/// A msgpack value (containers as bare headers: their content follows).
#[derive(Debug, Clone)]
enum Token {
    Nil,
    Bool(bool),
    UInt(u64),
    Int(i64),
    F64(f64),
    F32(f32),
    Word(usize),
    Str(String),
    Bin(Vec<u8>),
    Array(u8),
    Map(u8),
    Ext(i8, Vec<u8>),
    Huge(Huge, u32),
    Raw(Vec<u8>),
}

fn token() -> impl Strategy<Value = Token> {
    prop_oneof![
        1 => Just(Token::Nil),
        1 => any::<bool>().prop_map(Token::Bool),
        4 => prop_oneof![0u64..8, Just(u64::from(u32::MAX)), Just(u64::MAX), any::<u64>()]
            .prop_map(Token::UInt),
        1 => prop_oneof![-3i64..0, Just(i64::MIN), any::<i64>()].prop_map(Token::Int),
        2 => special_f64().prop_map(Token::F64),
        1 => any::<f32>().prop_map(Token::F32),
        6 => (0..WORDS.len()).prop_map(Token::Word),
        1 => "\\PC{0,8}".prop_map(Token::Str),
        1 => vec(any::<u8>(), 0..8).prop_map(Token::Bin),
        3 => (0u8..5).prop_map(Token::Array),
        3 => (0u8..4).prop_map(Token::Map),
        1 => (any::<i8>(), vec(any::<u8>(), 0..5)).prop_map(|(t, d)| Token::Ext(t, d)),
        1 => (huge(), huge_count()).prop_map(|(h, c)| Token::Huge(h, c)),
        1 => vec(any::<u8>(), 1..6).prop_map(Token::Raw),
    ]
}

fn write_len(out: &mut Vec<u8>, len: usize, fix: u8, fix_max: usize, markers: [u8; 3]) {
    if len <= fix_max {
        out.push(fix | len as u8);
    } else if len <= 0xff && markers[0] != 0 {
        out.extend([markers[0], len as u8]);
    } else if len <= 0xffff {
        out.push(markers[1]);
        out.extend((len as u16).to_be_bytes());
    } else {
        out.push(markers[2]);
        out.extend((len as u32).to_be_bytes());
    }
}

impl Token {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Token::Nil => out.push(0xc0),
            Token::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
            Token::UInt(v) if *v < 0x80 => out.push(*v as u8),
            Token::UInt(v) if *v <= u64::from(u32::MAX) => {
                out.push(0xce);
                out.extend((*v as u32).to_be_bytes());
            }
            Token::UInt(v) => {
                out.push(0xcf);
                out.extend(v.to_be_bytes());
            }
            Token::Int(v) if *v >= -32 => out.push(*v as i8 as u8),
            Token::Int(v) => {
                out.push(0xd3);
                out.extend(v.to_be_bytes());
            }
            Token::F64(v) => {
                out.push(0xcb);
                out.extend(v.to_be_bytes());
            }
            Token::F32(v) => {
                out.push(0xca);
                out.extend(v.to_be_bytes());
            }
            Token::Word(w) => Token::Str(WORDS[*w].into()).encode(out),
            Token::Str(s) => {
                write_len(out, s.len(), 0xa0, 31, [0xd9, 0xda, 0xdb]);
                out.extend(s.as_bytes());
            }
            Token::Bin(b) => {
                out.extend([0xc4, b.len() as u8]);
                out.extend(b);
            }
            Token::Array(n) => write_len(out, usize::from(*n), 0x90, 15, [0, 0xdc, 0xdd]),
            Token::Map(n) => write_len(out, usize::from(*n), 0x80, 15, [0, 0xde, 0xdf]),
            Token::Ext(t, d) => {
                out.extend([0xc7, d.len() as u8, *t as u8]);
                out.extend(d);
            }
            Token::Huge(h, c) => out.extend(h.header(*c)),
            Token::Raw(b) => out.extend(b),
        }
    }
}

fn encode_tokens(tokens: &[Token]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in tokens {
        t.encode(&mut out);
    }
    out
}

/// One change to encoded plan bytes.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit {
        at: Index,
        bit: u8,
    },
    SetByte {
        at: Index,
        byte: u8,
    },
    Truncate {
        at: Index,
    },
    Delete {
        at: Index,
        len: u8,
    },
    Insert {
        at: Index,
        bytes: Vec<u8>,
    },
    Duplicate {
        at: Index,
        len: u8,
    },
    /// Gives an encoded value a huge length header in place of its own.
    HugeHeader {
        value: Index,
        huge: Huge,
        count: u32,
    },
    /// Inserts a huge length header before an encoded value.
    InsertHuge {
        value: Index,
        huge: Huge,
        count: u32,
    },
    /// Replaces an encoded value (and its content) by another value.
    Replace {
        value: Index,
        with: Vec<Token>,
    },
    /// Replaces an encoded value by a copy of another one of the same plan.
    Copy {
        from: Index,
        to: Index,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit { at, bit }),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Mutation::SetByte { at, byte }),
        1 => any::<Index>().prop_map(|at| Mutation::Truncate { at }),
        1 => (any::<Index>(), 1u8..16).prop_map(|(at, len)| Mutation::Delete { at, len }),
        1 => (any::<Index>(), vec(any::<u8>(), 1..8))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        1 => (any::<Index>(), 1u8..32).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
        2 => (any::<Index>(), huge(), huge_count())
            .prop_map(|(value, huge, count)| Mutation::HugeHeader { value, huge, count }),
        1 => (any::<Index>(), huge(), huge_count())
            .prop_map(|(value, huge, count)| Mutation::InsertHuge { value, huge, count }),
        3 => (any::<Index>(), vec(token(), 1..3))
            .prop_map(|(value, with)| Mutation::Replace { value, with }),
        2 => (any::<Index>(), any::<Index>()).prop_map(|(from, to)| Mutation::Copy { from, to }),
    ]
}

fn mutate(bytes: &mut Vec<u8>, mutation: &Mutation) {
    let n = bytes.len();
    let extents = walk(bytes);
    let value = |i: &Index| pick(i, extents.len()).map(|i| extents[i]);
    match mutation {
        Mutation::FlipBit { at, bit } => {
            if let Some(at) = pick(at, n) {
                bytes[at] ^= 1 << bit;
            }
        }
        Mutation::SetByte { at, byte } => {
            if let Some(at) = pick(at, n) {
                bytes[at] = *byte;
            }
        }
        Mutation::Truncate { at } => bytes.truncate(pick(at, n).unwrap_or(0)),
        Mutation::Delete { at, len } => {
            if let Some(at) = pick(at, n) {
                bytes.drain(at..(at + usize::from(*len)).min(n));
            }
        }
        Mutation::Insert { at, bytes: new } => {
            let at = pick(at, n + 1).unwrap_or(0);
            bytes.splice(at..at, new.iter().copied());
        }
        Mutation::Duplicate { at, len } => {
            if let Some(at) = pick(at, n) {
                let copy = bytes[at..(at + usize::from(*len)).min(n)].to_vec();
                bytes.splice(at..at, copy);
            }
        }
        Mutation::HugeHeader {
            value: v,
            huge,
            count,
        } => {
            if let Some(e) = value(v) {
                bytes.splice(e.start..e.start + e.header, huge.header(*count));
            }
        }
        Mutation::InsertHuge {
            value: v,
            huge,
            count,
        } => {
            let at = value(v).map_or(0, |e| e.start);
            bytes.splice(at..at, huge.header(*count));
        }
        Mutation::Replace { value: v, with } => {
            if let Some(e) = value(v) {
                bytes.splice(e.start..e.end, encode_tokens(with));
            }
        }
        Mutation::Copy { from, to } => {
            if let (Some(from), Some(to)) = (value(from), value(to)) {
                let copy = bytes[from.start..from.end].to_vec();
                bytes.splice(to.start..to.end, copy);
            }
        }
    }
}

fn encoded(plan: &Plan, compact: bool) -> Vec<u8> {
    if compact {
        rmp_serde::to_vec(plan).expect("a plan serialises")
    } else {
        plan.encode()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes untrusted bytes; whatever decodes is also run.
fn decode_untrusted(case: &Case, bytes: &[u8], fixture: usize) -> Result<(), TestCaseError> {
    match Plan::decode(bytes) {
        Ok(plan) => {
            case.memory()?;
            check_and_run(case, &plan, fixture, Expect::Any)
        }
        Err(RuntimeError::Plan(_)) => case.memory(),
        Err(e) => {
            prop_assert!(
                false,
                "decode failed with a non-plan error {e:?}: {}",
                hex(bytes)
            );
            unreachable!()
        }
    }
}

// ---------------------------------------------------------------------------
// Properties.
// ---------------------------------------------------------------------------

fn random_bytes() -> impl Strategy<Value = Vec<u8>> {
    let plan_prefix = (
        plan_spec(),
        any::<bool>(),
        any::<Index>(),
        vec(any::<u8>(), 0..48),
    )
        .prop_map(|(spec, compact, cut, tail)| {
            let mut bytes = encoded(&build(&spec), compact);
            bytes.truncate(cut.index(bytes.len() + 1));
            bytes.extend(tail);
            bytes
        });
    let soup = (
        prop_oneof![Just(vec![]), Just(vec![Token::Map(3)])],
        vec(token(), 0..48),
    )
        .prop_map(|(head, tail)| encode_tokens(&[head, tail].concat()));
    prop_oneof![
        2 => vec(any::<u8>(), 0..96),
        3 => soup,
        2 => plan_prefix,
    ]
}

proptest! {
    #![proptest_config(config(5_000))]

    /// (1) Arbitrary bytes, msgpack-shaped token soup and valid prefixes with
    /// garbage tails decode to `Ok` or `Err(Plan)`; whatever decodes runs.
    #[test]
    fn random_bytes_never_panic(bytes in random_bytes(), fixture in 0..3usize) {
        let case = Case::start(|| hex(&bytes));
        decode_untrusted(&case, &bytes, fixture)?;
    }
}

proptest! {
    #![proptest_config(config(6_000))]

    /// (2) Valid plans, encoded (named or compact), then mutated: bit flips,
    /// cuts, splices, garbage, huge length headers, swapped values.
    #[test]
    fn mutated_plans_never_panic(
        spec in plan_spec(),
        compact in any::<bool>(),
        mutations in vec(mutation(), 1..5),
    ) {
        let mut bytes = encoded(&build(&spec), compact);
        for m in &mutations {
            mutate(&mut bytes, m);
        }
        let case = Case::start(|| hex(&bytes));
        decode_untrusted(&case, &bytes, spec.fixture)?;
    }
}

proptest! {
    #![proptest_config(config(300))]

    /// (2) Every proper prefix of a valid plan is refused; the whole plan
    /// decodes to itself.
    #[test]
    fn every_prefix_is_refused(spec in plan_spec(), compact in any::<bool>()) {
        let plan = build(&spec);
        let bytes = encoded(&plan, compact);
        let case = Case::start(|| format!("{plan:?}"));
        let decoded = Plan::decode(&bytes);
        prop_assert!(decoded.is_ok(), "{:?}", decoded);
        prop_assert_eq!(decoded.unwrap().encode(), plan.encode());
        for cut in 0..bytes.len() {
            let got = Plan::decode(&bytes[..cut]);
            prop_assert!(matches!(got, Err(RuntimeError::Plan(_))), "prefix {}: {:?}", cut, got);
        }
        case.memory()?;
    }
}

proptest! {
    #![proptest_config(config(8_000))]

    /// (3) Well-formed plans, rewired at random and then attacked:
    /// structural damage is refused by `check`, unknown names by `run`, and
    /// whatever runs ends in a report (per-node failures allowed) without a
    /// kernel panic.
    #[test]
    fn hostile_plans_are_refused_or_run_safely(
        spec in plan_spec(),
        twists in prop_oneof![3 => Just(vec![]), 1 => vec(twist(), 1..3)],
        attack in attack(),
    ) {
        let mut plan = build(&spec);
        for t in &twists {
            apply_twist(&mut plan, t);
        }
        let expect = apply_attack(&mut plan, &attack, twists.is_empty());
        let case = Case::start(|| format!("fixture {}: {plan:?}", spec.fixture));
        check_and_run(&case, &plan, spec.fixture, expect)?;
    }
}

// ---------------------------------------------------------------------------
// Deterministic cases.
// ---------------------------------------------------------------------------

fn assert_refused(bytes: &[u8], what: &str) {
    let got = Plan::decode(bytes);
    assert!(
        matches!(got, Err(RuntimeError::Plan(_))),
        "{what}: expected a plan error, got {got:?}"
    );
}

fn str_token(s: &str) -> Token {
    Token::Str(s.into())
}

/// A named-field plan with one node whose op map holds `op_fields`.
fn plan_with_op(op_fields: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    Token::Map(3).encode(&mut out);
    str_token("version").encode(&mut out);
    Token::UInt(1).encode(&mut out);
    str_token("nodes").encode(&mut out);
    Token::Array(1).encode(&mut out);
    Token::Map(2).encode(&mut out);
    str_token("op").encode(&mut out);
    Token::Map(op_fields.len() as u8 / 2).encode(&mut out);
    for field in op_fields {
        out.extend(field);
    }
    str_token("inputs").encode(&mut out);
    Token::Array(0).encode(&mut out);
    str_token("outputs").encode(&mut out);
    Token::Array(0).encode(&mut out);
    out
}

#[test]
fn deeply_nested_values_are_refused_without_stack_overflow() {
    const DEPTH: usize = 100_000;
    let nested = |open: &[u8]| {
        let mut v = open.repeat(DEPTH);
        v.push(0xc0);
        v
    };
    let arrays = nested(&[0x91]);
    let arrays32 = nested(&[0xdd, 0, 0, 0, 1]);
    let maps = nested(&[0x81, 0xc0]);
    let word = |s: &str| encode_tokens(&[str_token(s)]);
    let mut in_nodes = encode_tokens(&[Token::Map(3), str_token("version"), Token::UInt(1)]);
    in_nodes.extend(word("nodes"));
    in_nodes.extend(&arrays);
    let mut estimator = encode_tokens(&[
        Token::Map(2),
        str_token("name"),
        str_token("max_abs_scaler"),
        str_token("deep"),
    ]);
    estimator.extend(&maps);
    // (what, bytes, whether serde buffers the deep value as untyped content,
    // so that only rmp-serde's depth limit stops the recursion). Internally
    // tagged enums (ops, estimators) buffer their fields.
    let cases = [
        ("top-level arrays", arrays.clone(), false),
        ("top-level array32s", arrays32.clone(), false),
        ("top-level maps", maps.clone(), false),
        ("plan nodes", in_nodes, false),
        (
            "op tag",
            plan_with_op(&[word("kind"), arrays.clone()]),
            false,
        ),
        (
            "op field after the tag",
            plan_with_op(&[word("kind"), word("hstack"), word("deep"), arrays.clone()]),
            true,
        ),
        (
            "op field before the tag",
            plan_with_op(&[word("deep"), maps.clone(), word("kind"), word("hstack")]),
            true,
        ),
        (
            "op field of array32s",
            plan_with_op(&[word("kind"), word("apply"), word("deep"), arrays32]),
            true,
        ),
        (
            "estimator field",
            plan_with_op(&[word("kind"), word("fit"), word("estimator"), estimator]),
            true,
        ),
    ];
    for (what, bytes, buffered) in &cases {
        let case = Case::start(|| what.to_string());
        // A fixed, modest stack: at rmp-serde's depth limit (1024) decoding
        // needs between 256 and 512 KiB in the dev profile.
        let got = std::thread::scope(|s| {
            std::thread::Builder::new()
                .stack_size(1 << 20)
                .spawn_scoped(s, || Plan::decode(bytes))
                .expect("a decoding thread")
                .join()
                .expect("decoding does not panic")
        });
        match got {
            Err(RuntimeError::Plan(m)) => {
                assert!(!buffered || m.contains("depth limit"), "{what}: {m}");
            }
            other => panic!("{what}: expected a plan error, got {other:?}"),
        }
        case.memory().unwrap();
    }
}

/// Every value of a real plan, given each kind of huge length header.
#[test]
fn huge_length_headers_are_refused_cheaply() {
    let spec = PlanSpec {
        fixture: 1,
        target: 2,
        impute: true,
        steps: vec![
            Step::Pipeline {
                split: None,
                transformers: vec![Estimator::StandardScaler {
                    with_mean: true,
                    with_std: true,
                }],
                model: Estimator::KNeighbors {
                    n_neighbors: 3,
                    weights: Weights::Distance,
                    classifier: false,
                },
                route: Route::Fit,
                metric: Metric::R2,
                pos_label: 1.0,
            },
            Step::Op {
                op: Op::SelectCols { cols: vec![0, 2] },
                picks: [0; 4],
                smart: true,
            },
        ],
        extra_outputs: vec![],
    };
    let plan = build(&spec);
    for compact in [false, true] {
        let bytes = encoded(&plan, compact);
        for (i, extent) in walk(&bytes).iter().enumerate() {
            for huge in Huge::ALL {
                for count in [u32::MAX, 1 << 31, 0x0001_0000] {
                    let mut mutated = bytes.clone();
                    let header = huge.header(count);
                    mutated.splice(extent.start..extent.start + extent.header, header.clone());
                    let case = Case::start(|| hex(&mutated));
                    assert_refused(&mutated, &format!("value {i} given {huge:?}({count})"));
                    case.memory().unwrap();
                    drop(case);
                    mutated = bytes.clone();
                    mutated.splice(extent.start..extent.start, header);
                    let case = Case::start(|| hex(&mutated));
                    assert_refused(&mutated, &format!("{huge:?}({count}) before value {i}"));
                    case.memory().unwrap();
                }
            }
        }
    }
}

/// `take_rows` on values that already hold a subset of the rows: the index
/// names rows of X, which the subset may not have. Found by this fuzzer
/// (`exec.rs` gathers without a bounds check and panics).
#[test]
fn take_rows_of_a_row_subset_fails_cleanly() {
    let take = |index: &str, input: u32| Node {
        op: Op::TakeRows {
            index: index.into(),
        },
        inputs: vec![input],
    };
    let plan = Plan {
        version: PLAN_VERSION,
        nodes: vec![
            Node {
                op: Op::SourceX,
                inputs: vec![],
            },
            Node {
                op: Op::SourceY { target: "y".into() },
                inputs: vec![],
            },
            take("te", 0),
            take("tr", 2),
            take("te", 1),
            take("tr", 4),
        ],
        outputs: vec![3, 5],
    };
    let case = Case::start(|| format!("{plan:?}"));
    if let Err(e) = check_and_run(&case, &plan, 1, Expect::Pass) {
        panic!("{e}");
    }
}

/// Runs a plan that passes `check` and must not blow up memory.
fn run_bounded(plan: &Plan, fixture: usize) {
    plan.check().expect("the plan is well-formed");
    let case = Case::start(|| format!("{plan:?}"));
    if let Err(e) = check_and_run(&case, plan, fixture, Expect::Any) {
        panic!("{e}");
    }
}

/// `hstack(prev, prev)` forty times: a 2 KB plan asking for a matrix of
/// 3 * 2^40 columns. The runtime must refuse, not try.
#[test]
fn doubling_hstack_chain_stays_bounded() {
    let mut nodes = vec![Node {
        op: Op::SourceX,
        inputs: vec![],
    }];
    for i in 0..40 {
        nodes.push(Node {
            op: Op::Hstack,
            inputs: vec![i, i],
        });
    }
    let plan = Plan {
        version: PLAN_VERSION,
        outputs: vec![nodes.len() as u32 - 1],
        nodes,
    };
    run_bounded(&plan, 1);
}

/// `PolynomialFeatures(degree=2)` on 1,200 selected columns: a 1.4 KB plan
/// asking for 721,801 output columns (the width grows quadratically with
/// the plan, and squares again with every further expansion).
#[test]
fn polynomial_features_of_many_columns_stay_bounded() {
    let poly = Estimator::PolynomialFeatures {
        degree: 2,
        interaction_only: false,
        include_bias: true,
    };
    let node = |op: Op, inputs: Vec<u32>| Node { op, inputs };
    let cols = (0..1200).map(|c| c % 3).collect();
    let plan = Plan {
        version: PLAN_VERSION,
        nodes: vec![
            node(Op::SourceX, vec![]),
            node(Op::SelectCols { cols }, vec![0]),
            node(Op::Fit { estimator: poly }, vec![1]),
            node(Op::Apply, vec![2, 1]),
        ],
        outputs: vec![3],
    };
    assert!(plan.encode().len() < 1500, "{}", plan.encode().len());
    run_bounded(&plan, 1);
}
