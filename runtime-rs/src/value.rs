//! Values that flow along plan edges.

use std::sync::Arc;

use faer::Mat;

use crate::ops::knn::Neighbors;
use crate::ops::Fitted;

/// Dense column-major matrix of `f64`; NaN marks a missing value.
pub type Matrix = Mat<f64>;

/// Widest matrix a step may produce. Far beyond real feature spaces, it stops
/// a small hostile plan (a doubling `hstack` chain, a polynomial expansion of
/// a huge selection) from requesting memory the process cannot have.
pub const MAX_COLUMNS: usize = 1 << 20;

/// Refuses to build a matrix wider than [`MAX_COLUMNS`].
pub fn check_width(columns: usize) -> crate::error::Result<()> {
    if columns > MAX_COLUMNS {
        return Err(crate::error::RuntimeError::data(format!(
            "the step would produce {columns} columns, more than the limit of {MAX_COLUMNS}"
        )));
    }
    Ok(())
}

/// Output of a fitted model on a matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// One value per row: the regression output, or the predicted class code.
    pub values: Vec<f64>,
    /// Classifiers: the class codes seen while fitting, ascending; the columns
    /// of `proba` follow this order. Empty for regressors.
    pub classes: Vec<f64>,
    /// Classifiers: class probabilities, `rows x classes.len()`.
    pub proba: Option<Matrix>,
    /// Binary classifiers with a decision function: the score of `classes[1]`.
    pub decision: Option<Vec<f64>>,
}

/// Sufficient statistics of a (possibly centred) least-squares problem, shared
/// by every Ridge / LinearRegression fit on the same design matrix and target.
#[derive(Debug, Clone)]
pub struct Gram {
    /// `Xc^T Xc`, `p x p`, where `Xc` is `X` centred when fitting an intercept.
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
