//! Values that flow along plan edges: what a node computes, and its kind
//! for type-checking plans before they run.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::fitted::Fitted;
use super::matrix::Matrix;
use super::matrix_serde;
use super::neighbors::Neighbors;

/// Output of a fitted model on a matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// One value per row: the regression output, or the predicted class code.
    pub values: Vec<f64>,
    /// Classifiers: the class codes seen while fitting, ascending; the columns
    /// of `proba` follow this order. Empty for regressors.
    pub classes: Vec<f64>,
    /// Classifiers: class probabilities, `rows x classes.len()`.
    #[serde(with = "matrix_serde::optional")]
    pub proba: Option<Matrix>,
    /// Binary classifiers with a decision function: the score of `classes[1]`.
    pub decision: Option<Vec<f64>>,
}

/// Sufficient statistics of a (possibly centred) least-squares problem, shared
/// by every Ridge / LinearRegression fit on the same design matrix and target.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Gram {
    /// `Xc^T Xc`, `p x p`, where `Xc` is `X` centred when fitting an intercept.
    #[serde(with = "matrix_serde")]
    pub xtx: Matrix,
    /// `Xc^T yc`, length `p`.
    pub xty: Vec<f64>,
    /// Column means of `X` (zeros without intercept).
    pub x_mean: Vec<f64>,
    /// Mean of `y` (zero without intercept).
    pub y_mean: f64,
    /// Eigen-decomposition of `xtx` (values ascending, vectors as columns),
    /// computed once so every penalty is solved in `O(p^2)`.
    pub eigenvalues: Vec<f64>,
    /// Eigenvectors matching `eigenvalues`.
    #[serde(with = "matrix_serde")]
    pub eigenvectors: Matrix,
    /// Number of rows the statistics were built from.
    pub n_rows: usize,
}

/// A value computed by one plan node.
#[derive(Debug, Clone)]
pub enum Value {
    Matrix(Arc<Matrix>),
    Vector(Arc<Vec<f64>>),
    Fitted(Arc<Fitted>),
    Gram(Arc<Gram>),
    Prediction(Arc<Prediction>),
    /// Nearest training rows of every test row, shared by KNN variants.
    Neighbors(Arc<Neighbors>),
    Scalar(f64),
}

/// The static type of a [`Value`], used to type-check plans before running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Matrix,
    Vector,
    /// A fitted step whose application yields a matrix.
    Transformer,
    /// A fitted step whose application yields a prediction.
    Model,
    Gram,
    Prediction,
    Neighbors,
    Scalar,
}

impl Value {
    /// The value's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Value::Matrix(_) => Kind::Matrix,
            Value::Vector(_) => Kind::Vector,
            Value::Fitted(f) if f.is_model() => Kind::Model,
            Value::Fitted(_) => Kind::Transformer,
            Value::Gram(_) => Kind::Gram,
            Value::Prediction(_) => Kind::Prediction,
            Value::Neighbors(_) => Kind::Neighbors,
            Value::Scalar(_) => Kind::Scalar,
        }
    }
}
