//! `SimpleImputer(missing_values=np.nan, keep_empty_features=False)` with
//! scikit-learn 1.9.1's dense semantics: statistics ignore NaN, and columns
//! with no observed value while fitting are dropped at transform (for every
//! strategy, `constant` included).

use faer::MatRef;
use serde::{Deserialize, Serialize};

use crate::data::fitted::Imputer;
use crate::data::Matrix;
use crate::error::Result;

use crate::kernels::check::Validator;
use crate::kernels::columns::{build_matrix, columns, map_columns, pairwise_sum, parallel};

const NAME: &str = "SimpleImputer";

/// Which statistic replaces the missing values of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Mean of the observed values.
    Mean,
    /// Median of the observed values.
    Median,
    /// Most frequent observed value, the smallest among ties.
    MostFrequent,
    /// The given `fill_value`.
    Constant,
}

/// Learns the per-column fill values. Infinite values are refused (as
/// scikit-learn's `ensure_all_finite="allow-nan"` does); NaN is missing.
pub fn fit(x: MatRef<'_, f64>, strategy: Strategy, fill_value: f64) -> Result<Imputer> {
    let cols = columns(x);
    Validator::named(NAME, true).check(&cols, x.nrows(), x.ncols())?;
    let par = parallel(x.nrows(), x.ncols());
    let statistics = map_columns(cols.len(), par, |j| {
        let col = &cols[j];
        match strategy {
            Strategy::Mean => masked_mean(col),
            Strategy::Median => median(col),
            Strategy::MostFrequent => most_frequent(col),
            Strategy::Constant => {
                if col.iter().all(|v| v.is_nan()) {
                    f64::NAN
                } else {
                    fill_value
                }
            }
        }
    });
    Ok(Imputer { statistics })
}

/// `np.ma.mean` of the observed values: the sum of the column with NaN
/// filled by 0 (pairwise, as numpy), times 1., divided by the count. numpy's
/// masked division masks (here: NaN) results that are not finite or whose
/// numerator is so large that `|sum| * tiny >= count`.
fn masked_mean(col: &[f64]) -> f64 {
    let count = col.iter().filter(|v| !v.is_nan()).count() as f64;
    let [sum] = pairwise_sum(col.len(), |i| {
        let v = col[i];
        [if v.is_nan() { 0.0 } else { v }]
    });
    let numerator = sum * 1.0;
    let mean = numerator / count;
    if numerator.abs() * f64::MIN_POSITIVE >= count || !mean.is_finite() {
        f64::NAN
    } else {
        mean
    }
}

/// Observed (non-NaN) values of a column.
fn observed(col: &[f64]) -> Vec<f64> {
    col.iter().copied().filter(|v| !v.is_nan()).collect()
}

/// `np.ma.median`: `(low + high) / 2` of the two middle order statistics
/// (the same one twice for an odd count), NaN with no observed value.
fn median(col: &[f64]) -> f64 {
    let mut values = observed(col);
    let count = values.len();
    if count == 0 {
        return f64::NAN;
    }
    let high_idx = count / 2;
    let (below, &mut high, _) = values.select_nth_unstable_by(high_idx, f64::total_cmp);
    let low = if count % 2 == 1 {
        high
    } else {
        // The largest value below the upper middle one.
        below.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    };
    ((0.0 + low) + high) / 2.0
}

/// `scipy.stats.mode` of the observed values: the most frequent one, the
/// smallest among ties; NaN with no observed value. `-0.0` and `0.0` count
/// as one value.
fn most_frequent(col: &[f64]) -> f64 {
    let mut values = observed(col);
    values.sort_unstable_by(f64::total_cmp);
    let mut best = f64::NAN;
    let mut best_count = 0usize;
    let mut i = 0;
    while i < values.len() {
        let v = values[i];
        let mut j = i + 1;
        while j < values.len() && values[j] == v {
            j += 1;
        }
        if j - i > best_count {
            best_count = j - i;
            best = v;
        }
        i = j;
    }
    best
}

