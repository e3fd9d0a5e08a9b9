//! Generators of well-formed plan descriptions ([`PlanSpec`]), which
//! `builder` turns into plans; and the hostile values they may carry.

use _runtime::data::Weights;
use _runtime::metrics::Metric;
use _runtime::ops::impute::Strategy as ImputeStrategy;
use _runtime::ops::select::ScoreFunc;
use _runtime::ops::Estimator;
use _runtime::plan::Op;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};

use crate::fixtures::{CLEAN, INDICES, TARGETS};

const METRICS: [Metric; 9] = [
    Metric::R2,
    Metric::NegMeanSquaredError,
    Metric::NegRootMeanSquaredError,
    Metric::NegMeanAbsoluteError,
    Metric::Accuracy,
    Metric::BalancedAccuracy,
    Metric::F1,
    Metric::RocAuc,
    Metric::NegLogLoss,
];

const IMPUTE: [ImputeStrategy; 4] = [
    ImputeStrategy::Mean,
    ImputeStrategy::Median,
    ImputeStrategy::MostFrequent,
    ImputeStrategy::Constant,
];

/// An item among `len` chosen by `index`, if there are any.
pub fn pick(index: &Index, len: usize) -> Option<usize> {
    (len > 0).then(|| index.index(len))
}

/// Floats a hostile plan may carry.
pub fn special_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        12 => select(&[
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            -1.0,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            5e-324,
            1e300,
            -1e-300,
        ][..]),
        1 => any::<f64>(),
    ]
}

fn float(lo: f64, hi: f64) -> impl Strategy<Value = f64> {
    prop_oneof![4 => lo..hi, 1 => special_f64()]
}

/// Counts (`k`, `n_neighbors`, `n_components`, ...), huge ones included.
fn count() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => 0u64..6,
        1 => 6u64..20,
        1 => Just(u64::MAX),
        1 => Just(1u64 << 32),
        1 => any::<u64>(),
    ]
}

/// Column positions, mostly in range of the fixtures' three columns.
pub fn column() -> impl Strategy<Value = u32> {
    prop_oneof![8 => 0u32..4, 1 => 4u32..70, 1 => Just(u32::MAX), 1 => any::<u32>()]
}

fn weights() -> impl Strategy<Value = Weights> {
    select(&[Weights::Uniform, Weights::Distance][..])
}

