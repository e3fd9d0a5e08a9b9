//! KNeighborsClassifier / KNeighborsRegressor (brute force, Euclidean).
//!
//! Distances are computed tile by tile with `||a||^2 - 2ab + ||b||^2` (one
//! matrix product per tile, on mean-centred data); a per-row candidate set
//! keeps every training point that could still be among the `k` nearest given
//! a rigorous bound on the rounding error of that formula. The survivors are
//! re-ranked on exact squared distances (sum of squared differences), ties
//! going to the lower training index.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, RuntimeError};
use crate::metrics::numpy_sum;
use crate::value::Prediction;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Weights {
    Uniform,
    Distance,
}

/// A fitted k-nearest-neighbours model: the training rows and targets.
#[derive(Debug, Clone)]
pub struct Knn {
    n_neighbors: usize,
    weights: Weights,
    classifier: bool,
    n_samples: usize,
    n_features: usize,
    /// Training rows, row-major `n_samples x n_features`.
    train: Vec<f64>,
    /// Column means of the training rows (the centring used for the tiles).
    mean: Vec<f64>,
    /// `(1 - tol) * ||b - mean||^2` per training row (lower-bound term).
    norm_lo: Vec<f64>,
    /// `(1 + tol) * ||b - mean||^2` per training row (upper-bound term).
    norm_hi: Vec<f64>,
    /// Relative error bound of the tiled distance formula.
    tol: f64,
    /// Largest of `norm_hi` (overflow guard).
    max_norm: f64,
    /// Regressor: the targets. Classifier: the class index of each row.
    targets: Vec<f64>,
    /// Classifier: sorted class codes seen in fit.
    classes: Vec<f64>,
}

/// Absolute slack added to the error bound (covers underflow).
const TINY: f64 = 1e-300;
/// Maximum number of test rows per tile.
const MAX_BLOCK_ROWS: usize = 128;
/// Maximum number of test rows sharing one centred copy of a training chunk.
const MAX_GROUP_ROWS: usize = 1024;
/// Maximum number of doubles in a tile or a centred training chunk (512 kB).
const TILE_DOUBLES: usize = 1 << 16;

fn estimator_name(classifier: bool) -> &'static str {
    if classifier {
        "KNeighborsClassifier"
    } else {
        "KNeighborsRegressor"
    }
}

/// `check_array` on X: non-empty, at least one feature, finite.
fn check_x(x: MatRef<'_, f64>, name: &str) -> Result<()> {
    let (n, p) = (x.nrows(), x.ncols());
    if n == 0 {
        return Err(RuntimeError::data(format!(
            "Found array with 0 sample(s) (shape=(0, {p})) while a minimum of 1 is required by {name}."
        )));
    }
    if p == 0 {
        return Err(RuntimeError::data(format!(
            "Found array with 0 feature(s) (shape=({n}, 0)) while a minimum of 1 is required by {name}."
        )));
    }
    let mut has_inf = false;
    for j in 0..p {
        for i in 0..n {
            let v = x[(i, j)];
            if v.is_nan() {
                return Err(RuntimeError::data("Input X contains NaN."));
            }
            has_inf |= v.is_infinite();
        }
    }
    if has_inf {
        return Err(RuntimeError::data(
            "Input X contains infinity or a value too large for dtype('float64').",
        ));
    }
    Ok(())
}

/// Learns a k-nearest-neighbours model (stores the training data).
pub fn fit(
    x: MatRef<'_, f64>,
    y: &[f64],
    n_neighbors: usize,
    weights: Weights,
    classifier: bool,
) -> Result<Knn> {
    let name = estimator_name(classifier);
    if n_neighbors == 0 {
        return Err(RuntimeError::parameter(format!(
            "The 'n_neighbors' parameter of {name} must be an int in the range [1, inf) or None. Got 0 instead."
        )));
    }
    check_x(x, name)?;
    if y.iter().any(|v| v.is_nan()) {
        return Err(RuntimeError::data("Input y contains NaN."));
    }
    if y.iter().any(|v| v.is_infinite()) {
        return Err(RuntimeError::data(
            "Input y contains infinity or a value too large for dtype('float64').",
        ));
    }
    let (n, p) = (x.nrows(), x.ncols());
    if y.len() != n {
        return Err(RuntimeError::data(format!(
            "Found input variables with inconsistent numbers of samples: [{n}, {}]",
            y.len()
        )));
    }

    let mut train = vec![0.0; n * p];
    for j in 0..p {
        for i in 0..n {
            train[i * p + j] = x[(i, j)];
        }
    }
    let mut mean = vec![0.0; p];
    for row in train.chunks_exact(p) {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v;
        }
    }
    for m in &mut mean {
        *m /= n as f64;
    }
    // Error bound of `||a'||^2 + ||b'||^2 - 2 a'.b'` (centred data) relative
    // to `||a'||^2 + ||b'||^2`, generous enough to also cover the rounding of
    // the centring and of the exact recomputation.
    let tol = 8.0 * (p as f64 + 8.0) * f64::EPSILON;
    let norms: Vec<f64> = train
        .chunks_exact(p)
        .map(|row| row.iter().zip(&mean).map(|(v, m)| (v - m) * (v - m)).sum())
        .collect();
    let norm_lo = norms.iter().map(|s| (1.0 - tol) * s).collect();
    let norm_hi: Vec<f64> = norms.iter().map(|s| (1.0 + tol) * s).collect();
    let max_norm = norm_hi.iter().fold(0.0, |a: f64, &b| a.max(b));

    let (targets, classes) = if classifier {
        let mut classes = y.to_vec();
        classes.sort_by(f64::total_cmp);
        classes.dedup_by(|a, b| a == b);
        let idx = y
            .iter()
            .map(|&v| classes.partition_point(|&c| c < v) as f64)
            .collect();
        (idx, classes)
    } else {
        (y.to_vec(), Vec::new())
    };

    Ok(Knn {
        n_neighbors,
        weights,
        classifier,
        n_samples: n,
        n_features: p,
        train,
        mean,
        norm_lo,
        norm_hi,
        tol,
        max_norm,
        targets,
        classes,
    })
}

