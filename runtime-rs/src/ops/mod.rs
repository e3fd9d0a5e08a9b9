//! Native steps: what each estimator learns (`fit`) and how it is applied.

pub mod forest;
pub mod impute;
pub mod knn;
mod lbfgsb;
pub mod linear;
pub mod logistic;
pub mod onehot;
pub mod ordinal;
pub mod pca;
pub mod poly;
pub mod scale;
pub mod select;
pub mod tree;

use faer::MatRef;
use serde::{Deserialize, Serialize};

use crate::data::{Fitted, Matrix, Prediction, Value, Weights};
use crate::error::{Result, RuntimeError};

/// A native step and its parameters, as named in the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case", deny_unknown_fields)]
pub enum Estimator {
    SimpleImputer {
        strategy: impute::Strategy,
        fill_value: f64,
    },
    StandardScaler {
        with_mean: bool,
        with_std: bool,
    },
    MinMaxScaler {
        low: f64,
        high: f64,
        clip: bool,
    },
    MaxAbsScaler,
    OneHotEncoder,
    OrdinalEncoder(Box<ordinal::Params>),
    PolynomialFeatures {
        degree: u32,
        interaction_only: bool,
        include_bias: bool,
    },
    Pca {
        n_components: u64,
        whiten: bool,
    },
    SelectKBest {
        score_func: select::ScoreFunc,
        k: u64,
    },
    LinearRegression {
        fit_intercept: bool,
    },
    Ridge {
        alpha: f64,
        fit_intercept: bool,
    },
    LogisticRegression {
        c: f64,
        fit_intercept: bool,
        max_iter: u64,
        tol: f64,
    },
    KNeighbors {
        n_neighbors: u64,
        weights: Weights,
        classifier: bool,
    },
    DecisionTree(Box<tree::Params>),
    RandomForest(Box<forest::Params>),
}

