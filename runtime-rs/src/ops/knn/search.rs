//! Brute-force Euclidean neighbour search.
//!
//! Distances are computed tile by tile with `||a||^2 - 2ab + ||b||^2` (one
//! matrix product per tile, on mean-centred data); a per-row candidate set
//! keeps every training point that could still be among the `k` nearest given
//! a rigorous bound on the rounding error of that formula. The survivors are
//! re-ranked on exact squared distances (sum of squared differences), ties
//! going to the lower training index.
//!
//! Every training row left out of a candidate set has a lower bound above the
//! exact distances of `k` kept rows, hence sorts after them in the (exact
//! distance, index) order: the result is the first `k` rows of that total
//! order, so the first `j` of a `k`-search are exactly a `j`-search.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::candidates::{min_lower, within, Candidate, RowState};
use crate::data::neighbors::{Neighbors, Train};
use crate::error::{Result, RuntimeError};

/// Absolute slack added to the error bound (covers underflow).
const TINY: f64 = 1e-300;
/// Maximum number of test rows per tile.
const MAX_BLOCK_ROWS: usize = 128;
/// Maximum number of test rows sharing one centred copy of a training chunk.
const MAX_GROUP_ROWS: usize = 1024;
/// Maximum number of doubles in a tile or a centred training chunk (512 kB).
const TILE_DOUBLES: usize = 1 << 16;
/// Entries per pre-filter block of a tile column.
const SCAN_BLOCK: usize = 64;

