//! Dense linear algebra shared by the least-squares, PCA and logistic
//! kernels: column means, the centred Gram matrix, row-blocked products and
//! the symmetric eigendecomposition. Each helper fixes its summation order
//! independently of the thread count, so fits are reproducible.

use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::{Accum, Mat, MatMut, MatRef, Par, Side};
use rayon::prelude::*;

use crate::error::{Result, RuntimeError};

/// Dot product of two vectors, summed left to right.
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Sum of a slice in blocks (more accurate than one running sum).
pub(crate) fn chunked_sum(v: &[f64]) -> f64 {
    v.chunks(256).map(|c| c.iter().sum::<f64>()).sum()
}

/// Column means of `x` (`x` must have at least one row).
pub(crate) fn column_means(x: MatRef<'_, f64>) -> Vec<f64> {
    let n = x.nrows() as f64;
    (0..x.ncols())
        .into_par_iter()
        .map(|j| {
            let col = x.col(j);
            match col.try_as_col_major() {
                Some(c) => chunked_sum(c.as_slice()) / n,
                None => {
                    let v: Vec<f64> = col.iter().copied().collect();
                    chunked_sum(&v) / n
                }
            }
        })
        .collect()
}

/// Refuses a design whose centred Gram matrix underflows.
///
/// When every centred value is below `sqrt(f64::MIN_POSITIVE)` (~1.5e-154),
/// every product in `Xc^T Xc` is subnormal or zero: the matrix keeps no
/// relative precision, and a solve on it returns a wrong model silently.
/// (One tiny column beside normal ones is harmless: its direction is
/// negligible, as it is in scikit-learn.) Overflow shows as non-finite
/// entries and is checked on the result.
pub(crate) fn check_gram_scale(x: MatRef<'_, f64>, mean: &[f64], name: &str) -> Result<()> {
    let spread = (0..x.ncols())
        .into_par_iter()
        .map(|j| {
            let m = mean[j];
            x.col(j).iter().fold(0.0_f64, |a, &v| a.max((v - m).abs()))
        })
        .reduce(|| 0.0, f64::max);
    if spread > 0.0 && spread * spread < f64::MIN_POSITIVE {
        return Err(RuntimeError::numerical(format!(
            "{name}: X^T X underflows: the values of X vary by at most {spread:e} around \
             their means, so their products fall below the smallest normal double; \
             rescale X"
        )));
    }
    Ok(())
}

/// `(X - 1 mean^T)^T (X - 1 mean^T)` (full symmetric) and, when `y` is given
/// with its mean, `(X - 1 mean^T)^T (y - y_mean)`.
///
/// Rows are split into a fixed number of contiguous groups (independent of
/// the thread count, so results are reproducible); each group centres its
/// rows block by block into a small buffer and accumulates a sequential
/// faer product, and the group results are added in order. On tall-skinny
/// data this is several times faster than faer's own parallel matmul.
pub(crate) fn centred_gram(
    x: MatRef<'_, f64>,
    mean: &[f64],
    y: Option<(&[f64], f64)>,
) -> (Mat<f64>, Option<Vec<f64>>) {
    let (n, p) = x.shape();
    let mut xtx = Mat::<f64>::zeros(p, p);
    let mut xty = y.map(|_| vec![0.0; p]);
    if n == 0 || p == 0 {
        return (xtx, xty);
    }
    let block = ((1usize << 21) / p).max(256).min(n);
    // At most 16 partial Grams, and at most ~256 MB of them.
    let by_memory = ((1usize << 25) / (p * p)).max(1);
    let groups = n.div_ceil(block).min(16).min(by_memory);
    let group_rows = n.div_ceil(groups);
    let partials: Vec<(Mat<f64>, Vec<f64>)> = (0..groups)
        .into_par_iter()
        .map(|g| {
            let lo = (g * group_rows).min(n);
            let hi = ((g + 1) * group_rows).min(n);
            let mut acc = Mat::<f64>::zeros(p, p);
            let mut acc_y = vec![0.0; if y.is_some() { p } else { 0 }];
            let mut buf = Mat::<f64>::zeros(block.min(hi - lo), p);
            let mut ybuf = vec![0.0; block.min(hi - lo)];
            let mut start = lo;
            while start < hi {
                let len = block.min(hi - start);
                let xs = x.subrows(start, len);
                for (j, &m) in mean.iter().enumerate() {
                    let src = xs.col(j);
                    let mut dst = buf.col_mut(j);
                    for i in 0..len {
                        dst[i] = src[i] - m;
                    }
                }
                let b = buf.as_ref().subrows(0, len);
                triangular::matmul(
                    acc.as_mut(),
                    BlockStructure::TriangularLower,
                    Accum::Add,
                    b.transpose(),
                    BlockStructure::Rectangular,
                    b,
                    BlockStructure::Rectangular,
                    1.0,
                    Par::Seq,
                );
                if let Some((yv, ym)) = y {
                    for (d, s) in ybuf[..len].iter_mut().zip(&yv[start..start + len]) {
                        *d = s - ym;
                    }
                    let yc = MatRef::from_column_major_slice(&ybuf[..len], len, 1);
                    let dst = MatMut::from_column_major_slice_mut(&mut acc_y, p, 1);
                    matmul(dst, Accum::Add, b.transpose(), yc, 1.0, Par::Seq);
                }
                start += len;
            }
            (acc, acc_y)
        })
        .collect();
    for (acc, acc_y) in partials {
        for j in 0..p {
            for i in j..p {
                xtx[(i, j)] += acc[(i, j)];
            }
        }
        if let Some(t) = xty.as_mut() {
            for (a, b) in t.iter_mut().zip(&acc_y) {
                *a += b;
            }
        }
    }
    for j in 0..p {
        for i in 0..j {
            xtx[(i, j)] = xtx[(j, i)];
        }
    }
    (xtx, xty)
}

