//! Scheduler stress: thousands of small random plans with shared inputs,
//! cache hits (one memory cache shared by concurrent runs), failing and
//! panicking nodes, run concurrently on pools of random sizes while a hook
//! injects yields and sleeps at every point where the scheduler hands work
//! between threads. Every output must equal a sequential oracle's, and no
//! node may run twice.

use std::sync::atomic::AtomicU64;
use std::sync::Once;

use faer::Mat;

use super::tests::r2;
use super::*;
use crate::cache::CacheConfig;
use crate::data::Weights;
use crate::exec::dispatch::{apply, Arg};
use crate::ops::Estimator;
use crate::plan::{Node, PLAN_VERSION};

const PLANS: usize = 3000;
const SUBMITTERS: usize = 4;
const POOL_SIZES: [usize; 4] = [1, 2, 3, 5];
/// Ridge fits with this alpha panic when they run (see [`quiet_injected_panics`]).
const PANICKING_ALPHA: f64 = 7.0;
const INJECTED: &str = "injected panic";

/// splitmix64: deterministic and good enough to pick shapes and delays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Builds a plan the way the compiler does: each computation once per plan,
/// keyed (sometimes) by a description of what it computes, so equal keys
/// across plans hold equal values.
struct Builder {
    rng: Rng,
    nodes: Vec<Node>,
    /// What each node computes, by id.
    whats: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Builder {
    fn add(&mut self, op: Op, inputs: &[u32], what: String, cacheable: bool) -> u32 {
        if let Some(&id) = self.ids.get(&what) {
            return id;
        }
        let keyed = cacheable && self.rng.below(10) < 7;
        self.nodes.push(Node {
            op,
            inputs: inputs.to_vec(),
            key: keyed.then(|| what.clone()),
        });
        let id = self.nodes.len() as u32 - 1;
        self.ids.insert(what.clone(), id);
        self.whats.push(what);
        id
    }

    fn fit(&mut self, estimator: Estimator, inputs: &[u32], name: &str, ok: bool) -> u32 {
        let what = format!("{name}({})", self.describe(inputs));
        self.add(Op::Fit { estimator }, inputs, what, ok)
    }

    fn op(&mut self, op: Op, inputs: &[u32], name: &str, ok: bool) -> u32 {
        let what = format!("{name}({})", self.describe(inputs));
        self.add(op, inputs, what, ok)
    }

    fn describe(&self, inputs: &[u32]) -> String {
        let parts: Vec<&str> = inputs.iter().map(|&i| &*self.whats[i as usize]).collect();
        parts.join(",")
    }
}

fn ridge(alpha: f64) -> Estimator {
    Estimator::Ridge {
        alpha,
        fit_intercept: true,
    }
}

/// A plan of 1-2 folds and 1-4 pipelines over shared fold splits and
/// prefixes: Ridge, a Gram solve, KNN, a failing PCA, or a panicking fit.
fn random_plan(seed: u64) -> Plan {
    let mut b = Builder {
        rng: Rng(seed),
        nodes: Vec::new(),
        whats: Vec::new(),
        ids: HashMap::new(),
    };
    let x = b.add(Op::SourceX, &[], "X".into(), false);
    let y = b.add(Op::SourceY { target: "y".into() }, &[], "y".into(), false);
    let folds = 1 + b.rng.below(2) as usize;
    let pipelines: Vec<(u64, u64, u64)> = (0..1 + b.rng.below(4))
        .map(|_| (b.rng.below(3), b.rng.below(5), b.rng.below(3)))
        .collect();
    let mut outputs = Vec::new();
    for fold in 0..folds {
        let take = |index: &str| Op::TakeRows {
            index: format!("{index}{fold}"),
        };
        let xtr = b.op(take("tr"), &[x], &format!("tr{fold}"), true);
        let xte = b.op(take("te"), &[x], &format!("te{fold}"), true);
        let ytr = b.op(take("tr"), &[y], &format!("tr{fold}"), true);
        let yte = b.op(take("te"), &[y], &format!("te{fold}"), true);
        for &(prefix, model, param) in &pipelines {
            let (ptr, pte) = match prefix {
                0 => (xtr, xte),
                1 => {
                    let scaler = Estimator::StandardScaler {
                        with_mean: true,
                        with_std: true,
                    };
                    let fitted = b.fit(scaler, &[xtr], "scaler", true);
                    let ptr = b.op(Op::Apply, &[fitted, xtr], "apply", true);
                    (ptr, b.op(Op::Apply, &[fitted, xte], "apply", true))
                }
                // The same input twice: counts must hold multiplicity.
                _ => (
                    b.op(Op::Hstack, &[xtr, xtr], "hstack", true),
                    b.op(Op::Hstack, &[xte, xte], "hstack", true),
                ),
            };
            let alpha = [0.1, 1.0, 10.0][param as usize];
            let pred = match model {
                0 => {
                    let fitted = b.fit(ridge(alpha), &[ptr, ytr], &format!("ridge{alpha}"), true);
                    b.op(Op::Apply, &[fitted, pte], "apply", true)
                }
                1 => {
                    let gram = Op::Gram {
                        fit_intercept: true,
                    };
                    let gram = b.op(gram, &[ptr, ytr], "gram", true);
                    let solved = b.op(Op::Solve { alpha }, &[gram], &format!("solve{alpha}"), true);
                    b.op(Op::Apply, &[solved, pte], "apply", true)
                }
                2 => {
                    let found = b.op(Op::Neighbors { k: 5 }, &[ptr, pte], "neighbors5", true);
                    let k = 1 + param * 2;
                    let knn = Op::KnnPredict {
                        k,
                        weights: Weights::Uniform,
                        classifier: false,
                    };
                    b.op(knn, &[found, ytr], &format!("knn{k}"), true)
                }
                3 => {
                    let pca = Estimator::Pca {
                        n_components: 50,
                        whiten: false,
                    };
                    let fitted = b.fit(pca, &[ptr], "pca50", true);
                    let rtr = b.op(Op::Apply, &[fitted, ptr], "apply", true);
                    let rte = b.op(Op::Apply, &[fitted, pte], "apply", true);
                    let fitted = b.fit(ridge(alpha), &[rtr, ytr], &format!("ridge{alpha}"), true);
                    b.op(Op::Apply, &[fitted, rte], "apply", true)
                }
                // Never keyed, nor is anything after it: the panic must reach
                // the output, not be masked by a cached value.
                _ => {
                    let fitted = b.fit(ridge(PANICKING_ALPHA), &[ptr, ytr], "boom", false);
                    b.op(Op::Apply, &[fitted, pte], "apply", false)
                }
            };
            let panics = model == 4;
            outputs.push(b.op(r2(), &[yte, pred], "r2", !panics));
            if b.rng.below(5) == 0 {
                outputs.push(pte);
            }
        }
        if b.rng.below(20) == 0 {
            outputs.push(y);
        }
    }
    Plan {
        version: PLAN_VERSION,
        nodes: b.nodes,
        outputs,
    }
}

fn panics(node: &Node) -> bool {
    matches!(node.op, Op::Fit { estimator: Estimator::Ridge { alpha, .. } } if alpha == PANICKING_ALPHA)
}

/// The outputs computed node by node in id order, without the scheduler.
fn oracle(plan: &Plan, data: &Dataset<'_>, indices: &HashMap<String, Vec<usize>>) -> Vec<Outcome> {
    let mut done: Vec<Outcome> = Vec::with_capacity(plan.nodes.len());
    for (id, node) in plan.nodes.iter().enumerate() {
        let outcome = match &node.op {
            Op::SourceX => Ok(Value::Matrix(Arc::new(data.x.to_owned()))),
            Op::SourceY { target } => Ok(Value::Vector(Arc::new(data.targets[target].to_vec()))),
            op => node
                .inputs
                .iter()
                .map(|&i| done[i as usize].clone().map(Arg::Value))
                .collect::<std::result::Result<Vec<_>, _>>()
                .and_then(|args| {
                    let result = if panics(node) {
                        let context = format!("node {id} ({})", op.name());
                        Err(RuntimeError::from_panic(&context, &INJECTED))
                    } else {
                        apply(op, &args, indices)
                    };
                    result.map_err(|error| Failure {
                        node: id as u32,
                        error,
                    })
                }),
        };
        done.push(outcome);
    }
    plan.outputs
        .iter()
        .map(|&o| done[o as usize].clone())
        .collect()
}

fn same(a: &Outcome, b: &Outcome) -> bool {
    match (a, b) {
        (Ok(Value::Scalar(a)), Ok(Value::Scalar(b))) => a.to_bits() == b.to_bits(),
        (Ok(Value::Matrix(a)), Ok(Value::Matrix(b))) => a == b,
        (Ok(Value::Vector(a)), Ok(Value::Vector(b))) => a == b,
        (Err(a), Err(b)) => a == b,
        _ => false,
    }
}

/// Keeps the injected panics off stderr (thousands of them); any other
/// panic still reports through the previous hook.
fn quiet_injected_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&INJECTED) {
                previous(info);
            }
        }));
    });
}