/// A count from the plan as a `usize`, saturating where `usize` is narrower:
/// every count is compared with a data size or bounds a loop, so a count past
/// `usize::MAX` behaves exactly as `usize::MAX` does.
pub fn count(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

impl Estimator {
    /// Whether `fit` needs the target vector.
    pub fn needs_target(&self) -> bool {
        matches!(
            self,
            Estimator::SelectKBest { .. }
                | Estimator::LinearRegression { .. }
                | Estimator::Ridge { .. }
                | Estimator::LogisticRegression { .. }
                | Estimator::KNeighbors { .. }
                | Estimator::DecisionTree(_)
                | Estimator::RandomForest(_)
        )
    }

    /// The estimator's name as the plan spells it.
    pub fn name(&self) -> &'static str {
        match self {
            Estimator::SimpleImputer { .. } => "simple_imputer",
            Estimator::StandardScaler { .. } => "standard_scaler",
            Estimator::MinMaxScaler { .. } => "min_max_scaler",
            Estimator::MaxAbsScaler => "max_abs_scaler",
            Estimator::OneHotEncoder => "one_hot_encoder",
            Estimator::OrdinalEncoder(_) => "ordinal_encoder",
            Estimator::PolynomialFeatures { .. } => "polynomial_features",
            Estimator::Pca { .. } => "pca",
            Estimator::SelectKBest { .. } => "select_k_best",
            Estimator::LinearRegression { .. } => "linear_regression",
            Estimator::Ridge { .. } => "ridge",
            Estimator::LogisticRegression { .. } => "logistic_regression",
            Estimator::KNeighbors { .. } => "k_neighbors",
            Estimator::DecisionTree(_) => "decision_tree",
            Estimator::RandomForest(_) => "random_forest",
        }
    }

    /// Whether applying the fitted step yields a prediction (a model) rather
    /// than a matrix (a transformer).
    pub fn is_model(&self) -> bool {
        matches!(
            self,
            Estimator::LinearRegression { .. }
                | Estimator::Ridge { .. }
                | Estimator::LogisticRegression { .. }
                | Estimator::KNeighbors { .. }
                | Estimator::DecisionTree(_)
                | Estimator::RandomForest(_)
        )
    }

    /// Learns the step's state from training rows.
    pub fn fit(&self, x: MatRef<'_, f64>, y: Option<&[f64]>) -> Result<Fitted> {
        let target = || y.ok_or_else(|| RuntimeError::Plan("this step needs a target".into()));
        Ok(match self {
            Estimator::SimpleImputer {
                strategy,
                fill_value,
            } => Fitted::Imputer(impute::fit(x, *strategy, *fill_value)?),
            Estimator::StandardScaler {
                with_mean,
                with_std,
            } => Fitted::Scaler(scale::fit_standard(x, *with_mean, *with_std)?),
            Estimator::MinMaxScaler { low, high, clip } => {
                Fitted::Scaler(scale::fit_min_max(x, *low, *high, *clip)?)
            }
            Estimator::MaxAbsScaler => Fitted::Scaler(scale::fit_max_abs(x)?),
            Estimator::OneHotEncoder => Fitted::OneHot(onehot::fit(x)?),
            Estimator::OrdinalEncoder(params) => Fitted::Ordinal(ordinal::fit(x, params)?),
            Estimator::PolynomialFeatures {
                degree,
                interaction_only,
                include_bias,
            } => Fitted::Poly(poly::fit(x, *degree, *interaction_only, *include_bias)?),
            Estimator::Pca {
                n_components,
                whiten,
            } => Fitted::Pca(pca::fit(x, count(*n_components), *whiten)?),
            Estimator::SelectKBest { score_func, k } => {
                Fitted::Select(select::fit(x, target()?, *score_func, count(*k))?)
            }
            Estimator::LinearRegression { fit_intercept } => {
                let gram = linear::gram(x, target()?, *fit_intercept)?;
                Fitted::Linear(linear::solve(&gram, 0.0)?)
            }
            Estimator::Ridge {
                alpha,
                fit_intercept,
            } => {
                let gram = linear::gram(x, target()?, *fit_intercept)?;
                Fitted::Linear(linear::solve(&gram, *alpha)?)
            }
            Estimator::LogisticRegression {
                c,
                fit_intercept,
                max_iter,
                tol,
            } => Fitted::Logistic(logistic::fit(
                x,
                target()?,
                *c,
                *fit_intercept,
                count(*max_iter),
                *tol,
            )?),
            Estimator::KNeighbors {
                n_neighbors,
                weights,
                classifier,
            } => Fitted::Knn(knn::fit(
                x,
                target()?,
                count(*n_neighbors),
                *weights,
                *classifier,
            )?),
            Estimator::DecisionTree(params) => {
                Fitted::DecisionTree(tree::fit(x, target()?, params)?)
            }
            Estimator::RandomForest(params) => Fitted::Forest(forest::fit(x, target()?, params)?),
        })
    }
}

impl Fitted {
    /// Applies the fitted step to a matrix.
    pub fn apply(&self, x: MatRef<'_, f64>) -> Result<Value> {
        let matrix = |m: Matrix| Value::Matrix(m.into());
        let prediction = |p: Prediction| Value::Prediction(p.into());
        Ok(match self {
            Fitted::Imputer(s) => matrix(s.transform(x)?),
            Fitted::Scaler(s) => matrix(s.transform(x)?),
            Fitted::OneHot(s) => matrix(s.transform(x)?),
            Fitted::Ordinal(s) => matrix(s.transform(x)?),
            Fitted::Poly(s) => matrix(s.transform(x)?),
            Fitted::Pca(s) => matrix(s.transform(x)?),
            Fitted::Select(s) => matrix(s.transform(x)?),
            Fitted::Linear(s) => prediction(s.predict(x)?),
            Fitted::Logistic(s) => prediction(s.predict(x)?),
            Fitted::Knn(s) => prediction(s.predict(x)?),
            Fitted::DecisionTree(s) => prediction(s.predict(x)?),
            Fitted::Forest(s) => prediction(s.predict(x)?),
        })
    }
}