impl Imputer {
    /// Replaces NaN by the learnt statistic, dropping the columns that had
    /// no observed value while fitting.
    pub fn transform(&self, x: MatRef<'_, f64>) -> Result<Matrix> {
        let validator = Validator::named(NAME, true);
        let cols = columns(x);
        validator.check(&cols, x.nrows(), x.ncols())?;
        validator.check_n_features(x.ncols(), self.statistics.len())?;

        let kept: Vec<usize> = (0..self.statistics.len())
            .filter(|&j| !self.statistics[j].is_nan())
            .collect();
        let par = parallel(x.nrows(), kept.len());
        Ok(build_matrix(x.nrows(), kept.len(), par, |k, out| {
            let j = kept[k];
            let fill = self.statistics[j];
            for (o, &v) in out.iter_mut().zip(cols[j].iter()) {
                *o = if v.is_nan() { fill } else { v };
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use faer::Mat;

    use super::*;
    use crate::error::RuntimeError;
    use crate::kernels::columns::test_util::{
        assert_close, assert_rejects_shapes, flat, mat, synth,
    };

    const NAN: f64 = f64::NAN;

    fn small() -> Matrix {
        mat(&[
            &[1.0, NAN, 0.5, 4.0],
            &[NAN, NAN, 2.25, 4.0],
            &[3.0, NAN, NAN, 4.0],
            &[3.0, NAN, -1.0, 4.0],
            &[1.0, NAN, 2.25, 4.0],
            &[7.0, NAN, 8.0, NAN],
        ])
    }

    #[test]
    fn statistics_match_sklearn() {
        let x = small();
        // SimpleImputer(strategy=s).fit(X).statistics_
        for (strategy, want) in [
            (Strategy::Mean, [3.0, NAN, 2.4, 4.0]),
            (Strategy::Median, [3.0, NAN, 2.25, 4.0]),
            // Tie between 1.0 and 3.0 -> the smaller.
            (Strategy::MostFrequent, [1.0, NAN, 2.25, 4.0]),
        ] {
            let imp = fit(x.as_ref(), strategy, 0.0).unwrap();
            assert_close(&imp.statistics, &want);
            // The all-NaN column is dropped: output is 6 x 3.
            let out = imp.transform(x.as_ref()).unwrap();
            assert_eq!((out.nrows(), out.ncols()), (6, 3));
            assert_eq!(out[(1, 0)], want[0]);
            assert_eq!(out[(2, 1)], want[2]);
            assert_eq!(out[(5, 2)], want[3]);
            assert_eq!(out[(3, 1)], -1.0);
        }
    }

    #[test]
    fn constant_drops_all_nan_columns_like_sklearn() {
        // SimpleImputer(strategy="constant", fill_value=-7.5).fit(X).transform(X): shape (6, 3)
        let x = small();
        let imp = fit(x.as_ref(), Strategy::Constant, -7.5).unwrap();
        let out = imp.transform(x.as_ref()).unwrap();
        assert_eq!((out.nrows(), out.ncols()), (6, 3));
        assert_close(&flat(&out)[..6], &[1.0, -7.5, 3.0, 3.0, 1.0, 7.0]);
        assert_eq!(out[(5, 2)], -7.5);
        // fill_value=NaN marks every column as dropped (sklearn returns shape (n, 0)).
        let imp = fit(x.as_ref(), Strategy::Constant, NAN).unwrap();
        let out = imp.transform(x.as_ref()).unwrap();
        assert_eq!((out.nrows(), out.ncols()), (6, 0));
    }

    #[test]
    fn larger_data_matches_sklearn() {
        // SimpleImputer(strategy=s).fit(synth(1000, 3, [1e6, -3.0, 0.0], nan_mod=11)).statistics_
        let x = synth(1000, &[1e6, -3.0, 0.0], Some(11));
        let stats = |s| fit(x.as_ref(), s, 0.0).unwrap().statistics;
        let mean = stats(Strategy::Mean);
        assert_close(
            &mean,
            &[1000003.6912075822, 0.6882457476516882, 3.6862147753236862],
        );
        assert_eq!(mean[0], 1000003.6912075822);
        assert_close(
            &stats(Strategy::Median),
            &[1000003.6923076923, 0.6923076923076925, 3.6923076923076925],
        );
        assert_close(&stats(Strategy::MostFrequent), &[1000000.0, -3.0, 0.0]);
    }

    #[test]
    fn huge_values_follow_numpy_masked_arithmetic() {
        // sklearn: mean -> [nan, nan, 0, 6] (masked division), median -> [inf, inf, 0, 6],
        // most_frequent -> [1.7e308, 1e308, -0.0, 5.0]
        let x = mat(&[
            &[1.7e308, 1e308, -0.0, 5.0],
            &[NAN, 1.5e308, 0.0, NAN],
            &[NAN, NAN, NAN, 7.0],
            &[NAN, NAN, -0.0, NAN],
        ]);
        let stats = |s| fit(x.as_ref(), s, 0.0).unwrap().statistics;
        assert_close(&stats(Strategy::Mean), &[NAN, NAN, 0.0, 6.0]);
        let inf = f64::INFINITY;
        assert_close(&stats(Strategy::Median), &[inf, inf, 0.0, 6.0]);
        assert_close(&stats(Strategy::MostFrequent), &[1.7e308, 1e308, 0.0, 5.0]);
    }

    #[test]
    fn validation_errors() {
        let inf = mat(&[&[1.0, f64::INFINITY], &[NAN, 3.0]]);
        assert_eq!(
            fit(inf.as_ref(), Strategy::Mean, 0.0).unwrap_err(),
            RuntimeError::Data(
                "Input X contains infinity or a value too large for dtype('float64').".into()
            )
        );
        assert_eq!(
            fit(Mat::<f64>::zeros(0, 2).as_ref(), Strategy::Median, 0.0)
                .unwrap_err()
                .to_string(),
            "Found array with 0 sample(s) (shape=(0, 2)) while a minimum of 1 is required by SimpleImputer."
        );
        assert!(fit(Mat::<f64>::zeros(2, 0).as_ref(), Strategy::Constant, 0.0).is_err());
        let imp = fit(small().as_ref(), Strategy::Mean, 0.0).unwrap();
        assert_rejects_shapes(|x| imp.transform(x), (1, 5), 4, NAME);
    }

    #[test]
    fn strided_and_parallel_inputs() {
        let x = synth(30_000, &[0.0, 1.0, 2.0, 3.0, 4.0], Some(5));
        let view = x.transpose().to_owned();
        let view = view.transpose();
        for s in [Strategy::Mean, Strategy::Median, Strategy::MostFrequent] {
            let a = fit(x.as_ref(), s, 0.0).unwrap();
            let b = fit(view, s, 0.0).unwrap();
            assert_eq!(a.statistics, b.statistics);
            let out = a.transform(view).unwrap();
            assert!(flat(&out).iter().all(|v| v.is_finite()));
            assert_eq!(flat(&out), flat(&b.transform(x.as_ref()).unwrap()));
        }
    }
}
