//! One decision tree grown exactly as scikit-learn's `splitter="best"` grows
//! it, from a column-major `f32` matrix, targets, optional sample weights and
//! the splitter's seed. Forests reuse [`grow`] once per tree.

pub mod bootstrap;
mod builder;
pub mod criterion;
pub mod rng;
mod sort;
mod splitter;
#[cfg(test)]
mod tests;

use faer::MatRef;

pub use builder::Limits;
pub use criterion::Kind;

use crate::data::tree::Tree;
use criterion::Criterion;
use splitter::Splitter;

/// The training matrix as scikit-learn's trees read it: `f32`, one column
/// after another.
pub struct Columns {
    data: Vec<f32>,
    n_rows: usize,
    n_features: usize,
}

impl Columns {
    /// Converts `x` (rounding to nearest, as numpy's `astype(float32)` does).
    pub fn new(x: MatRef<'_, f64>) -> Self {
        let (n_rows, n_features) = (x.nrows(), x.ncols());
        let mut data = Vec::with_capacity(n_rows * n_features);
        for j in 0..n_features {
            data.extend((0..n_rows).map(|i| x[(i, j)] as f32));
        }
        Self {
            data,
            n_rows,
            n_features,
        }
    }
}

/// What to fit: targets (class indices `0..n_classes` for a classifier) and
/// optional per-row weights.
pub struct Targets<'a> {
    pub y: &'a [f64],
    pub weights: Option<&'a [f64]>,
    pub kind: Kind,
    /// 1 for regression.
    pub n_classes: usize,
}

/// Grows one tree; `seed` is the splitter's `our_rand_r` state
/// (see [`rng::splitter_seed`]).
pub fn grow(x: &Columns, targets: &Targets<'_>, limits: &Limits, seed: u32) -> Tree {
    let mut rows = Vec::with_capacity(x.n_rows);
    let mut weighted_n_samples = 0.0;
    for i in 0..x.n_rows {
        let w = targets.weights.map_or(1.0, |w| w[i]);
        if w != 0.0 {
            rows.push(i);
        }
        weighted_n_samples += w;
    }
    let criterion = Criterion::new(targets.kind, targets.y, targets.weights, targets.n_classes);
    let mut splitter = Splitter::new(
        &x.data,
        x.n_rows,
        x.n_features,
        rows,
        criterion,
        weighted_n_samples,
        (
            limits.max_features,
            limits.min_samples_leaf,
            limits.min_weight_leaf,
        ),
        seed,
    );
    let shape = (x.n_features, targets.n_classes);
    match limits.max_leaf_nodes {
        None => builder::depth_first(&mut splitter, limits, shape),
        Some(leaves) => builder::best_first(&mut splitter, limits, leaves, shape),
    }
}
