//! `LogisticRegression` (L2 penalty, lbfgs solver): binomial model for two
//! classes, multinomial (softmax) model for three or more.
//!
//! sklearn minimises `mean_i loss_i + ||W||^2 / (2 C n)` (intercepts are not
//! penalised) with scipy's L-BFGS-B (`maxiter=max_iter`, `gtol=tol`,
//! `ftol=64 eps`, `maxls=50`, 10 corrections) and stops well before the exact
//! optimum: on StandardScaler'ed breast_cancer / wine / digits its
//! probabilities differ from the optimum's by up to 6e-3 / 2e-3 / 0.14.
//! [`fit`] therefore replays that L-BFGS-B iteration (quasi-Newton direction,
//! Moré-Thuente line search, stopping rules), so results follow sklearn's and
//! not merely the optimum. [`fit_exact`] instead solves the problem to machine
//! precision with a preconditioned Newton-CG method (the point sklearn's
//! `newton-cg` / `newton-cholesky` solvers converge to). Loss and gradient
//! passes run through faer matmuls and rayon.

use std::collections::VecDeque;

use faer::{Mat, MatRef};
use rayon::prelude::*;

use super::linear::{
    centred_gram, check_finite, check_n_features, check_shape, check_targets, column_means,
    mul_rows, mul_t_rows, symmetric_eigen,
};
use crate::error::{Result, RuntimeError};
use crate::value::{Matrix, Prediction};

/// Rows per parallel block in the per-sample passes.
const ROW_BLOCK: usize = 4096;

/// A fitted logistic regression.
#[derive(Debug, Clone)]
pub struct Logistic {
    /// Class codes seen in fit, ascending.
    pub classes: Vec<f64>,
    /// Coefficients, `n_features x m` with `m = 1` for binary problems (the
    /// score of `classes[1]`) and `m = n_classes` otherwise.
    pub coef: Matrix,
    /// Intercepts, length `m` (zeros without `fit_intercept`).
    pub intercept: Vec<f64>,
    /// Solver iterations used.
    pub n_iter: usize,
    /// Whether the solver met its stopping criterion before `max_iter`.
    pub converged: bool,
}

/// Fits the model on `x` and class codes `y` as sklearn's lbfgs solver does.
pub fn fit(
    x: MatRef<'_, f64>,
    y: &[f64],
    c: f64,
    fit_intercept: bool,
    max_iter: u32,
    tol: f64,
) -> Result<Logistic> {
    let (classes, labels) = validate(x, y, c, tol)?;
    let problem = Problem::new(x, labels, classes.len(), fit_intercept, c, false)?;
    let (w, n_iter, converged) = problem.lbfgsb(max_iter as usize, tol);
    problem.finish(classes, w, n_iter, converged)
}

