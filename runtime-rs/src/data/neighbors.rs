//! Nearest-neighbour data shared by the KNN steps: the prepared training
//! rows a search runs on and the neighbour lists one search hands to every
//! KNN variant on the same train/test matrices.

use serde::{Deserialize, Serialize};

/// How the `k` neighbours of a row weigh in its prediction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Weights {
    Uniform,
    Distance,
}

/// The nearest training rows of every test row, nearest first: sorted by
/// (exact squared Euclidean distance, training index).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Neighbors {
    /// Number of training rows searched.
    pub(crate) n_train: usize,
    /// Number of test rows.
    pub(crate) n_test: usize,
    /// Neighbours kept per test row: `min(requested k, n_train)`.
    pub(crate) k: usize,
    /// Training row indices, row-major `n_test x k`.
    pub(crate) index: Vec<usize>,
    /// Exact squared distances (sum of squared differences) matching `index`.
    pub(crate) sq_dist: Vec<f64>,
}

impl Neighbors {
    /// Number of training rows searched.
    pub fn n_train(&self) -> usize {
        self.n_train
    }

    /// Number of test rows.
    pub fn n_test(&self) -> usize {
        self.n_test
    }

    /// Neighbours listed per test row.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Training row indices of the neighbours of test row `row`.
    pub fn indices(&self, row: usize) -> &[usize] {
        &self.index[row * self.k..(row + 1) * self.k]
    }

    /// Exact squared distances of the neighbours of test row `row`.
    pub fn sq_distances(&self, row: usize) -> &[f64] {
        &self.sq_dist[row * self.k..(row + 1) * self.k]
    }
}

/// Training rows prepared for searching: row-major copy, centring and norms.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Train {
    pub(crate) n_samples: usize,
    pub(crate) n_features: usize,
    /// Training rows, row-major `n_samples x n_features`.
    pub(crate) rows: Vec<f64>,
    /// Column means of the training rows (the centring used for the tiles).
    pub(crate) mean: Vec<f64>,
    /// `(1 - tol) * ||b - mean||^2` per training row (lower-bound term).
    pub(crate) norm_lo: Vec<f64>,
    /// `(1 + tol) * ||b - mean||^2` per training row (upper-bound term).
    pub(crate) norm_hi: Vec<f64>,
    /// Relative error bound of the tiled distance formula.
    pub(crate) tol: f64,
    /// Largest of `norm_hi` (overflow guard).
    pub(crate) max_norm: f64,
}
