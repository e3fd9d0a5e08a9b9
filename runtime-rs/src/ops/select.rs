//! `SelectKBest(score_func, k)` with `f_regression` (center=True,
//! force_finite=True) or `f_classif` scores, following scikit-learn 1.9.1:
//! `k > n_features` keeps every column (scikit-learn only warns), `k == 0`
//! keeps none, and among tied scores the later columns win.

use std::borrow::Cow;
use std::cmp::Ordering;

use faer::MatRef;
use serde::{Deserialize, Serialize};

use crate::data::fitted::Select;
use crate::data::Matrix;
use crate::error::Result;

use crate::kernels::check::{check_all_finite, check_consistent_length, check_min_len, Validator};
use crate::kernels::columns::{build_matrix, columns, map_columns, pairwise_sum, parallel};

const NAME: &str = "SelectKBest";

/// Univariate score used to rank the columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreFunc {
    /// `f_regression`: F statistic of each column's correlation with a
    /// continuous target.
    FRegression,
    /// `f_classif`: one-way ANOVA F of each column across the target's classes.
    FClassif,
}

/// Scores every column against `y` and keeps the `k` best. NaN or
/// infinities in `X` or `y` are refused, like scikit-learn's `check_X_y`.
pub fn fit(x: MatRef<'_, f64>, y: &[f64], score_func: ScoreFunc, k: usize) -> Result<Select> {
    let cols = columns(x);
    Validator::named(NAME, false).check(&cols, x.nrows(), x.ncols())?;
    check_target(y, x.nrows())?;
    let par = parallel(x.nrows(), x.ncols());
    let scores = match score_func {
        ScoreFunc::FRegression => f_regression(&cols, y, par),
        ScoreFunc::FClassif => f_classif(&cols, y, par),
    };
    let support = top_k(&scores, k);
    Ok(Select {
        n_features: x.ncols(),
        scores,
        support,
    })
}

/// `_check_y(y, multi_output=True)` then `check_consistent_length`.
fn check_target(y: &[f64], n_rows: usize) -> Result<()> {
    check_all_finite(y.iter().copied(), "y")?;
    check_min_len(y.len(), Some(NAME))?;
    check_consistent_length(n_rows, y.len())
}

/// Sum of `f(i)` over `0..n` with numpy's pairwise summation.
fn psum(n: usize, f: impl Fn(usize) -> f64) -> f64 {
    let [s] = pairwise_sum(n, |i| [f(i)]);
    s
}

