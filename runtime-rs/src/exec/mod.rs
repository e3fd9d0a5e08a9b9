//! The DAG scheduler: runs every node of a checked [`Plan`] on a rayon pool as
//! soon as its inputs are ready, frees each intermediate when its last
//! consumer is done, and keeps failures local to the nodes that depend on the
//! failing one, so one bad pipeline never takes down the batch.
//!
//! Ready nodes run in the order of the first plan output that needs them
//! (then by id), not in the order they became ready: the compiler lists
//! outputs fold by fold, so the run finishes a fold's work before starting
//! the next fold's and each fold's split matrices are freed early.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use faer::MatRef;
use rayon::{Scope, ThreadPool};

use crate::cache::{Entry, Key, NodeCache};
use crate::error::{Result, RuntimeError};
use crate::metrics;
use crate::ops::Fitted;
use crate::ops::{knn, linear};
use crate::plan::{Op, Plan};
use crate::value::Value;

mod gather;
mod reuse;

pub use gather::{hstack, select_cols, take_rows};

/// The data a plan runs on. Borrowed: nothing is copied on the way in.
pub struct Dataset<'a> {
    /// Feature matrix; NaN marks a missing value.
    pub x: MatRef<'a, f64>,
    /// Named targets (class codes for classifiers, raw values for regressors).
    pub targets: HashMap<String, &'a [f64]>,
    /// Named row-index arrays (fold train/test rows).
    pub indices: HashMap<String, &'a [i64]>,
}

/// Where a node's failure started and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// Id of the node that failed first; its dependents carry the same failure.
    pub node: u32,
    /// The cause.
    pub error: RuntimeError,
}

/// A node's result.
pub type Outcome = std::result::Result<Value, Failure>;

/// What a run produced.
#[derive(Debug)]
pub struct Report {
    /// One outcome per plan output, in the plan's order.
    pub outputs: Vec<Outcome>,
    /// Nodes whose operation actually ran (sources and skipped nodes excluded).
    pub executed: usize,
    /// Nodes served by the cache.
    pub cache_hits: usize,
    /// Computed values stored to the cache.
    pub cache_stores: usize,
    /// Per step (`"fit ridge"`, `"apply scaler"`, `"gram"`, ...): how many
    /// nodes ran and their summed wall time.
    pub profile: Vec<(String, usize, Duration)>,
}

/// Pools built so far, by size, and the process that built them.
#[derive(Default)]
struct Pools {
    pid: u32,
    by_size: HashMap<usize, Arc<ThreadPool>>,
}

