//! Values that flow along plan edges.

use std::sync::Arc;

use faer::Mat;
use serde::{Deserialize, Serialize};

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

/// Serde for matrices: shape plus the column-major values as one byte string
/// of little-endian `f64`s, so msgpack stores them without per-element tags.
pub(crate) mod matrix_serde {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Matrix;

    #[derive(Serialize, Deserialize)]
    struct Raw {
        rows: usize,
        cols: usize,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    }

    /// Little-endian bytes of `m`, column by column.
    pub(crate) fn to_bytes(m: &Matrix) -> Vec<u8> {
        let mut data = Vec::with_capacity(m.nrows() * m.ncols() * 8);
        for j in 0..m.ncols() {
            let col = m
                .col(j)
                .try_as_col_major()
                .expect("owned matrices have unit row stride");
            data.extend(col.as_slice().iter().flat_map(|v| v.to_le_bytes()));
        }
        data
    }

    /// The matrix stored by [`to_bytes`]; None when the length does not match.
    pub(crate) fn from_bytes(data: &[u8], rows: usize, cols: usize) -> Option<Matrix> {
        // No step builds wider matrices; an empty one claiming more columns
        // would cost a loop over them.
        if cols > super::MAX_COLUMNS {
            return None;
        }
        let cells = rows.checked_mul(cols)?;
        if cells.checked_mul(8)? != data.len() {
            return None;
        }
        let values: Vec<f64> = data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8-byte chunk")))
            .collect();
        Some(faer::MatRef::from_column_major_slice(&values, rows, cols).to_owned())
    }

    pub(crate) fn serialize<S: Serializer>(m: &Matrix, s: S) -> Result<S::Ok, S::Error> {
        Raw {
            rows: m.nrows(),
            cols: m.ncols(),
            data: to_bytes(m),
        }
        .serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Matrix, D::Error> {
        let raw = Raw::deserialize(d)?;
        from_bytes(&raw.data, raw.rows, raw.cols)
            .ok_or_else(|| D::Error::custom("matrix data does not match its shape"))
    }

    pub(crate) mod optional {
        use serde::{Deserialize, Deserializer, Serializer};

        use super::super::Matrix;

        pub(crate) fn serialize<S: Serializer>(
            m: &Option<Matrix>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match m {
                Some(m) => s.serialize_some(&Wrap(m)),
                None => s.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Matrix>, D::Error> {
            Ok(Option::<Owned>::deserialize(d)?.map(|o| o.0))
        }

        struct Wrap<'a>(&'a Matrix);

        impl serde::Serialize for Wrap<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                super::serialize(self.0, s)
            }
        }

        struct Owned(Matrix);

        impl<'de> Deserialize<'de> for Owned {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                super::deserialize(d).map(Owned)
            }
        }
    }
}
