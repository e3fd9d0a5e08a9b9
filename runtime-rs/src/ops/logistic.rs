//! `LogisticRegression` (L2 penalty, lbfgs solver): binomial model for two
//! classes, multinomial (softmax) model for three or more.
//!
//! sklearn minimises `mean_i loss_i + ||W||^2 / (2 C n)` (intercepts are not
//! penalised) with scipy's L-BFGS-B and stops well before the exact optimum:
//! on StandardScaler'ed breast_cancer / wine / digits its probabilities
//! differ from the optimum's by up to 6e-3 / 2e-3 / 0.14. [`fit`] therefore
//! runs the same iteration ([`super::lbfgsb`]) on the same loss and
//! gradient, so results follow sklearn's and not merely the optimum. Loss
//! and gradient passes run through faer matmuls and rayon.

use faer::{Mat, MatRef};
use rayon::prelude::*;

use super::lbfgsb;
use crate::data::fitted::Logistic;
use crate::data::Prediction;
use crate::error::{Result, RuntimeError};
use crate::kernels::check::{check_finite, check_n_features, check_x_y};
use crate::kernels::linalg::{dot, mul_rows, mul_t_rows};

/// Rows per parallel block in the per-sample passes.
const ROW_BLOCK: usize = 4096;

/// Fits the model on `x` and class codes `y` as sklearn's lbfgs solver does.
pub fn fit(
    x: MatRef<'_, f64>,
    y: &[f64],
    c: f64,
    fit_intercept: bool,
    max_iter: usize,
    tol: f64,
) -> Result<Logistic> {
    let (classes, labels) = validate(x, y, c, tol)?;
    let problem = Problem::new(x, labels, classes.len(), fit_intercept, c);
    let (w, n_iter, converged) =
        lbfgsb::minimize(problem.dim(), |w| problem.value_grad(w), max_iter, tol);
    problem.finish(classes, w, n_iter, converged)
}

/// Parameter and data checks (sklearn's messages); returns the sorted class
/// codes and every row's class index.
fn validate(x: MatRef<'_, f64>, y: &[f64], c: f64, tol: f64) -> Result<(Vec<f64>, Vec<u32>)> {
    const NAME: &str = "LogisticRegression";
    if c.is_nan() || c <= 0.0 {
        return Err(RuntimeError::parameter(format!(
            "The 'C' parameter of {NAME} must be a float in the range (0.0, inf]. Got {c} instead."
        )));
    }
    if tol.is_nan() || tol < 0.0 {
        return Err(RuntimeError::parameter(format!(
            "The 'tol' parameter of {NAME} must be a float in the range [0.0, inf). Got {tol} instead."
        )));
    }
    check_x_y(x, y, NAME)?;
    let mut classes = y.to_vec();
    classes.sort_by(f64::total_cmp);
    classes.dedup();
    if classes.len() < 2 {
        return Err(RuntimeError::data(format!(
            "This solver needs samples of at least 2 classes in the data, but the data contains only one class: {}",
            format_class(classes[0])
        )));
    }
    let labels = y
        .iter()
        .map(|v| classes.binary_search_by(|c| c.total_cmp(v)).unwrap_or(0) as u32)
        .collect();
    Ok((classes, labels))
}

/// Prints a class code the way sklearn shows an integer label.
fn format_class(c: f64) -> String {
    if c.fract() == 0.0 && c.abs() < 1e15 {
        format!("{}", c as i64)
    } else {
        format!("{c}")
    }
}

