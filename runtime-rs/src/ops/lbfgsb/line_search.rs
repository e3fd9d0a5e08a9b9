//! The Moré-Thuente line search of MINPACK-2 (`dcsrch` / `dcstep`) with
//! L-BFGS-B's settings, statement for statement, so that every trial step
//! and its rounding match scipy's.

/// Moré-Thuente line search (MINPACK-2 `dcsrch`) with L-BFGS-B's settings
/// `ftol = 1e-3`, `gtol = 0.9`, `xtol = 0.1`, `stpmin = 0`.
pub(super) struct LineSearch {
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

    pub(super) fn new(f: f64, g: f64, stp: f64, stpmax: f64) -> Self {
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
    pub(super) fn step(&mut self, f: f64, g: f64, stp: f64) -> Option<f64> {
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
        let (theta, mut gamma) = theta_gamma(*fx, fp, *stx, *stp, *dx, dp, false);
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
        let (theta, mut gamma) = theta_gamma(*fx, fp, *stx, *stp, *dx, dp, false);
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
        let (theta, mut gamma) = theta_gamma(*fx, fp, *stx, *stp, *dx, dp, true);
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
            let (theta, mut gamma) = theta_gamma(fp, *fy, *stp, *sty, *dy, dp, false);
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

/// `dcstep`'s cubic-fit terms, operands in its order:
/// `theta = 3 (f1 - f2) / (s2 - s1) + d1 + d2` and (before its sign is
/// chosen) `gamma = s sqrt((theta/s)^2 - (d1/s) (d2/s))` with
/// `s = max(|theta|, |d1|, |d2|)`. `clamp` floors the radicand at zero, as
/// the third case does.
fn theta_gamma(f1: f64, f2: f64, s1: f64, s2: f64, d1: f64, d2: f64, clamp: bool) -> (f64, f64) {
    let theta = 3.0 * (f1 - f2) / (s2 - s1) + d1 + d2;
    let s = theta.abs().max(d1.abs()).max(d2.abs());
    let radicand = (theta / s).powi(2) - (d1 / s) * (d2 / s);
    let radicand = if clamp {
        (0.0_f64).max(radicand)
    } else {
        radicand
    };
    (theta, s * radicand.sqrt())
}
