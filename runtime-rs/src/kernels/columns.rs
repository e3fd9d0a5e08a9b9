//! Column-wise building blocks shared by the preprocessing kernels (scalers,
//! imputer, one-hot, polynomial, select) and the metrics: column access,
//! column-parallel work and NumPy's pairwise summation, so that every kernel
//! splits work and sums exactly like scikit-learn / NumPy.

use std::borrow::Cow;

use faer::{ColMut, Mat, MatRef};
use rayon::prelude::*;

use crate::data::Matrix;

/// Below this many elements, column-parallel work costs more than it saves.
const PAR_MIN_ELEMENTS: usize = 100_000;

/// Whether a `rows x cols` column-wise job is worth spreading over threads.
pub(crate) fn parallel(rows: usize, cols: usize) -> bool {
    cols > 1 && rows.saturating_mul(cols) > PAR_MIN_ELEMENTS
}

/// The columns of `x` as slices: borrowed when contiguous, copied otherwise.
pub(crate) fn columns(x: MatRef<'_, f64>) -> Vec<Cow<'_, [f64]>> {
    (0..x.ncols())
        .map(|j| {
            let col = x.col(j);
            match col.try_as_col_major() {
                Some(c) => Cow::Borrowed(c.as_slice()),
                None => Cow::Owned(col.iter().copied().collect()),
            }
        })
        .collect()
}

/// `f(j)` for every column index, in parallel when `par`.
pub(crate) fn map_columns<T, F>(ncols: usize, par: bool, f: F) -> Vec<T>
where
    T: Send,
    F: Fn(usize) -> T + Sync + Send,
{
    if par {
        (0..ncols).into_par_iter().map(f).collect()
    } else {
        (0..ncols).map(f).collect()
    }
}

/// Builds a `nrows x ncols` matrix by letting `fill(j, column)` write every
/// element of each output column, in parallel when `par`.
pub(crate) fn build_matrix<F>(nrows: usize, ncols: usize, par: bool, fill: F) -> Matrix
where
    F: Fn(usize, &mut [f64]) + Sync + Send,
{
    let mut out = Mat::<f64>::zeros(nrows, ncols);
    if par {
        out.par_col_iter_mut()
            .enumerate()
            .for_each(|(j, col)| write_col(col, |s| fill(j, s)));
    } else {
        out.col_iter_mut()
            .enumerate()
            .for_each(|(j, col)| write_col(col, |s| fill(j, s)));
    }
    out
}

fn write_col(mut col: ColMut<'_, f64>, fill: impl FnOnce(&mut [f64])) {
    if let Some(c) = col.as_mut().try_as_col_major_mut() {
        fill(c.as_slice_mut());
        return;
    }
    // Owned matrices always have contiguous columns; this only keeps the
    // helper total.
    let mut buf = vec![0.0; col.nrows()];
    fill(&mut buf);
    for (dst, v) in col.iter_mut().zip(buf) {
        *dst = v;
    }
}

/// NumPy's `np.sum` of a contiguous `float64` array, bit for bit.
pub(crate) fn numpy_sum(a: &[f64]) -> f64 {
    let [s] = pairwise_sum(a.len(), |i| [a[i]]);
    s
}

/// numpy's pairwise summation (`pairwise_sum` in `loops_utils.h.src`) of
/// `K` sequences at once, element `i` of each given by `f(i)`, preceded by
/// the reduction's initial `0.0`. Bit-identical to `np.sum` over a
/// contiguous axis (e.g. `X.sum(axis=0)` for Fortran-ordered `X`).
pub(crate) fn pairwise_sum<const K: usize>(n: usize, f: impl Fn(usize) -> [f64; K]) -> [f64; K] {
    let s = pairwise_block(0, n, &f);
    s.map(|v| 0.0 + v)
}

fn pairwise_block<const K: usize>(
    start: usize,
    n: usize,
    f: &impl Fn(usize) -> [f64; K],
) -> [f64; K] {
    const BLOCK: usize = 128;
    if n < 8 {
        let mut res = [0.0; K];
        for i in start..start + n {
            add_into(&mut res, f(i));
        }
        res
    } else if n <= BLOCK {
        let mut r: [[f64; K]; 8] = std::array::from_fn(|k| f(start + k));
        let unrolled_end = start + n - n % 8;
        let mut i = start + 8;
        while i < unrolled_end {
            for (k, acc) in r.iter_mut().enumerate() {
                add_into(acc, f(i + k));
            }
            i += 8;
        }
        let mut res: [f64; K] = std::array::from_fn(|c| {
            ((r[0][c] + r[1][c]) + (r[2][c] + r[3][c]))
                + ((r[4][c] + r[5][c]) + (r[6][c] + r[7][c]))
        });
        while i < start + n {
            add_into(&mut res, f(i));
            i += 1;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        let a = pairwise_block(start, n2, f);
        let b = pairwise_block(start + n2, n - n2, f);
        std::array::from_fn(|c| a[c] + b[c])
    }
}

fn add_into<const K: usize>(acc: &mut [f64; K], v: [f64; K]) {
    for (a, b) in acc.iter_mut().zip(v) {
        *a += b;
    }
}

/// Helpers for the kernels' unit tests.
#[cfg(test)]
pub(crate) mod test_util {
    use faer::{Mat, MatRef};

    use crate::data::Matrix;
    use crate::error::Result;

    /// Matrix from rows.
    pub(crate) fn mat(rows: &[&[f64]]) -> Matrix {
        let p = rows.first().map_or(0, |r| r.len());
        Mat::from_fn(rows.len(), p, |i, j| rows[i][j])
    }

    /// Two categorical columns as the encoders' tests fit them: repeated codes,
    /// a NaN, and `-0.0` beside `0.0` (one category).
    pub(crate) fn categorical_train() -> Matrix {
        mat(&[
            &[3.0, 1.0],
            &[1.0, f64::NAN],
            &[2.0, 1.0],
            &[3.0, -0.0],
            &[1.0, 0.0],
        ])
    }

    /// Deterministic data that the Python reference scripts rebuild bit for
    /// bit: `((i*37 + j*101) % 97) / 13.0 + offset[j]`, NaN where
    /// `(i*(j+1)) % nan_mod == 3`.
    pub(crate) fn synth(n: usize, offset: &[f64], nan_mod: Option<usize>) -> Matrix {
        Mat::from_fn(n, offset.len(), |i, j| match nan_mod {
            Some(m) if (i * (j + 1)) % m == 3 => f64::NAN,
            _ => ((i * 37 + j * 101) % 97) as f64 / 13.0 + offset[j],
        })
    }

    /// Column-major contents.
    pub(crate) fn flat(m: &Matrix) -> Vec<f64> {
        (0..m.ncols())
            .flat_map(|j| (0..m.nrows()).map(move |i| m[(i, j)]))
            .collect()
    }

    /// Element-wise equality to 1e-12 relative; NaN matches NaN.
    #[track_caller]
    pub(crate) fn assert_close(got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "length: got {got:?}, want {want:?}");
        for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
            let ok = if w.is_nan() {
                g.is_nan()
            } else if w.is_infinite() {
                g == w
            } else {
                (g - w).abs() <= 1e-12 * w.abs().max(f64::MIN_POSITIVE)
            };
            assert!(
                ok,
                "element {k}: got {g:?}, want {w:?}\n got {got:?}\nwant {want:?}"
            );
        }
    }

    /// The transform-time shape checks every column kernel shares: a
    /// `rows x wrong_width` input gets scikit-learn's feature-count message
    /// and an input without rows is refused.
    #[track_caller]
    pub(crate) fn assert_rejects_shapes(
        transform: impl Fn(MatRef<'_, f64>) -> Result<Matrix>,
        (rows, wrong_width): (usize, usize),
        n_features: usize,
        estimator: &str,
    ) {
        assert_eq!(
            transform(Mat::<f64>::zeros(rows, wrong_width).as_ref())
                .unwrap_err()
                .to_string(),
            format!(
                "X has {wrong_width} features, but {estimator} is expecting {n_features} features as input."
            )
        );
        assert!(transform(Mat::<f64>::zeros(0, n_features).as_ref()).is_err());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_sum_replicates_numpy_structure() {
        // np.sum(np.arange(n) * 0.1 + 1e5 / 3) around numpy's block boundaries:
        // bit-identical.
        for (n, want) in [
            (7usize, 233335.43333333335),
            (8, 266669.4666666667),
            (15, 500010.50000000006),
            (128, 4267479.466666667),
            (129, 4300825.6),
            (1000, 33383283.333333336),
            (4099, 137473218.43333334),
        ] {
            let [s] = pairwise_sum(n, |i| [i as f64 * 0.1 + 1e5 / 3.0]);
            assert_eq!(s, want, "n={n}");
        }
        let [s] = pairwise_sum(0, |_| [1.0]);
        assert_eq!(s, 0.0);
    }

    #[test]
    fn numpy_sum_matches_pairwise_blocks() {
        // np.sum of [1e16, 1, -1e16, 1, ...] depends on the summation order;
        // np.sum(np.array(v)) == 9.0 where a left-to-right sum gives 0.0.
        let v: Vec<f64> = (0..300)
            .map(|i| {
                if i % 3 == 0 {
                    1e16
                } else if i % 3 == 1 {
                    1.0
                } else {
                    -1e16
                }
            })
            .collect();
        assert_eq!(numpy_sum(&v), 9.0);
    }
}