impl Logistic {
    /// Class probabilities, predicted classes and (binary) decision values.
    pub fn predict(&self, x: MatRef<'_, f64>) -> Result<Prediction> {
        check_n_features(x.ncols(), self.coef.nrows(), "LogisticRegression")?;
        check_finite(x, "X")?;
        let n = x.nrows();
        let m = self.coef.ncols();
        let k = self.classes.len();
        let mut z = mul_rows(x, self.coef.as_ref());
        for (j, b) in self.intercept.iter().enumerate() {
            for v in z.col_mut(j).iter_mut() {
                *v += b;
            }
        }
        let mut proba = Mat::<f64>::zeros(n, k);
        let mut values = vec![0.0; n];
        let decision = if m == 1 {
            // sklearn: expit(decision) for classes[1], one minus that for
            // classes[0]; classes[1] is predicted iff decision > 0.
            let d: Vec<f64> = z.col(0).iter().copied().collect();
            for (i, &s) in d.iter().enumerate() {
                let p1 = expit(s);
                proba[(i, 0)] = 1.0 - p1;
                proba[(i, 1)] = p1;
                values[i] = self.classes[usize::from(s > 0.0)];
            }
            Some(d)
        } else {
            // Softmax of the decision values; argmax keeps the first maximum.
            let mut row = vec![0.0; k];
            for i in 0..n {
                let mut best = 0;
                for (j, r) in row.iter_mut().enumerate() {
                    *r = z[(i, j)];
                    if z[(i, j)] > z[(i, best)] {
                        best = j;
                    }
                }
                let mx = row[best];
                let mut sum = 0.0;
                for r in row.iter_mut() {
                    *r = (*r - mx).exp();
                    sum += *r;
                }
                for (j, r) in row.iter().enumerate() {
                    proba[(i, j)] = r / sum;
                }
                values[i] = self.classes[best];
            }
            None
        };
        Ok(Prediction {
            values,
            classes: self.classes.clone(),
            proba: Some(proba),
            decision,
        })
    }
}

/// The logistic sigmoid.
fn expit(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Half-binomial loss and its derivative in the raw score, written as
/// sklearn's `closs_grad_half_binomial` (same branches, same rounding).
fn binomial_loss_grad(y: f64, raw: f64) -> (f64, f64) {
    if raw <= -37.0 {
        let e = raw.exp();
        (e - y * raw, e - y)
    } else if raw <= -2.0 {
        let e = raw.exp();
        (e.ln_1p() - y * raw, ((1.0 - y) * e - y) / (1.0 + e))
    } else if raw <= 18.0 {
        let e = (-raw).exp();
        (e.ln_1p() + (1.0 - y) * raw, ((1.0 - y) - y * e) / (1.0 + e))
    } else {
        let e = (-raw).exp();
        (e + (1.0 - y) * raw, ((1.0 - y) - y * e) / (1.0 + e))
    }
}

/// The penalised objective the solver minimises.
///
/// Parameters are stored flat: the `p x m` coefficient block column by
/// column, then (with an intercept) the `m` intercepts.
struct Problem<'a> {
    x: MatRef<'a, f64>,
    labels: Vec<u32>,
    n: usize,
    p: usize,
    /// Number of coefficient vectors: 1 (binomial) or the number of classes.
    m: usize,
    fit_intercept: bool,
    /// `1 / (C n)`: penalty weight of the averaged objective.
    reg: f64,
}

impl<'a> Problem<'a> {
    fn new(
        x: MatRef<'a, f64>,
        labels: Vec<u32>,
        n_classes: usize,
        fit_intercept: bool,
        c: f64,
    ) -> Self {
        let (n, p) = x.shape();
        let m = if n_classes == 2 { 1 } else { n_classes };
        let reg = 1.0 / (c * n as f64);
        Problem {
            x,
            labels,
            n,
            p,
            m,
            fit_intercept,
            reg,
        }
    }

    /// Unpacks a solution into a [`Logistic`].
    fn finish(
        &self,
        classes: Vec<f64>,
        w: Vec<f64>,
        n_iter: usize,
        converged: bool,
    ) -> Result<Logistic> {
        let (p, m) = (self.p, self.m);
        let coef = Mat::from_fn(p, m, |i, j| w[j * p + i]);
        let intercept = if self.fit_intercept {
            w[p * m..].to_vec()
        } else {
            vec![0.0; m]
        };
        if w.iter().any(|v| !v.is_finite()) {
            return Err(RuntimeError::numerical(
                "LogisticRegression: non-finite coefficients",
            ));
        }
        Ok(Logistic {
            classes,
            coef,
            intercept,
            n_iter,
            converged,
        })
    }

    fn dim(&self) -> usize {
        self.m * (self.p + usize::from(self.fit_intercept))
    }