/// Steps whose application yields a matrix.
fn transformer() -> impl Strategy<Value = Estimator> {
    let range = prop_oneof![
        3 => Just((0.0, 1.0)),
        3 => (-5.0..5.0, -5.0..5.0),
        1 => (special_f64(), special_f64()),
    ];
    let degree = prop_oneof![4 => 1u32..=2, 1 => Just(0u32), 1 => Just(3u32), 1 => Just(u32::MAX)];
    let score_func = select(&[ScoreFunc::FRegression, ScoreFunc::FClassif][..]);
    prop_oneof![
        (select(&IMPUTE[..]), float(-5.0, 5.0)).prop_map(|(strategy, fill_value)| {
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
    // Iteration counts stay modest: a genuine `max_iter = u64::MAX` request
    // is the caller's to make, not a hang.
    let max_iter = prop_oneof![0u64..=5, Just(100u64), Just(1000u64)];
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
        (count(), weights(), any::<bool>()).prop_map(|(n_neighbors, weights, classifier)| {
            Estimator::KNeighbors {
                n_neighbors,
                weights,
                classifier,
            }
        }),
    ]
}

fn metric() -> impl Strategy<Value = Metric> {
    select(&METRICS[..])
}

fn knn_predict(k: impl Strategy<Value = u64>) -> impl Strategy<Value = Op> {
    (k, weights(), any::<bool>()).prop_map(|(k, weights, classifier)| Op::KnnPredict {
        k,
        weights,
        classifier,
    })
}

fn op() -> impl Strategy<Value = Op> {
    let estimator = prop_oneof![3 => transformer(), 2 => model()];
    prop_oneof![
        1 => Just(Op::SourceX),
        1 => select(&TARGETS[..]).prop_map(|t| Op::SourceY { target: t.into() }),
        2 => select(&INDICES[..]).prop_map(|i| Op::TakeRows { index: i.into() }),
        1 => vec(column(), 0..5).prop_map(|cols| Op::SelectCols { cols }),
        1 => Just(Op::Hstack),
        6 => estimator.prop_map(|estimator| Op::Fit { estimator }),
        7 => Just(Op::Apply),
        1 => any::<bool>().prop_map(|fit_intercept| Op::Gram { fit_intercept }),
        1 => float(0.0, 5.0).prop_map(|alpha| Op::Solve { alpha }),
        1 => count().prop_map(|k| Op::Neighbors { k }),
        1 => knn_predict(count()),
        4 => (metric(), prop_oneof![3 => select(&[1.0, 0.0, 2.0][..]), 1 => special_f64()])
            .prop_map(|(metric, pos_label)| Op::Score { metric, pos_label }),
    ]
}

/// How a pipeline gets from its (transformed) training rows to a
/// prediction for its test rows.
#[derive(Debug, Clone)]
pub enum Route {
    /// `fit` the model, then `apply` it.
    Fit,
    /// `gram` and `solve` (a linear model), then `apply` it.
    Gram { fit_intercept: bool, alpha: f64 },
    /// `neighbors` of the test rows keeping `k`, then `predict` (a
    /// `knn_predict`, whose `k` may differ) from them and the training target.
    Neighbors { k: u64, predict: Op },
}

fn route() -> impl Strategy<Value = Route> {
    let neighbors = (count(), prop::option::weighted(0.3, count())).prop_flat_map(|(k, other)| {
        knn_predict(Just(other.unwrap_or(k)))
            .prop_map(move |predict| Route::Neighbors { k, predict })
    });
    prop_oneof![
        5 => Just(Route::Fit),
        2 => (any::<bool>(), float(0.0, 5.0))
            .prop_map(|(fit_intercept, alpha)| Route::Gram { fit_intercept, alpha }),
        2 => neighbors,
    ]
}

/// One random step of a generated plan.
#[derive(Debug, Clone)]
pub enum Step {
    /// One operation reading earlier nodes.
    Op {
        op: Op,
        /// Input selectors; small values pick recent nodes.
        picks: [u8; 4],
        /// Whether to prefer inputs that fit together (same rows, width).
        smart: bool,
    },
    /// A whole pipeline on a train/test split: transformers fitted on the
    /// training rows and applied to both splits, then a model predicting the
    /// test rows, then a score.
    Pipeline {
        /// Train rows, test rows and target (from [`INDICES`] and
        /// [`TARGETS`]) instead of the plan's split.
        split: Option<(&'static str, &'static str, &'static str)>,
        transformers: Vec<Estimator>,
        model: Estimator,
        route: Route,
        score: Op,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let pick = || prop_oneof![3 => 0u8..2, 1 => any::<u8>()];
    let one = (
        op(),
        [pick(), pick(), pick(), pick()],
        prop::bool::weighted(0.75),
    )
        .prop_map(|(op, picks, smart)| Step::Op { op, picks, smart });
    let split = prop_oneof![
        2 => Just(None),
        1 => (select(&INDICES[..]), select(&INDICES[..]), select(&TARGETS[..])).prop_map(Some),
    ];
    let pos_label = prop_oneof![3 => Just(1.0), 1 => special_f64()];
    let pipeline = (
        split,
        vec(transformer(), 0..3),
        model(),
        route(),
        (metric(), pos_label).prop_map(|(metric, pos_label)| Op::Score { metric, pos_label }),
    )
        .prop_map(
            |(split, transformers, model, route, score)| Step::Pipeline {
                split,
                transformers,
                model,
                route,
                score,
            },
        );
    prop_oneof![3 => one, 1 => pipeline]
}

/// A well-formed plan: the train/test split of X and a target, an optional
/// imputer, then random steps; see `builder::build`.
#[derive(Debug, Clone)]
pub struct PlanSpec {
    /// Which of the fixtures the plan runs on.
    pub fixture: usize,
    pub target: &'static str,
    pub impute: bool,
    pub steps: Vec<Step>,
    /// Node selectors of outputs besides the scores.
    pub extra_outputs: Vec<u8>,
}

pub fn plan_spec() -> impl Strategy<Value = PlanSpec> {
    (
        // The clean fixture half of the time.
        select(&[0, CLEAN, CLEAN, 2][..]),
        select(&TARGETS[..]),
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