/// Rows per block in the blocked products below.
const PRODUCT_ROWS: usize = 4096;

/// `x w`, with row blocks multiplied in parallel (faer's parallel matmul is
/// slow on tall-skinny products). A single column is memory bound and runs
/// sequentially.
pub(crate) fn mul_rows(x: MatRef<'_, f64>, w: MatRef<'_, f64>) -> Mat<f64> {
    let (n, p) = x.shape();
    let m = w.ncols();
    let mut z = Mat::<f64>::zeros(n, m);
    if n == 0 || m == 0 || p == 0 {
        return z;
    }
    if m == 1 || n * p * m < 1 << 18 {
        matmul(z.as_mut(), Accum::Replace, x, w, 1.0, Par::Seq);
        return z;
    }
    z.as_mut()
        .par_row_chunks_mut(PRODUCT_ROWS)
        .enumerate()
        .for_each(|(b, zb)| {
            let rows = zb.nrows();
            let xb = x.subrows(b * PRODUCT_ROWS, rows);
            matmul(zb, Accum::Replace, xb, w, 1.0, Par::Seq);
        });
    z
}

/// `alpha x^T u` (`p x m`), with row blocks in parallel and the partial
/// products added in order (reproducible whatever the thread count).
pub(crate) fn mul_t_rows(x: MatRef<'_, f64>, u: MatRef<'_, f64>, alpha: f64) -> Mat<f64> {
    let (n, p) = x.shape();
    let m = u.ncols();
    let mut out = Mat::<f64>::zeros(p, m);
    if n == 0 || m == 0 || p == 0 {
        return out;
    }
    if m == 1 || n * p * m < 1 << 18 {
        matmul(
            out.as_mut(),
            Accum::Replace,
            x.transpose(),
            u,
            alpha,
            Par::Seq,
        );
        return out;
    }
    let parts: Vec<Mat<f64>> = u
        .par_row_chunks(PRODUCT_ROWS)
        .enumerate()
        .map(|(b, ub)| {
            let xb = x.subrows(b * PRODUCT_ROWS, ub.nrows());
            let mut part = Mat::<f64>::zeros(p, m);
            matmul(
                part.as_mut(),
                Accum::Replace,
                xb.transpose(),
                ub,
                alpha,
                Par::Seq,
            );
            part
        })
        .collect();
    for part in parts {
        out += part;
    }
    out
}

/// Eigendecomposition of a symmetric matrix: ascending values, vectors as columns.
pub(crate) fn symmetric_eigen(a: MatRef<'_, f64>) -> Result<(Vec<f64>, Mat<f64>)> {
    let p = a.nrows();
    if p == 0 {
        return Ok((vec![], Mat::zeros(0, 0)));
    }
    let evd = a
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| RuntimeError::numerical(format!("eigendecomposition failed: {e:?}")))?;
    let values: Vec<f64> = evd.S().column_vector().iter().copied().collect();
    let vectors = evd.U().to_owned();
    if values.iter().any(|v| !v.is_finite()) {
        return Err(RuntimeError::numerical(
            "eigendecomposition produced non-finite values",
        ));
    }
    Ok((values, vectors))
}

/// Helpers for the model kernels' unit tests.
#[cfg(test)]
pub(crate) mod test_util {
    use faer::Mat;

    /// Deterministic uniform numbers shared with the Python reference scripts.
    pub(crate) struct Lcg(u64);

    impl Lcg {
        pub(crate) fn new(seed: u64) -> Self {
            Lcg(seed)
        }
        pub(crate) fn next(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// `n x p` matrix of uniforms in `[lo, hi)`, filled column by column
    /// (same as `matrix()` in the reference scripts).
    pub(crate) fn lcg_matrix(seed: u64, n: usize, p: usize, lo: f64, hi: f64) -> Mat<f64> {
        let mut g = Lcg::new(seed);
        let mut m = Mat::zeros(n, p);
        for j in 0..p {
            for i in 0..n {
                m[(i, j)] = lo + (hi - lo) * g.next();
            }
        }
        m
    }

    pub(crate) fn assert_close(got: &[f64], want: &[f64], tol: f64) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g - w).abs() <= tol * (1.0 + w.abs()),
                "got {got:?}\nwant {want:?}"
            );
        }
    }
}