/// Like [`fit`], but solves the penalised problem to machine precision with at
/// most `max_iter` Newton steps (`tol` is only validated).
pub fn fit_exact(
    x: MatRef<'_, f64>,
    y: &[f64],
    c: f64,
    fit_intercept: bool,
    max_iter: u32,
    tol: f64,
) -> Result<Logistic> {
    let (classes, labels) = validate(x, y, c, tol)?;
    let problem = Problem::new(x, labels, classes.len(), fit_intercept, c, true)?;
    let (w, n_iter, converged) = problem.newton(max_iter.max(1) as usize);
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
    check_shape(x, 1, NAME)?;
    check_finite(x, "X")?;
    check_targets(x, y)?;
    if y.iter().any(|v| v.is_nan()) {
        return Err(RuntimeError::data("Input y contains NaN."));
    }
    if y.iter().any(|v| !v.is_finite()) {
        return Err(RuntimeError::data(
            "Input y contains infinity or a value too large for dtype('float64').",
        ));
    }
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
        check_n_features(x, self.coef.nrows(), "LogisticRegression")?;
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

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm2(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

fn norm_inf(a: &[f64]) -> f64 {
    a.iter().fold(0.0, |m: f64, v| m.max(v.abs()))
}

/// The penalised objective and everything the solvers need about it.
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
    /// Only built for the Newton solver.
    pre: Option<Preconditioner>,
}

/// Böhning bound of the Hessian, in coordinates where the intercept is
/// decoupled from centred features: `c * blockdiag(Xc^T Xc / n, 1) + reg`.
struct Preconditioner {
    /// Column means (zeros without intercept: the Gram is then uncentred).
    mean: Vec<f64>,
    /// Eigenvectors of the (centred) Gram `/ n`.
    q: Mat<f64>,
    /// `1 / (c * lambda + reg)` per eigen-direction.
    inv: Vec<f64>,
    /// Curvature bound `c` (1/4 binomial, 1/2 multinomial).
    c: f64,
}

/// Objective value at a point with per-sample probabilities and residuals.
struct Eval {
    f: f64,
    /// `n x m`: P(classes[1]) (binomial) or softmax probabilities.
    prob: Mat<f64>,
    /// `n x m`: derivative of each sample's loss in its raw scores.
    resid: Mat<f64>,
}

impl<'a> Problem<'a> {
    fn new(
        x: MatRef<'a, f64>,
        labels: Vec<u32>,
        n_classes: usize,
        fit_intercept: bool,
        c: f64,
        precondition: bool,
    ) -> Result<Self> {
        let (n, p) = x.shape();
        let m = if n_classes == 2 { 1 } else { n_classes };
        let reg = 1.0 / (c * n as f64);
        let pre = if precondition {
            Some(Preconditioner::new(x, fit_intercept, m, reg)?)
        } else {
            None
        };
        Ok(Problem {
            x,
            labels,
            n,
            p,
            m,
            fit_intercept,
            reg,
            pre,
        })
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

    /// `X coef` (the intercept is added by the per-sample passes).
    fn scores(&self, coef: MatRef<'_, f64>) -> Mat<f64> {
        mul_rows(self.x, coef)
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

    /// Objective, probabilities and residuals at `w`.
    fn eval(&self, w: &[f64]) -> Eval {
        let (coef, b) = self.split(w);
        let mut prob = self.scores(coef);
        let mut resid = Mat::<f64>::zeros(self.n, self.m);
        let m = self.m;
        let bias = |k: usize| b.get(k).copied().unwrap_or(0.0);
        let losses: Vec<f64> = prob
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
                        pz[(i, 0)] = expit(raw);
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
                            pz[(i, k)] = pr;
                            r[(i, k)] = pr - f64::from(k == l as usize);
                        }
                    }
                }
                loss
            })
            .collect();
        let coef_sq = dot(&w[..self.p * m], &w[..self.p * m]);
        let f = losses.iter().sum::<f64>() / self.n as f64 + 0.5 * self.reg * coef_sq;
        Eval { f, prob, resid }
    }

    /// Gradient of the objective at `w` given its evaluation.
    fn gradient(&self, w: &[f64], e: &Eval) -> Vec<f64> {
        let mut g = self.back(&e.resid);
        for (gi, wi) in g.iter_mut().zip(&w[..self.p * self.m]) {
            *gi += self.reg * wi;
        }
        g
    }

    /// Objective and gradient at `w`.
    fn value_grad(&self, w: &[f64]) -> (f64, Vec<f64>) {
        let e = self.eval(w);
        let g = self.gradient(w, &e);
        (e.f, g)
    }

    /// scipy's L-BFGS-B (v3.0, as called by sklearn's lbfgs solver) on this
    /// unconstrained problem, from zero. Without bounds the generalised
    /// Cauchy point and subspace minimisation reduce to the quasi-Newton step
    /// `-H g` (`H` the inverse of the compact L-BFGS matrix, `B0 = theta I`),
    /// computed here by the equivalent two-loop recursion.
    /// Returns the iterate, the iterations done and whether a convergence
    /// test (not `max_iter`) stopped the run.
    fn lbfgsb(&self, max_iter: usize, pgtol: f64) -> (Vec<f64>, usize, bool) {
        const MEMORY: usize = 10;
        const MAXLS: usize = 50;
        const STPMAX: f64 = 1e10;
        let ftol = 64.0 * f64::EPSILON;
        let dim = self.dim();
        let mut x = vec![0.0; dim];
        let (mut f, mut g) = self.value_grad(&x);
        if !f.is_finite() || g.iter().any(|v| !v.is_finite()) {
            return (x, 0, false);
        }
        if norm_inf(&g) <= pgtol {
            return (x, 0, true);
        }
        // (s, y, s.y) pairs, oldest first.
        let mut memory: VecDeque<(Vec<f64>, Vec<f64>, f64)> = VecDeque::new();
        let mut theta = 1.0;
        let mut n_iter = 0;
        loop {
            // Search direction d = z - x with z = x - H g.
            let hg = two_loop(&memory, theta, &g);
            let z: Vec<f64> = x.iter().zip(&hg).map(|(a, b)| a - b).collect();
            let mut d: Vec<f64> = z.iter().zip(&x).map(|(a, b)| a - b).collect();
            let dnorm = norm2(&d);
            let mut stp = if n_iter == 0 {
                (1.0 / dnorm).min(STPMAX)
            } else {
                1.0
            };
            let (x0, g0, f0) = (x.clone(), g.clone(), f);
            let gd0 = dot(&g, &d);
            let mut gd = gd0;
            let mut failed = gd0.is_nan() || gd0 >= 0.0;
            if !failed {
                let mut search = LineSearch::new(f0, gd0, stp, STPMAX);
                let mut evals = 0;
                loop {
                    if evals >= MAXLS {
                        failed = true;
                        break;
                    }
                    evals += 1;
                    x = if stp == 1.0 {
                        z.clone()
                    } else {
                        x0.iter().zip(&d).map(|(a, b)| stp * b + a).collect()
                    };
                    let (ft, gt) = self.value_grad(&x);
                    f = ft;
                    g = gt;
                    gd = dot(&g, &d);
                    if !f.is_finite() || !gd.is_finite() {
                        failed = true;
                        break;
                    }
                    match search.step(f, gd, stp) {
                        Some(next) => stp = next,
                        None => break,
                    }
                }
            }
            if failed {
                // Back to the last iterate; restart without memory, or stop
                // if the memory was already empty (scipy's ABNORMAL exit).
                x = x0;
                g = g0;
                f = f0;
                if memory.is_empty() {
                    return (x, n_iter, false);
                }
                memory.clear();
                theta = 1.0;
                continue;
            }
            n_iter += 1;
            if n_iter >= max_iter {
                return (x, n_iter, norm_inf(&g) <= pgtol);
            }
            if norm_inf(&g) <= pgtol {
                return (x, n_iter, true);
            }
            if f0 - f <= ftol * f0.abs().max(f.abs()).max(1.0) {
                return (x, n_iter, true);
            }
            // L-BFGS update with s = stp d, y = g - g0 (skipped unless the
            // curvature s.y is safely positive).
            let yv: Vec<f64> = g.iter().zip(&g0).map(|(a, b)| a - b).collect();
            let rr = dot(&yv, &yv);
            let (dr, ddum) = if stp == 1.0 {
                (gd - gd0, -gd0)
            } else {
                for v in d.iter_mut() {
                    *v *= stp;
                }
                ((gd - gd0) * stp, -gd0 * stp)
            };
            if dr <= f64::EPSILON * ddum {
                continue;
            }
            if memory.len() == MEMORY {
                memory.pop_front();
            }
            memory.push_back((d, yv, dr));
            theta = rr / dr;
        }
    }

    // ---------------------------------------------------------------------
    // Exact solver (Newton-CG).
    // ---------------------------------------------------------------------

    /// Hessian of the objective at the point of `e`, times `v`.
    fn hess_vec(&self, e: &Eval, v: &[f64]) -> Vec<f64> {
        let (vc, vb) = self.split(v);
        let mut d = self.scores(vc);
        let m = self.m;
        let bias = |k: usize| vb.get(k).copied().unwrap_or(0.0);
        d.as_mut()
            .par_row_chunks_mut(ROW_BLOCK)
            .zip(e.prob.as_ref().par_row_chunks(ROW_BLOCK))
            .for_each(|(mut d, pr)| {
                for i in 0..d.nrows() {
                    if m == 1 {
                        let pi = pr[(i, 0)];
                        d[(i, 0)] = pi * (1.0 - pi) * (d[(i, 0)] + bias(0));
                    } else {
                        let mut avg = 0.0;
                        for k in 0..m {
                            let t = d[(i, k)] + bias(k);
                            d[(i, k)] = t;
                            avg += pr[(i, k)] * t;
                        }
                        for k in 0..m {
                            d[(i, k)] = pr[(i, k)] * (d[(i, k)] - avg);
                        }
                    }
                }
            });
        let mut out = self.back(&d);
        for (o, vi) in out.iter_mut().zip(&v[..self.p * self.m]) {
            *o += self.reg * vi;
        }
        out
    }

    /// Applies the inverse of the Böhning preconditioner to `r`.
    fn precondition(&self, r: &[f64]) -> Vec<f64> {
        let Some(pre) = self.pre.as_ref() else {
            return r.to_vec();
        };
        let (p, m) = (self.p, self.m);
        let fi = self.fit_intercept;
        // To (w, b' = b + mean.w) coordinates: gradients map by T^{-T}.
        let mut rw: Vec<Vec<f64>> = (0..m).map(|k| r[k * p..(k + 1) * p].to_vec()).collect();
        let rb: Vec<f64> = if fi {
            r[p * m..].to_vec()
        } else {
            vec![0.0; m]
        };
        if fi {
            for (col, b) in rw.iter_mut().zip(&rb) {
                for (v, mu) in col.iter_mut().zip(&pre.mean) {
                    *v -= mu * b;
                }
            }
        }
        // Multinomial: the class-mean part only feels the penalty.
        let mut mean_w = vec![0.0; p];
        let mut mean_b = 0.0;
        if m > 1 {
            for col in &rw {
                for (a, v) in mean_w.iter_mut().zip(col) {
                    *a += v / m as f64;
                }
            }
            mean_b = rb.iter().sum::<f64>() / m as f64;
            for col in rw.iter_mut() {
                for (v, a) in col.iter_mut().zip(&mean_w) {
                    *v -= a;
                }
            }
        }
        let mut out = vec![0.0; r.len()];
        for (k, col) in rw.iter().enumerate() {
            // Q diag(inv) Q^T on the class-centred part.
            let t: Vec<f64> = (0..p)
                .map(|j| {
                    let qj = pre.q.col(j);
                    (0..p).map(|i| qj[i] * col[i]).sum::<f64>() * pre.inv[j]
                })
                .collect();
            let dst = &mut out[k * p..(k + 1) * p];
            for (j, &tj) in t.iter().enumerate() {
                let qj = pre.q.col(j);
                for (i, o) in dst.iter_mut().enumerate() {
                    *o += qj[i] * tj;
                }
            }
            if m > 1 && self.reg > 0.0 {
                for (o, a) in dst.iter_mut().zip(&mean_w) {
                    *o += a / self.reg;
                }
            }
        }
        if fi {
            for k in 0..m {
                // Intercept curvature bound c; the class-mean intercept is a
                // free gauge of the softmax and stays at 0.
                let sb = (rb[k] - mean_b) / pre.c;
                let shift = dot(&out[k * p..(k + 1) * p], &pre.mean);
                out[p * m + k] = sb - shift;
            }
        }
        out
    }

    /// Preconditioned Newton-CG with backtracking line search, from zero.
    fn newton(&self, max_iter: usize) -> (Vec<f64>, usize, bool) {
        let dim = self.dim();
        let mut w = vec![0.0; dim];
        let mut e = self.eval(&w);
        let mut g = self.gradient(&w, &e);
        let g0 = norm2(&g).max(f64::MIN_POSITIVE);
        // The averaged gradient is then at rounding level relative to its size
        // at the start: the optimum is known to ~1e-11 relative.
        let gtol = 1e-11 * norm_inf(&g).max(1e-3);
        let max_cg = dim.clamp(10, 400);
        let mut iter = 0;
        while iter < max_iter {
            let gn = norm_inf(&g);
            if !gn.is_finite() {
                break;
            }
            if gn <= gtol {
                return (w, iter, true);
            }
            iter += 1;
            let eta = (norm2(&g) / g0).sqrt().min(0.5);
            let d = self.newton_direction(&e, &g, eta, max_cg);
            let slope = dot(&g, &d);
            if slope.is_nan() || slope >= 0.0 {
                break;
            }
            // Backtracking (Armijo); near the optimum f moves below its
            // rounding noise, so a step that keeps f within the noise and
            // shrinks the gradient is accepted too.
            let mut t = 1.0;
            let mut next = None;
            for _ in 0..60 {
                let trial: Vec<f64> = w.iter().zip(&d).map(|(a, b)| a + t * b).collect();
                let et = self.eval(&trial);
                if et.f.is_finite() && et.f <= e.f + 1e-4 * t * slope {
                    let gt = self.gradient(&trial, &et);
                    next = Some((trial, et, gt));
                    break;
                }
                if et.f.is_finite() && (et.f - e.f).abs() <= 1e-14 * e.f.abs() {
                    let gt = self.gradient(&trial, &et);
                    if norm2(&gt) < norm2(&g) {
                        next = Some((trial, et, gt));
                        break;
                    }
                }
                t *= 0.5;
            }
            let Some((trial, et, gt)) = next else {
                // No progress possible: at the precision limit.
                let converged = norm_inf(&g) <= gtol * 1e3;
                return (w, iter, converged);
            };
            let step = t * norm_inf(&d);
            w = trial;
            e = et;
            g = gt;
            if step <= 1e-15 * (1.0 + norm_inf(&w)) {
                return (w, iter, true);
            }
        }
        let converged = norm_inf(&g) <= gtol;
        (w, iter, converged)
    }

    /// Approximately solves `H d = -g` by preconditioned conjugate gradients
    /// to relative residual `eta`.
    fn newton_direction(&self, e: &Eval, g: &[f64], eta: f64, max_cg: usize) -> Vec<f64> {
        let mut d = vec![0.0; g.len()];
        let mut r: Vec<f64> = g.iter().map(|v| -v).collect();
        let target = eta * norm2(g);
        let mut z = self.precondition(&r);
        let mut dir = z.clone();
        let mut rz = dot(&r, &z);
        for it in 0..max_cg {
            let hd = self.hess_vec(e, &dir);
            let curv = dot(&dir, &hd);
            if curv.is_nan() || curv <= 0.0 || !curv.is_finite() {
                if it == 0 {
                    return z;
                }
                break;
            }
            let alpha = rz / curv;
            for ((di, ri), (pi, hi)) in d.iter_mut().zip(r.iter_mut()).zip(dir.iter().zip(&hd)) {
                *di += alpha * pi;
                *ri -= alpha * hi;
            }
            if norm2(&r) <= target {
                break;
            }
            z = self.precondition(&r);
            let rz_new = dot(&r, &z);
            let beta = rz_new / rz;
            rz = rz_new;
            for (pi, zi) in dir.iter_mut().zip(&z) {
                *pi = zi + beta * *pi;
            }
        }
        d
    }
}

