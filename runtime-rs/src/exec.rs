//! The DAG scheduler: runs every node of a checked [`Plan`] on a rayon pool as
//! soon as its inputs are ready, frees each intermediate when its last
//! consumer is done, and keeps failures local to the nodes that depend on the
//! failing one, so one bad pipeline never takes down the batch.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use faer::{Mat, MatRef};
use rayon::prelude::*;
use rayon::{Scope, ThreadPool};

use crate::error::{Result, RuntimeError};
use crate::metrics;
use crate::ops::Fitted;
use crate::ops::{knn, linear};
use crate::plan::{Op, Plan};
use crate::value::{check_width, Matrix, Value};

/// Matrices larger than this many cells are gathered column-parallel.
const PARALLEL_CELLS: usize = 1 << 16;

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
}

/// A rayon pool with `threads` workers (all cores when `None`), built once per
/// size and reused by later runs.
pub fn pool(threads: Option<usize>) -> Result<Arc<ThreadPool>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<ThreadPool>>>> = OnceLock::new();
    let size = match threads {
        Some(0) => return Err(RuntimeError::parameter("threads must be at least 1")),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(pool) = pools.get(&size) {
        return Ok(pool.clone());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(size)
        .thread_name(|i| format!("academy-ml-{i}"))
        .build()
        .map_err(|e| RuntimeError::numerical(format!("cannot start worker threads: {e}")))?;
    let pool = Arc::new(pool);
    pools.insert(size, pool.clone());
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
    plan.check()?;
    let indices = checked_indices(plan, data)?;
    let state = State::new(plan, data, indices, cancel);
    pool.install(|| {
        rayon::scope(|scope| {
            for id in 0..plan.nodes.len() {
                if !state.is_source(id) && state.pending[id].load(Ordering::Relaxed) == 0 {
                    let state = &state;
                    scope.spawn(move |scope| state.run_node(scope, id));
                }
            }
        })
    });
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
    slots: Vec<Mutex<Option<Outcome>>>,
    /// Inputs (with multiplicity, sources excluded) not finished yet.
    pending: Vec<AtomicUsize>,
    /// Consumers (with multiplicity) that have not run yet.
    uses: Vec<AtomicUsize>,
    consumers: Vec<Vec<usize>>,
    is_output: Vec<bool>,
    executed: AtomicUsize,
}

impl<'p, 'a> State<'p, 'a> {
    fn new(
        plan: &'p Plan,
        data: &'p Dataset<'a>,
        indices: HashMap<String, Vec<usize>>,
        cancel: &'p AtomicBool,
    ) -> Self {
        let n = plan.nodes.len();
        let is_source = |id: usize| matches!(plan.nodes[id].op, Op::SourceX | Op::SourceY { .. });
        let mut consumers = vec![Vec::new(); n];
        let mut pending = vec![0usize; n];
        let mut uses = vec![0usize; n];
        for (id, node) in plan.nodes.iter().enumerate() {
            for &input in &node.inputs {
                let input = input as usize;
                uses[input] += 1;
                if !is_source(input) {
                    consumers[input].push(id);
                    pending[id] += 1;
                }
            }
        }
        let mut is_output = vec![false; n];
        for &out in &plan.outputs {
            is_output[out as usize] = true;
        }
        State {
            plan,
            data,
            indices,
            cancel,
            slots: (0..n).map(|_| Mutex::new(None)).collect(),
            pending: pending.into_iter().map(AtomicUsize::new).collect(),
            uses: uses.into_iter().map(AtomicUsize::new).collect(),
            consumers,
            is_output,
            executed: AtomicUsize::new(0),
        }
    }

    fn is_source(&self, id: usize) -> bool {
        matches!(self.plan.nodes[id].op, Op::SourceX | Op::SourceY { .. })
    }

    fn run_node<'s>(&'s self, scope: &Scope<'s>, id: usize) {
        let outcome = self.compute(id);
        *lock(&self.slots[id]) = Some(outcome);
        for &input in &self.plan.nodes[id].inputs {
            let input = input as usize;
            if self.uses[input].fetch_sub(1, Ordering::AcqRel) == 1 && !self.is_output[input] {
                lock(&self.slots[input]).take();
            }
        }
        for &consumer in &self.consumers[id] {
            if self.pending[consumer].fetch_sub(1, Ordering::AcqRel) == 1 {
                scope.spawn(move |scope| self.run_node(scope, consumer));
            }
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
        match catch_unwind(AssertUnwindSafe(|| self.apply_op(&node.op, &args))) {
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

/// Copies `rows` of `x` (in that order) into a new matrix.
pub fn take_rows(x: MatRef<'_, f64>, rows: &[usize]) -> Matrix {
    let mut out = Mat::<f64>::zeros(rows.len(), x.ncols());
    let fill = |(j, col): (usize, &mut [f64])| {
        let src = x.col(j);
        for (dst, &r) in col.iter_mut().zip(rows) {
            *dst = src[r];
        }
    };
    if rows.len() * x.ncols() >= PARALLEL_CELLS {
        columns_mut(&mut out)
            .into_par_iter()
            .enumerate()
            .for_each(fill);
    } else {
        columns_mut(&mut out).into_iter().enumerate().for_each(fill);
    }
    out
}

/// Copies the listed columns of `x` into a new matrix.
pub fn select_cols(x: MatRef<'_, f64>, cols: &[u32]) -> Result<Matrix> {
    if let Some(&bad) = cols.iter().find(|&&c| c as usize >= x.ncols()) {
        return Err(RuntimeError::data(format!(
            "column {bad} is out of range for a matrix with {} columns",
            x.ncols()
        )));
    }
    let parts: Vec<MatRef<'_, f64>> = cols.iter().map(|&c| x.subcols(c as usize, 1)).collect();
    hstack(&parts)
}

/// Places matrices with equal row counts side by side.
pub fn hstack(parts: &[MatRef<'_, f64>]) -> Result<Matrix> {
    let rows = parts.first().map_or(0, |p| p.nrows());
    if let Some(bad) = parts.iter().find(|p| p.nrows() != rows) {
        return Err(RuntimeError::data(format!(
            "cannot place side by side matrices with {rows} and {} rows",
            bad.nrows()
        )));
    }
    let width: usize = parts.iter().map(|p| p.ncols()).sum();
    check_width(width)?;
    let sources: Vec<(usize, usize)> = parts
        .iter()
        .enumerate()
        .flat_map(|(p, part)| (0..part.ncols()).map(move |j| (p, j)))
        .collect();
    let mut out = Mat::<f64>::zeros(rows, sources.len());
    let fill = |(col, &(p, j)): (&mut [f64], &(usize, usize))| {
        for (dst, src) in col.iter_mut().zip(parts[p].col(j).iter()) {
            *dst = *src;
        }
    };
    if rows * sources.len() >= PARALLEL_CELLS {
        columns_mut(&mut out)
            .into_par_iter()
            .zip(sources.par_iter())
            .for_each(fill);
    } else {
        columns_mut(&mut out)
            .into_iter()
            .zip(sources.iter())
            .for_each(fill);
    }
    Ok(out)
}

/// The columns of an owned matrix as disjoint mutable slices.
fn columns_mut(m: &mut Matrix) -> Vec<&mut [f64]> {
    let rows = m.nrows();
    let cols = m.ncols();
    if rows == 0 {
        return (0..cols).map(|_| <&mut [f64]>::default()).collect();
    }
    let stride = m.col_stride() as usize;
    let ptr = m.as_ptr_mut();
    // SAFETY: an owned faer matrix stores column j at ptr + j * col_stride with
    // unit row stride and col_stride >= rows, so these slices never overlap.
    (0..cols)
        .map(|j| unsafe { std::slice::from_raw_parts_mut(ptr.add(j * stride), rows) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathers_rows_and_columns() {
        let x = Mat::from_fn(4, 3, |i, j| (10 * i + j) as f64);
        let rows = take_rows(x.as_ref(), &[3, 0]);
        assert_eq!(rows[(0, 2)], 32.0);
        assert_eq!(rows[(1, 1)], 1.0);
        let cols = select_cols(x.as_ref(), &[2, 0]).unwrap();
        assert_eq!(cols[(3, 0)], 32.0);
        assert_eq!(cols[(3, 1)], 30.0);
        assert!(select_cols(x.as_ref(), &[3]).is_err());
        let both = hstack(&[x.as_ref(), cols.as_ref()]).unwrap();
        assert_eq!(both.ncols(), 5);
        assert_eq!(both[(2, 4)], 20.0);
        let short = Mat::<f64>::zeros(2, 1);
        assert!(hstack(&[x.as_ref(), short.as_ref()]).is_err());
    }

    #[test]
    fn empty_gathers_do_not_panic() {
        let x = Mat::<f64>::zeros(0, 3);
        assert_eq!(take_rows(x.as_ref(), &[]).ncols(), 3);
        assert_eq!(hstack(&[x.as_ref()]).unwrap().nrows(), 0);
    }

    mod plans {
        use super::*;
        use crate::metrics::Metric;
        use crate::ops::Estimator;
        use crate::plan::{Node, PLAN_VERSION};

        fn node(op: Op, inputs: &[u32]) -> Node {
            Node {
                op,
                inputs: inputs.to_vec(),
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
            let (x, y, tr, te) = data();
            let dataset = Dataset {
                x: x.as_ref(),
                targets: HashMap::from([("y".to_string(), y.as_slice())]),
                indices: HashMap::from([("tr".to_string(), &tr[..]), ("te".to_string(), &te[..])]),
            };
            let pool = pool(Some(2)).unwrap();
            run(&batch(), &dataset, &pool, &AtomicBool::new(cancel))
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
