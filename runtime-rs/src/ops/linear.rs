//! Least squares shared by `LinearRegression` and `Ridge`.
//!
//! [`gram`] builds the (centred) normal equations once, together with their
//! eigendecomposition; [`solve`] then answers any penalty in `O(p^2)`.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

use crate::data::fitted::{Linear, StepName};
use crate::data::{Gram, Prediction};
use crate::error::{Result, RuntimeError};
use crate::kernels::check::{check_finite, check_n_features, check_x_y};
use crate::kernels::linalg::{
    centred_gram, check_gram_scale, chunked_sum, column_means, symmetric_eigen,
};

/// `scipy.linalg.lstsq(..., cond=tol)` cutoff used by sklearn 1.9's
/// `LinearRegression` (its `tol` parameter, default `1e-6`): singular values
/// `s_i <= tol * s_max` of the centred design are treated as zero.
const LSTSQ_COND: f64 = 1e-6;

/// Builds the centred normal equations of `x`, `y` and their eigendecomposition.
pub fn gram(x: MatRef<'_, f64>, y: &[f64], fit_intercept: bool) -> Result<Gram> {
    const NAME: &str = "LinearRegression";
    check_x_y(x, y, NAME)?;
    let (n, p) = x.shape();
    let x_mean = if fit_intercept {
        column_means(x)
    } else {
        vec![0.0; p]
    };
    let y_mean = if fit_intercept {
        chunked_sum(y) / n as f64
    } else {
        0.0
    };
    // The Gram serves LinearRegression and Ridge alike, so it names neither.
    check_gram_scale(x, &x_mean, "least squares")?;
    let (xtx, xty) = centred_gram(x, &x_mean, Some((y, y_mean)));
    let xty = xty.unwrap_or_default();
    if xtx.col_iter().any(|c| c.iter().any(|v| !v.is_finite()))
        || xty.iter().any(|v| !v.is_finite())
    {
        return Err(RuntimeError::numerical(
            "X^T X overflowed (values too large)",
        ));
    }
    let (eigenvalues, eigenvectors) = symmetric_eigen(xtx.as_ref())?;
    Ok(Gram {
        xtx,
        xty,
        x_mean,
        y_mean,
        eigenvalues,
        eigenvectors,
        n_rows: n,
    })
}