impl Preconditioner {
    fn new(x: MatRef<'_, f64>, fit_intercept: bool, m: usize, reg: f64) -> Result<Self> {
        let (n, p) = x.shape();
        let mean = if fit_intercept {
            column_means(x)
        } else {
            vec![0.0; p]
        };
        let (mut gram, _) = centred_gram(x, &mean, None);
        let scale = 1.0 / n as f64;
        for j in 0..p {
            for v in gram.col_mut(j).iter_mut() {
                *v *= scale;
            }
        }
        if gram
            .col_iter()
            .any(|col| col.iter().any(|v| !v.is_finite()))
        {
            return Err(RuntimeError::numerical(
                "X^T X overflowed (values too large)",
            ));
        }
        let (lam, q) = symmetric_eigen(gram.as_ref())?;
        let c = if m == 1 { 0.25 } else { 0.5 };
        let top = lam.iter().fold(0.0_f64, |a, &l| a.max(l)) * c + reg;
        let floor = (top * 1e-12).max(f64::MIN_POSITIVE);
        let inv = lam
            .iter()
            .map(|&l| 1.0 / (c * l.max(0.0) + reg).max(floor))
            .collect();
        Ok(Preconditioner { mean, q, inv, c })
    }
}

/// `H g` for the L-BFGS inverse-Hessian approximation with `H0 = I / theta`.
fn two_loop(memory: &VecDeque<(Vec<f64>, Vec<f64>, f64)>, theta: f64, g: &[f64]) -> Vec<f64> {
    let mut q = g.to_vec();
    let mut alphas = Vec::with_capacity(memory.len());
    for (s, y, sy) in memory.iter().rev() {
        let a = dot(s, &q) / sy;
        for (qi, yi) in q.iter_mut().zip(y) {
            *qi -= a * yi;
        }
        alphas.push(a);
    }
    for v in q.iter_mut() {
        *v /= theta;
    }
    for ((s, y, sy), a) in memory.iter().zip(alphas.iter().rev()) {
        let b = dot(y, &q) / sy;
        for (qi, si) in q.iter_mut().zip(s) {
            *qi += si * (a - b);
        }
    }
    q
}

