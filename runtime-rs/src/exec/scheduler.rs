//! The DAG scheduler: runs every node of a checked [`Plan`] on a rayon pool as
//! soon as its inputs are ready, frees each intermediate when its last
//! consumer is done, and keeps failures local to the nodes that depend on the
//! failing one, so one bad pipeline never takes down the batch. What a node
//! computes is [`dispatch`](super::dispatch)'s business, not the scheduler's.
//!
//! Ready nodes run in the order of the first plan output that needs them
//! (then by id), not in the order they became ready: the compiler lists
//! outputs fold by fold, so the run finishes a fold's work before starting
//! the next fold's and each fold's split matrices are freed early.
//!
//! The invariant everything rests on: each computed node is queued exactly
//! once, either as a root (no computed inputs, decided before any node runs)
//! or by the one consumer-side decrement that takes its pending count to zero.
//! Queued twice, a node would release its inputs twice, and a sibling
//! consumer would find an input already freed.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faer::MatRef;
use rayon::{Scope, ThreadPool};

use super::dispatch::{self, Arg};
use super::reuse;
use crate::cache::{Entry, Key, NodeCache};
use crate::data::Value;
use crate::error::{catch_panic, Result, RuntimeError};
use crate::plan::{Op, Plan};

#[cfg(test)]
mod stress_tests;
#[cfg(test)]
mod tests;

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
///
/// A panic inside a node fails that node (and what depends on it) with
/// [`RuntimeError::Internal`]; a panic anywhere else fails the run with it.
pub fn run_cached(
    plan: &Plan,
    data: &Dataset<'_>,
    pool: &ThreadPool,
    cancel: &AtomicBool,
    cache: Option<&NodeCache>,
) -> Result<Report> {
    run_hooked(plan, data, pool, cancel, cache, Hooks::default())
}

/// Points where tests pause the scheduler to widen its race windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Point {
    /// Before queueing root `id` (other roots may already be running).
    Queue,
    /// Before node `id` computes.
    Run,
    /// After node `id` stored its outcome, before it releases its inputs.
    Release,
    /// Before node `id` tells its consumers it is done.
    Notify,
}

/// Test-only pauses; free (a zero-sized no-op) outside `cargo test`.
#[derive(Clone, Copy, Default)]
struct Hooks<'h> {
    #[cfg(test)]
    pause: Option<&'h (dyn Fn(Point, usize) + Sync)>,
    #[cfg(not(test))]
    _pause: std::marker::PhantomData<&'h ()>,
}

impl Hooks<'_> {
    #[inline(always)]
    fn at(&self, point: Point, id: usize) {
        #[cfg(test)]
        if let Some(pause) = self.pause {
            pause(point, id);
        }
        #[cfg(not(test))]
        let _ = (point, id);
    }
}