/// A training row that may still be among the nearest of a test row.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    /// Lower bound of the exact squared distance (equal to it once exact).
    lower: f64,
    /// Upper bound of the exact squared distance (equal to it once exact).
    upper: f64,
    index: usize,
    exact: bool,
}

/// Sort key treating NaN (overflowed distances) as +inf.
fn key(v: f64) -> f64 {
    if v.is_nan() {
        f64::INFINITY
    } else {
        v
    }
}

/// Whether a lower bound does not exclude a row (NaN bounds never exclude).
#[inline]
fn within(lower: f64, threshold: f64) -> bool {
    lower <= threshold || lower.is_nan()
}

/// Exact squared Euclidean distance (sum of squared differences).
fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    let mut s = 0.0;
    for (x, y) in a.iter().zip(b) {
        let d = x - y;
        s += d * d;
    }
    s
}

/// Entries per pre-filter block of a tile column.
const SCAN_BLOCK: usize = 64;

/// Smallest lower bound `lo + norm_lo[j] + tile[j]` over a block whose length
/// is a multiple of 8, with 8 independent lanes (vectorisable). Only used when
/// no bound can be NaN.
#[inline]
fn min_lower(lo: f64, tile: &[f64], norm_lo: &[f64]) -> f64 {
    let mut acc = [f64::INFINITY; 8];
    for (g, l) in tile.chunks_exact(8).zip(norm_lo.chunks_exact(8)) {
        let (Ok(g), Ok(l)) = (<&[f64; 8]>::try_from(g), <&[f64; 8]>::try_from(l)) else {
            return f64::NEG_INFINITY;
        };
        for q in 0..8 {
            let v = lo + l[q] + g[q];
            acc[q] = if v < acc[q] { v } else { acc[q] };
        }
    }
    let m4 = [
        acc[0].min(acc[4]),
        acc[1].min(acc[5]),
        acc[2].min(acc[6]),
        acc[3].min(acc[7]),
    ];
    m4[0].min(m4[2]).min(m4[1].min(m4[3]))
}

/// Candidate set of one test row.
struct RowState {
    candidates: Vec<Candidate>,
    /// Every training row whose lower bound exceeds this is not a neighbour.
    threshold: f64,
    capacity: usize,
}

impl RowState {
    fn new(k: usize) -> Self {
        let capacity = 2 * k + 64;
        RowState {
            candidates: Vec::with_capacity(capacity),
            threshold: f64::INFINITY,
            capacity,
        }
    }

    /// The `k`-th smallest upper bound among the candidates.
    fn kth_upper(&self, k: usize, scratch: &mut Vec<f64>) -> f64 {
        if self.candidates.len() < k {
            return f64::INFINITY;
        }
        scratch.clear();
        scratch.extend(self.candidates.iter().map(|c| key(c.upper)));
        let (_, kth, _) = scratch.select_nth_unstable_by(k - 1, f64::total_cmp);
        *kth
    }

    fn make_exact(&mut self, test_row: &[f64], train: &[f64], p: usize) {
        for c in self.candidates.iter_mut().filter(|c| !c.exact) {
            let e = squared_distance(test_row, &train[c.index * p..(c.index + 1) * p]);
            c.lower = e;
            c.upper = e;
            c.exact = true;
        }
    }

