//! `OneHotEncoder(categories="auto", handle_unknown="ignore", drop=None,
//! sparse_output=False)` over numeric category codes. Each column's
//! categories are its sorted distinct values, with NaN as one extra, last
//! category when it occurs in training; unknown values encode as all zeros.

use faer::MatRef;

use crate::data::fitted::OneHot;
use crate::data::{check_width, Matrix};
use crate::error::{Result, RuntimeError};

use crate::kernels::check::Validator;
use crate::kernels::columns::{build_matrix, columns, map_columns, parallel};

const NAME: &str = "OneHotEncoder";

/// Code of a value that is not a training category.
const UNKNOWN: u32 = u32::MAX;

/// `-0.0` and `0.0` are one category (numpy compares them equal); folding
/// the sign lets `total_cmp` order and search them.
fn key(v: f64) -> f64 {
    v + 0.0
}

/// Learns each column's categories. Infinite values are refused, as
/// scikit-learn's `ensure_all_finite="allow-nan"` check does.
pub fn fit(x: MatRef<'_, f64>) -> Result<OneHot> {
    let cols = columns(x);
    Validator::anonymous(NAME, true).check(&cols, x.nrows(), x.ncols())?;
    let par = parallel(x.nrows(), x.ncols());
    let found = map_columns(cols.len(), par, |j| {
        let mut values: Vec<f64> = cols[j]
            .iter()
            .copied()
            .filter(|v| !v.is_nan())
            .map(key)
            .collect();
        let has_nan = values.len() < cols[j].len();
        values.sort_unstable_by(f64::total_cmp);
        values.dedup_by(|a, b| a.total_cmp(b).is_eq());
        values.shrink_to_fit();
        (values, has_nan)
    });
    let (categories, has_nan): (Vec<Vec<f64>>, Vec<bool>) = found.into_iter().unzip();
    let width =
        categories.iter().map(Vec::len).sum::<usize>() + has_nan.iter().filter(|&&n| n).count();
    check_width(width)?;
    Ok(OneHot {
        categories,
        has_nan,
    })
}

impl OneHot {
    /// Number of indicator columns produced for input column `j`.
    fn width(&self, j: usize) -> usize {
        self.categories[j].len() + usize::from(self.has_nan[j])
    }

    /// Category index of `v` in column `j`, or [`UNKNOWN`].
    fn code(&self, j: usize, v: f64) -> u32 {
        let cats = &self.categories[j];
        if v.is_nan() {
            return if self.has_nan[j] {
                cats.len() as u32
            } else {
                UNKNOWN
            };
        }
        match cats.binary_search_by(|c| c.total_cmp(&key(v))) {
            Ok(i) => i as u32,
            Err(_) => UNKNOWN,
        }
    }