/// A rayon pool with `threads` workers (all cores when `None`), built once per
/// size and process, and reused by later runs.
///
/// A child forked from a process that ran plans (multiprocessing's and
/// Globus Compute's process pools fork) inherits the pools but not their
/// threads; handing work to them would hang, so each process builds its own.
pub fn pool(threads: Option<usize>) -> Result<Arc<ThreadPool>> {
    static POOLS: OnceLock<Mutex<Pools>> = OnceLock::new();
    let size = match threads {
        Some(0) => return Err(RuntimeError::parameter("threads must be at least 1")),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    if pools.pid != pid {
        // The parent's pools: their threads are not in this process, so they
        // are leaked rather than dropped (dropping would signal those threads).
        std::mem::forget(std::mem::take(&mut pools.by_size));
        pools.pid = pid;
    }
    if let Some(pool) = pools.by_size.get(&size) {
        return Ok(pool.clone());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(size)
        .thread_name(|i| format!("academy-ml-{i}"))
        .build()
        .map_err(|e| RuntimeError::numerical(format!("cannot start worker threads: {e}")))?;
    let pool = Arc::new(pool);
    pools.by_size.insert(size, pool.clone());
    Ok(pool)
}

/// Runs `plan` on `data` inside `pool`. Setting `cancel` makes the remaining
/// nodes stop and the run return [`RuntimeError::Interrupted`].
pub fn run(
    plan: &Plan,
    data: &Dataset<'_>,
    pool: &ThreadPool,
    cancel: &AtomicBool,
) -> Result<Report> {
    run_cached(plan, data, pool, cancel, None)
}

/// [`run`] with a cache: keyed nodes the cache answers are not computed (nor
/// is anything only they needed), and computed keyed values worth keeping are
/// stored for later runs.
pub fn run_cached(
    plan: &Plan,
    data: &Dataset<'_>,
    pool: &ThreadPool,
    cancel: &AtomicBool,
    cache: Option<&NodeCache>,
) -> Result<Report> {
    let kinds = plan.check()?;
    let indices = checked_indices(plan, data)?;
    let began = Instant::now();
    let (start, keys) = reuse::plan_reuse(plan, &kinds, cache, cancel)?;
    let state = State::new(plan, data, indices, cancel, start, keys, cache);
    if cache.is_some() {
        state.time("cache lookup".into(), began.elapsed());
    }
    pool.install(|| {
        rayon::scope(|scope| {
            for id in 0..plan.nodes.len() {
                if state.computed[id] && state.pending[id].load(Ordering::Relaxed) == 0 {
                    state.make_ready(scope, id);
                }
            }
        })
    });
    if let Some(cache) = cache {
        cache.flush_stats_if_due();
    }
    if cancel.load(Ordering::Relaxed) {
        return Err(RuntimeError::Interrupted);
    }
    let outputs = plan
        .outputs
        .iter()
        .map(|&id| state.output(id as usize))
        .collect();
    Ok(Report {
        outputs,
        executed: state.executed.load(Ordering::Relaxed),
        cache_hits: state.hits,
        cache_stores: state.stores.load(Ordering::Relaxed),
        profile: state.profile(),
    })
}

/// Resolves every index name the plan uses and checks its rows exist.
fn checked_indices(plan: &Plan, data: &Dataset<'_>) -> Result<HashMap<String, Vec<usize>>> {
    let n_rows = data.x.nrows();
    let mut resolved = HashMap::new();
    for node in &plan.nodes {
        let index = match &node.op {
            Op::TakeRows { index } => index,
            Op::SourceY { target } => {
                let y = data.targets.get(target).ok_or_else(|| {
                    RuntimeError::Plan(format!(
                        "the plan reads target {target:?}, which was not supplied"
                    ))
                })?;
                if y.len() != n_rows {
                    return Err(RuntimeError::data(format!(
                        "X has {n_rows} rows but target {target:?} has {} values",
                        y.len()
                    )));
                }
                continue;
            }
            _ => continue,
        };
        if resolved.contains_key(index) {
            continue;
        }
        let rows = data.indices.get(index).ok_or_else(|| {
            RuntimeError::Plan(format!(
                "the plan reads row index {index:?}, which was not supplied"
            ))
        })?;
        let rows = rows
            .iter()
            .map(|&r| {
                usize::try_from(r)
                    .ok()
                    .filter(|&r| r < n_rows)
                    .ok_or_else(|| {
                        RuntimeError::data(format!(
                            "row index {index:?} holds {r}, outside 0..{n_rows}"
                        ))
                    })
            })
            .collect::<Result<Vec<usize>>>()?;
        resolved.insert(index.clone(), rows);
    }
    Ok(resolved)
}

/// An input as a node sees it: the borrowed dataset or a computed value.
enum Arg<'a> {
    X(MatRef<'a, f64>),
    Y(&'a [f64]),
    Value(Value),
}

impl Arg<'_> {
    fn matrix(&self) -> MatRef<'_, f64> {
        match self {
            Arg::X(x) => *x,
            Arg::Value(Value::Matrix(m)) => m.as_ref().as_ref(),
            _ => unreachable!("plan checked: matrix input"),
        }
    }

    fn vector(&self) -> &[f64] {
        match self {
            Arg::Y(y) => y,
            Arg::Value(Value::Vector(v)) => v,
            _ => unreachable!("plan checked: vector input"),
        }
    }

    fn value(&self) -> &Value {
        match self {
            Arg::Value(v) => v,
            _ => unreachable!("plan checked: computed input"),
        }
    }
}

struct State<'p, 'a> {
    plan: &'p Plan,
    data: &'p Dataset<'a>,
    indices: HashMap<String, Vec<usize>>,
    cancel: &'p AtomicBool,
    cache: Option<&'p NodeCache>,
    keys: Vec<Option<Key>>,
    slots: Vec<Mutex<Option<Outcome>>>,
    /// Whether the node is computed in this run.
    computed: Vec<bool>,
    /// Computed inputs (with multiplicity) not finished yet.
    pending: Vec<AtomicUsize>,
    /// Computed consumers (with multiplicity) that have not run yet.
    uses: Vec<AtomicUsize>,
    consumers: Vec<Vec<usize>>,
    is_output: Vec<bool>,
    /// Nanoseconds it would take to recompute the node from what the cache
    /// holds (zero once it is cached); guides admission.
    recompute: Vec<AtomicU64>,
    executed: AtomicUsize,
    hits: usize,
    stores: AtomicUsize,
    /// Position of the first output that needs the node.
    priority: Vec<u32>,
    /// Ready nodes by (priority, id); every spawned task runs the first.
    ready: Mutex<BinaryHeap<Reverse<(u32, u32)>>>,
    timings: Mutex<HashMap<String, (usize, Duration)>>,
}

impl<'p, 'a> State<'p, 'a> {
    fn new(
        plan: &'p Plan,
        data: &'p Dataset<'a>,
        indices: HashMap<String, Vec<usize>>,
        cancel: &'p AtomicBool,
        start: Vec<reuse::Start>,
        keys: Vec<Option<Key>>,
        cache: Option<&'p NodeCache>,
    ) -> Self {
        let n = plan.nodes.len();
        let computed: Vec<bool> = start
            .iter()
            .map(|s| matches!(s, reuse::Start::Compute))
            .collect();
        let mut consumers = vec![Vec::new(); n];
        let mut pending = vec![0usize; n];
        let mut uses = vec![0usize; n];
        for (id, node) in plan
            .nodes
            .iter()
            .enumerate()
            .filter(|(id, _)| computed[*id])
        {
            for &input in &node.inputs {
                let input = input as usize;
                uses[input] += 1;
                if computed[input] {
                    consumers[input].push(id);
                    pending[id] += 1;
                }
            }
        }
        let mut is_output = vec![false; n];
        let mut priority = vec![u32::MAX; n];
        for (position, &out) in plan.outputs.iter().enumerate() {
            is_output[out as usize] = true;
            priority[out as usize] = priority[out as usize].min(position as u32);
        }
        for (id, node) in plan.nodes.iter().enumerate().rev() {
            for &input in &node.inputs {
                priority[input as usize] = priority[input as usize].min(priority[id]);
            }
        }
        let mut hits = 0;
        let slots = start
            .into_iter()
            .map(|s| match s {
                reuse::Start::Ready(value) => {
                    hits += 1;
                    Mutex::new(Some(Ok(value)))
                }
                reuse::Start::Skip | reuse::Start::Compute => Mutex::new(None),
            })
            .collect();
        State {
            plan,
            data,
            indices,
            cancel,
            cache,
            keys,
            slots,
            computed,
            pending: pending.into_iter().map(AtomicUsize::new).collect(),
            uses: uses.into_iter().map(AtomicUsize::new).collect(),
            consumers,
            is_output,
            recompute: (0..n).map(|_| AtomicU64::new(0)).collect(),
            executed: AtomicUsize::new(0),
            hits,
            stores: AtomicUsize::new(0),
            priority,
            ready: Mutex::default(),
            timings: Mutex::default(),
        }
    }

    /// Queues a node whose inputs are done and spawns a task that runs the
    /// most urgent queued node (one task per queued node, so none is left).
    fn make_ready<'s>(&'s self, scope: &Scope<'s>, id: usize) {
        lock(&self.ready).push(Reverse((self.priority[id], id as u32)));
        scope.spawn(move |scope| {
            let next = lock(&self.ready).pop();
            let Reverse((_, next)) = next.expect("one queued node per task");
            self.run_node(scope, next as usize);
        });
    }

    fn time(&self, step: String, took: Duration) {
        let mut timings = lock(&self.timings);
        let entry = timings.entry(step).or_default();
        entry.0 += 1;
        entry.1 += took;
    }

    fn profile(&self) -> Vec<(String, usize, Duration)> {
        let mut rows: Vec<_> = lock(&self.timings)
            .iter()
            .map(|(step, &(count, took))| (step.clone(), count, took))
            .collect();
        rows.sort_by_key(|row| Reverse(row.2));
        rows
    }

    fn run_node<'s>(&'s self, scope: &Scope<'s>, id: usize) {
        let began = Instant::now();
        let outcome = self.compute(id);
        if let Ok(value) = &outcome {
            self.store(id, value, began.elapsed());
        }
        *lock(&self.slots[id]) = Some(outcome);
        for &input in &self.plan.nodes[id].inputs {
            let input = input as usize;
            if self.uses[input].fetch_sub(1, Ordering::AcqRel) == 1 && !self.is_output[input] {
                lock(&self.slots[input]).take();
            }
        }
        for &consumer in &self.consumers[id] {
            if self.pending[consumer].fetch_sub(1, Ordering::AcqRel) == 1 {
                self.make_ready(scope, consumer);
            }
        }
    }

    /// Offers a computed value to the cache, with what recomputing it would
    /// cost: its own time plus that of inputs the cache does not hold.
    fn store(&self, id: usize, value: &Value, took: Duration) {
        let (Some(cache), Some(key)) = (self.cache, &self.keys[id]) else {
            return;
        };
        let upstream: u64 = self.plan.nodes[id]
            .inputs
            .iter()
            .map(|&input| self.recompute[input as usize].load(Ordering::Relaxed))
            .sum();
        let cost = Duration::from_nanos(upstream).saturating_add(took);
        let began = Instant::now();
        let stored = cache.put(key, &Entry::Value(value.clone()), cost);
        self.time("cache store".into(), began.elapsed());
        if stored {
            self.stores.fetch_add(1, Ordering::Relaxed);
        } else {
            let nanos = u64::try_from(cost.as_nanos()).unwrap_or(u64::MAX);
            self.recompute[id].store(nanos, Ordering::Relaxed);
        }
    }

    fn arg(&self, input: usize) -> std::result::Result<Arg<'a>, Failure> {
        match self.plan.nodes[input].op {
            Op::SourceX => Ok(Arg::X(self.data.x)),
            Op::SourceY { ref target } => Ok(Arg::Y(self.data.targets[target])),
            _ => match lock(&self.slots[input]).as_ref() {
                Some(Ok(value)) => Ok(Arg::Value(value.clone())),
                Some(Err(failure)) => Err(failure.clone()),
                None => unreachable!("scheduler runs a node only after its inputs"),
            },
        }
    }

    fn compute(&self, id: usize) -> Outcome {
        let node = &self.plan.nodes[id];
        let args = node
            .inputs
            .iter()
            .map(|&input| self.arg(input as usize))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let fail = |error| Failure {
            node: id as u32,
            error,
        };
        if self.cancel.load(Ordering::Relaxed) {
            return Err(fail(RuntimeError::Interrupted));
        }
        self.executed.fetch_add(1, Ordering::Relaxed);
        let began = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| self.apply_op(&node.op, &args)));
        self.time(step_label(&node.op, &args), began.elapsed());
        match result {
            Ok(result) => result.map_err(fail),
            Err(panic) => Err(fail(RuntimeError::numerical(format!(
                "internal error in {}: {}",
                node.op.name(),
                panic_message(&panic)
            )))),
        }
    }

    fn apply_op(&self, op: &Op, args: &[Arg<'_>]) -> Result<Value> {
        Ok(match op {
            Op::SourceX | Op::SourceY { .. } => unreachable!("sources are never scheduled"),
            Op::TakeRows { index } => {
                let rows = &self.indices[index];
                let available = match &args[0] {
                    Arg::X(_) | Arg::Value(Value::Matrix(_)) => args[0].matrix().nrows(),
                    vector => vector.vector().len(),
                };
                if let Some(&bad) = rows.iter().find(|&&r| r >= available) {
                    return Err(RuntimeError::data(format!(
                        "row index {index:?} holds {bad}, but its input has {available} rows"
                    )));
                }
                match &args[0] {
                    Arg::X(_) | Arg::Value(Value::Matrix(_)) => {
                        Value::Matrix(take_rows(args[0].matrix(), rows).into())
                    }
                    vector => {
                        let v = vector.vector();
                        Value::Vector(Arc::new(rows.iter().map(|&r| v[r]).collect()))
                    }
                }
            }
            Op::SelectCols { cols } => Value::Matrix(select_cols(args[0].matrix(), cols)?.into()),
            Op::Hstack => {
                let parts: Vec<MatRef<'_, f64>> = args.iter().map(Arg::matrix).collect();
                Value::Matrix(hstack(&parts)?.into())
            }
            Op::Fit { estimator } => {
                let y = args.get(1).map(Arg::vector);
                Value::Fitted(estimator.fit(args[0].matrix(), y)?.into())
            }
            Op::Apply => match args[0].value() {
                Value::Fitted(fitted) => fitted.apply(args[1].matrix())?,
                _ => unreachable!("plan checked: fitted input"),
            },
            Op::Gram { fit_intercept } => Value::Gram(
                linear::gram(args[0].matrix(), args[1].vector(), *fit_intercept)?.into(),
            ),
            Op::Solve { alpha } => match args[0].value() {
                Value::Gram(gram) => {
                    Value::Fitted(Fitted::Linear(linear::solve(gram, *alpha)?).into())
                }
                _ => unreachable!("plan checked: gram input"),
            },
            Op::Neighbors { k } => Value::Neighbors(
                knn::neighbors(args[0].matrix(), args[1].matrix(), *k as usize)?.into(),
            ),
            Op::KnnPredict {
                k,
                weights,
                classifier,
            } => match args[0].value() {
                Value::Neighbors(found) => Value::Prediction(
                    knn::predict_neighbors(
                        found,
                        args[1].vector(),
                        *k as usize,
                        *weights,
                        *classifier,
                    )?
                    .into(),
                ),
                _ => unreachable!("plan checked: neighbors input"),
            },
            Op::Score { metric, pos_label } => match args[1].value() {
                Value::Prediction(pred) => {
                    Value::Scalar(metrics::score(*metric, args[0].vector(), pred, *pos_label)?)
                }
                _ => unreachable!("plan checked: prediction input"),
            },
        })
    }

    fn output(&self, id: usize) -> Outcome {
        match self.plan.nodes[id].op {
            Op::SourceX => Ok(Value::Matrix(Arc::new(self.data.x.to_owned()))),
            Op::SourceY { ref target } => {
                Ok(Value::Vector(Arc::new(self.data.targets[target].to_vec())))
            }
            _ => lock(&self.slots[id])
                .clone()
                .expect("every scheduled node stores an outcome"),
        }
    }
}

