//! `PCA(n_components=k, whiten=...)`: exact principal components with
//! sklearn's sign convention (`svd_flip(..., u_based_decision=False)`).

use faer::{Mat, MatRef};

use crate::data::fitted::Pca;
use crate::data::Matrix;
use crate::error::{Result, RuntimeError};
use crate::kernels::check::{check_finite, check_min_shape, check_n_features};
use crate::kernels::linalg::{
    centred_gram, check_gram_scale, column_means, mul_rows, symmetric_eigen,
};

/// The solver sklearn's `svd_solver="auto"` would pick (used in messages).
fn auto_solver(n: usize, p: usize, k: usize) -> &'static str {
    if p <= 1000 && n >= 10 * p {
        "covariance_eigh"
    } else if n.max(p) <= 500 {
        "full"
    } else if k >= 1 && (k as f64) < 0.8 * n.min(p) as f64 {
        "randomized"
    } else {
        "full"
    }
}

/// Fits `n_components` principal axes of `x`.
pub fn fit(x: MatRef<'_, f64>, n_components: usize, whiten: bool) -> Result<Pca> {
    check_min_shape(x.nrows(), x.ncols(), Some("PCA"))?;
    check_finite(x, "X")?;
    let (n, p) = x.shape();
    let limit = n.min(p);
    let k = n_components;
    // sklearn's "full" / "covariance_eigh" solvers accept 0 (and return no
    // columns); the runtime requires at least one component.
    if k == 0 || k > limit {
        let low = if k == 0 { 1 } else { 0 };
        return Err(RuntimeError::parameter(format!(
            "n_components={k} must be between {low} and min(n_samples, n_features)={limit} with svd_solver='{}'",
            auto_solver(n, p, k)
        )));
    }
    let mean = column_means(x);
    // (axes as columns, squared singular values), both in decreasing order.
    let (mut axes, sq_singular) = if n >= p {
        // Covariance route (sklearn's "covariance_eigh"): eigendecomposition
        // of Xc^T Xc, centred exactly, reversed to decreasing order.
        check_gram_scale(x, &mean, "PCA")?;
        let (gram, _) = centred_gram(x, &mean, None);
        if gram.col_iter().any(|c| c.iter().any(|v| !v.is_finite())) {
            return Err(RuntimeError::numerical(
                "X^T X overflowed (values too large)",
            ));
        }
        let (values, vectors) = symmetric_eigen(gram.as_ref())?;
        let axes = Mat::from_fn(p, k, |i, j| vectors[(i, p - 1 - j)]);
        let sq: Vec<f64> = (0..k).map(|j| values[p - 1 - j].max(0.0)).collect();
        (axes, sq)
    } else {
        // Wide data: thin SVD of the centred matrix (sklearn's "full").
        let xc = Mat::from_fn(n, p, |i, j| x[(i, j)] - mean[j]);
        let svd = xc
            .thin_svd()
            .map_err(|e| RuntimeError::numerical(format!("SVD failed: {e:?}")))?;
        let v = svd.V();
        let s = svd.S().column_vector();
        let axes = Mat::from_fn(p, k, |i, j| v[(i, j)]);
        let sq: Vec<f64> = (0..k).map(|j| s[j] * s[j]).collect();
        (axes, sq)
    };
    if axes.col_iter().any(|c| c.iter().any(|v| !v.is_finite())) {
        return Err(RuntimeError::numerical(
            "PCA produced non-finite components",
        ));
    }
    // svd_flip(u_based_decision=False): the largest-|.| entry of each axis
    // (first one on ties, like np.argmax) is made positive.
    for j in 0..k {
        let mut col = axes.col_mut(j);
        let mut best = 0;
        for i in 1..p {
            if col[i].abs() > col[best].abs() {
                best = i;
            }
        }
        if col[best] < 0.0 {
            for i in 0..p {
                col[i] = -col[i];
            }
        }
    }
    // n == 1 gives 0 / 0 = NaN, as sklearn does.
    let explained_variance = sq_singular.iter().map(|s| s / (n as f64 - 1.0)).collect();
    Ok(Pca {
        mean,
        components: axes,
        explained_variance,
        whiten,
    })
}