    /// One indicator column per category, input columns in order; a value
    /// unseen in training yields zeros in its column's block.
    pub fn transform(&self, x: MatRef<'_, f64>) -> Result<Matrix> {
        let validator = Validator::anonymous(NAME, true);
        let cols = columns(x);
        validator.check(&cols, x.nrows(), x.ncols())?;
        validator.check_n_features(x.ncols(), self.categories.len())?;
        let n = x.nrows();

        // Output column -> (input column, category index).
        let mut targets: Vec<(usize, u32)> = Vec::new();
        for j in 0..self.categories.len() {
            let width = self.width(j);
            // Categories come from at most `u32::MAX - 1` training rows per
            // column in practice; refuse anything that would not fit a code.
            if width >= UNKNOWN as usize {
                return Err(RuntimeError::data(format!(
                    "column {j} has {width} categories, more than OneHotEncoder can encode"
                )));
            }
            targets.extend((0..width as u32).map(|t| (j, t)));
        }
        if n.checked_mul(targets.len())
            .is_none_or(|e| e > isize::MAX as usize / 8)
        {
            return Err(RuntimeError::data(format!(
                "the one-hot output ({n} x {}) is too large to allocate",
                targets.len()
            )));
        }

        let codes: Vec<Vec<u32>> = map_columns(cols.len(), parallel(n, cols.len()), |j| {
            cols[j].iter().map(|&v| self.code(j, v)).collect()
        });
        let par = parallel(n, targets.len());
        Ok(build_matrix(n, targets.len(), par, |c, out| {
            let (j, t) = targets[c];
            for (o, &code) in out.iter_mut().zip(codes[j].iter()) {
                *o = if code == t { 1.0 } else { 0.0 };
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use faer::Mat;

    use super::*;
    use crate::kernels::columns::test_util::{
        assert_close, assert_rejects_shapes, categorical_train as train, flat, mat, synth,
    };

    const NAN: f64 = f64::NAN;

    /// `OT`, encoded by an encoder fitted on `O` (column-major, 4 x 6); fitted
    /// without O's NaN row, the last (NaN) block is absent.
    #[rustfmt::skip]
    const ENCODED: [f64; 24] = [
        0.0, 0.0, 1.0, 0.0,
        1.0, 0.0, 0.0, 0.0,
        0.0, 0.0, 0.0, 0.0,
        0.0, 1.0, 0.0, 1.0,
        0.0, 0.0, 0.0, 0.0,
        1.0, 0.0, 0.0, 0.0,
    ];

    /// `enc.transform(OT)`, checked to be 4 rows by `width`, column-major.
    fn encode_test_rows(enc: &OneHot, width: usize) -> Vec<f64> {
        let rows = mat(&[&[2.0, NAN], &[5.0, 0.0], &[1.0, 7.0], &[NAN, -0.0]]);
        let out = enc.transform(rows.as_ref()).unwrap();
        assert_eq!((out.nrows(), out.ncols()), (4, width));
        flat(&out)
    }

    #[test]
    fn categories_with_nan_last_and_unknowns() {
        // OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(O)
        // categories_ == [[1., 2., 3.], [-0., 1., nan]]
        let enc = fit(train().as_ref()).unwrap();
        assert_eq!(enc.categories, vec![vec![1.0, 2.0, 3.0], vec![0.0, 1.0]]);
        assert_eq!(enc.has_nan, vec![false, true]);
        // .transform(OT), column-major, shape (4, 6)
        assert_close(&encode_test_rows(&enc, 6), &ENCODED);
    }

    #[test]
    fn nan_unseen_in_training_is_unknown() {
        // Fitted on rows [0, 2, 3, 4] (no NaN): shape (4, 5)
        let x = train();
        let sub = Mat::from_fn(4, 2, |i, j| x[([0, 2, 3, 4][i], j)]);
        let enc = fit(sub.as_ref()).unwrap();
        assert_close(&encode_test_rows(&enc, 5), &ENCODED[..20]);
    }

    #[test]
    fn validation_errors_match_sklearn() {
        let msg = |r: Result<OneHot>| r.unwrap_err().to_string();
        assert_eq!(
            msg(fit(Mat::<f64>::zeros(0, 2).as_ref())),
            "Found array with 0 sample(s) (shape=(0, 2)) while a minimum of 1 is required."
        );
        assert_eq!(
            msg(fit(Mat::<f64>::zeros(3, 0).as_ref())),
            "Found array with 0 feature(s) (shape=(3, 0)) while a minimum of 1 is required."
        );
        assert_eq!(
            msg(fit(mat(&[&[f64::INFINITY]]).as_ref())),
            "Input contains infinity or a value too large for dtype('float64')."
        );
        let enc = fit(train().as_ref()).unwrap();
        assert_rejects_shapes(|x| enc.transform(x), (2, 3), 2, NAME);
    }

    #[test]
    fn large_strided_input_is_consistent() {
        // Integer-valued codes 0..96 in three columns, parallel path.
        let x = Mat::from_fn(50_000, 3, |i, j| ((i * 7 + j) % 97) as f64);
        let xt = x.transpose().to_owned();
        let enc = fit(xt.transpose()).unwrap();
        let out = enc.transform(x.as_ref()).unwrap();
        assert_eq!(out.ncols(), 3 * 97);
        for i in (0..x.nrows()).step_by(101) {
            for j in 0..3 {
                let hot = x[(i, j)] as usize + 97 * j;
                for c in 97 * j..97 * (j + 1) {
                    assert_eq!(out[(i, c)], f64::from(u8::from(c == hot)));
                }
            }
        }
        // Non-integer codes with NaN still give one indicator per row.
        let y = synth(2_000, &[0.0, 5.0], Some(17));
        let enc = fit(y.as_ref()).unwrap();
        let out = enc.transform(y.as_ref()).unwrap();
        for i in 0..out.nrows() {
            let total: f64 = (0..out.ncols()).map(|c| out[(i, c)]).sum();
            assert_eq!(total, 2.0);
        }
    }
}