    fn split<'w>(&self, w: &'w [f64]) -> (MatRef<'w, f64>, &'w [f64]) {
        let k = self.p * self.m;
        (
            MatRef::from_column_major_slice(&w[..k], self.p, self.m),
            &w[k..],
        )
    }

    /// `X^T u / n` for the coefficient block and column sums of `u` over `n`
    /// for the intercepts, as a flat parameter-shaped vector.
    fn back(&self, u: &Mat<f64>) -> Vec<f64> {
        let (p, m) = (self.p, self.m);
        let mut out = vec![0.0; self.dim()];
        let xtu = mul_t_rows(self.x, u.as_ref(), 1.0 / self.n as f64);
        for (k, col) in xtu.col_iter().enumerate() {
            for (o, v) in out[k * p..(k + 1) * p].iter_mut().zip(col.iter()) {
                *o = *v;
            }
        }
        if self.fit_intercept {
            for (o, s) in out[p * m..].iter_mut().zip(column_sums(u)) {
                *o = s / self.n as f64;
            }
        }
        out
    }

    /// Objective at `w` and the derivative of each sample's loss in its raw
    /// scores (`n x m`).
    fn eval(&self, w: &[f64]) -> (f64, Mat<f64>) {
        let (coef, b) = self.split(w);
        // `X coef`; the per-sample passes add the intercepts.
        let mut scores = mul_rows(self.x, coef);
        let mut resid = Mat::<f64>::zeros(self.n, self.m);
        let m = self.m;
        let bias = |k: usize| b.get(k).copied().unwrap_or(0.0);
        let losses: Vec<f64> = scores
            .as_mut()
            .par_row_chunks_mut(ROW_BLOCK)
            .zip(resid.as_mut().par_row_chunks_mut(ROW_BLOCK))
            .zip(self.labels.par_chunks(ROW_BLOCK))
            .map(|((mut pz, mut r), lab)| {
                let mut loss = 0.0;
                let mut row = vec![0.0; m];
                for (i, &l) in lab.iter().enumerate() {
                    if m == 1 {
                        let raw = pz[(i, 0)] + bias(0);
                        let t = f64::from(l == 1);
                        let (li, gi) = binomial_loss_grad(t, raw);
                        loss += li;
                        r[(i, 0)] = gi;
                    } else {
                        // sklearn's HalfMultinomialLoss.loss_gradient.
                        let mut mx = pz[(i, 0)] + bias(0);
                        for (k, v) in row.iter_mut().enumerate() {
                            *v = pz[(i, k)] + bias(k);
                            if mx < *v {
                                mx = *v;
                            }
                        }
                        let mut sum = 0.0;
                        for (k, v) in row.iter().enumerate() {
                            let e = (v - mx).exp();
                            pz[(i, k)] = e;
                            sum += e;
                        }
                        loss += sum.ln() + mx - row[l as usize];
                        for k in 0..m {
                            let pr = pz[(i, k)] / sum;
                            r[(i, k)] = pr - f64::from(k == l as usize);
                        }
                    }
                }
                loss
            })
            .collect();
        let coef_sq = dot(&w[..self.p * m], &w[..self.p * m]);
        let f = losses.iter().sum::<f64>() / self.n as f64 + 0.5 * self.reg * coef_sq;
        (f, resid)
    }

    /// Objective and gradient at `w`.
    fn value_grad(&self, w: &[f64]) -> (f64, Vec<f64>) {
        let (f, resid) = self.eval(w);
        let mut g = self.back(&resid);
        for (gi, wi) in g.iter_mut().zip(&w[..self.p * self.m]) {
            *gi += self.reg * wi;
        }
        (f, g)
    }
}