impl Pca {
    /// Projects `x` on the principal axes (`rows x n_components`).
    pub fn transform(&self, x: MatRef<'_, f64>) -> Result<Matrix> {
        check_n_features(x.ncols(), self.mean.len(), "PCA")?;
        check_finite(x, "X")?;
        let (n, p) = x.shape();
        let k = self.components.ncols();
        let mut out = mul_rows(x, self.components.as_ref());
        for j in 0..k {
            // sklearn: X @ C.T - mean @ C.T, then / max(sqrt(var), eps).
            let axis = self.components.col(j);
            let shift: f64 = (0..p).map(|i| self.mean[i] * axis[i]).sum();
            let scale = if self.whiten {
                let s = self.explained_variance[j].sqrt();
                if s < f64::EPSILON {
                    f64::EPSILON
                } else {
                    s
                }
            } else {
                1.0
            };
            let mut col = out.col_mut(j);
            for i in 0..n {
                col[i] -= shift;
            }
            if self.whiten {
                for i in 0..n {
                    col[i] /= scale;
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::columns::test_util::flat;
    use crate::kernels::linalg::test_util::{assert_close, lcg_matrix};

    // Reference values: sklearn 1.9.1, `PCA(n_components=k, whiten=w)
    // .fit(X).transform(Xt)` on the data built by `correlated` / `lcg_matrix`
    // below (matrices flattened column by column).
    const T3: [f64; 9] = [
        -1.1534716477357243,
        3.313249571491859,
        -1.5583571206226807,
        -1.9270381015409477,
        -1.4687976248521153,
        0.05502194858885545,
        -0.028720478943618843,
        -0.04993555758607471,
        -1.2568595579756803,
    ];
    const T3W: [f64; 9] = [
        -0.7780451017808583,
        2.2348686290964563,
        -1.0511503485203932,
        -1.8223752844816918,
        -1.3890231268886148,
        0.05203355301183277,
        -0.0464233783231099,
        -0.08071513313355948,
        -2.031570116691437,
    ];
    // With 6 components the first three columns are T3 / T3W again; these
    // are the last three.
    const T6_TAIL: [f64; 9] = [
        0.5451130410418159,
        0.5495949859310088,
        0.6930986893813014,
        -0.04880461244125911,
        -0.11063379742299162,
        -0.18798243526412328,
        -0.04514558813244918,
        -0.002482539947671114,
        -0.031576647608332564,
    ];
    const T6W_TAIL: [f64; 9] = [
        1.1667620146981181,
        1.1763551864899473,
        1.4835110560950935,
        -0.224405383302204,
        -0.5086982249222082,
        -0.8643500753192135,
        -1.5258492747021808,
        -0.08390591274301024,
        -1.0672406063100885,
    ];
    // PCA(3).fit(X).components_.T and .explained_variance_
    const COMP3: [f64; 18] = [
        0.3545048040826335,
        0.0038315849788996825,
        0.07065383255355209,
        0.9193281985547955,
        -0.05760678338014277,
        -0.14434964715913073,
        0.059190854683813195,
        0.5165544360133637,
        -0.2647266607630514,
        0.014263100321917244,
        0.7884348220109563,
        -0.1943060674495738,
        0.03997144116379727,
        -0.14862290074118126,
        -0.34842488493356366,
        0.16372830321257625,
        0.19355624751199543,
        0.8891808806996498,
    ];
    const EV3: [f64; 3] = [2.1978816454849883, 1.118162619979895, 0.3827453052606701];
    // Wide data (5 x 8, sklearn solver "full"): PCA(4) and PCA(4, whiten=True).
    const WIDE4: [f64; 8] = [
        -0.7074862514313867,
        -0.08539430283352262,
        0.5740776712893927,
        -0.830365953716537,
        0.701145951629536,
        0.1127716238121494,
        0.9421252577902015,
        0.6810310227230185,
    ];
    const WIDE4W: [f64; 8] = [
        -0.5780244187897282,
        -0.06976812929358808,
        0.6625870177625852,
        -0.9583889575236142,
        1.1454473651805543,
        0.18423262526517553,
        3.7174656427058186,
        2.6872323055300193,
    ];
    // Tall data (80 x 4, sklearn solver "covariance_eigh"): PCA(2, whiten=True).
    const COV2W: [f64; 6] = [
        -0.12086631716157005,
        -0.13857647587873234,
        -0.4456808288851165,
        -0.028666744391197492,
        0.1501008439712605,
        -0.5791726742894323,
    ];

    fn correlated(seed: u64, n: usize) -> Mat<f64> {
        let mut x = lcg_matrix(seed, n, 6, -1.0, 1.0);
        for i in 0..n {
            x[(i, 3)] += 2.0 * x[(i, 0)];
            x[(i, 4)] = x[(i, 4)] * 0.1 + x[(i, 1)] - x[(i, 2)];
            for j in 0..6 {
                x[(i, j)] += 10.0 * j as f64;
            }
        }
        x
    }

    fn run(x: &Mat<f64>, xt: &Mat<f64>, k: usize, whiten: bool) -> Vec<f64> {
        flat(
            &fit(x.as_ref(), k, whiten)
                .unwrap()
                .transform(xt.as_ref())
                .unwrap(),
        )
    }

    #[test]
    fn matches_sklearn() {
        let (x, xt) = (correlated(11, 40), correlated(12, 3));
        assert_close(&run(&x, &xt, 3, false), &T3, 1e-10);
        assert_close(&run(&x, &xt, 3, true), &T3W, 1e-10);
        let t6 = [T3, T6_TAIL].concat();
        let t6w = [T3W, T6W_TAIL].concat();
        assert_close(&run(&x, &xt, 6, false), &t6, 1e-10);
        assert_close(&run(&x, &xt, 6, true), &t6w, 1e-10);
        let (w, wt) = (
            lcg_matrix(13, 5, 8, -1.0, 1.0),
            lcg_matrix(14, 2, 8, -1.0, 1.0),
        );
        assert_close(&run(&w, &wt, 4, false), &WIDE4, 1e-10);
        assert_close(&run(&w, &wt, 4, true), &WIDE4W, 1e-10);
        let mut c = lcg_matrix(15, 80, 4, -1.0, 1.0);
        for j in 0..4 {
            for i in 0..80 {
                c[(i, j)] *= (j + 1) as f64;
            }
        }
        assert_close(
            &run(&c, &lcg_matrix(16, 3, 4, -1.0, 1.0), 2, true),
            &COV2W,
            1e-10,
        );
    }

    #[test]
    fn sign_convention_and_variance() {
        let x = correlated(11, 40);
        let m = fit(x.as_ref(), 3, false).unwrap();
        assert_close(&flat(&m.components), &COMP3, 1e-10);
        assert_close(&m.explained_variance, &EV3, 1e-10);
        for c in m.components.col_iter() {
            let big = c
                .iter()
                .fold(0.0f64, |b, &v| if v.abs() > b.abs() { v } else { b });
            assert!(big > 0.0);
        }
        // Negating the data flips the axes back to the same convention.
        let neg = Mat::from_fn(40, 6, |i, j| -x[(i, j)]);
        let mn = fit(neg.as_ref(), 3, false).unwrap();
        assert_close(&flat(&mn.components), &COMP3, 1e-10);
    }

    /// A design whose every product underflows has no usable covariance:
    /// refused, not decomposed as a zero matrix.
    #[test]
    fn underflowing_covariance_is_refused() {
        let x = Mat::from_fn(8, 3, |i, j| ((i * 7 + j) % 5) as f64 * 1e-170);
        assert!(matches!(
            fit(x.as_ref(), 2, false),
            Err(RuntimeError::Numerical(m)) if m.contains("PCA: X^T X underflows")
        ));
    }

    #[test]
    fn errors_and_degenerate_inputs() {
        let x = correlated(11, 40);
        assert_eq!(
            fit(x.as_ref(), 7, false).unwrap_err(),
            RuntimeError::Parameter(
                "n_components=7 must be between 0 and min(n_samples, n_features)=6 with svd_solver='full'".into()
            )
        );
        assert!(matches!(
            fit(x.as_ref(), 0, false),
            Err(RuntimeError::Parameter(_))
        ));
        let mut bad = x.clone();
        bad[(0, 0)] = f64::NAN;
        assert_eq!(
            fit(bad.as_ref(), 2, false).unwrap_err(),
            RuntimeError::Data("Input X contains NaN.".into())
        );
        let m = fit(x.as_ref(), 2, true).unwrap();
        assert!(matches!(
            m.transform(bad.as_ref()),
            Err(RuntimeError::Data(_))
        ));
        assert!(matches!(
            m.transform(Mat::<f64>::zeros(2, 5).as_ref()),
            Err(RuntimeError::Data(_))
        ));
        assert_eq!(
            m.transform(Mat::<f64>::zeros(0, 6).as_ref())
                .unwrap()
                .shape(),
            (0, 2)
        );
        assert!(fit(Mat::<f64>::zeros(0, 3).as_ref(), 1, false).is_err());
        assert!(fit(Mat::<f64>::zeros(3, 0).as_ref(), 1, false).is_err());
        // One row, constant data, huge values: no panic.
        let one = Mat::from_fn(1, 3, |_, j| j as f64);
        let _ = fit(one.as_ref(), 1, true)
            .unwrap()
            .transform(one.as_ref())
            .unwrap();
        let flat_x = Mat::from_fn(6, 3, |_, j| j as f64);
        let t = fit(flat_x.as_ref(), 3, true)
            .unwrap()
            .transform(flat_x.as_ref())
            .unwrap();
        assert!(t.col_iter().all(|c| c.iter().all(|v| v.is_finite())));
        let huge = Mat::from_fn(6, 3, |i, j| ((i * 7 + j) % 5) as f64 * 1e200);
        let _ = fit(huge.as_ref(), 2, false).map(|m| m.transform(huge.as_ref()));
    }
}
