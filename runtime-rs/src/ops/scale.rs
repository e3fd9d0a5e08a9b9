//! Feature scalers with scikit-learn's numerics: `StandardScaler`,
//! `MinMaxScaler` and `MaxAbsScaler`. All three ignore NaN while fitting and
//! let it through at transform, and all three reject infinities like
//! scikit-learn's `ensure_all_finite="allow-nan"` validation does.
//!
//! The [`common`] module holds the validation and reduction helpers shared by
//! the preprocessing kernels (imputer, one-hot, polynomial, select).

use faer::MatRef;

use crate::error::{Result, RuntimeError};
use crate::value::Matrix;

use common::{build_matrix, columns, map_columns, pairwise_sum, parallel, Validator};

/// `np.finfo(np.float64).eps`, used by scikit-learn's near-constant checks.
const EPS: f64 = f64::EPSILON;

/// A fitted scaler: one affine map per column, learnt by one of the `fit_*`
/// functions below.
#[derive(Debug, Clone)]
pub struct Scaler {
    /// Estimator name, for error messages.
    name: &'static str,
    /// Number of columns seen while fitting.
    n_features: usize,
    /// The per-column map, in the arithmetic order scikit-learn applies it.
    op: ScaleOp,
}

#[derive(Debug, Clone)]
enum ScaleOp {
    /// `(x - mean) / scale`; either step may be disabled.
    Standard {
        mean: Option<Vec<f64>>,
        scale: Option<Vec<f64>>,
    },
    /// `x * scale + min`, then optionally clipped to `(low, high)`.
    MinMax {
        scale: Vec<f64>,
        min: Vec<f64>,
        clip: Option<(f64, f64)>,
    },
    /// `x / scale`.
    MaxAbs { scale: Vec<f64> },
}

/// Learns `StandardScaler(with_mean, with_std)`: NaN-ignoring mean and
/// population variance (scikit-learn's corrected two-pass algorithm with
/// numpy's pairwise summation), near-constant columns get scale 1.
pub fn fit_standard(x: MatRef<'_, f64>, with_mean: bool, with_std: bool) -> Result<Scaler> {
    const NAME: &str = "StandardScaler";
    let cols = columns(x);
    Validator::named(NAME, true).check(&cols, x.nrows(), x.ncols())?;
    let par = parallel(x.nrows(), x.ncols());

    let op = if !with_mean && !with_std {
        ScaleOp::Standard {
            mean: None,
            scale: None,
        }
    } else {
        let stats = map_columns(cols.len(), par, |j| mean_and_scale(&cols[j], with_std));
        ScaleOp::Standard {
            mean: with_mean.then(|| stats.iter().map(|s| s.0).collect()),
            scale: with_std.then(|| stats.iter().map(|s| s.1).collect()),
        }
    };
    Ok(Scaler {
        name: NAME,
        n_features: x.ncols(),
        op,
    })
}

/// Mean and scale of one column, following `_incremental_mean_and_var` on a
/// first call (`last_mean = last_var = 0`, `last_sample_count = 0`) and
/// `_is_constant_feature` / `_handle_zeros_in_scale`. The scale is only
/// meaningful when `with_std`.
fn mean_and_scale(col: &[f64], with_std: bool) -> (f64, f64) {
    let nan_count = col.iter().filter(|v| v.is_nan()).count();
    let count = col.len() as f64 - nan_count as f64;
    let [new_sum] = pairwise_sum(col.len(), |i| [nan_to_zero(col[i])]);
    // `(last_sum + new_sum) / updated_sample_count` with `last_sum = 0`.
    let mean = (0.0 + new_sum) / count;
    if !with_std {
        return (mean, 1.0);
    }
    let t = new_sum / count;
    let [correction, squares] = pairwise_sum(col.len(), |i| {
        let d = col[i] - t;
        [nan_to_zero(d), nan_to_zero(d * d)]
    });
    let unnormalized = squares - correction * correction / count;
    let var = unnormalized / count;

    let upper_bound = count * EPS * var + (count * mean * EPS) * (count * mean * EPS);
    let constant = var <= upper_bound;
    let scale = if constant { 1.0 } else { var.sqrt() };
    (mean, scale)
}