    fn prune(&mut self, k: usize, scratch: &mut Vec<f64>) {
        let t = self.kth_upper(k, scratch);
        self.threshold = t;
        self.candidates.retain(|c| within(c.lower, t));
    }

    /// Tightens the threshold and drops hopeless candidates; switches to
    /// exact distances when bounds alone do not shrink the set enough.
    fn compact(
        &mut self,
        k: usize,
        test_row: &[f64],
        train: &[f64],
        p: usize,
        scratch: &mut Vec<f64>,
    ) {
        self.prune(k, scratch);
        if 2 * self.candidates.len() > self.capacity {
            self.make_exact(test_row, train, p);
            self.prune(k, scratch);
            if 2 * self.candidates.len() > self.capacity {
                // Genuine ties: let the set grow.
                self.capacity = 2 * self.candidates.len();
            }
        }
    }

    /// Writes the `k` nearest (by exact distance, then index).
    fn finish(
        &mut self,
        test_row: &[f64],
        train: &[f64],
        p: usize,
        index: &mut [usize],
        dist: &mut [f64],
    ) {
        self.make_exact(test_row, train, p);
        self.candidates.sort_unstable_by(|a, b| {
            key(a.lower)
                .total_cmp(&key(b.lower))
                .then(a.index.cmp(&b.index))
        });
        for (slot, c) in self.candidates.iter().take(index.len()).enumerate() {
            index[slot] = c.index;
            dist[slot] = c.lower;
        }
    }
}

impl Knn {
    /// Predicts targets (and class probabilities for a classifier).
    pub fn predict(&self, x: MatRef<'_, f64>) -> Result<Prediction> {
        let name = estimator_name(self.classifier);
        check_x(x, name)?;
        if x.ncols() != self.n_features {
            return Err(RuntimeError::data(format!(
                "X has {} features, but {name} is expecting {} features as input.",
                x.ncols(),
                self.n_features
            )));
        }
        let k = self.n_neighbors;
        if k > self.n_samples {
            return Err(RuntimeError::data(format!(
                "Expected n_neighbors <= n_samples_fit, but n_neighbors = {k}, n_samples_fit = {}, n_samples = {}",
                self.n_samples,
                x.nrows()
            )));
        }
        let (index, sq_dist) = self.kneighbors(x);
        if self.classifier {
            self.classify(&index, &sq_dist)
        } else {
            Ok(self.regress(&index, &sq_dist))
        }
    }

    /// Indices and exact squared distances of the `k` nearest training rows of
    /// every test row, row after row, nearest first.
    fn kneighbors(&self, x: MatRef<'_, f64>) -> (Vec<usize>, Vec<f64>) {
        let nq = x.nrows();
        let k = self.n_neighbors;
        let threads = rayon::current_num_threads().max(1);
        // Bound the candidate sets of a group (a few tens of MB) for large k.
        let group_cap = ((1 << 20) / (2 * k + 64)).max(8);
        let group = nq
            .div_ceil(4 * threads)
            .clamp(8, MAX_GROUP_ROWS)
            .min(group_cap);
        let mut index = vec![0usize; nq * k];
        let mut dist = vec![f64::INFINITY; nq * k];
        index
            .par_chunks_mut(group * k)
            .zip(dist.par_chunks_mut(group * k))
            .enumerate()
            .for_each(|(b, (idx, d))| {
                let r0 = b * group;
                let r1 = (r0 + group).min(nq);
                self.search_group(x, r0, r1, idx, d);
            });
        (index, dist)
    }

