//! Native steps: what each estimator learns (`fit`) and how it is applied.

pub(crate) mod check;
pub(crate) mod columns;
pub mod impute;
pub mod knn;
mod lbfgsb;
mod linalg;
pub mod linear;
pub mod logistic;
pub mod onehot;
pub mod pca;
pub mod poly;
pub mod scale;
pub mod select;

use faer::MatRef;
use serde::{Deserialize, Serialize};

use crate::error::{Result, RuntimeError};
use crate::value::{Matrix, Prediction, Value};

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
        weights: knn::Weights,
        classifier: bool,
    },
}

/// A count from the plan as a `usize`, saturating where `usize` is narrower:
/// every count is compared with a data size or bounds a loop, so a count past
/// `usize::MAX` behaves exactly as `usize::MAX` does.
pub fn count(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

/// What a fitted step remembers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Fitted {
    Imputer(impute::Imputer),
    Scaler(scale::Scaler),
    OneHot(onehot::OneHot),
    Poly(poly::Poly),
    Pca(pca::Pca),
    Select(select::Select),
    Linear(linear::Linear),
    Logistic(logistic::Logistic),
    Knn(knn::Knn),
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
            Estimator::PolynomialFeatures { .. } => "polynomial_features",
            Estimator::Pca { .. } => "pca",
            Estimator::SelectKBest { .. } => "select_k_best",
            Estimator::LinearRegression { .. } => "linear_regression",
            Estimator::Ridge { .. } => "ridge",
            Estimator::LogisticRegression { .. } => "logistic_regression",
            Estimator::KNeighbors { .. } => "k_neighbors",
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
        })
    }
}

impl Fitted {
    /// Short name of the fitted step, for profiles.
    pub fn name(&self) -> &'static str {
        match self {
            Fitted::Imputer(_) => "imputer",
            Fitted::Scaler(_) => "scaler",
            Fitted::OneHot(_) => "one_hot_encoder",
            Fitted::Poly(_) => "polynomial_features",
            Fitted::Pca(_) => "pca",
            Fitted::Select(_) => "select_k_best",
            Fitted::Linear(_) => "linear",
            Fitted::Logistic(_) => "logistic_regression",
            Fitted::Knn(_) => "k_neighbors",
        }
    }

    /// Whether applying this step yields a prediction.
    pub fn is_model(&self) -> bool {
        matches!(
            self,
            Fitted::Linear(_) | Fitted::Logistic(_) | Fitted::Knn(_)
        )
    }

    /// Applies the fitted step to a matrix.
    pub fn apply(&self, x: MatRef<'_, f64>) -> Result<Value> {
        let matrix = |m: Matrix| Value::Matrix(m.into());
        let prediction = |p: Prediction| Value::Prediction(p.into());
        Ok(match self {
            Fitted::Imputer(s) => matrix(s.transform(x)?),
            Fitted::Scaler(s) => matrix(s.transform(x)?),
            Fitted::OneHot(s) => matrix(s.transform(x)?),
            Fitted::Poly(s) => matrix(s.transform(x)?),
            Fitted::Pca(s) => matrix(s.transform(x)?),
            Fitted::Select(s) => matrix(s.transform(x)?),
            Fitted::Linear(s) => prediction(s.predict(x)?),
            Fitted::Logistic(s) => prediction(s.predict(x)?),
            Fitted::Knn(s) => prediction(s.predict(x)?),
        })
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