fn nan_to_zero(v: f64) -> f64 {
    if v.is_nan() {
        0.0
    } else {
        v
    }
}

/// Learns `MinMaxScaler(feature_range=(low, high), clip)`: NaN-ignoring
/// per-column min and max; a (near-)zero range keeps scale `high - low`.
pub fn fit_min_max(x: MatRef<'_, f64>, low: f64, high: f64, clip: bool) -> Result<Scaler> {
    const NAME: &str = "MinMaxScaler";
    // scikit-learn's check; NaN and infinite bounds would silently produce
    // NaN output, so they are refused below too.
    if low >= high {
        return Err(RuntimeError::parameter(format!(
            "Minimum of desired feature range must be smaller than maximum. Got ({low:?}, {high:?})."
        )));
    }
    if !low.is_finite() || !high.is_finite() {
        return Err(RuntimeError::parameter(format!(
            "feature_range must be finite. Got ({low:?}, {high:?})."
        )));
    }
    let cols = columns(x);
    Validator::named(NAME, true).check(&cols, x.nrows(), x.ncols())?;
    let par = parallel(x.nrows(), x.ncols());

    let ranges = map_columns(cols.len(), par, |j| nan_min_max(&cols[j]));
    let mut scale = Vec::with_capacity(ranges.len());
    let mut min = Vec::with_capacity(ranges.len());
    for &(data_min, data_max) in &ranges {
        let data_range = data_max - data_min;
        let s = (high - low) / handle_zero_scale(data_range);
        scale.push(s);
        min.push(low - data_min * s);
    }
    Ok(Scaler {
        name: NAME,
        n_features: x.ncols(),
        op: ScaleOp::MinMax {
            scale,
            min,
            clip: clip.then_some((low, high)),
        },
    })
}

/// `np.nanmin` and `np.nanmax` of a column; NaN for an all-NaN column.
fn nan_min_max(col: &[f64]) -> (f64, f64) {
    let mut lo = f64::NAN;
    let mut hi = f64::NAN;
    for &v in col {
        // `f64::min`/`max` ignore a NaN operand, like `np.fmin`/`np.fmax`.
        lo = lo.min(v);
        hi = hi.max(v);
    }
    (lo, hi)
}

/// `_handle_zeros_in_scale` without a precomputed mask: scales below
/// `10 * eps` (including zero) become 1; NaN stays NaN.
fn handle_zero_scale(scale: f64) -> f64 {
    if scale < 10.0 * EPS {
        1.0
    } else {
        scale
    }
}

/// Learns `MaxAbsScaler()`: NaN-ignoring per-column maximum absolute value,
/// zero (or near-zero) maxima get scale 1.
pub fn fit_max_abs(x: MatRef<'_, f64>) -> Result<Scaler> {
    const NAME: &str = "MaxAbsScaler";
    let cols = columns(x);
    Validator::named(NAME, true).check(&cols, x.nrows(), x.ncols())?;
    let par = parallel(x.nrows(), x.ncols());
    let scale = map_columns(cols.len(), par, |j| {
        let max_abs = cols[j].iter().fold(f64::NAN, |m, v| m.max(v.abs()));
        handle_zero_scale(max_abs)
    });
    Ok(Scaler {
        name: NAME,
        n_features: x.ncols(),
        op: ScaleOp::MaxAbs { scale },
    })
}