/// Moré-Thuente line search (MINPACK-2 `dcsrch`) with L-BFGS-B's settings
/// `ftol = 1e-3`, `gtol = 0.9`, `xtol = 0.1`, `stpmin = 0`.
struct LineSearch {
    brackt: bool,
    stage2: bool,
    finit: f64,
    ginit: f64,
    gtest: f64,
    width: f64,
    width1: f64,
    stx: f64,
    fx: f64,
    gx: f64,
    sty: f64,
    fy: f64,
    gy: f64,
    stmin: f64,
    stmax: f64,
    stpmax: f64,
}

impl LineSearch {
    const FTOL: f64 = 1e-3;
    const GTOL: f64 = 0.9;
    const XTOL: f64 = 0.1;
    const STPMIN: f64 = 0.0;

    fn new(f: f64, g: f64, stp: f64, stpmax: f64) -> Self {
        let width = stpmax - Self::STPMIN;
        LineSearch {
            brackt: false,
            stage2: false,
            finit: f,
            ginit: g,
            gtest: Self::FTOL * g,
            width,
            width1: width / 0.5,
            stx: 0.0,
            fx: f,
            gx: g,
            sty: 0.0,
            fy: f,
            gy: g,
            stmin: 0.0,
            stmax: stp + 4.0 * stp,
            stpmax,
        }
    }