    /// Nearest neighbours of test rows `r0..r1`: for each chunk of training
    /// rows (centred once), one tile product per block of test rows.
    fn search_group(
        &self,
        x: MatRef<'_, f64>,
        r0: usize,
        r1: usize,
        index: &mut [usize],
        dist: &mut [f64],
    ) {
        let (p, n, k) = (self.n_features, self.n_samples, self.n_neighbors);
        let rows = r1 - r0;
        // Test rows, row-major: original and centred (a block of the latter
        // is the column-major `p x bt` right-hand side of a tile product).
        let mut raw = vec![0.0; rows * p];
        for j in 0..p {
            for i in 0..rows {
                raw[i * p + j] = x[(r0 + i, j)];
            }
        }
        let centred: Vec<f64> = raw
            .chunks_exact(p)
            .flat_map(|row| row.iter().zip(&self.mean).map(|(v, m)| v - m))
            .collect();
        let lo_base: Vec<f64> = centred
            .chunks_exact(p)
            .map(|r| (1.0 - self.tol) * r.iter().map(|v| v * v).sum::<f64>() - TINY)
            .collect();
        let hi_base: Vec<f64> = centred
            .chunks_exact(p)
            .map(|r| (1.0 + self.tol) * r.iter().map(|v| v * v).sum::<f64>() + TINY)
            .collect();

        // Without overflow no lower bound is NaN and the fast pre-filter is
        // exact; otherwise every entry goes through the NaN-aware test.
        let max_test = hi_base.iter().fold(0.0, |a: f64, &b| a.max(b));
        let finite = (4.0 * (max_test + self.max_norm)).is_finite();
        let bt_max = rows.min(MAX_BLOCK_ROWS);
        let chunk = (TILE_DOUBLES / bt_max.max(p)).clamp(32, 4096).min(n);
        let mut lhs = vec![0.0; chunk * p];
        let mut tile = vec![0.0; chunk * bt_max];
        let mut states: Vec<RowState> = (0..rows).map(|_| RowState::new(k)).collect();
        let mut scratch = Vec::new();

        let mut c0 = 0;
        while c0 < n {
            let c1 = (c0 + chunk).min(n);
            let bc = c1 - c0;
            // Centred training chunk, row-major `bc x p`.
            for (dst, src) in lhs
                .chunks_exact_mut(p)
                .zip(self.train[c0 * p..c1 * p].chunks_exact(p))
            {
                for ((d, v), m) in dst.iter_mut().zip(src).zip(&self.mean) {
                    *d = v - m;
                }
            }
            let lhs_ref = MatRef::from_row_major_slice(&lhs[..bc * p], bc, p);
            let norm_lo = &self.norm_lo[c0..c1];
            let norm_hi = &self.norm_hi[c0..c1];

            let mut b0 = 0;
            while b0 < rows {
                let b1 = (b0 + MAX_BLOCK_ROWS).min(rows);
                let bt = b1 - b0;
                let rhs = MatRef::from_column_major_slice(&centred[b0 * p..b1 * p], p, bt);
                let dst = MatMut::from_column_major_slice_mut(&mut tile[..bc * bt], bc, bt);
                // tile = -2 B' A'^T: column i holds -2 a'_i . b'_j over the chunk.
                matmul(dst, Accum::Replace, lhs_ref, rhs, -2.0, Par::Seq);
                for i in b0..b1 {
                    let col = &tile[(i - b0) * bc..(i - b0 + 1) * bc];
                    let test_row = &raw[i * p..(i + 1) * p];
                    let state = &mut states[i];
                    let (lo, hi) = (lo_base[i], hi_base[i]);
                    let full = bc - bc % 8;
                    let mut start = 0;
                    while start < bc {
                        let end = if start < full {
                            (start + SCAN_BLOCK).min(full)
                        } else {
                            bc
                        };
                        if start >= full
                            || !finite
                            || min_lower(lo, &col[start..end], &norm_lo[start..end])
                                <= state.threshold
                        {
                            for jj in start..end {
                                let g = col[jj];
                                let lower = lo + norm_lo[jj] + g;
                                if within(lower, state.threshold) {
                                    state.candidates.push(Candidate {
                                        lower,
                                        upper: hi + norm_hi[jj] + g,
                                        index: c0 + jj,
                                        exact: false,
                                    });
                                    if state.candidates.len() >= state.capacity {
                                        state.compact(k, test_row, &self.train, p, &mut scratch);
                                    }
                                }
                            }
                        }
                        start = end;
                    }
                }
                b0 = b1;
            }
            c0 = c1;
        }

        for (i, state) in states.iter_mut().enumerate() {
            state.finish(
                &raw[i * p..(i + 1) * p],
                &self.train,
                p,
                &mut index[i * k..(i + 1) * k],
                &mut dist[i * k..(i + 1) * k],
            );
        }
    }

    /// `_get_weights(dist, "distance")`: `1 / d`, except that a row with a
    /// zero distance (infinite weight) gives weight 1 to those and 0 to others.
    fn distance_weights(sq_dist: &[f64]) -> Vec<f64> {
        let w: Vec<f64> = sq_dist.iter().map(|s| 1.0 / s.sqrt()).collect();
        if w.iter().any(|v| v.is_infinite()) {
            w.iter()
                .map(|v| if v.is_infinite() { 1.0 } else { 0.0 })
                .collect()
        } else {
            w
        }
    }

    fn regress(&self, index: &[usize], sq_dist: &[f64]) -> Prediction {
        let k = self.n_neighbors;
        let values = index
            .chunks_exact(k)
            .zip(sq_dist.chunks_exact(k))
            .map(|(idx, d)| {
                let ys: Vec<f64> = idx.iter().map(|&j| self.targets[j]).collect();
                match self.weights {
                    Weights::Uniform => numpy_sum(&ys) / k as f64,
                    Weights::Distance => {
                        let w = Self::distance_weights(d);
                        let num: Vec<f64> = ys.iter().zip(&w).map(|(y, w)| y * w).collect();
                        numpy_sum(&num) / numpy_sum(&w)
                    }
                }
            })
            .collect();
        Prediction {
            values,
            classes: Vec::new(),
            proba: None,
            decision: None,
        }
    }