impl Scaler {
    /// Applies the learnt per-column map; NaN stays NaN.
    pub fn transform(&self, x: MatRef<'_, f64>) -> Result<Matrix> {
        let validator = Validator::named(self.name, true);
        let cols = columns(x);
        validator.check(&cols, x.nrows(), x.ncols())?;
        validator.check_n_features(x.ncols(), self.n_features)?;
        let par = parallel(x.nrows(), x.ncols());

        let out = match &self.op {
            ScaleOp::Standard { mean, scale } => {
                build_matrix(x.nrows(), x.ncols(), par, |j, out| {
                    let src = &cols[j];
                    match (mean, scale) {
                        (Some(m), Some(s)) => {
                            let (m, s) = (m[j], s[j]);
                            for (o, &v) in out.iter_mut().zip(src.iter()) {
                                *o = (v - m) / s;
                            }
                        }
                        (Some(m), None) => {
                            let m = m[j];
                            for (o, &v) in out.iter_mut().zip(src.iter()) {
                                *o = v - m;
                            }
                        }
                        (None, Some(s)) => {
                            let s = s[j];
                            for (o, &v) in out.iter_mut().zip(src.iter()) {
                                *o = v / s;
                            }
                        }
                        (None, None) => out.copy_from_slice(src),
                    }
                })
            }
            ScaleOp::MinMax { scale, min, clip } => {
                build_matrix(x.nrows(), x.ncols(), par, |j, out| {
                    let (s, m) = (scale[j], min[j]);
                    for (o, &v) in out.iter_mut().zip(cols[j].iter()) {
                        *o = v * s + m;
                    }
                    if let Some((lo, hi)) = *clip {
                        // `np.clip` semantics: NaN passes through.
                        for o in out.iter_mut() {
                            if *o < lo {
                                *o = lo;
                            } else if *o > hi {
                                *o = hi;
                            }
                        }
                    }
                })
            }
            ScaleOp::MaxAbs { scale } => build_matrix(x.nrows(), x.ncols(), par, |j, out| {
                let s = scale[j];
                for (o, &v) in out.iter_mut().zip(cols[j].iter()) {
                    *o = v / s;
                }
            }),
        };
        Ok(out)
    }
}

/// Validation and reduction helpers shared by the preprocessing kernels, so
/// that every kernel validates and sums exactly like scikit-learn / numpy.
pub(crate) mod common {
    use std::borrow::Cow;

    use faer::{ColMut, Mat, MatRef};
    use rayon::prelude::*;

    use crate::error::{Result, RuntimeError};
    use crate::value::Matrix;

    /// Below this many elements, column-parallel work costs more than it saves.
    pub(crate) const PAR_MIN_ELEMENTS: usize = 100_000;

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

