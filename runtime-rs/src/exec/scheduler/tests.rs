//! Scheduler tests on one small batch: failures, sharing, cache reuse, cancel.

use super::*;
use crate::data::Matrix;
use crate::exec::pool;
use crate::metrics::Metric;
use crate::ops::Estimator;
use crate::plan::{Node, PLAN_VERSION};
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

pub(super) fn r2() -> Op {
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