impl Train {
    /// Prepares validated training rows (at least one row and one column,
    /// all finite).
    pub(super) fn new(x: MatRef<'_, f64>) -> Self {
        let (n, p) = (x.nrows(), x.ncols());
        let mut rows = vec![0.0; n * p];
        for j in 0..p {
            for i in 0..n {
                rows[i * p + j] = x[(i, j)];
            }
        }
        let mut mean = vec![0.0; p];
        for row in rows.chunks_exact(p) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += v;
            }
        }
        for m in &mut mean {
            *m /= n as f64;
        }
        // Error bound of `||a'||^2 + ||b'||^2 - 2 a'.b'` (centred data)
        // relative to `||a'||^2 + ||b'||^2`, generous enough to also cover the
        // rounding of the centring and of the exact recomputation.
        let tol = 8.0 * (p as f64 + 8.0) * f64::EPSILON;
        let norms: Vec<f64> = rows
            .chunks_exact(p)
            .map(|row| row.iter().zip(&mean).map(|(v, m)| (v - m) * (v - m)).sum())
            .collect();
        let norm_lo = norms.iter().map(|s| (1.0 - tol) * s).collect();
        let norm_hi: Vec<f64> = norms.iter().map(|s| (1.0 + tol) * s).collect();
        let max_norm = norm_hi.iter().fold(0.0, |a: f64, &b| a.max(b));
        Train {
            n_samples: n,
            n_features: p,
            rows,
            mean,
            norm_lo,
            norm_hi,
            tol,
            max_norm,
        }
    }

    pub(super) fn n_samples(&self) -> usize {
        self.n_samples
    }

    pub(super) fn n_features(&self) -> usize {
        self.n_features
    }

    /// The `min(k, n_samples)` nearest training rows of every row of the
    /// validated `x` (same number of columns), nearest first.
    pub(super) fn search(&self, x: MatRef<'_, f64>, k: usize) -> Neighbors {
        let nq = x.nrows();
        let k = k.min(self.n_samples);
        let mut index = vec![0usize; nq * k];
        let mut sq_dist = vec![f64::INFINITY; nq * k];
        if k > 0 && nq > 0 {
            let threads = rayon::current_num_threads().max(1);
            // Bound the candidate sets of a group (a few tens of MB) for large k.
            let group_cap = ((1 << 20) / (2 * k + 64)).max(8);
            let group = nq
                .div_ceil(4 * threads)
                .clamp(8, MAX_GROUP_ROWS)
                .min(group_cap);
            index
                .par_chunks_mut(group * k)
                .zip(sq_dist.par_chunks_mut(group * k))
                .enumerate()
                .for_each(|(b, (idx, d))| {
                    let r0 = b * group;
                    let r1 = (r0 + group).min(nq);
                    self.search_group(x, r0, r1, k, idx, d);
                });
        }
        Neighbors {
            n_train: self.n_samples,
            n_test: nq,
            k,
            index,
            sq_dist,
        }
    }

    /// Refuses neighbours whose exact squared distances cannot rank them: one
    /// overflowed to infinity (kept rows tie at `inf`), or one fell below the
    /// smallest normal double between rows that differ (it lost its relative
    /// precision, or became a false tie at zero). Duplicated rows are exact
    /// zeros and pass. `x` holds the test rows `found` was searched for.
    pub(super) fn check_distances(
        &self,
        x: MatRef<'_, f64>,
        found: &Neighbors,
        name: &str,
    ) -> Result<()> {
        let p = self.n_features;
        for r in 0..found.n_test {
            for (&i, &d) in found.indices(r).iter().zip(found.sq_distances(r)) {
                if !d.is_finite() {
                    return Err(RuntimeError::numerical(format!(
                        "{name}: squared distances overflow (values of X too large); \
                         rescale X"
                    )));
                }
                let differ = || (0..p).any(|j| x[(r, j)] != self.rows[i * p + j]);
                if d < f64::MIN_POSITIVE && differ() {
                    return Err(RuntimeError::numerical(format!(
                        "{name}: squared distances underflow (rows of X differ by less than \
                         1.5e-154); rescale X"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Nearest neighbours of test rows `r0..r1`: for each chunk of training
    /// rows (centred once), one tile product per block of test rows.
    fn search_group(
        &self,
        x: MatRef<'_, f64>,
        r0: usize,
        r1: usize,
        k: usize,
        index: &mut [usize],
        dist: &mut [f64],
    ) {
        let (p, n) = (self.n_features, self.n_samples);
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
                .zip(self.rows[c0 * p..c1 * p].chunks_exact(p))
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
                                        state.compact(k, test_row, &self.rows, p, &mut scratch);
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
                &self.rows,
                p,
                &mut index[i * k..(i + 1) * k],
                &mut dist[i * k..(i + 1) * k],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use faer::Mat;

    use super::super::candidates::squared_distance;
    use super::*;

    /// Deterministic pseudo-random numbers in [0, 1).
    fn lcg(state: &mut u64) -> f64 {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*state >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Brute force: every training row, sorted by (exact distance, index).
    fn brute(train: &Train, q: MatRef<'_, f64>, r: usize) -> Vec<(f64, usize)> {
        let p = train.n_features;
        let row: Vec<f64> = (0..p).map(|j| q[(r, j)]).collect();
        let mut all: Vec<(f64, usize)> = (0..train.n_samples)
            .map(|i| (squared_distance(&row, &train.rows[i * p..(i + 1) * p]), i))
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        all
    }

    /// The tiled search returns exactly the brute-force answer (full sort on
    /// exact distances, ties by index), also with a large offset, many
    /// duplicates, ragged tiles, several tile blocks and a row-major input;
    /// and the first `j` of a `k`-search are the `j`-search, for every `j`.
    #[test]
    fn tiled_search_is_exact() {
        let mut s = 7u64;
        for &(n, nq, p, k, offset, grid) in &[
            (5003usize, 300usize, 7usize, 5usize, 0.0, false),
            (2999, 257, 3, 8, 1e6, false),
            (2001, 1500, 4, 6, 0.0, true),
            (37, 9, 2, 37, 1e3, true),
            (301, 20, 1, 3, 0.0, true),
            (700, 40, 2, 90, 0.0, true),
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
            let train = Train::new(xt.transpose());
            let q = Mat::from_fn(nq, p, |_, _| gen(&mut s));
            let found = train.search(q.as_ref(), k);
            assert_eq!((found.k, found.n_test, found.n_train), (k, nq, n));
            for r in 0..nq {
                let all = brute(&train, q.as_ref(), r);
                let want: Vec<usize> = all[..k].iter().map(|a| a.1).collect();
                assert_eq!(found.indices(r), &want[..], "n={n} p={p} row {r}");
                let want_d: Vec<f64> = all[..k].iter().map(|a| a.0).collect();
                assert_eq!(found.sq_distances(r), &want_d[..]);
            }
            for j in [1, 2, k / 2, k - 1] {
                let fewer = train.search(q.as_ref(), j.max(1));
                let j = fewer.k;
                for r in 0..nq {
                    assert_eq!(fewer.indices(r), &found.indices(r)[..j], "j={j} row {r}");
                    assert_eq!(fewer.sq_distances(r), &found.sq_distances(r)[..j]);
                }
            }
        }
    }

    #[test]
    fn neighbour_ties_prefer_lower_index() {
        // 500 identical training points: every one ties, the first k win.
        let same = Mat::from_fn(500, 3, |_, j| j as f64);
        let found =
            Train::new(same.as_ref()).search(Mat::from_fn(2, 3, |i, j| (i + j) as f64).as_ref(), 3);
        assert_eq!(found.index, vec![0, 1, 2, 0, 1, 2]);
        // Four training points at distance 1 from the origin.
        let x = Mat::from_fn(5, 2, |i, j| {
            [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [3.0, 3.0]][i][j]
        });
        let found = Train::new(x.as_ref()).search(Mat::<f64>::zeros(1, 2).as_ref(), 2);
        assert_eq!(found.index, vec![0, 1]);
        assert_eq!(found.sq_dist, vec![1.0, 1.0]);
        // k beyond the training rows is clamped: all of them, in order.
        let found = Train::new(x.as_ref()).search(Mat::<f64>::zeros(1, 2).as_ref(), 9);
        assert_eq!(found.k, 5);
        assert_eq!(found.index, vec![0, 1, 2, 3, 4]);
        assert_eq!(found.sq_dist, vec![1.0, 1.0, 1.0, 1.0, 18.0]);
    }

    #[test]
    fn overflowing_distances_stay_ordered() {
        let huge = Mat::from_fn(4, 2, |i, _| if i % 2 == 0 { 1e300 } else { -1e300 });
        let found = Train::new(huge.as_ref()).search(huge.as_ref(), 4);
        for r in 0..4 {
            // Itself first (0), then its duplicate, then the two at +inf.
            let want: Vec<usize> = if r % 2 == 0 {
                vec![0, 2, 1, 3]
            } else {
                vec![1, 3, 0, 2]
            };
            assert_eq!(found.indices(r), &want[..]);
            assert_eq!(
                found.sq_distances(r),
                &[0.0, 0.0, f64::INFINITY, f64::INFINITY]
            );
        }
    }
}