    /// numpy's pairwise summation (`pairwise_sum` in `loops_utils.h.src`) of
    /// `K` sequences at once, element `i` of each given by `f(i)`, preceded by
    /// the reduction's initial `0.0`. Bit-identical to `np.sum` over a
    /// contiguous axis (e.g. `X.sum(axis=0)` for Fortran-ordered `X`).
    pub(crate) fn pairwise_sum<const K: usize>(
        n: usize,
        f: impl Fn(usize) -> [f64; K],
    ) -> [f64; K] {
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

    /// Input checks of scikit-learn's `check_array` as one estimator runs them:
    /// finiteness, at least one sample and one feature.
    #[derive(Debug, Clone, Copy)]
    pub(crate) struct Validator {
        /// Estimator class name.
        estimator: &'static str,
        /// Whether `check_array` is told the estimator (adds " by Name" and
        /// the NaN hint) and the input name "X".
        named: bool,
        /// Whether NaN is accepted (`ensure_all_finite="allow-nan"`).
        allow_nan: bool,
    }

    impl Validator {
        /// Validation done through `validate_data(estimator, X, ...)`.
        pub(crate) fn named(estimator: &'static str, allow_nan: bool) -> Self {
            Self {
                estimator,
                named: true,
                allow_nan,
            }
        }

        /// Validation done through a bare `check_array(X, ...)` (the encoders).
        pub(crate) fn anonymous(estimator: &'static str, allow_nan: bool) -> Self {
            Self {
                estimator,
                named: false,
                allow_nan,
            }
        }

        /// Finite check, then minimum samples, then minimum features, in
        /// `check_array`'s order and with its messages.
        pub(crate) fn check(
            &self,
            cols: &[Cow<'_, [f64]>],
            nrows: usize,
            ncols: usize,
        ) -> Result<()> {
            let par = parallel(nrows, ncols);
            let flags = map_columns(cols.len(), par, |j| {
                let (mut nan, mut inf) = (false, false);
                for &v in cols[j].iter() {
                    nan |= v.is_nan();
                    inf |= v.is_infinite();
                }
                (nan, inf)
            });
            let has_nan = !self.allow_nan && flags.iter().any(|f| f.0);
            let has_inf = flags.iter().any(|f| f.1);
            let input = if self.named { "X " } else { "" };
            if has_nan {
                let mut msg = format!("Input {input}contains NaN.");
                if self.named {
                    msg.push('\n');
                    msg.push_str(&nan_hint(self.estimator));
                }
                return Err(RuntimeError::data(msg));
            }
            if has_inf {
                return Err(RuntimeError::data(format!(
                    "Input {input}contains infinity or a value too large for dtype('float64')."
                )));
            }
            let by = if self.named {
                format!(" by {}", self.estimator)
            } else {
                String::new()
            };
            if nrows < 1 {
                return Err(RuntimeError::data(format!(
                    "Found array with {nrows} sample(s) (shape=({nrows}, {ncols})) while a minimum of 1 is required{by}."
                )));
            }
            if ncols < 1 {
                return Err(RuntimeError::data(format!(
                    "Found array with {ncols} feature(s) (shape=({nrows}, {ncols})) while a minimum of 1 is required{by}."
                )));
            }
            Ok(())
        }

        /// `_check_n_features` at transform time.
        pub(crate) fn check_n_features(&self, got: usize, expected: usize) -> Result<()> {
            if got != expected {
                return Err(RuntimeError::data(format!(
                    "X has {got} features, but {} is expecting {expected} features as input.",
                    self.estimator
                )));
            }
            Ok(())
        }
    }

    /// The advice scikit-learn appends when an estimator refuses NaN.
    pub(crate) fn nan_hint(estimator: &str) -> String {
        format!(
            "{estimator} does not accept missing values encoded as NaN natively. For supervised \
             learning, you might want to consider sklearn.ensemble.HistGradientBoostingClassifier \
             and Regressor which accept missing values encoded as NaNs natively. Alternatively, it \
             is possible to preprocess the data, for instance by using an imputer transformer in a \
             pipeline or drop samples with missing values. See \
             https://scikit-learn.org/stable/modules/impute.html You can find a list of all \
             estimators that handle NaN values at the following page: \
             https://scikit-learn.org/stable/modules/impute.html#estimators-that-handle-nan-values"
        )
    }
}

/// Helpers for the kernels' unit tests.
#[cfg(test)]
pub(crate) mod test_util {
    use faer::Mat;

    use crate::value::Matrix;

    /// Matrix from rows.
    pub(crate) fn mat(rows: &[&[f64]]) -> Matrix {
        let p = rows.first().map_or(0, |r| r.len());
        Mat::from_fn(rows.len(), p, |i, j| rows[i][j])
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
}

#[cfg(test)]
mod tests {
    use faer::Mat;

    use super::test_util::{assert_close, flat, mat, synth};
    use super::*;

    const NAN: f64 = f64::NAN;

    fn standard_stats(s: &Scaler) -> (Vec<f64>, Vec<f64>) {
        match &s.op {
            ScaleOp::Standard {
                mean: Some(m),
                scale: Some(sc),
            } => (m.clone(), sc.clone()),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn standard_matches_sklearn_with_nan_and_large_offset() {
        // StandardScaler().fit(synth(1000, 3, [1e6, -3.0, 0.0], nan_mod=11)) (Fortran order)
        let x = synth(1000, &[1e6, -3.0, 0.0], Some(11));
        let s = fit_standard(x.as_ref(), true, true).unwrap();
        let (mean, scale) = standard_stats(&s);
        assert_close(
            &mean,
            &[1000003.6912075822, 0.6882457476516882, 3.6862147753236862],
        );
        assert_close(
            &scale,
            &[2.157591754693789, 2.1540599171998847, 2.154381479777834],
        );
        // Pairwise summation makes the mean bit-identical to numpy's.
        assert_eq!(mean[0], 1000003.6912075822);

        // StandardScaler().fit(synth(200, 2, [5.0, 0.0]))
        let x = synth(200, &[5.0, 0.0], None);
        let (mean, scale) = standard_stats(&fit_standard(x.as_ref(), true, true).unwrap());
        assert_close(&mean, &[8.683076923076923, 3.692307692307693]);
        assert_close(&scale, &[2.161792484389316, 2.1611551809105083]);
    }

    #[test]
    fn standard_constant_and_all_nan_columns() {
        let x = mat(&[
            &[0.1, 1.0, NAN],
            &[0.1, 2.0, NAN],
            &[0.1, 4.0, NAN],
            &[NAN, 1.0, NAN],
        ]);
        // StandardScaler().fit(C): mean_ [0.10000000000000002, 2.0, nan], scale_ [1.0, 1.224744871391589, nan]
        let s = fit_standard(x.as_ref(), true, true).unwrap();
        let (mean, scale) = standard_stats(&s);
        assert_close(&mean, &[0.10000000000000002, 2.0, NAN]);
        assert_close(&scale, &[1.0, 1.224744871391589, NAN]);
        let e = -1.3877787807814457e-17;
        let out = s.transform(x.as_ref()).unwrap();
        assert_close(
            &flat(&out),
            &[
                e,
                e,
                e,
                NAN,
                -0.8164965809277261,
                0.0,
                1.6329931618554523,
                -0.8164965809277261,
            ]
            .into_iter()
            .chain([NAN; 4])
            .collect::<Vec<_>>(),
        );
        // StandardScaler(with_mean=False).fit(C).transform(C)
        let out = fit_standard(x.as_ref(), false, true)
            .unwrap()
            .transform(x.as_ref())
            .unwrap();
        let want: Vec<f64> = [0.1, 0.1, 0.1, NAN, 0.8164965809277261, 1.6329931618554523]
            .into_iter()
            .chain([3.2659863237109046, 0.8164965809277261, NAN, NAN, NAN, NAN])
            .collect();
        assert_close(&flat(&out), &want);
        // StandardScaler(with_std=False).fit(C).transform(C)
        let out = fit_standard(x.as_ref(), true, false)
            .unwrap()
            .transform(x.as_ref())
            .unwrap();
        let want: Vec<f64> = [e, e, e, NAN, -1.0, 0.0, 2.0, -1.0]
            .into_iter()
            .chain([NAN; 4])
            .collect();
        assert_close(&flat(&out), &want);
        // Neither: identity.
        let out = fit_standard(x.as_ref(), false, false)
            .unwrap()
            .transform(x.as_ref())
            .unwrap();
        assert_close(&flat(&out), &flat(&x));
    }

    #[test]
    fn min_max_and_max_abs_match_sklearn() {
        let x = mat(&[
            &[1.0, 5.0, NAN, -2.0],
            &[3.0, 5.0, NAN, 0.5],
            &[NAN, 5.0, NAN, 4.0],
            &[2.0, 5.0, NAN, -1.0],
        ]);
        let t = mat(&[&[0.0, 6.0, 1.0, 10.0], &[NAN, 4.0, 2.0, -5.0]]);
        // MinMaxScaler(feature_range=(-1.0, 2.0)).fit(M).transform(T)
        let s = fit_min_max(x.as_ref(), -1.0, 2.0, false).unwrap();
        let out = s.transform(t.as_ref()).unwrap();
        assert_close(&flat(&out), &[-2.5, NAN, 2.0, -4.0, NAN, NAN, 5.0, -2.5]);
        // ... clip=True
        let s = fit_min_max(x.as_ref(), -1.0, 2.0, true).unwrap();
        let out = s.transform(t.as_ref()).unwrap();
        assert_close(&flat(&out), &[-1.0, NAN, 2.0, -1.0, NAN, NAN, 2.0, -1.0]);
        // MaxAbsScaler().fit(M).transform(T): scale_ [3.0, 5.0, nan, 4.0]
        let s = fit_max_abs(x.as_ref()).unwrap();
        let out = s.transform(t.as_ref()).unwrap();
        assert_close(&flat(&out), &[0.0, NAN, 1.2, 0.8, NAN, NAN, 2.5, -1.25]);
        // Zero maximum -> scale 1.
        let z = mat(&[&[0.0], &[0.0]]);
        let out = fit_max_abs(z.as_ref())
            .unwrap()
            .transform(z.as_ref())
            .unwrap();
        assert_close(&flat(&out), &[0.0, 0.0]);
    }

    #[test]
    fn min_max_rejects_bad_range() {
        let x = mat(&[&[1.0]]);
        for (lo, hi) in [(1.0, 0.0), (1.0, 1.0), (NAN, 1.0), (0.0, f64::INFINITY)] {
            let err = fit_min_max(x.as_ref(), lo, hi, false).unwrap_err();
            assert!(matches!(err, RuntimeError::Parameter(_)), "{err:?}");
        }
        let err = fit_min_max(x.as_ref(), 2.0, 1.0, false).unwrap_err();
        assert!(err.to_string().contains("Got (2.0, 1.0)"), "{err}");
    }

    #[test]
    fn validation_errors_match_sklearn() {
        let empty_rows = Mat::<f64>::zeros(0, 3);
        let empty_cols = Mat::<f64>::zeros(3, 0);
        let inf = mat(&[&[1.0, f64::INFINITY], &[2.0, 3.0]]);
        let fitted = fit_standard(mat(&[&[1.0, 2.0], &[3.0, 5.0]]).as_ref(), true, true).unwrap();
        let msg = |r: Result<Scaler>| r.unwrap_err().to_string();
        assert_eq!(
            msg(fit_standard(empty_rows.as_ref(), true, true)),
            "Found array with 0 sample(s) (shape=(0, 3)) while a minimum of 1 is required by StandardScaler."
        );
        assert_eq!(
            msg(fit_min_max(empty_cols.as_ref(), 0.0, 1.0, false)),
            "Found array with 0 feature(s) (shape=(3, 0)) while a minimum of 1 is required by MinMaxScaler."
        );
        assert_eq!(
            msg(fit_max_abs(inf.as_ref())),
            "Input X contains infinity or a value too large for dtype('float64')."
        );
        let err = fitted
            .transform(Mat::<f64>::zeros(2, 3).as_ref())
            .unwrap_err();
        assert_eq!(
            err,
            RuntimeError::Data(
                "X has 3 features, but StandardScaler is expecting 2 features as input.".into()
            )
        );
        assert!(fitted.transform(empty_rows.as_ref()).is_err());
        assert!(fitted.transform(inf.as_ref()).is_err());
    }

    #[test]
    fn strided_input_matches_contiguous() {
        let x = synth(300, &[1.0, 2.0, 3.0], Some(7));
        let xt = x.transpose().to_owned();
        let view = xt.transpose(); // row stride != 1
        let a = fit_standard(x.as_ref(), true, true).unwrap();
        let b = fit_standard(view, true, true).unwrap();
        assert_eq!(standard_stats(&a), standard_stats(&b));
        assert_close(
            &flat(&a.transform(x.as_ref()).unwrap()),
            &flat(&b.transform(view).unwrap()),
        );
    }

    #[test]
    fn parallel_path_matches_serial() {
        // 40_000 x 4 > PAR_MIN_ELEMENTS, so statistics and output go parallel.
        let x = synth(40_000, &[1e3, 0.0, -7.0, 2.5], Some(13));
        let s = fit_standard(x.as_ref(), true, true).unwrap();
        let out = s.transform(x.as_ref()).unwrap();
        let (mean, scale) = standard_stats(&s);
        for j in 0..4 {
            let col = x.col(j).iter().copied().collect::<Vec<_>>();
            let (m, sc) = mean_and_scale(&col, true);
            assert_eq!((m, sc), (mean[j], scale[j]));
            for i in (0..x.nrows()).step_by(997) {
                let want = (x[(i, j)] - m) / sc;
                assert!(want.is_nan() && out[(i, j)].is_nan() || want == out[(i, j)]);
            }
        }
    }

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
            let [s] = common::pairwise_sum(n, |i| [i as f64 * 0.1 + 1e5 / 3.0]);
            assert_eq!(s, want, "n={n}");
        }
        let [s] = common::pairwise_sum(0, |_| [1.0]);
        assert_eq!(s, 0.0);
    }
}