/// `f_regression(X, y, center=True, force_finite=True)`: the F statistic of
/// `r_regression`'s correlation, computed with the same formulas (moment
/// based column norms, then `r^2 / (1 - r^2) * (n - 2)`). Dot products use
/// pairwise summation where numpy calls BLAS, so scores agree to rounding.
fn f_regression(cols: &[Cow<'_, [f64]>], y: &[f64], par: bool) -> Vec<f64> {
    let n = y.len();
    let n_f = n as f64;
    let y_mean = psum(n, |i| y[i]) / n_f;
    let yc: Vec<f64> = y.iter().map(|&v| v - y_mean).collect();
    let y_norm = psum(n, |i| yc[i] * yc[i]).sqrt();
    let dof = (n as i64 - 2) as f64;

    map_columns(cols.len(), par, |j| {
        let col = &cols[j];
        let [sum, dot] = pairwise_sum(n, |i| [col[i], yc[i] * col[i]]);
        let squares = einsum_sum_of_squares(col);
        let mean = (0.0 + sum) / n_f;
        let x_norm = (squares - n_f * (mean * mean)).sqrt();
        let mut corr = dot / x_norm / y_norm;
        if corr.is_nan() {
            corr = 0.0;
        }
        let r2 = corr * corr;
        let f = r2 / (1.0 - r2) * dof;
        if f.is_infinite() {
            f64::MAX
        } else if f.is_nan() {
            0.0
        } else {
            f
        }
    })
}

/// `np.einsum("ij,ij->i", X.T, X.T)` for one column, i.e. `row_norms(X.T,
/// squared=True)`: numpy's baseline (x86-64-v2, two f64 lanes, no FMA)
/// `sum_of_products_contig_contig_outstride0_two` loop, which accumulates
/// two lanes over blocks of four vectors in reverse order. The norms feed a
/// cancellation-prone formula, so matching this order matters.
fn einsum_sum_of_squares(col: &[f64]) -> f64 {
    let mut acc = [0.0f64; 2];
    let mut blocks = col.chunks_exact(8);
    for b in &mut blocks {
        for (lane, a) in acc.iter_mut().enumerate() {
            let t = b[6 + lane] * b[6 + lane] + *a;
            let t = b[4 + lane] * b[4 + lane] + t;
            let t = b[2 + lane] * b[2 + lane] + t;
            *a = b[lane] * b[lane] + t;
        }
    }
    for pair in blocks.remainder().chunks(2) {
        for (a, &v) in acc.iter_mut().zip(pair) {
            *a += v * v;
        }
    }
    0.0 + (acc[0] + acc[1])
}

/// `f_classif(X, y)`: one-way ANOVA F per column (scikit-learn's
/// `f_oneway`), classes being the distinct values of `y` in ascending order.
/// Per-class sums are accumulated row by row, as numpy does on the
/// C-ordered `X[y == k]` blocks (pairwise when there is a single column).
fn f_classif(cols: &[Cow<'_, [f64]>], y: &[f64], par: bool) -> Vec<f64> {
    let n = y.len();
    // Distinct classes, ascending; -0.0 and 0.0 are one class.
    let mut classes: Vec<f64> = y.iter().map(|&v| v + 0.0).collect();
    classes.sort_unstable_by(f64::total_cmp);
    classes.dedup_by(|a, b| a.total_cmp(b).is_eq());
    let n_classes = classes.len();
    // Row indices grouped by class, ascending within each class.
    let mut class_rows: Vec<Vec<usize>> = vec![Vec::new(); n_classes];
    for (i, &v) in y.iter().enumerate() {
        // `y` holds no NaN (checked), so every value is found.
        if let Ok(c) = classes.binary_search_by(|c| c.total_cmp(&(v + 0.0))) {
            class_rows[c].push(i);
        }
    }
    let single_column = cols.len() == 1;
    let n_f = n as f64;
    let dfbn = (n_classes as i64 - 1) as f64;
    let dfwn = (n as i64 - n_classes as i64) as f64;

    map_columns(cols.len(), par, |j| {
        let col = &cols[j];
        let mut ss_alldata = 0.0;
        let mut sums_alldata = 0.0;
        let mut ssbn = 0.0;
        for rows in &class_rows {
            let (sum, squares) = if single_column {
                let [s, q] = pairwise_sum(rows.len(), |t| {
                    let v = col[rows[t]];
                    [v, v * v]
                });
                (s, q)
            } else {
                rows.iter().fold((0.0, 0.0), |(s, q), &r| {
                    let v = col[r];
                    (s + v, q + v * v)
                })
            };
            ss_alldata += squares;
            sums_alldata += sum;
            ssbn += sum * sum / rows.len() as f64;
        }
        let square_of_sums_alldata = sums_alldata * sums_alldata;
        let sstot = ss_alldata - square_of_sums_alldata / n_f;
        ssbn -= square_of_sums_alldata / n_f;
        let sswn = sstot - ssbn;
        let msb = ssbn / dfbn;
        let msw = sswn / dfwn;
        msb / msw
    })
}

/// scikit-learn's `_get_support_mask` for an integer `k`: NaN scores become
/// the most negative float, a stable ascending sort ranks the columns and
/// the last `k` are kept (so ties favour later columns). Returned ascending.
fn top_k(scores: &[f64], k: usize) -> Vec<usize> {
    let cleaned: Vec<f64> = scores
        .iter()
        .map(|&s| if s.is_nan() { f64::MIN } else { s })
        .collect();
    let mut order: Vec<usize> = (0..cleaned.len()).collect();
    // Stable; no NaN is left, and -0.0 == 0.0 as in numpy.
    order.sort_by(|&a, &b| {
        cleaned[a]
            .partial_cmp(&cleaned[b])
            .unwrap_or(Ordering::Equal)
    });
    let mut kept = order.split_off(order.len().saturating_sub(k));
    kept.sort_unstable();
    kept
}

impl Select {
    /// The univariate scores (scikit-learn's `scores_`), for inspection.
    pub fn scores(&self) -> &[f64] {
        &self.scores
    }

    /// Indices of the kept columns, ascending.
    pub fn support(&self) -> &[usize] {
        &self.support
    }

    /// Keeps the selected columns, in their original order.
    pub fn transform(&self, x: MatRef<'_, f64>) -> Result<Matrix> {
        let validator = Validator::named(NAME, false);
        let cols = columns(x);
        validator.check(&cols, x.nrows(), x.ncols())?;
        validator.check_n_features(x.ncols(), self.n_features)?;
        let par = parallel(x.nrows(), self.support.len());
        Ok(build_matrix(
            x.nrows(),
            self.support.len(),
            par,
            |c, out| {
                out.copy_from_slice(&cols[self.support[c]]);
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use faer::Mat;

    use super::*;
    use crate::kernels::columns::test_util::{
        assert_close, assert_rejects_shapes, flat, mat, synth,
    };

    /// `S` of the reference script: synth(500, [0, 10, -5, 1e3, 0, 2]) with
    /// column 4 set to 1.0 (constant) and column 5 a copy of column 2 (tie).
    fn data() -> (Matrix, Vec<f64>, Vec<f64>) {
        let base = synth(500, &[0.0, 10.0, -5.0, 1e3, 0.0, 2.0], None);
        let x = Mat::from_fn(500, 6, |i, j| match j {
            4 => 1.0,
            5 => base[(i, 2)],
            _ => base[(i, j)],
        });
        let y = (0..500)
            .map(|i| ((i * 13) % 7) as f64 * 0.5 + x[(i, 0)] * 0.3 - x[(i, 3)] * 0.01)
            .collect();
        let classes = (0..500).map(|i| ((i * 13) % 3) as f64).collect();
        (x, y, classes)
    }

    /// The scores of a `k = 3` fit, then the columns kept for each
    /// `(k, support)` case.
    #[track_caller]
    fn assert_selects<const N: usize>(
        (x, y): (&Matrix, &[f64]),
        score_func: ScoreFunc,
        scores: &[f64],
        cases: [(usize, &[usize]); N],
    ) {
        let sel = fit(x.as_ref(), y, score_func, 3).unwrap();
        assert_close(sel.scores(), scores);
        for (k, want) in cases {
            let sel = fit(x.as_ref(), y, score_func, k).unwrap();
            assert_eq!(sel.support(), want, "k={k}");
        }
    }

    #[test]
    fn f_regression_scores_and_support_match_sklearn() {
        let (x, y, _) = data();
        // SelectKBest(f_regression, k=3).fit(S, y).scores_
        #[rustfmt::skip]
        let scores = [
            257.5792115940822, 123.49066208415094, 41.04533650776854,
            9.379173142596036, 0.0, 41.04533650776854,
        ];
        let supports = [
            (0, &[][..]),
            (1, &[0]),
            (2, &[0, 1]),
            (3, &[0, 1, 5]),
            (4, &[0, 1, 2, 5]),
            (10, &[0, 1, 2, 3, 4, 5]),
        ];
        assert_selects((&x, &y), ScoreFunc::FRegression, &scores, supports);
    }

    #[test]
    fn f_classif_scores_and_support_match_sklearn() {
        let (x, _, classes) = data();
        // SelectKBest(f_classif, k=3).fit(S, yc).scores_ (constant column -> nan)
        #[rustfmt::skip]
        let scores = [
            0.08816567480869203, 0.096166446473105, 0.12552268780782969,
            0.08618102702436989, f64::NAN, 0.12552268780782969,
        ];
        // Ties go to the later column; NaN ranks last.
        let supports = [
            (0, &[][..]),
            (1, &[5]),
            (2, &[2, 5]),
            (3, &[1, 2, 5]),
            (4, &[0, 1, 2, 5]),
            (10, &[0, 1, 2, 3, 4, 5]),
        ];
        assert_selects((&x, &classes), ScoreFunc::FClassif, &scores, supports);
        // f_classif(S[:, :1], yc): a single column sums pairwise in numpy.
        let one = Mat::from_fn(500, 1, |i, _| x[(i, 0)]);
        let sel = fit(one.as_ref(), &classes, ScoreFunc::FClassif, 1).unwrap();
        assert_close(sel.scores(), &[0.08816567480869188]);
        // f_classif(S[:, :2], zeros): one class -> nan scores.
        let sel = fit(x.as_ref(), &[0.0; 500], ScoreFunc::FClassif, 1).unwrap();
        assert!(sel.scores().iter().all(|s| s.is_nan()));
        assert_eq!(sel.support(), &[5]);
    }

    #[test]
    fn f_regression_degenerate_sizes() {
        // f_regression([[1, 2], [2, 2]], [1, 3]) -> [0.0, 0.0] (perfect fit with 0 dof, constant)
        let x = mat(&[&[1.0, 2.0], &[2.0, 2.0]]);
        let sel = fit(x.as_ref(), &[1.0, 3.0], ScoreFunc::FRegression, 1).unwrap();
        assert_close(sel.scores(), &[0.0, 0.0]);
        assert_eq!(sel.support(), &[1]);
        // f_regression([[1, 2]], [1]) -> [-0.0, -0.0]
        let x = mat(&[&[1.0, 2.0]]);
        let sel = fit(x.as_ref(), &[1.0], ScoreFunc::FRegression, 2).unwrap();
        assert_close(sel.scores(), &[0.0, 0.0]);
        // Perfect correlation: r rounds to just above or below 1 (or exactly 1
        // -> infinite F -> float max), as in sklearn's f_regression(X, y):
        let cases: [(&[f64], &[f64], f64); 5] = [
            (&[1.0, 2.0, 4.0], &[2.0, 4.0, 8.0], -2251799813685249.0),
            (&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0], 4503599627370495.0),
            (&[0.0, 1.0, 2.0], &[0.0, 1.0, 2.0], 4503599627370495.0),
            (&[0.0, 1.0, 3.0], &[0.0, 2.0, 6.0], 2251799813685247.0),
            (&[1.0, 2.0, 3.0, 5.0], &[-1.0, -2.0, -3.0, -5.0], f64::MAX),
        ];
        for (col, y, want) in cases {
            let x = Mat::from_fn(col.len(), 1, |i, _| col[i]);
            let sel = fit(x.as_ref(), y, ScoreFunc::FRegression, 1).unwrap();
            assert_eq!(sel.scores(), &[want], "x={col:?}");
        }
    }

    #[test]
    fn transform_keeps_selected_columns_in_order() {
        let (x, y, _) = data();
        let sel = fit(x.as_ref(), &y, ScoreFunc::FRegression, 3).unwrap();
        let xt = x.transpose().to_owned();
        let out = sel.transform(xt.transpose()).unwrap();
        assert_eq!((out.nrows(), out.ncols()), (500, 3));
        for (c, &j) in [0usize, 1, 5].iter().enumerate() {
            for i in 0..500 {
                assert_eq!(out[(i, c)], x[(i, j)]);
            }
        }
        let none = fit(x.as_ref(), &y, ScoreFunc::FRegression, 0).unwrap();
        let out = none.transform(x.as_ref()).unwrap();
        assert_eq!((out.nrows(), out.ncols()), (500, 0));
        assert!(flat(&out).is_empty());
    }

    #[test]
    fn validation_errors_match_sklearn() {
        let x = mat(&[&[1.0, 2.0], &[3.0, 5.0], &[4.0, 4.0]]);
        let msg = |r: Result<Select>| r.unwrap_err().to_string();
        let nan = mat(&[&[1.0, f64::NAN]]);
        assert!(msg(fit(nan.as_ref(), &[1.0], ScoreFunc::FRegression, 1))
            .starts_with("Input X contains NaN.\nSelectKBest does not accept missing values"));
        let inf = mat(&[&[1.0, f64::INFINITY]]);
        assert_eq!(
            msg(fit(inf.as_ref(), &[1.0], ScoreFunc::FClassif, 1)),
            "Input X contains infinity or a value too large for dtype('float64')."
        );
        assert_eq!(
            msg(fit(
                x.as_ref(),
                &[0.0, f64::NAN, 1.0],
                ScoreFunc::FRegression,
                1
            )),
            "Input y contains NaN."
        );
        assert_eq!(
            msg(fit(
                x.as_ref(),
                &[0.0, f64::INFINITY, 1.0],
                ScoreFunc::FRegression,
                1
            )),
            "Input y contains infinity or a value too large for dtype('float64')."
        );
        assert_eq!(
            msg(fit(x.as_ref(), &[0.0, 1.0], ScoreFunc::FClassif, 1)),
            "Found input variables with inconsistent numbers of samples: [3, 2]"
        );
        assert_eq!(
            msg(fit(Mat::<f64>::zeros(0, 3).as_ref(), &[], ScoreFunc::FRegression, 1)),
            "Found array with 0 sample(s) (shape=(0, 3)) while a minimum of 1 is required by SelectKBest."
        );
        assert!(fit(
            Mat::<f64>::zeros(3, 0).as_ref(),
            &[1.0; 3],
            ScoreFunc::FClassif,
            0
        )
        .is_err());
        let sel = fit(x.as_ref(), &[0.0, 1.0, 1.0], ScoreFunc::FClassif, 1).unwrap();
        assert_rejects_shapes(|x| sel.transform(x), (2, 3), 2, NAME);
        assert!(sel.transform(nan.as_ref()).is_err());
    }

    #[test]
    fn sum_of_squares_follows_numpy_einsum_order() {
        // np.einsum("ij,ij->i", X.T, X.T) for X = synth(1001, [1e3]) -> 1008395778.6035504
        // (np.sum(x * x), pairwise, gives 1008395778.6035502).
        let x = synth(1001, &[1e3], None);
        let col: Vec<f64> = x.col(0).iter().copied().collect();
        assert_eq!(einsum_sum_of_squares(&col), 1008395778.6035504);
        assert_eq!(einsum_sum_of_squares(&[]), 0.0);
        assert_eq!(einsum_sum_of_squares(&[3.0]), 9.0);
    }
}