    fn classify(&self, index: &[usize], sq_dist: &[f64]) -> Result<Prediction> {
        let k = self.n_neighbors;
        let n_classes = self.classes.len();
        let nq = index.len() / k;
        let mut proba = Mat::<f64>::zeros(nq, n_classes);
        let mut values = Vec::with_capacity(nq);
        let mut scores = vec![0.0; n_classes];
        let mut template = vec![0.0; k];
        for (r, (idx, d)) in index
            .chunks_exact(k)
            .zip(sq_dist.chunks_exact(k))
            .enumerate()
        {
            let labels: Vec<usize> = idx.iter().map(|&j| self.targets[j] as usize).collect();
            scores.iter_mut().for_each(|s| *s = 0.0);
            let best = match self.weights {
                Weights::Uniform => {
                    for &c in &labels {
                        scores[c] += 1.0;
                    }
                    // argmax of the probabilities: first maximum.
                    let mut best = 0;
                    for (c, &s) in scores.iter().enumerate() {
                        if s > scores[best] {
                            best = c;
                        }
                    }
                    best
                }
                Weights::Distance => {
                    let w = Self::distance_weights(d);
                    if w.iter().all(|&v| v == 0.0) {
                        return Err(RuntimeError::data(
                            "All neighbors of some sample is getting zero weights. Please modify \
                             'weights' to avoid this case if you are using a user-defined function.",
                        ));
                    }
                    for (&c, &wi) in labels.iter().zip(&w) {
                        scores[c] += wi;
                    }
                    // `weighted_mode`: per-class sums over the neighbour row,
                    // strict improvement in ascending class order.
                    let mut best = 0;
                    let mut best_count = 0.0;
                    for c in 0..n_classes {
                        for ((t, &l), &wi) in template.iter_mut().zip(&labels).zip(&w) {
                            *t = if l == c { wi } else { 0.0 };
                        }
                        let count = numpy_sum(&template);
                        if count > best_count {
                            best = c;
                            best_count = count;
                        }
                    }
                    best
                }
            };
            let total = numpy_sum(&scores);
            for (c, &s) in scores.iter().enumerate() {
                proba[(r, c)] = s / total;
            }
            values.push(self.classes[best]);
        }
        Ok(Prediction {
            values,
            classes: self.classes.clone(),
            proba: Some(proba),
            decision: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRAIN: [[f64; 2]; 12] = [
        [0.05, 0.0],
        [1.0, 0.0],
        [0.0, 1.05],
        [1.0, 1.0],
        [2.0, 2.0],
        [2.0, 2.0],
        [3.0, 1.1],
        [0.5, 2.5],
        [-1.0, 0.3],
        [2.5, -1.0],
        [1.5, 1.5],
        [-0.7, -0.2],
    ];
    const Y_CLASS: [f64; 12] = [0.0, 1.0, 1.0, 0.0, 2.0, 2.0, 1.0, 0.0, 2.0, 0.0, 1.0, 2.0];
    const Y_REG: [f64; 12] = [
        0.5, 1.25, -2.0, 3.5, 10.0, 10.0, -1.5, 0.75, 2.25, 4.0, -3.25, 6.5,
    ];
    const TEST: [[f64; 2]; 6] = [
        [2.0, 2.0],
        [0.4, 0.3],
        [1.2, 0.9],
        [-0.5, 1.7],
        [3.3, 0.4],
        [1.0, 1.0],
    ];

    fn mat(rows: &[[f64; 2]]) -> Mat<f64> {
        Mat::from_fn(rows.len(), 2, |i, j| rows[i][j])
    }

    /// (k, weights, classifier predict, classifier predict_proba (row-major),
    /// regressor predict), from scikit-learn 1.9.1:
    /// `KNeighborsClassifier(n_neighbors=k, weights=w).fit(TRAIN, Y_CLASS)`
    /// `.predict(TEST)` / `.predict_proba(TEST).ravel()` and
    /// `KNeighborsRegressor(n_neighbors=k, weights=w).fit(TRAIN, Y_REG).predict(TEST)`.
    /// TEST[0] and TEST[5] coincide with training rows (zero distance; rows 4
    /// and 5 are duplicates, with equal targets so that scikit-learn's
    /// heap-order tie-breaking cannot matter); several rows have vote ties
    /// (e.g. k=4: rows 0 and 1, k=3: row 3).
    #[allow(clippy::type_complexity)]
    const REFERENCE: [(usize, Weights, &[f64], &[f64], &[f64]); 8] = [
        (
            3,
            Weights::Uniform,
            &[2.0, 1.0, 1.0, 0.0, 0.0, 1.0],
            &[
                0.0,
                0.3333333333333333,
                0.6666666666666666,
                0.3333333333333333,
                0.6666666666666666,
                0.0,
                0.3333333333333333,
                0.6666666666666666,
                0.0,
                0.3333333333333333,
                0.3333333333333333,
                0.3333333333333333,
                0.3333333333333333,
                0.3333333333333333,
                0.3333333333333333,
                0.3333333333333333,
                0.6666666666666666,
                0.0,
            ],
            &[
                5.583333333333333,
                -0.08333333333333333,
                0.5,
                0.3333333333333333,
                4.166666666666667,
                0.5,
            ],
        ),
        (
            3,
            Weights::Distance,
            &[2.0, 1.0, 0.0, 1.0, 1.0, 0.0],
            &[
                0.0,
                0.0,
                1.0,
                0.44852896539772275,
                0.5514710346022771,
                0.0,
                0.6345705299218292,
                0.36542947007817084,
                0.0,
                0.2921360201714353,
                0.45620589009663065,
                0.2516580897319339,
                0.25644928270924705,
                0.5429679135205,
                0.20058280377025284,
                1.0,
                0.0,
                0.0,
            ],
            &[
                10.0,
                0.12304407625637613,
                1.7259278974413719,
                -0.12707906316783346,
                2.2171732982587664,
                3.5,
            ],
        ),
        (
            4,
            Weights::Uniform,
            &[1.0, 0.0, 1.0, 0.0, 2.0, 1.0],
            &[
                0.0, 0.5, 0.5, 0.5, 0.5, 0.0, 0.25, 0.75, 0.0, 0.5, 0.25, 0.25, 0.25, 0.25, 0.5,
                0.25, 0.75, 0.0,
            ],
            &[3.8125, 0.8125, -0.125, 1.125, 5.625, -0.125],
        ),
        (
            4,
            Weights::Distance,
            &[2.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            &[
                0.0,
                0.0,
                1.0,
                0.5495491028322796,
                0.4504508971677203,
                0.0,
                0.5679336622212399,
                0.43206633777876013,
                0.0,
                0.42262889441132456,
                0.3721055268343354,
                0.20526557875433998,
                0.21360399457988735,
                0.4522536153403077,
                0.33414239007980495,
                1.0,
                0.0,
                0.0,
            ],
            &[
                10.0,
                0.7416451089888629,
                1.3346645899658092,
                0.5415634805066225,
                3.5174594561071366,
                3.5,
            ],
        ),
        (
            5,
            Weights::Uniform,
            &[1.0, 0.0, 1.0, 0.0, 1.0, 1.0],
            &[
                0.2, 0.4, 0.4, 0.4, 0.4, 0.2, 0.2, 0.6, 0.2, 0.6, 0.2, 0.2, 0.2, 0.4, 0.4, 0.4,
                0.6, 0.0,
            ],
            &[3.75, 1.95, 1.9, 1.0, 3.85, 0.0],
        ),
        (
            5,
            Weights::Distance,
            &[2.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            &[
                0.0,
                0.0,
                1.0,
                0.4821573060759446,
                0.3952116198143725,
                0.12263107410968291,
                0.5194351839646592,
                0.395170197820779,
                0.08539461821456189,
                0.5068508134887776,
                0.31782598068808093,
                0.17532320582314131,
                0.18362317321070265,
                0.529133668760644,
                0.2872431580286533,
                1.0,
                0.0,
                0.0,
            ],
            &[
                10.0,
                1.4477983543783046,
                2.074637599006803,
                0.5355005583099238,
                2.567598974912502,
                3.5,
            ],
        ),
        (
            9,
            Weights::Uniform,
            &[1.0, 0.0, 1.0, 0.0, 1.0, 1.0],
            &[
                0.3333333333333333,
                0.4444444444444444,
                0.2222222222222222,
                0.3333333333333333,
                0.3333333333333333,
                0.3333333333333333,
                0.3333333333333333,
                0.4444444444444444,
                0.2222222222222222,
                0.3333333333333333,
                0.3333333333333333,
                0.3333333333333333,
                0.3333333333333333,
                0.4444444444444444,
                0.2222222222222222,
                0.3333333333333333,
                0.4444444444444444,
                0.2222222222222222,
            ],
            &[
                2.138888888888889,
                2.1666666666666665,
                2.138888888888889,
                2.1666666666666665,
                2.5,
                2.138888888888889,
            ],
        ),
        (
            9,
            Weights::Distance,
            &[2.0, 0.0, 0.0, 1.0, 1.0, 0.0],
            &[
                0.0,
                0.0,
                1.0,
                0.4138543056322816,
                0.3662463350157136,
                0.21989935935200475,
                0.5136570622260184,
                0.35451754900975246,
                0.13182538876422914,
                0.34141276137506843,
                0.3788705521114453,
                0.27971668651348636,
                0.27877666281512375,
                0.5203318922266345,
                0.20089144495824174,
                1.0,
                0.0,
                0.0,
            ],
            &[
                10.0,
                1.5631668310852993,
                2.255401031647873,
                1.4681993908741886,
                2.1199913835610826,
                3.5,
            ],
        ),
    ];

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-13 * (1.0 + b.abs())
    }

    #[test]
    fn matches_sklearn() {
        let (x, t) = (mat(&TRAIN), mat(&TEST));
        for (k, w, class_pred, class_proba, reg_pred) in REFERENCE {
            let clf = fit(x.as_ref(), &Y_CLASS, k, w, true).unwrap();
            let p = clf.predict(t.as_ref()).unwrap();
            assert_eq!(p.values, class_pred, "k={k} {w:?}");
            assert_eq!(p.classes, vec![0.0, 1.0, 2.0]);
            assert!(p.decision.is_none());
            let proba = p.proba.unwrap();
            assert_eq!((proba.nrows(), proba.ncols()), (6, 3));
            for i in 0..6 {
                for c in 0..3 {
                    let (got, want) = (proba[(i, c)], class_proba[i * 3 + c]);
                    assert!(
                        close(got, want),
                        "k={k} {w:?} proba[{i},{c}] {got} vs {want}"
                    );
                }
            }
            let reg = fit(x.as_ref(), &Y_REG, k, w, false).unwrap();
            let p = reg.predict(t.as_ref()).unwrap();
            assert!(p.classes.is_empty() && p.proba.is_none() && p.decision.is_none());
            for (got, want) in p.values.iter().zip(reg_pred) {
                assert!(close(*got, *want), "k={k} {w:?} regression {got} vs {want}");
            }
        }
    }

    #[test]
    fn class_codes_are_mapped_back() {
        // Codes 1 and 3 only (a fold may miss codes): proba columns follow them.
        let x = mat(&[[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]]);
        let y = [3.0, 3.0, 1.0, 1.0];
        let m = fit(x.as_ref(), &y, 3, Weights::Uniform, true).unwrap();
        let p = m.predict(mat(&[[0.0, 0.1], [5.0, 5.1]]).as_ref()).unwrap();
        assert_eq!(p.classes, vec![1.0, 3.0]);
        assert_eq!(p.values, vec![3.0, 1.0]);
        let proba = p.proba.unwrap();
        assert!(close(proba[(0, 0)], 1.0 / 3.0) && close(proba[(0, 1)], 2.0 / 3.0));
    }

    #[test]
    fn neighbour_ties_prefer_lower_index() {
        // 500 identical training points: every one ties, the first k win.
        let same = Mat::from_fn(500, 3, |_, j| j as f64);
        let m = fit(same.as_ref(), &[0.0; 500], 3, Weights::Uniform, false).unwrap();
        let (idx, _) = m.kneighbors(Mat::from_fn(2, 3, |i, j| (i + j) as f64).as_ref());
        assert_eq!(idx, vec![0, 1, 2, 0, 1, 2]);
        // Four training points at distance 1 from the origin.
        let x = mat(&[[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [3.0, 3.0]]);
        let y = [10.0, 20.0, 30.0, 40.0, 50.0];
        let m = fit(x.as_ref(), &y, 2, Weights::Uniform, false).unwrap();
        let (idx, d) = m.kneighbors(mat(&[[0.0, 0.0]]).as_ref());
        assert_eq!(idx, vec![0, 1]);
        assert_eq!(d, vec![1.0, 1.0]);
        // Vote tie (one neighbour of class 1, one of class 0): smallest code.
        let m = fit(
            x.as_ref(),
            &[1.0, 0.0, 1.0, 0.0, 1.0],
            2,
            Weights::Uniform,
            true,
        )
        .unwrap();
        assert_eq!(
            m.predict(mat(&[[0.0, 0.0]]).as_ref()).unwrap().values,
            vec![0.0]
        );
    }

    #[test]
    fn zero_distance_takes_all_weight() {
        let x = mat(&[[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]);
        let reg = fit(
            x.as_ref(),
            &[1.0, 2.0, 100.0, 100.0],
            4,
            Weights::Distance,
            false,
        )
        .unwrap();
        assert_eq!(
            reg.predict(mat(&[[0.0, 0.0]]).as_ref()).unwrap().values,
            vec![1.5]
        );
        let clf = fit(
            x.as_ref(),
            &[0.0, 1.0, 2.0, 2.0],
            4,
            Weights::Distance,
            true,
        )
        .unwrap();
        let p = clf.predict(mat(&[[0.0, 0.0]]).as_ref()).unwrap();
        assert_eq!(p.values, vec![0.0]);
        let proba = p.proba.unwrap();
        assert_eq!(
            [proba[(0, 0)], proba[(0, 1)], proba[(0, 2)]],
            [0.5, 0.5, 0.0]
        );
    }

    /// Deterministic pseudo-random numbers in [0, 1).
    fn lcg(state: &mut u64) -> f64 {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*state >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The tiled search returns exactly the brute-force answer (full sort on
    /// exact distances, ties by index), also with a large offset, many
    /// duplicates, ragged tiles, several tile blocks and a row-major input.
    #[test]
    fn tiled_search_is_exact() {
        let mut s = 7u64;
        for &(n, nq, p, k, offset, grid) in &[
            (5003usize, 300usize, 7usize, 5usize, 0.0, false),
            (2999, 257, 3, 8, 1e6, false),
            (2001, 1500, 4, 6, 0.0, true),
            (37, 9, 2, 37, 1e3, true),
            (301, 20, 1, 3, 0.0, true),
        ] {
            let gen = |s: &mut u64| {
                let v = lcg(s);
                offset
                    + if grid {
                        (v * 4.0).floor()
                    } else {
                        v * 10.0 - 5.0
                    }
            };
            // Row-major input (column stride 1): columns are not contiguous.
            let xt = Mat::from_fn(p, n, |_, _| gen(&mut s));
            let x = xt.transpose();
            let q = Mat::from_fn(nq, p, |_, _| gen(&mut s));
            let y: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let m = fit(x, &y, k, Weights::Uniform, false).unwrap();
            let (idx, d) = m.kneighbors(q.as_ref());
            for r in 0..nq {
                let row: Vec<f64> = (0..p).map(|j| q[(r, j)]).collect();
                let mut all: Vec<(f64, usize)> = (0..n)
                    .map(|i| (squared_distance(&row, &m.train[i * p..(i + 1) * p]), i))
                    .collect();
                all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                let want: Vec<usize> = all[..k].iter().map(|a| a.1).collect();
                assert_eq!(&idx[r * k..(r + 1) * k], &want[..], "n={n} p={p} row {r}");
                let want_d: Vec<f64> = all[..k].iter().map(|a| a.0).collect();
                assert_eq!(&d[r * k..(r + 1) * k], &want_d[..]);
            }
        }
    }

    #[test]
    fn errors() {
        let x = mat(&TRAIN);
        let err = fit(x.as_ref(), &Y_REG, 0, Weights::Uniform, false).unwrap_err();
        assert!(matches!(err, RuntimeError::Parameter(_)));
        let err = fit(x.as_ref(), &Y_REG[..5], 3, Weights::Uniform, false).unwrap_err();
        assert_eq!(
            err,
            RuntimeError::data(
                "Found input variables with inconsistent numbers of samples: [12, 5]"
            )
        );
        let mut bad = x.clone();
        bad[(3, 1)] = f64::NAN;
        let err = fit(bad.as_ref(), &Y_REG, 3, Weights::Uniform, false).unwrap_err();
        assert_eq!(err, RuntimeError::data("Input X contains NaN."));

        let small = fit(
            x.as_ref().subrows(0, 5),
            &Y_REG[..5],
            6,
            Weights::Uniform,
            true,
        )
        .unwrap();
        let err = small.predict(mat(&TEST[..3]).as_ref()).unwrap_err();
        assert_eq!(
            err,
            RuntimeError::data(
                "Expected n_neighbors <= n_samples_fit, but n_neighbors = 6, n_samples_fit = 5, n_samples = 3"
            )
        );
        let m = fit(x.as_ref(), &Y_REG, 3, Weights::Distance, false).unwrap();
        let err = m.predict(Mat::<f64>::zeros(2, 3).as_ref()).unwrap_err();
        assert_eq!(
            err,
            RuntimeError::data(
                "X has 3 features, but KNeighborsRegressor is expecting 2 features as input."
            )
        );
        let mut bad = mat(&TEST);
        bad[(0, 0)] = f64::NAN;
        assert_eq!(
            m.predict(bad.as_ref()).unwrap_err(),
            RuntimeError::data("Input X contains NaN.")
        );
        assert!(m.predict(Mat::<f64>::zeros(0, 2).as_ref()).is_err());
        // Overflowing distances do not panic.
        let huge = Mat::from_fn(4, 2, |i, _| if i % 2 == 0 { 1e300 } else { -1e300 });
        let m = fit(
            huge.as_ref(),
            &[0.0, 1.0, 0.0, 1.0],
            2,
            Weights::Uniform,
            true,
        )
        .unwrap();
        assert!(m.predict(huge.as_ref()).is_ok());
    }
}