fn run_hooked(
    plan: &Plan,
    data: &Dataset<'_>,
    pool: &ThreadPool,
    cancel: &AtomicBool,
    cache: Option<&NodeCache>,
    hooks: Hooks<'_>,
) -> Result<Report> {
    catch_panic("the scheduler", || {
        let kinds = plan.check()?;
        let indices = checked_indices(plan, data)?;
        let began = Instant::now();
        let (start, keys) = reuse::plan_reuse(plan, &kinds, cache, cancel)?;
        let state = State::new(plan, data, indices, cancel, start, keys, cache, hooks);
        if cache.is_some() {
            state.time("cache lookup".into(), began.elapsed());
        }
        pool.install(|| {
            rayon::scope(|scope| {
                for &id in &state.roots {
                    state.hooks.at(Point::Queue, id);
                    state.make_ready(scope, id);
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
    })?
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

struct State<'p, 'a> {
    plan: &'p Plan,
    data: &'p Dataset<'a>,
    indices: HashMap<String, Vec<usize>>,
    cancel: &'p AtomicBool,
    cache: Option<&'p NodeCache>,
    hooks: Hooks<'p>,
    keys: Vec<Option<Key>>,
    slots: Vec<Mutex<Option<Outcome>>>,
    /// Computed nodes without computed inputs, fixed before anything runs.
    roots: Vec<usize>,
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
    #[allow(clippy::too_many_arguments)]
    fn new(
        plan: &'p Plan,
        data: &'p Dataset<'a>,
        indices: HashMap<String, Vec<usize>>,
        cancel: &'p AtomicBool,
        start: Vec<reuse::Start>,
        keys: Vec<Option<Key>>,
        cache: Option<&'p NodeCache>,
        hooks: Hooks<'p>,
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
        let roots = (0..n)
            .filter(|&id| computed[id] && pending[id] == 0)
            .collect();
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
            hooks,
            keys,
            slots,
            roots,
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

    /// Computes a node, then releases its inputs and queues the consumers it
    /// was the last input of. The bookkeeping runs whatever the node did, a
    /// panic included, so no consumer waits forever.
    fn run_node<'s>(&'s self, scope: &Scope<'s>, id: usize) {
        let node = &self.plan.nodes[id];
        let context = format!("node {id} ({})", node.op.name());
        let outcome = catch_panic(&context, || {
            self.hooks.at(Point::Run, id);
            let began = Instant::now();
            let outcome = self.compute(id);
            if let Ok(value) = &outcome {
                self.store(id, value, began.elapsed());
            }
            outcome
        })
        .unwrap_or_else(|error| {
            Err(Failure {
                node: id as u32,
                error,
            })
        });
        *lock(&self.slots[id]) = Some(outcome);
        self.hooks.at(Point::Release, id);
        for &input in &node.inputs {
            let input = input as usize;
            if self.uses[input].fetch_sub(1, Ordering::AcqRel) == 1 && !self.is_output[input] {
                lock(&self.slots[input]).take();
            }
        }
        self.hooks.at(Point::Notify, id);
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
        let stored = cache.put_behind(key, &Entry::Value(value.clone()), cost);
        self.time("cache store".into(), began.elapsed());
        if stored {
            self.stores.fetch_add(1, Ordering::Relaxed);
        } else {
            let nanos = u64::try_from(cost.as_nanos()).unwrap_or(u64::MAX);
            self.recompute[id].store(nanos, Ordering::Relaxed);
        }
    }

    /// Input `input` of node `id`: the dataset, or the value (or failure) the
    /// input node left in its slot.
    fn arg(&self, id: usize, input: usize) -> std::result::Result<Arg<'a>, Failure> {
        let missing = |what: String| Failure {
            node: id as u32,
            error: RuntimeError::internal(what),
        };
        match &self.plan.nodes[input].op {
            Op::SourceX => Ok(Arg::X(self.data.x)),
            Op::SourceY { target } => match self.data.targets.get(target) {
                Some(y) => Ok(Arg::Y(y)),
                None => Err(missing(format!("target {target:?} was not resolved"))),
            },
            _ => match lock(&self.slots[input]).as_ref() {
                Some(Ok(value)) => Ok(Arg::Value(value.clone())),
                Some(Err(failure)) => Err(failure.clone()),
                None => Err(missing(format!(
                    "node {id} was scheduled while its input {input} held no value"
                ))),
            },
        }
    }

    fn compute(&self, id: usize) -> Outcome {
        let node = &self.plan.nodes[id];
        let args = node
            .inputs
            .iter()
            .map(|&input| self.arg(id, input as usize))
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
        let result = dispatch::apply(&node.op, &args, &self.indices);
        self.time(dispatch::step_label(&node.op, &args), began.elapsed());
        result.map_err(fail)
    }

    fn output(&self, id: usize) -> Outcome {
        let missing = |what: String| Failure {
            node: id as u32,
            error: RuntimeError::internal(what),
        };
        match &self.plan.nodes[id].op {
            Op::SourceX => Ok(Value::Matrix(Arc::new(self.data.x.to_owned()))),
            Op::SourceY { target } => match self.data.targets.get(target) {
                Some(y) => Ok(Value::Vector(Arc::new(y.to_vec()))),
                None => Err(missing(format!("target {target:?} was not resolved"))),
            },
            _ => lock(&self.slots[id])
                .clone()
                .unwrap_or_else(|| Err(missing(format!("output node {id} never ran")))),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock only means a node panicked elsewhere; its data is intact.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
