//! Feature scalers with scikit-learn's numerics: `StandardScaler`,
//! `MinMaxScaler` and `MaxAbsScaler`. All three ignore NaN while fitting and
//! let it through at transform, and all three reject infinities like
//! scikit-learn's `ensure_all_finite="allow-nan"` validation does.

use faer::MatRef;

use crate::data::fitted::{ScaleOp, Scaler, StepName};
use crate::data::Matrix;
use crate::error::{Result, RuntimeError};

use crate::kernels::check::Validator;
use crate::kernels::columns::{build_matrix, columns, map_columns, pairwise_sum, parallel};

/// `np.finfo(np.float64).eps`, used by scikit-learn's near-constant checks.
const EPS: f64 = f64::EPSILON;

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
        name: StepName(NAME),
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
        name: StepName(NAME),
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
        name: StepName(NAME),
        n_features: x.ncols(),
        op: ScaleOp::MaxAbs { scale },
    })
}

impl Scaler {
    /// Applies the learnt per-column map; NaN stays NaN.
    pub fn transform(&self, x: MatRef<'_, f64>) -> Result<Matrix> {
        let validator = Validator::named(self.name.0, true);
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

#[cfg(test)]
mod tests {
    use faer::Mat;

    use super::*;
    use crate::kernels::columns::test_util::{assert_close, flat, mat, synth};

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
        let fit_transform = |with_mean, with_std| {
            let s = fit_standard(x.as_ref(), with_mean, with_std).unwrap();
            flat(&s.transform(x.as_ref()).unwrap())
        };
        // StandardScaler(with_mean=False).fit(C).transform(C)
        let want: Vec<f64> = [0.1, 0.1, 0.1, NAN, 0.8164965809277261, 1.6329931618554523]
            .into_iter()
            .chain([3.2659863237109046, 0.8164965809277261, NAN, NAN, NAN, NAN])
            .collect();
        assert_close(&fit_transform(false, true), &want);
        // StandardScaler(with_std=False).fit(C).transform(C)
        let want: Vec<f64> = [e, e, e, NAN, -1.0, 0.0, 2.0, -1.0]
            .into_iter()
            .chain([NAN; 4])
            .collect();
        assert_close(&fit_transform(true, false), &want);
        // Neither: identity.
        assert_close(&fit_transform(false, false), &flat(&x));
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
}