    /// Feeds `f` and the directional derivative `g` at `stp`; returns the
    /// next step to evaluate, or `None` when the search is over (converged or
    /// a warning: `stp` is then the accepted step).
    fn step(&mut self, f: f64, g: f64, stp: f64) -> Option<f64> {
        let ftest = self.finit + stp * self.gtest;
        if !self.stage2 && f <= ftest && g >= 0.0 {
            self.stage2 = true;
        }
        if self.brackt && (stp <= self.stmin || stp >= self.stmax) {
            return None;
        }
        if self.brackt && self.stmax - self.stmin <= Self::XTOL * self.stmax {
            return None;
        }
        if stp == self.stpmax && f <= ftest && g <= self.gtest {
            return None;
        }
        if stp == Self::STPMIN && (f > ftest || g >= self.gtest) {
            return None;
        }
        if f <= ftest && g.abs() <= Self::GTOL * (-self.ginit) {
            return None;
        }
        let mut stp = stp;
        if !self.stage2 && f <= self.fx && f > ftest {
            // Modified function psi(stp) = f(stp) - f(0) - ftol stp f'(0).
            let gt = self.gtest;
            let mut fxm = self.fx - self.stx * gt;
            let mut fym = self.fy - self.sty * gt;
            let mut gxm = self.gx - gt;
            let mut gym = self.gy - gt;
            let fm = f - stp * gt;
            dcstep(
                &mut self.stx,
                &mut fxm,
                &mut gxm,
                &mut self.sty,
                &mut fym,
                &mut gym,
                &mut stp,
                fm,
                g - gt,
                &mut self.brackt,
                self.stmin,
                self.stmax,
            );
            self.fx = fxm + self.stx * gt;
            self.fy = fym + self.sty * gt;
            self.gx = gxm + gt;
            self.gy = gym + gt;
        } else {
            dcstep(
                &mut self.stx,
                &mut self.fx,
                &mut self.gx,
                &mut self.sty,
                &mut self.fy,
                &mut self.gy,
                &mut stp,
                f,
                g,
                &mut self.brackt,
                self.stmin,
                self.stmax,
            );
        }
        if self.brackt {
            if (self.sty - self.stx).abs() >= 0.66 * self.width1 {
                stp = self.stx + 0.5 * (self.sty - self.stx);
            }
            self.width1 = self.width;
            self.width = (self.sty - self.stx).abs();
            self.stmin = self.stx.min(self.sty);
            self.stmax = self.stx.max(self.sty);
        } else {
            self.stmin = stp + 1.1 * (stp - self.stx);
            self.stmax = stp + 4.0 * (stp - self.stx);
        }
        stp = stp.max(Self::STPMIN).min(self.stpmax);
        if self.brackt
            && (stp <= self.stmin
                || stp >= self.stmax
                || self.stmax - self.stmin <= Self::XTOL * self.stmax)
        {
            stp = self.stx;
        }
        Some(stp)
    }
}

