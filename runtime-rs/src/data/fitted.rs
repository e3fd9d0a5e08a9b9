//! What each fitted step remembers: the state `fit` learns and `apply`
//! reads. Only the data lives here; the algorithms that fill and use it are
//! in `ops` (fields are crate-visible for them), so the cache can store and
//! load a fitted step without depending on how it was computed.

use serde::{Deserialize, Serialize};

use super::matrix::Matrix;
use super::neighbors::{Train, Weights};
use super::tree::{DecisionTree, Forest};

/// What a fitted step remembers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Fitted {
    Imputer(Imputer),
    Scaler(Scaler),
    OneHot(OneHot),
    Ordinal(Ordinal),
    Poly(Poly),
    Pca(Pca),
    Select(Select),
    Linear(Linear),
    Logistic(Logistic),
    Knn(Knn),
    DecisionTree(DecisionTree),
    Forest(Forest),
}

impl Fitted {
    /// Short name of the fitted step, for profiles.
    pub fn name(&self) -> &'static str {
        match self {
            Fitted::Imputer(_) => "imputer",
            Fitted::Scaler(_) => "scaler",
            Fitted::OneHot(_) => "one_hot_encoder",
            Fitted::Ordinal(_) => "ordinal_encoder",
            Fitted::Poly(_) => "polynomial_features",
            Fitted::Pca(_) => "pca",
            Fitted::Select(_) => "select_k_best",
            Fitted::Linear(_) => "linear",
            Fitted::Logistic(_) => "logistic_regression",
            Fitted::Knn(_) => "k_neighbors",
            Fitted::DecisionTree(_) => "decision_tree",
            Fitted::Forest(_) => "random_forest",
        }
    }

    /// Whether applying this step yields a prediction.
    pub fn is_model(&self) -> bool {
        matches!(
            self,
            Fitted::Linear(_)
                | Fitted::Logistic(_)
                | Fitted::Knn(_)
                | Fitted::DecisionTree(_)
                | Fitted::Forest(_)
        )
    }
}

/// The estimator name a fitted step keeps for its error messages; stored by
/// name and mapped back to the one static string it was written from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepName(pub &'static str);

impl StepName {
    const KNOWN: [&'static str; 5] = [
        "LinearRegression",
        "Ridge",
        "StandardScaler",
        "MinMaxScaler",
        "MaxAbsScaler",
    ];
}

impl Serialize for StepName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for StepName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Self::KNOWN
            .into_iter()
            .find(|known| *known == name)
            .map(StepName)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown estimator name {name:?}")))
    }
}

/// A fitted imputer: one fill value per training column.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Imputer {
    /// Per training column, the value that replaces NaN; NaN when the column
    /// is dropped at transform (scikit-learn's `statistics_`).
    pub(crate) statistics: Vec<f64>,
}

/// A fitted scaler: one affine map per column, learnt by one of the `fit_*`
/// functions of `ops::scale`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scaler {
    /// Estimator name, for error messages.
    pub(crate) name: StepName,
    /// Number of columns seen while fitting.
    pub(crate) n_features: usize,
    /// The per-column map, in the arithmetic order scikit-learn applies it.
    pub(crate) op: ScaleOp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum ScaleOp {
    /// `(x - mean) / scale`; either step may be disabled.
    Standard {
        mean: Option<Vec<f64>>,
        scale: Option<Vec<f64>>,
    },
    /// `x * scale + min`, then optionally clipped to `(low, high)`.
    MinMax {
        scale: Vec<f64>,
        min: Vec<f64>,
        clip: Option<(f64, f64)>,
    },
    /// `x / scale`.
    MaxAbs { scale: Vec<f64> },
}

/// A fitted encoder: the categories of every input column.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OneHot {
    /// Per input column, the distinct non-NaN training values, ascending,
    /// with `-0.0` folded into `0.0`.
    pub(crate) categories: Vec<Vec<f64>>,
    /// Per input column, whether NaN was seen (its indicator comes last).
    pub(crate) has_nan: Vec<bool>,
}

/// A fitted ordinal encoder: every input column's categories and codes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ordinal {
    /// Per input column, (category, code) for the non-NaN categories,
    /// ascending by category, with `-0.0` folded into `0.0`.
    pub(crate) categories: Vec<Vec<(f64, f64)>>,
    /// Per input column, whether NaN is a category (it encodes as
    /// `encoded_missing_value`).
    pub(crate) has_nan: Vec<bool>,
    /// Code of values that are not categories; None refuses them.
    pub(crate) unknown_value: Option<f64>,
    /// Code of NaN where NaN is a category.
    pub(crate) encoded_missing_value: f64,
}

/// A fitted expansion: the list of output columns.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Poly {
    /// Number of input columns seen while fitting.
    pub(crate) n_features: usize,
    /// Output columns in scikit-learn's order.
    pub(crate) terms: Vec<Term>,
}

/// One output column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Term {
    /// The constant 1.
    Bias,
    /// Input column `i`.
    Linear(usize),
    /// Input columns `i * j`, `i <= j`.
    Product(usize, usize),
}

/// A fitted PCA projection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pca {
    /// Column means of the training data.
    pub mean: Vec<f64>,
    /// Principal axes as columns (`n_features x n_components`), i.e.
    /// sklearn's `components_.T`.
    #[serde(with = "crate::data::matrix_serde")]
    pub components: Matrix,
    /// sklearn's `explained_variance_` (`ddof = 1`).
    pub explained_variance: Vec<f64>,
    /// Whether `transform` divides by `sqrt(explained_variance)`.
    pub whiten: bool,
}

/// A fitted selector: which training columns are kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Select {
    /// Number of columns seen while fitting.
    pub(crate) n_features: usize,
    /// Raw scores (scikit-learn's `scores_`), NaN included.
    pub(crate) scores: Vec<f64>,
    /// Kept column indices, ascending.
    pub(crate) support: Vec<usize>,
}

/// A fitted `LinearRegression` / `Ridge`: `y = x . coef + intercept`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Linear {
    /// One weight per input column.
    pub coef: Vec<f64>,
    /// Added to every prediction.
    pub intercept: f64,
    /// Estimator name used in error messages.
    pub(crate) name: StepName,
}

/// A fitted logistic regression.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Logistic {
    /// Class codes seen in fit, ascending.
    pub classes: Vec<f64>,
    /// Coefficients, `n_features x m` with `m = 1` for binary problems (the
    /// score of `classes[1]`) and `m = n_classes` otherwise.
    #[serde(with = "crate::data::matrix_serde")]
    pub coef: Matrix,
    /// Intercepts, length `m` (zeros without `fit_intercept`).
    pub intercept: Vec<f64>,
    /// Solver iterations used.
    pub n_iter: usize,
    /// Whether the solver met its stopping criterion before `max_iter`.
    pub converged: bool,
}

/// A fitted k-nearest-neighbours model: the prepared training rows and targets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Knn {
    pub(crate) n_neighbors: usize,
    pub(crate) weights: Weights,
    pub(crate) classifier: bool,
    pub(crate) train: Train,
    /// Training targets (class codes for a classifier).
    pub(crate) y: Vec<f64>,
}