/// Solves the least-squares problem held by `gram` with an L2 penalty `alpha`.
///
/// `alpha > 0` matches `Ridge(solver="cholesky")`; `alpha == 0` matches
/// `LinearRegression` (minimum-norm `lstsq` solution with `cond=1e-6`).
pub fn solve(gram: &Gram, alpha: f64) -> Result<Linear> {
    if alpha.is_nan() || alpha < 0.0 {
        return Err(RuntimeError::parameter(format!(
            "The 'alpha' parameter of Ridge must be a float in the range [0.0, inf) or an array-like. Got {alpha} instead."
        )));
    }
    let p = gram.xty.len();
    let v = gram.eigenvectors.as_ref();
    if gram.x_mean.len() != p
        || gram.eigenvalues.len() != p
        || v.shape() != (p, p)
        || gram.xtx.shape() != (p, p)
    {
        return Err(RuntimeError::data("malformed Gram statistics"));
    }
    let name = if alpha == 0.0 {
        "LinearRegression"
    } else {
        "Ridge"
    };
    let lambda_max = gram.eigenvalues.iter().fold(0.0_f64, |m, &l| m.max(l));
    // A computed eigenvalue of a symmetric matrix is only accurate to about
    // p * eps * lambda_max (backward stability of the eigensolver).
    let noise = p as f64 * f64::EPSILON * lambda_max;
    // Spectral filter applied to each eigen-direction.
    let filter: Vec<f64> = gram
        .eigenvalues
        .iter()
        .map(|&l| {
            let l = l.max(0.0);
            if alpha == 0.0 {
                // lstsq(cond=c) zeroes singular values s <= c * s_max of Xc;
                // eigenvalues of Xc^T Xc are s^2, hence the squared cutoff.
                // c^2 = 1e-12 sits far above the rounding noise of a computed
                // zero eigenvalue (~ p * eps * lambda_max ~ 1e-14 for p = 200),
                // so exact rank deficiencies (duplicated columns, one-hot
                // blocks plus intercept) are always recognised as such.
                if l > LSTSQ_COND * LSTSQ_COND * lambda_max && l > 0.0 {
                    1.0 / l
                } else {
                    0.0
                }
            } else if l <= noise {
                // Numerically null direction: Xc^T yc has no component along
                // an exact null vector of Xc, so the exact ridge solution has
                // none either; keeping the rounding noise would divide it by
                // a possibly tiny alpha.
                0.0
            } else {
                let d = l + alpha;
                if d > 0.0 && d.is_finite() {
                    1.0 / d
                } else {
                    0.0
                }
            }
        })
        .collect();
    let apply = |rhs: &[f64]| -> Vec<f64> {
        // V diag(filter) V^T rhs
        let mut t = vec![0.0; p];
        for (k, tk) in t.iter_mut().enumerate() {
            let col = v.col(k);
            let dot: f64 = (0..p).map(|i| col[i] * rhs[i]).sum();
            *tk = dot * filter[k];
        }
        let mut out = vec![0.0; p];
        for (k, &tk) in t.iter().enumerate() {
            if tk != 0.0 {
                let col = v.col(k);
                for (i, o) in out.iter_mut().enumerate() {
                    *o += col[i] * tk;
                }
            }
        }
        out
    };
    let mut coef = apply(&gram.xty);
    // One step of iterative refinement against the stored normal equations
    // removes most of the error of the eigenvector basis.
    let a = gram.xtx.as_ref();
    let mut residual = gram.xty.clone();
    for j in 0..p {
        let wj = coef[j];
        if wj != 0.0 {
            let col = a.col(j);
            for (i, r) in residual.iter_mut().enumerate() {
                *r -= col[i] * wj;
            }
        }
        residual[j] -= alpha * wj;
    }
    let correction = apply(&residual);
    let refined: Vec<f64> = coef.iter().zip(&correction).map(|(w, c)| w + c).collect();
    if refined.iter().all(|w| w.is_finite()) {
        coef = refined;
    }
    let intercept = gram.y_mean
        - gram
            .x_mean
            .iter()
            .zip(&coef)
            .map(|(m, w)| m * w)
            .sum::<f64>();
    if !intercept.is_finite() || coef.iter().any(|w| !w.is_finite()) {
        return Err(RuntimeError::numerical(format!(
            "{name}: non-finite coefficients"
        )));
    }
    Ok(Linear {
        coef,
        intercept,
        name: StepName(name),
    })
}