/// MINPACK-2 `dcstep`: safeguarded cubic / quadratic step and update of the
/// interval of uncertainty.
#[allow(clippy::too_many_arguments)]
fn dcstep(
    stx: &mut f64,
    fx: &mut f64,
    dx: &mut f64,
    sty: &mut f64,
    fy: &mut f64,
    dy: &mut f64,
    stp: &mut f64,
    fp: f64,
    dp: f64,
    brackt: &mut bool,
    stpmin: f64,
    stpmax: f64,
) {
    let sgnd = dp * (*dx / dx.abs());
    let stpf;
    if fp > *fx {
        // Higher function value: the minimum is bracketed.
        let theta = 3.0 * (*fx - fp) / (*stp - *stx) + *dx + dp;
        let s = theta.abs().max(dx.abs()).max(dp.abs());
        let mut gamma = s * ((theta / s).powi(2) - (*dx / s) * (dp / s)).sqrt();
        if *stp < *stx {
            gamma = -gamma;
        }
        let p = (gamma - *dx) + theta;
        let q = ((gamma - *dx) + gamma) + dp;
        let stpc = *stx + p / q * (*stp - *stx);
        let stpq = *stx + ((*dx / ((*fx - fp) / (*stp - *stx) + *dx)) / 2.0) * (*stp - *stx);
        stpf = if (stpc - *stx).abs() < (stpq - *stx).abs() {
            stpc
        } else {
            stpc + (stpq - stpc) / 2.0
        };
        *brackt = true;
    } else if sgnd < 0.0 {
        // Lower value, derivatives of opposite sign: bracketed.
        let theta = 3.0 * (*fx - fp) / (*stp - *stx) + *dx + dp;
        let s = theta.abs().max(dx.abs()).max(dp.abs());
        let mut gamma = s * ((theta / s).powi(2) - (*dx / s) * (dp / s)).sqrt();
        if *stp > *stx {
            gamma = -gamma;
        }
        let p = (gamma - dp) + theta;
        let q = ((gamma - dp) + gamma) + *dx;
        let stpc = *stp + p / q * (*stx - *stp);
        let stpq = *stp + (dp / (dp - *dx)) * (*stx - *stp);
        stpf = if (stpc - *stp).abs() > (stpq - *stp).abs() {
            stpc
        } else {
            stpq
        };
        *brackt = true;
    } else if dp.abs() < dx.abs() {
        // Lower value, same-sign derivatives, decreasing in magnitude.
        let theta = 3.0 * (*fx - fp) / (*stp - *stx) + *dx + dp;
        let s = theta.abs().max(dx.abs()).max(dp.abs());
        let mut gamma = s
            * (0.0_f64)
                .max((theta / s).powi(2) - (*dx / s) * (dp / s))
                .sqrt();
        if *stp > *stx {
            gamma = -gamma;
        }
        let p = (gamma - dp) + theta;
        let q = (gamma + (*dx - dp)) + gamma;
        let r = p / q;
        let stpc = if r < 0.0 && gamma != 0.0 {
            *stp + r * (*stx - *stp)
        } else if *stp > *stx {
            stpmax
        } else {
            stpmin
        };
        let stpq = *stp + (dp / (dp - *dx)) * (*stx - *stp);
        if *brackt {
            let mut t = if (stpc - *stp).abs() < (stpq - *stp).abs() {
                stpc
            } else {
                stpq
            };
            t = if *stp > *stx {
                (*stp + 0.66 * (*sty - *stp)).min(t)
            } else {
                (*stp + 0.66 * (*sty - *stp)).max(t)
            };
            stpf = t;
        } else {
            let t = if (stpc - *stp).abs() > (stpq - *stp).abs() {
                stpc
            } else {
                stpq
            };
            stpf = t.min(stpmax).max(stpmin);
        }
    } else {
        // Lower value, same-sign derivatives, not decreasing in magnitude.
        stpf = if *brackt {
            let theta = 3.0 * (fp - *fy) / (*sty - *stp) + *dy + dp;
            let s = theta.abs().max(dy.abs()).max(dp.abs());
            let mut gamma = s * ((theta / s).powi(2) - (*dy / s) * (dp / s)).sqrt();
            if *stp > *sty {
                gamma = -gamma;
            }
            let p = (gamma - dp) + theta;
            let q = ((gamma - dp) + gamma) + *dy;
            *stp + p / q * (*sty - *stp)
        } else if *stp > *stx {
            stpmax
        } else {
            stpmin
        };
    }
    if fp > *fx {
        *sty = *stp;
        *fy = fp;
        *dy = dp;
    } else {
        if sgnd < 0.0 {
            *sty = *stx;
            *fy = *fx;
            *dy = *dx;
        }
        *stx = *stp;
        *fx = fp;
        *dx = dp;
    }
    *stp = stpf;
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
    use crate::ops::linear::tests::{assert_close, lcg_matrix};

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
    // LogisticRegression(solver="newton-cholesky", tol=1e-12).fit(X, yb).predict_proba
    const BIN_OPT_PROBA: [f64; 8] = [
        0.9289047053610674,
        0.9777434092552479,
        0.07184259647540303,
        0.018086339796270057,
        0.07109529463893263,
        0.02225659074475202,
        0.928157403524597,
        0.9819136602037299,
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
    // LogisticRegression(solver="newton-cholesky", tol=1e-12).fit(X, y3).predict_proba
    const MULTI_OPT_PROBA: [f64; 12] = [
        0.89279905899509,
        0.9647398469493331,
        0.041152735929662246,
        0.006164504803064617,
        0.10106024926749589,
        0.03440405458662872,
        0.6730328592171692,
        0.39623546914117136,
        0.006140691737414113,
        0.0008560984640380685,
        0.28581440485316867,
        0.5976000260557641,
    ];
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

    fn flat(m: &Mat<f64>) -> Vec<f64> {
        m.col_iter()
            .flat_map(|c| c.iter().copied().collect::<Vec<_>>())
            .collect()
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
    fn exact_solver_reaches_the_optimum() {
        let (x, yb, y3) = data(31, 90);
        let xt = data(32, 4).0;
        for (y, want) in [(&yb, &BIN_OPT_PROBA[..]), (&y3, &MULTI_OPT_PROBA[..])] {
            let m = fit_exact(x.as_ref(), y, 1.0, true, 100, 1e-4).unwrap();
            assert!(m.converged);
            let p = m.predict(xt.as_ref()).unwrap();
            assert_close(&flat(p.proba.as_ref().unwrap()), want, 1e-9);
        }
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
        for exact in [false, true] {
            let solve = if exact { fit_exact } else { fit };
            let m = solve(sep.as_ref(), &ys, f64::INFINITY, true, 100, 0.0).unwrap();
            let p = m.predict(sep.as_ref()).unwrap();
            assert_eq!(p.values, ys.to_vec());
            let huge = Mat::from_fn(20, 4, |i, j| x[(i, j)] * 1e150);
            let _ =
                solve(huge.as_ref(), &y3, 1.0, true, 100, 1e-4).map(|m| m.predict(huge.as_ref()));
            let _ = solve(x.as_ref(), &y3, 1e-300, false, 0, 1e-4).unwrap();
            let _ = solve(x.as_ref(), &y3, 1e300, true, 1, 1e-4).unwrap();
        }
    }
}