/// Yields often and sleeps sometimes, at a point chosen by `noise`.
fn jitter(noise: u64) {
    match noise % 100 {
        0..=2 => std::thread::sleep(Duration::from_micros(noise / 100 % 300)),
        3..=30 => std::thread::yield_now(),
        _ => {}
    }
}

#[test]
fn concurrent_random_plans_match_a_sequential_oracle() {
    quiet_injected_panics();
    let x = Mat::from_fn(24, 3, |i, j| ((i * (j + 3)) % 11) as f64 + 0.25 * i as f64);
    let y: Vec<f64> = (0..24)
        .map(|i| x[(i, 0)] - 0.5 * x[(i, 2)] + (i % 4) as f64)
        .collect();
    let folds: [(Vec<i64>, Vec<i64>); 2] = [
        ((0..16).collect(), (16..24).collect()),
        ((8..24).collect(), (0..8).collect()),
    ];
    let mut indices = HashMap::new();
    for (f, (tr, te)) in folds.iter().enumerate() {
        indices.insert(format!("tr{f}"), &tr[..]);
        indices.insert(format!("te{f}"), &te[..]);
    }
    let data = Dataset {
        x: x.as_ref(),
        targets: HashMap::from([("y".to_string(), y.as_slice())]),
        indices,
    };
    let pools: Vec<ThreadPool> = POOL_SIZES
        .iter()
        .map(|&n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap()
        })
        .collect();
    // Small enough that entries are evicted while other runs read them.
    let cache = NodeCache::open(&CacheConfig {
        dir: std::env::temp_dir().join("unused-memory-only-cache"),
        memory_bytes: 64 << 10,
        disk_bytes: 0,
    })
    .unwrap();
    let next = AtomicUsize::new(0);
    let hits = AtomicUsize::new(0);
    let failed_outputs = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..SUBMITTERS {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= PLANS {
                    break;
                }
                let plan = random_plan(seed as u64);
                let expected = oracle(&plan, &data, &checked_indices(&plan, &data).unwrap());
                let mut rng = Rng(!(seed as u64));
                let pool = &pools[rng.below(pools.len() as u64) as usize];
                let cache = (rng.below(4) != 0).then_some(&cache);
                let runs: Vec<AtomicUsize> =
                    (0..plan.nodes.len()).map(|_| AtomicUsize::new(0)).collect();
                let tick = AtomicU64::new(rng.next());
                let pause = |point: Point, id: usize| {
                    if point == Point::Run {
                        runs[id].fetch_add(1, Ordering::Relaxed);
                    }
                    jitter(mix(tick.fetch_add(1, Ordering::Relaxed) ^ id as u64));
                    if point == Point::Run && panics(&plan.nodes[id]) {
                        std::panic::panic_any(INJECTED);
                    }
                };
                let hooks = Hooks {
                    pause: Some(&pause),
                };
                let cancel = AtomicBool::new(false);
                let report = run_hooked(&plan, &data, pool, &cancel, cache, hooks)
                    .unwrap_or_else(|e| panic!("plan {seed}: {e}"));
                for (i, (got, want)) in report.outputs.iter().zip(&expected).enumerate() {
                    assert!(
                        same(got, want),
                        "plan {seed}, output {i}: got {got:?}, expected {want:?}"
                    );
                }
                for (id, count) in runs.iter().enumerate() {
                    let count = count.load(Ordering::Relaxed);
                    assert!(count <= 1, "plan {seed}: node {id} ran {count} times");
                }
                hits.fetch_add(report.cache_hits, Ordering::Relaxed);
                let failed = expected.iter().filter(|o| o.is_err()).count();
                failed_outputs.fetch_add(failed, Ordering::Relaxed);
            });
        }
    });
    // The mix the test is about did happen.
    assert!(hits.load(Ordering::Relaxed) > PLANS, "too few cache hits");
    assert!(
        failed_outputs.load(Ordering::Relaxed) > PLANS / 10,
        "too few failures"
    );
}