impl Linear {
    /// Predicts `x . coef + intercept` for every row.
    pub fn predict(&self, x: MatRef<'_, f64>) -> Result<Prediction> {
        check_n_features(x.ncols(), self.coef.len(), self.name.0)?;
        check_finite(x, "X")?;
        let n = x.nrows();
        let mut values = vec![self.intercept; n];
        if n > 0 && !self.coef.is_empty() {
            let w = MatRef::from_column_major_slice(&self.coef, self.coef.len(), 1);
            let dst = MatMut::from_column_major_slice_mut(&mut values, n, 1);
            // A matrix-vector product is memory bound: one thread saturates it.
            matmul(dst, Accum::Add, x, w, 1.0, Par::Seq);
        }
        Ok(Prediction {
            values,
            classes: vec![],
            proba: None,
            decision: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::linalg::test_util::{assert_close, lcg_matrix, Lcg};
    use faer::Mat;

    // Reference values: /work/main/.venv/bin/python with sklearn 1.9.1 on the
    // data built by `design` / `rank_deficient` / `one_hot` below.
    // LinearRegression().fit(X, y).predict(Xt)
    const LR_PRED: [f64; 4] = [
        10.682620308100795,
        20.524820074410872,
        28.347032611641154,
        22.403578700570158,
    ];
    // LinearRegression(fit_intercept=False).fit(X, y).predict(Xt)
    const LR_NOINT_PRED: [f64; 4] = [
        10.285941673300355,
        21.170088908587882,
        29.39978220751885,
        23.481308906147618,
    ];
    // Ridge(alpha=0.5).fit(X, y).predict(Xt)
    const RIDGE_05_PRED: [f64; 4] = [
        10.724947729148465,
        20.518472107273382,
        28.291558122018994,
        22.390557844836582,
    ];
    // Ridge(alpha=10.0).fit(X, y).predict(Xt)
    const RIDGE_10_PRED: [f64; 4] = [
        11.307617107620072,
        20.349464538066623,
        27.434664550105825,
        22.11772731800477,
    ];
    // Ridge(alpha=10.0, fit_intercept=False).fit(X, y).predict(Xt)
    const RIDGE_10_NOINT_PRED: [f64; 4] = [
        10.859788932231794,
        21.07946233002061,
        28.573169372698633,
        23.320023885258827,
    ];
    // LinearRegression().fit(aug(X), y) (rank 5 of 7): predict(aug(Xt)),
    // predict on rows breaking the dependence, coef_ and intercept_.
    const LR_DEF_PRED: [f64; 4] = [
        10.682620308100809,
        20.524820074410886,
        28.347032611641144,
        22.403578700570154,
    ];
    const LR_DEF_BROKEN_PRED: [f64; 4] = [
        12.418337303479193,
        22.26053706978927,
        30.082749607019526,
        24.13929569594854,
    ];
    const LR_DEF_COEF: [f64; 7] = [
        0.7354192160511499,
        -1.4976648310284162,
        0.9975159413647974,
        2.999562712680868,
        -1.0003382622842394,
        0.7354192160511508,
        -0.5001488896636168,
    ];
    const LR_DEF_INTERCEPT: f64 = 4.0088224667929815;
    // LinearRegression() / Ridge(alpha=1.0) on one-hot(3 categories) + 2
    // numeric columns; the last test row has an unknown (all-zero) category.
    const LR_ONEHOT_PRED: [f64; 4] = [
        15.066341575934107,
        16.299874157365046,
        16.29080392583884,
        15.802035078717427,
    ];
    const RIDGE_ONEHOT_PRED: [f64; 4] = [
        15.109321495193921,
        16.341821272422557,
        16.287013950645164,
        15.836899569760682,
    ];

    fn design(seed: u64, n: usize) -> Mat<f64> {
        let mut x = lcg_matrix(seed, n, 5, -1.0, 1.0);
        for j in 0..5 {
            for i in 0..n {
                x[(i, j)] = x[(i, j)] * (j + 1) as f64 + 3.0 * j as f64;
            }
        }
        x
    }

    fn target(x: &Mat<f64>) -> Vec<f64> {
        let noise = lcg_matrix(2, x.nrows(), 1, -1.0, 1.0);
        let beta = [1.5, -2.0, 0.5, 3.0, -1.0];
        (0..x.nrows())
            .map(|i| (0..5).map(|j| x[(i, j)] * beta[j]).sum::<f64>() + 4.0 + 0.1 * noise[(i, 0)])
            .collect()
    }

    fn rank_deficient(x: &Mat<f64>) -> Mat<f64> {
        Mat::from_fn(x.nrows(), 7, |i, j| match j {
            5 => x[(i, 0)],
            6 => x[(i, 1)] + x[(i, 2)],
            _ => x[(i, j)],
        })
    }

    fn one_hot(cats: &[i64], x: &Mat<f64>) -> Mat<f64> {
        Mat::from_fn(cats.len(), 5, |i, j| match j {
            0..=2 => f64::from(cats[i] == j as i64),
            _ => x[(i, j - 3)],
        })
    }

    fn fit(x: &Mat<f64>, y: &[f64], fit_intercept: bool, alpha: f64) -> Linear {
        solve(&gram(x.as_ref(), y, fit_intercept).unwrap(), alpha).unwrap()
    }

    fn predict(m: &Linear, x: &Mat<f64>) -> Vec<f64> {
        m.predict(x.as_ref()).unwrap().values
    }

    #[test]
    fn matches_sklearn_full_rank() {
        let (x, xt) = (design(1, 60), design(3, 4));
        let y = target(&x);
        assert_close(&predict(&fit(&x, &y, true, 0.0), &xt), &LR_PRED, 1e-10);
        assert_close(
            &predict(&fit(&x, &y, false, 0.0), &xt),
            &LR_NOINT_PRED,
            1e-10,
        );
        assert_close(
            &predict(&fit(&x, &y, true, 0.5), &xt),
            &RIDGE_05_PRED,
            1e-10,
        );
        assert_close(
            &predict(&fit(&x, &y, true, 10.0), &xt),
            &RIDGE_10_PRED,
            1e-10,
        );
        assert_close(
            &predict(&fit(&x, &y, false, 10.0), &xt),
            &RIDGE_10_NOINT_PRED,
            1e-10,
        );
        let p = fit(&x, &y, true, 0.0).predict(xt.as_ref()).unwrap();
        assert!(p.classes.is_empty() && p.proba.is_none() && p.decision.is_none());
    }

    #[test]
    fn alphas_share_one_gram() {
        let (x, xt) = (design(1, 60), design(3, 4));
        let y = target(&x);
        let g = gram(x.as_ref(), &y, true).unwrap();
        for alpha in [0.0, 0.5, 10.0] {
            let shared = predict(&solve(&g, alpha).unwrap(), &xt);
            let direct = predict(&fit(&x, &y, true, alpha), &xt);
            assert_close(&shared, &direct, 1e-14);
        }
        assert_close(
            &predict(&solve(&g, 0.5).unwrap(), &xt),
            &RIDGE_05_PRED,
            1e-10,
        );
        assert_close(
            &predict(&solve(&g, 10.0).unwrap(), &xt),
            &RIDGE_10_PRED,
            1e-10,
        );
    }

    #[test]
    fn rank_deficient_is_minimum_norm() {
        let (x, xt) = (design(1, 60), design(3, 4));
        let y = target(&x);
        let (xa, xta) = (rank_deficient(&x), rank_deficient(&xt));
        let mut broken = xta.clone();
        for i in 0..broken.nrows() {
            broken[(i, 5)] += 1.0;
            broken[(i, 6)] -= 2.0;
        }
        let m = fit(&xa, &y, true, 0.0);
        assert_close(&predict(&m, &xta), &LR_DEF_PRED, 1e-9);
        assert_close(&predict(&m, &broken), &LR_DEF_BROKEN_PRED, 1e-9);
        assert_close(&m.coef, &LR_DEF_COEF, 1e-9);
        assert!((m.intercept - LR_DEF_INTERCEPT).abs() < 1e-9);
    }

    #[test]
    fn one_hot_with_intercept() {
        let (x, xt) = (design(1, 60), design(3, 4));
        let mut g = Lcg::new(7);
        let cats: Vec<i64> = (0..60).map(|_| (g.next() * 3.0) as i64).collect();
        let y: Vec<f64> = target(&x)
            .iter()
            .zip(&cats)
            .map(|(v, &c)| v + 2.0 * f64::from(c == 1) - 3.0 * f64::from(c == 2))
            .collect();
        let xo = one_hot(&cats, &x);
        let xto = one_hot(&[0, 1, 2, -1], &xt);
        assert_close(
            &predict(&fit(&xo, &y, true, 0.0), &xto),
            &LR_ONEHOT_PRED,
            1e-9,
        );
        assert_close(
            &predict(&fit(&xo, &y, true, 1.0), &xto),
            &RIDGE_ONEHOT_PRED,
            1e-10,
        );
    }

    #[test]
    fn errors() {
        let x = design(1, 10);
        let y = target(&x);
        let mut bad = x.clone();
        bad[(3, 2)] = f64::NAN;
        assert_eq!(
            gram(bad.as_ref(), &y, true).unwrap_err(),
            RuntimeError::Data("Input X contains NaN.".into())
        );
        bad[(3, 2)] = f64::INFINITY;
        assert!(matches!(
            gram(bad.as_ref(), &y, true),
            Err(RuntimeError::Data(_))
        ));
        let mut ybad = y.clone();
        ybad[0] = f64::NAN;
        assert_eq!(
            gram(x.as_ref(), &ybad, true).unwrap_err(),
            RuntimeError::Data("Input y contains NaN.".into())
        );
        assert!(matches!(
            gram(x.as_ref(), &y[..9], true),
            Err(RuntimeError::Data(_))
        ));
        let g = gram(x.as_ref(), &y, true).unwrap();
        assert!(matches!(solve(&g, -1.0), Err(RuntimeError::Parameter(_))));
        assert!(matches!(
            solve(&g, f64::NAN),
            Err(RuntimeError::Parameter(_))
        ));
        let m = solve(&g, 1.0).unwrap();
        assert!(matches!(
            m.predict(Mat::<f64>::zeros(3, 4).as_ref()),
            Err(RuntimeError::Data(_))
        ));
        assert_eq!(
            m.predict(Mat::<f64>::zeros(0, 5).as_ref())
                .unwrap()
                .values
                .len(),
            0
        );
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        assert!(gram(Mat::<f64>::zeros(0, 3).as_ref(), &[], true).is_err());
        assert!(gram(Mat::<f64>::zeros(4, 0).as_ref(), &[1.0; 4], true).is_err());
        // One row: everything centres to zero; the model predicts the mean.
        let m = fit(&Mat::from_fn(1, 2, |_, j| j as f64), &[3.0], true, 0.0);
        assert_eq!(
            predict(&m, &Mat::from_fn(2, 2, |i, j| (i * j) as f64)),
            vec![3.0, 3.0]
        );
        // Constant columns, huge values and alpha = inf.
        let x = Mat::from_fn(5, 2, |i, j| if j == 0 { 7.0 } else { i as f64 * 1e150 });
        let y = [1.0, 2.0, 3.0, 4.0, 5.0];
        for fi in [true, false] {
            match gram(x.as_ref(), &y, fi) {
                Ok(g) => {
                    for alpha in [0.0, 1.0, f64::INFINITY] {
                        let _ = solve(&g, alpha).map(|m| m.predict(x.as_ref()));
                    }
                }
                Err(e) => assert!(matches!(e, RuntimeError::Numerical(_))),
            }
        }
        let x = Mat::from_fn(5, 2, |i, j| (i + j) as f64 * 1e-300);
        assert!(matches!(
            gram(x.as_ref(), &y, true),
            Err(RuntimeError::Numerical(_))
        ));
    }

    /// Least squares is scale-invariant: on `X * s` the predictions for
    /// `Xt * s` are the unscaled ones while `X^T X` holds normal doubles; a
    /// design whose every product underflows (or overflows) is refused rather
    /// than solved as if it were zero.
    #[test]
    fn extreme_scales_are_exact_or_refused() {
        let (x, xt) = (design(1, 60), design(3, 4));
        let y = target(&x);
        let scaled =
            |m: &Mat<f64>, s: f64| Mat::from_fn(m.nrows(), m.ncols(), |i, j| m[(i, j)] * s);
        for s in [1e-150, 1e150] {
            let m = fit(&scaled(&x, s), &y, true, 0.0);
            assert_close(&predict(&m, &scaled(&xt, s)), &LR_PRED, 1e-8);
        }
        for (s, fit_intercept) in [(1e-170, true), (1e-170, false), (1e-300, true)] {
            let err = gram(scaled(&x, s).as_ref(), &y, fit_intercept).unwrap_err();
            assert!(
                matches!(&err, RuntimeError::Numerical(m) if m.contains("X^T X underflows")),
                "{err}"
            );
        }
        assert!(matches!(
            gram(scaled(&x, 1e300).as_ref(), &y, true),
            Err(RuntimeError::Numerical(m)) if m.contains("overflowed")
        ));
        // One tiny column beside normal ones is negligible (lstsq drops its
        // direction too): not an error.
        let mut mixed = x.clone();
        for i in 0..x.nrows() {
            mixed[(i, 4)] *= 1e-170;
        }
        assert!(fit(&mixed, &y, true, 0.0).coef[4].is_finite());
    }
}