/// What a node's time is filed under in the profile.
fn step_label(op: &Op, args: &[Arg<'_>]) -> String {
    match (op, args.first()) {
        (Op::Fit { estimator }, _) => format!("fit {}", estimator.name()),
        (Op::Apply, Some(Arg::Value(Value::Fitted(fitted)))) => format!("apply {}", fitted.name()),
        _ => op.name().to_string(),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned slot only means another node panicked; its data is intact.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    mod plans {
        use super::*;
        use crate::metrics::Metric;
        use crate::ops::Estimator;
        use crate::plan::{Node, PLAN_VERSION};
        use crate::value::Matrix;
        use faer::Mat;

        fn node(op: Op, inputs: &[u32]) -> Node {
            Node {
                op,
                inputs: inputs.to_vec(),
                key: None,
            }
        }

        fn rows(index: &str) -> Op {
            Op::TakeRows {
                index: index.into(),
            }
        }

        fn ridge(alpha: f64) -> Op {
            Op::Fit {
                estimator: Estimator::Ridge {
                    alpha,
                    fit_intercept: true,
                },
            }
        }

        fn r2() -> Op {
            Op::Score {
                metric: Metric::R2,
                pos_label: 1.0,
            }
        }

        /// One healthy pipeline, one whose PCA asks for too many components,
        /// and the same Ridge solved from a shared Gram and fitted directly.
        fn batch() -> Plan {
            let pca = Op::Fit {
                estimator: Estimator::Pca {
                    n_components: 50,
                    whiten: false,
                },
            };
            let scaler = Op::Fit {
                estimator: Estimator::StandardScaler {
                    with_mean: true,
                    with_std: true,
                },
            };
            let nodes = vec![
                node(Op::SourceX, &[]),
                node(Op::SourceY { target: "y".into() }, &[]),
                node(rows("tr"), &[0]),
                node(rows("tr"), &[1]),
                node(rows("te"), &[0]),
                node(rows("te"), &[1]),
                node(scaler, &[2]),
                node(Op::Apply, &[6, 2]),
                node(Op::Apply, &[6, 4]),
                node(
                    Op::Gram {
                        fit_intercept: true,
                    },
                    &[7, 3],
                ),
                node(Op::Solve { alpha: 1.0 }, &[9]),
                node(Op::Apply, &[10, 8]),
                node(r2(), &[5, 11]),
                node(pca, &[7]),
                node(Op::Apply, &[13, 7]),
                node(Op::Apply, &[13, 8]),
                node(ridge(1.0), &[14, 3]),
                node(Op::Apply, &[16, 15]),
                node(r2(), &[5, 17]),
                node(ridge(1.0), &[7, 3]),
                node(Op::Apply, &[19, 8]),
                node(r2(), &[5, 20]),
            ];
            Plan {
                version: PLAN_VERSION,
                nodes,
                outputs: vec![12, 18, 21, 8],
            }
        }

        fn data() -> (Matrix, Vec<f64>, Vec<i64>, Vec<i64>) {
            let x = Mat::from_fn(40, 3, |i, j| ((i * (j + 2)) % 7) as f64 + 0.1 * (i as f64));
            let y = (0..40)
                .map(|i| x[(i, 0)] - 2.0 * x[(i, 2)] + 0.01 * (i % 3) as f64)
                .collect();
            (x, y, (0..30).collect(), (30..40).collect())
        }

        fn run_batch(cancel: bool) -> Result<Report> {
            run_with(&batch(), cancel, None)
        }

        fn run_with(plan: &Plan, cancel: bool, cache: Option<&NodeCache>) -> Result<Report> {
            let (x, y, tr, te) = data();
            let dataset = Dataset {
                x: x.as_ref(),
                targets: HashMap::from([("y".to_string(), y.as_slice())]),
                indices: HashMap::from([("tr".to_string(), &tr[..]), ("te".to_string(), &te[..])]),
            };
            let pool = pool(Some(2)).unwrap();
            run_cached(plan, &dataset, &pool, &AtomicBool::new(cancel), cache)
        }

        /// The batch with every node keyed (ids are unique within it).
        fn keyed_batch() -> Plan {
            let mut plan = batch();
            for (id, node) in plan.nodes.iter_mut().enumerate() {
                node.key = Some(format!("exec-test-node-{id}"));
            }
            plan
        }

        fn cache_in(dir: &std::path::Path) -> NodeCache {
            NodeCache::open(&crate::cache::CacheConfig {
                dir: dir.to_path_buf(),
                memory_bytes: 1 << 20,
                disk_bytes: 1 << 30,
            })
            .unwrap()
        }

        #[test]
        fn a_repeated_batch_is_answered_by_the_cache() {
            let dir = tempfile::tempdir().unwrap();
            let plan = keyed_batch();
            let cold = run_with(&plan, false, Some(&cache_in(dir.path()))).unwrap();
            assert_eq!(cold.cache_hits, 0);
            // Failures are not stored: the PCA fit (50 components of 3 columns) fails.
            assert_eq!(cold.cache_stores, cold.executed - 1);
            // A fresh cache on the same directory: as another process would.
            let warm = run_with(&plan, false, Some(&cache_in(dir.path()))).unwrap();
            // Only the failing fit runs again; the three other outputs are
            // read, and so are the inputs of the failing chain (nodes 3, 5, 7).
            assert_eq!(warm.executed, 1);
            assert_eq!(warm.cache_hits, 6);
            for (a, b) in cold.outputs.iter().zip(&warm.outputs) {
                match (a, b) {
                    (Ok(Value::Scalar(a)), Ok(Value::Scalar(b))) => assert_eq!(a, b),
                    (Ok(Value::Matrix(a)), Ok(Value::Matrix(b))) => assert_eq!(a, b),
                    (Err(a), Err(b)) => assert_eq!(a, b),
                    other => panic!("outputs differ: {other:?}"),
                }
            }
        }

        #[test]
        fn cached_inputs_are_reused_and_damaged_entries_recomputed() {
            let dir = tempfile::tempdir().unwrap();
            let mut plan = keyed_batch();
            run_with(&plan, false, Some(&cache_in(dir.path()))).unwrap();
            // New keys for the outputs only: their inputs come from the cache.
            for &out in &plan.outputs {
                plan.nodes[out as usize].key = Some(format!("new-output-{out}"));
            }
            let partial = run_with(&plan, false, Some(&cache_in(dir.path()))).unwrap();
            // The three good outputs are recomputed from cached inputs (plus
            // the failing PCA fit); nothing upstream of them runs.
            assert_eq!(partial.executed, 4);
            assert!(partial.cache_hits >= 4);
            for shard in std::fs::read_dir(dir.path().join("entries")).unwrap() {
                for file in std::fs::read_dir(shard.unwrap().path()).unwrap() {
                    std::fs::write(file.unwrap().path(), b"garbage").unwrap();
                }
            }
            let cache = cache_in(dir.path());
            let again = run_with(&plan, false, Some(&cache)).unwrap();
            assert_eq!(again.cache_hits, 0);
            assert!(cache.stats().corrupt > 0);
            let fresh = run_with(&plan, false, None).unwrap();
            assert_eq!(
                format!("{:?}", again.outputs),
                format!("{:?}", fresh.outputs)
            );
        }

        fn scalar(outcome: &Outcome) -> f64 {
            match outcome {
                Ok(Value::Scalar(v)) => *v,
                other => panic!("expected a score, got {other:?}"),
            }
        }

        #[test]
        fn failures_stay_with_their_pipeline() {
            let report = run_batch(false).unwrap();
            let healthy = scalar(&report.outputs[0]);
            assert!(healthy > 0.9, "r2 {healthy}");
            match &report.outputs[1] {
                Err(Failure {
                    node: 13,
                    error: RuntimeError::Parameter(message),
                }) => assert!(message.contains("n_components"), "{message}"),
                other => panic!("expected the PCA failure, got {other:?}"),
            }
            // The two sources and the five nodes downstream of the failing PCA never ran.
            assert_eq!(report.executed, 22 - 2 - 5);
        }

        #[test]
        fn shared_gram_solve_equals_direct_fit() {
            let report = run_batch(false).unwrap();
            let shared = scalar(&report.outputs[0]);
            let direct = scalar(&report.outputs[2]);
            assert!((shared - direct).abs() < 1e-10, "{shared} vs {direct}");
        }

        #[test]
        fn intermediate_outputs_are_returned() {
            let report = run_batch(false).unwrap();
            match &report.outputs[3] {
                Ok(Value::Matrix(m)) => assert_eq!((m.nrows(), m.ncols()), (10, 3)),
                other => panic!("expected the scaled test matrix, got {other:?}"),
            }
        }

        #[test]
        fn cancelling_stops_the_run() {
            assert!(matches!(run_batch(true), Err(RuntimeError::Interrupted)));
        }

        #[test]
        fn missing_names_are_plan_errors() {
            let (x, y, tr, _) = data();
            let dataset = Dataset {
                x: x.as_ref(),
                targets: HashMap::from([("y".to_string(), y.as_slice())]),
                indices: HashMap::from([("tr".to_string(), &tr[..])]),
            };
            let pool = pool(Some(1)).unwrap();
            let err = run(&batch(), &dataset, &pool, &AtomicBool::new(false)).unwrap_err();
            assert!(matches!(err, RuntimeError::Plan(m) if m.contains("\"te\"")));
            let bad_rows = [0i64, 99];
            let dataset = Dataset {
                x: x.as_ref(),
                targets: HashMap::from([("y".to_string(), y.as_slice())]),
                indices: HashMap::from([
                    ("tr".to_string(), &bad_rows[..]),
                    ("te".to_string(), &tr[..]),
                ]),
            };
            let err = run(&batch(), &dataset, &pool, &AtomicBool::new(false)).unwrap_err();
            assert!(matches!(err, RuntimeError::Data(m) if m.contains("99")));
        }
    }
}