/// Column sums of an `n x m` matrix, block by block (deterministic order).
fn column_sums(u: &Mat<f64>) -> Vec<f64> {
    let m = u.ncols();
    let parts: Vec<Vec<f64>> = u
        .as_ref()
        .par_row_chunks(ROW_BLOCK)
        .map(|blk| (0..m).map(|k| blk.col(k).iter().sum::<f64>()).collect())
        .collect();
    let mut out = vec![0.0; m];
    for part in parts {
        for (o, v) in out.iter_mut().zip(part) {
            *o += v;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::columns::test_util::flat;
    use crate::kernels::linalg::test_util::{assert_close, lcg_matrix};

    // Reference values: sklearn 1.9.1 on the data built by `data` below
    // (probability matrices flattened column by column).
    // LogisticRegression().fit(X, yb): predict_proba / decision_function / predict
    const BIN_PROBA: [f64; 8] = [
        0.9289125764746308,
        0.9778137782891497,
        0.07180397671563987,
        0.018014673980911722,
        0.07108742352536923,
        0.022186221710850263,
        0.9281960232843601,
        0.9819853260190883,
    ];
    const BIN_DECISION: [f64; 4] = [
        -2.570104192556167,
        -3.7858477886132595,
        2.559303081935196,
        3.998389718343092,
    ];
    const BIN_PRED: [f64; 4] = [0.0, 0.0, 1.0, 1.0];
    // LogisticRegression(C=0.5, fit_intercept=False).fit(X, yb).predict_proba
    const BIN_C05_NOINT_PROBA: [f64; 8] = [
        0.9203346220502814,
        0.9584754052681699,
        0.12070771190621021,
        0.06422671756574316,
        0.07966537794971859,
        0.04152459473183009,
        0.8792922880937898,
        0.9357732824342568,
    ];
    // LogisticRegression().fit(X, y3): predict_proba / predict (multinomial)
    const MULTI_PROBA: [f64; 12] = [
        0.8928579646410886,
        0.9647311710441087,
        0.04112421275535773,
        0.006167827438011935,
        0.10101006718293712,
        0.03441230209897383,
        0.6730120653223749,
        0.39631813359189233,
        0.006131968175974322,
        0.0008565268569174036,
        0.2858637219222672,
        0.5975140389700957,
    ];
    const MULTI_PRED: [f64; 4] = [0.0, 0.0, 1.0, 2.0];
    // Same fit with class codes {0, 2, 5}: predict
    const ODD_PRED: [f64; 4] = [0.0, 0.0, 2.0, 5.0];

    /// Features, binary labels and 3-class labels (see the reference script).
    fn data(seed: u64, n: usize) -> (Mat<f64>, Vec<f64>, Vec<f64>) {
        let scale = [1.0, 2.0, 0.5, 1.5];
        let shift = [0.0, 1.0, -1.0, 0.5];
        let mut x = lcg_matrix(seed, n, 4, -1.0, 1.0);
        for j in 0..4 {
            for i in 0..n {
                x[(i, j)] = x[(i, j)] * scale[j] + shift[j];
            }
        }
        let noise = lcg_matrix(seed + 100, n, 1, -1.0, 1.0);
        let s: Vec<f64> = (0..n)
            .map(|i| {
                1.5 * x[(i, 0)] - x[(i, 1)]
                    + 2.0 * x[(i, 2)]
                    + 0.3 * x[(i, 3)]
                    + 1.2 * noise[(i, 0)]
            })
            .collect();
        let yb = s.iter().map(|&v| f64::from(v > -2.3)).collect();
        let y3 = s
            .iter()
            .map(|&v| {
                if v < -2.5 {
                    0.0
                } else if v < -0.5 {
                    1.0
                } else {
                    2.0
                }
            })
            .collect();
        (x, yb, y3)
    }

    #[test]
    fn binary_matches_sklearn_lbfgs() {
        let (x, yb, _) = data(31, 90);
        let xt = data(32, 4).0;
        let m = fit(x.as_ref(), &yb, 1.0, true, 100, 1e-4).unwrap();
        let p = m.predict(xt.as_ref()).unwrap();
        assert_eq!(p.classes, vec![0.0, 1.0]);
        assert_close(&flat(p.proba.as_ref().unwrap()), &BIN_PROBA, 1e-9);
        assert_close(p.decision.as_ref().unwrap(), &BIN_DECISION, 1e-9);
        assert_eq!(p.values, BIN_PRED.to_vec());
        let m = fit(x.as_ref(), &yb, 0.5, false, 100, 1e-4).unwrap();
        let p = m.predict(xt.as_ref()).unwrap();
        assert_close(&flat(p.proba.as_ref().unwrap()), &BIN_C05_NOINT_PROBA, 1e-9);
        assert_eq!(m.intercept, vec![0.0]);
    }

    #[test]
    fn multinomial_matches_sklearn_lbfgs() {
        let (x, _, y3) = data(31, 90);
        let xt = data(32, 4).0;
        let p = fit(x.as_ref(), &y3, 1.0, true, 100, 1e-4)
            .unwrap()
            .predict(xt.as_ref())
            .unwrap();
        assert_eq!(p.classes, vec![0.0, 1.0, 2.0]);
        assert!(p.decision.is_none());
        assert_close(&flat(p.proba.as_ref().unwrap()), &MULTI_PROBA, 1e-9);
        assert_eq!(p.values, MULTI_PRED.to_vec());
        // Arbitrary (sorted) class codes only relabel the output.
        let odd: Vec<f64> = y3.iter().map(|&v| [0.0, 2.0, 5.0][v as usize]).collect();
        let q = fit(x.as_ref(), &odd, 1.0, true, 100, 1e-4)
            .unwrap()
            .predict(xt.as_ref())
            .unwrap();
        assert_eq!(q.classes, vec![0.0, 2.0, 5.0]);
        assert_eq!(q.values, ODD_PRED.to_vec());
        assert_close(&flat(q.proba.as_ref().unwrap()), &MULTI_PROBA, 1e-9);
    }

    #[test]
    fn probabilities_are_normalised() {
        let (x, _, y3) = data(31, 90);
        let p = fit(x.as_ref(), &y3, 1.0, true, 100, 1e-4)
            .unwrap()
            .predict(x.as_ref())
            .unwrap();
        let proba = p.proba.unwrap();
        for i in 0..proba.nrows() {
            let s: f64 = (0..3).map(|j| proba[(i, j)]).sum();
            assert!((s - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn errors() {
        let (x, yb, _) = data(31, 20);
        let zeros = vec![0.0; 20];
        assert_eq!(
            fit(x.as_ref(), &zeros, 1.0, true, 100, 1e-4).unwrap_err(),
            RuntimeError::Data(
                "This solver needs samples of at least 2 classes in the data, but the data contains only one class: 0"
                    .into()
            )
        );
        for c in [0.0, -1.0, f64::NAN] {
            assert!(matches!(
                fit(x.as_ref(), &yb, c, true, 100, 1e-4),
                Err(RuntimeError::Parameter(_))
            ));
        }
        assert!(matches!(
            fit(x.as_ref(), &yb, 1.0, true, 100, -1.0),
            Err(RuntimeError::Parameter(_))
        ));
        let mut bad = x.clone();
        bad[(2, 1)] = f64::NAN;
        assert_eq!(
            fit(bad.as_ref(), &yb, 1.0, true, 100, 1e-4).unwrap_err(),
            RuntimeError::Data("Input X contains NaN.".into())
        );
        let mut ybad = yb.clone();
        ybad[3] = f64::NAN;
        assert!(matches!(
            fit(x.as_ref(), &ybad, 1.0, true, 100, 1e-4),
            Err(RuntimeError::Data(_))
        ));
        assert!(matches!(
            fit(x.as_ref(), &yb[..10], 1.0, true, 100, 1e-4),
            Err(RuntimeError::Data(_))
        ));
        let m = fit(x.as_ref(), &yb, 1.0, true, 100, 1e-4).unwrap();
        assert!(matches!(
            m.predict(Mat::<f64>::zeros(2, 3).as_ref()),
            Err(RuntimeError::Data(_))
        ));
        assert!(matches!(
            m.predict(bad.as_ref()),
            Err(RuntimeError::Data(_))
        ));
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        assert!(fit(Mat::<f64>::zeros(0, 2).as_ref(), &[], 1.0, true, 100, 1e-4).is_err());
        assert!(fit(
            Mat::<f64>::zeros(2, 0).as_ref(),
            &[0.0, 1.0],
            1.0,
            true,
            100,
            1e-4
        )
        .is_err());
        let (x, yb, y3) = data(31, 20);
        let m = fit(x.as_ref(), &yb, 1.0, true, 100, 1e-4).unwrap();
        let p = m.predict(Mat::<f64>::zeros(0, 4).as_ref()).unwrap();
        assert_eq!(p.proba.unwrap().shape(), (0, 2));
        // Separable data without penalty, huge values, tiny budgets.
        let sep = Mat::from_fn(6, 1, |i, _| i as f64);
        let ys = [0.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        let m = fit(sep.as_ref(), &ys, f64::INFINITY, true, 100, 0.0).unwrap();
        let p = m.predict(sep.as_ref()).unwrap();
        assert_eq!(p.values, ys.to_vec());
        let huge = Mat::from_fn(20, 4, |i, j| x[(i, j)] * 1e150);
        let _ = fit(huge.as_ref(), &y3, 1.0, true, 100, 1e-4).map(|m| m.predict(huge.as_ref()));
        let _ = fit(x.as_ref(), &y3, 1e-300, false, 0, 1e-4).unwrap();
        let _ = fit(x.as_ref(), &y3, 1e300, true, 1, 1e-4).unwrap();
    }
}
