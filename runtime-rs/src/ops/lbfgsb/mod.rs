//! scipy's L-BFGS-B (v3.0, as sklearn's lbfgs solvers call it) replayed on
//! an unconstrained problem, so that a fit stops where scikit-learn's does
//! and not merely near the optimum. Without bounds the generalised Cauchy
//! point and subspace minimisation reduce to the quasi-Newton step `-H g`
//! (`H` the inverse of the compact L-BFGS matrix, `B0 = theta I`), computed
//! here by the equivalent two-loop recursion; the step length comes from
//! the same Moré-Thuente line search ([`line_search`]).

mod line_search;

use std::collections::VecDeque;

use crate::kernels::linalg::dot;
use line_search::LineSearch;

/// Minimises the function whose value and gradient `value_grad` returns,
/// from zero in `dim` dimensions, with sklearn's settings (10 corrections,
/// `maxls=50`, `ftol=64 eps`, `gtol=pgtol`, at most `max_iter` iterations).
/// Returns the iterate, the iterations done and whether a convergence test
/// (not `max_iter`) stopped the run.
pub(crate) fn minimize(
    dim: usize,
    value_grad: impl Fn(&[f64]) -> (f64, Vec<f64>),
    max_iter: usize,
    pgtol: f64,
) -> (Vec<f64>, usize, bool) {
    const MEMORY: usize = 10;
    const MAXLS: usize = 50;
    const STPMAX: f64 = 1e10;
    let ftol = 64.0 * f64::EPSILON;
    let mut x = vec![0.0; dim];
    let (mut f, mut g) = value_grad(&x);
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
                let (ft, gt) = value_grad(&x);
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

fn norm2(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

fn norm_inf(a: &[f64]) -> f64 {
    a.iter().fold(0.0, |m: f64, v| m.max(v.abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sum_i a_i (x_i - c_i)^2 / 2` and its gradient.
    fn quadratic(x: &[f64]) -> (f64, Vec<f64>) {
        let (a, c) = ([1.0, 10.0, 0.1], [1.0, -2.0, 3.0]);
        let f = (0..3).map(|i| 0.5 * a[i] * (x[i] - c[i]).powi(2)).sum();
        (f, (0..3).map(|i| a[i] * (x[i] - c[i])).collect())
    }

    fn rosenbrock(x: &[f64]) -> (f64, Vec<f64>) {
        let (u, v) = (x[0], x[1]);
        let f = (1.0 - u).powi(2) + 100.0 * (v - u * u).powi(2);
        let g = vec![
            -2.0 * (1.0 - u) - 400.0 * u * (v - u * u),
            200.0 * (v - u * u),
        ];
        (f, g)
    }

    #[test]
    fn converges_on_smooth_problems() {
        let (x, n_iter, converged) = minimize(3, quadratic, 100, 1e-10);
        assert!(converged && n_iter > 0);
        for (got, want) in x.iter().zip([1.0, -2.0, 3.0]) {
            assert!((got - want).abs() < 1e-8, "{x:?}");
        }
        let (x, _, converged) = minimize(2, rosenbrock, 200, 1e-8);
        assert!(converged);
        assert!(
            (x[0] - 1.0).abs() < 1e-5 && (x[1] - 1.0).abs() < 1e-5,
            "{x:?}"
        );
    }

    #[test]
    fn stopping_rules() {
        // The starting point already meets the gradient test.
        assert_eq!(
            minimize(2, |_| (1.0, vec![0.0, 0.0]), 10, 0.0),
            (vec![0.0; 2], 0, true)
        );
        // A non-finite start is returned untouched, unconverged.
        assert_eq!(
            minimize(1, |_| (f64::NAN, vec![1.0]), 10, 0.0),
            (vec![0.0], 0, false)
        );
        // The iteration budget stops the run before convergence.
        let (_, n_iter, converged) = minimize(2, rosenbrock, 1, 1e-8);
        assert_eq!((n_iter, converged), (1, false));
    }
}
