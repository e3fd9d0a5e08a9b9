//! `OrdinalEncoder(dtype=float64)` over numeric category codes. With
//! `categories="auto"` each column's categories are its sorted distinct
//! values, NaN an extra, last category when it occurs in training; explicit
//! categories come in the order given (the lowering turns string categories
//! into the table's order-preserving codes). NaN that is a category encodes
//! as `encoded_missing_value`; a value that is not a category is refused, or
//! encodes as `unknown_value` (`handle_unknown="use_encoded_value"`).

use serde::{Deserialize, Serialize};

use faer::MatRef;

use crate::data::fitted::Ordinal;
use crate::data::Matrix;
use crate::error::{Result, RuntimeError};
use crate::kernels::check::Validator;
use crate::kernels::columns::{build_matrix, columns, map_columns, parallel};

const NAME: &str = "OrdinalEncoder";

/// The encoder's parameters as the plan carries them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Per input column, the categories in code order (NaN only last), or
    /// None to learn them (`categories="auto"`).
    pub categories: Option<Vec<Vec<f64>>>,
    /// Code of values that are not categories; None refuses them
    /// (`handle_unknown="error"`).
    pub unknown_value: Option<f64>,
    /// Code of NaN where NaN is a category.
    pub encoded_missing_value: f64,
}

/// `-0.0` and `0.0` are one category (numpy compares them equal); folding
/// the sign lets `total_cmp` order and search them.
fn key(v: f64) -> f64 {
    v + 0.0
}

/// Learns (or checks) each column's categories and the parameters against
/// them, raising what scikit-learn's `fit` raises, in its order.
pub fn fit(x: MatRef<'_, f64>, params: &Params) -> Result<Ordinal> {
    let cols = columns(x);
    Validator::anonymous(NAME, true).check(&cols, x.nrows(), x.ncols())?;
    let (categories, has_nan) = match &params.categories {
        None => {
            let par = parallel(x.nrows(), x.ncols());
            map_columns(cols.len(), par, |j| learn(&cols[j]))
                .into_iter()
                .unzip()
        }
        Some(given) => given_categories(given, x.ncols())?,
    };
    let encoder = Ordinal {
        categories,
        has_nan,
        unknown_value: params.unknown_value,
        encoded_missing_value: params.encoded_missing_value,
    };
    if params.categories.is_some() && params.unknown_value.is_none() {
        for (j, col) in cols.iter().enumerate() {
            if col.iter().any(|&v| encoder.code(j, v).is_none()) {
                return Err(RuntimeError::data(format!(
                    "Found unknown categories in column {j} during fit ({NAME} with \
                     handle_unknown='error' and explicit categories)"
                )));
            }
        }
    }
    encoder.check_codes()?;
    Ok(encoder)
}

/// Sorted distinct non-NaN values with their codes, and whether NaN occurs.
fn learn(col: &[f64]) -> (Vec<(f64, f64)>, bool) {
    let mut values: Vec<f64> = col
        .iter()
        .copied()
        .filter(|v| !v.is_nan())
        .map(key)
        .collect();
    let has_nan = values.len() < col.len();
    values.sort_unstable_by(f64::total_cmp);
    values.dedup_by(|a, b| a.total_cmp(b).is_eq());
    let categories = values
        .into_iter()
        .enumerate()
        .map(|(i, v)| (v, i as f64))
        .collect();
    (categories, has_nan)
}

/// Explicit categories keyed for search; NaN may only come last.
#[allow(clippy::type_complexity)]
fn given_categories(
    given: &[Vec<f64>],
    n_features: usize,
) -> Result<(Vec<Vec<(f64, f64)>>, Vec<bool>)> {
    if given.len() != n_features {
        return Err(RuntimeError::parameter(
            "Shape mismatch: if categories is an array, it has to be of shape (n_features,).",
        ));
    }
    let mut categories = Vec::with_capacity(given.len());
    let mut has_nan = Vec::with_capacity(given.len());
    for (j, cats) in given.iter().enumerate() {
        let nan_last = cats.last().is_some_and(|v| v.is_nan());
        let known = &cats[..cats.len() - usize::from(nan_last)];
        if known.iter().any(|v| v.is_nan()) {
            return Err(RuntimeError::parameter(format!(
                "Nan should be the last element in user provided categories, see categories \
                 in column #{j}"
            )));
        }
        let mut keyed: Vec<(f64, f64)> = known
            .iter()
            .enumerate()
            .map(|(i, &v)| (key(v), i as f64))
            .collect();
        keyed.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        if keyed.windows(2).any(|w| w[0].0.total_cmp(&w[1].0).is_eq()) {
            return Err(RuntimeError::parameter(format!(
                "In column {j}, the predefined categories contain duplicate elements."
            )));
        }
        categories.push(keyed);
        has_nan.push(nan_last);
    }
    Ok((categories, has_nan))
}

impl Ordinal {
    /// The code of `v` in column `j`, or None when it is not a category.
    fn code(&self, j: usize, v: f64) -> Option<f64> {
        if v.is_nan() {
            return self.has_nan[j].then_some(self.encoded_missing_value);
        }
        let cats = &self.categories[j];
        cats.binary_search_by(|c| c.0.total_cmp(&key(v)))
            .ok()
            .map(|i| cats[i].1)
    }

    /// `unknown_value` and `encoded_missing_value` must not be the code of a
    /// category (NaN is not counted; it never equals a code).
    fn check_codes(&self) -> Result<()> {
        let used = |code: f64, j: usize| 0.0 <= code && code < self.categories[j].len() as f64;
        if let Some(unknown) = self.unknown_value {
            if (0..self.categories.len()).any(|j| used(unknown, j)) {
                return Err(RuntimeError::parameter(format!(
                    "The used value for unknown_value {unknown} is one of the values already \
                     used for encoding the seen categories."
                )));
            }
        }
        let missing = self.encoded_missing_value;
        let clashes: Vec<usize> = (0..self.categories.len())
            .filter(|&j| self.has_nan[j] && used(missing, j))
            .collect();
        if !clashes.is_empty() {
            return Err(RuntimeError::parameter(format!(
                "encoded_missing_value ({missing}) is already used to encode a known category \
                 in features: {clashes:?}"
            )));
        }
        Ok(())
    }

    /// One code per value; a value that is not a category fails the step
    /// unless `unknown_value` is set.
    pub fn transform(&self, x: MatRef<'_, f64>) -> Result<Matrix> {
        let validator = Validator::anonymous(NAME, true);
        let cols = columns(x);
        validator.check(&cols, x.nrows(), x.ncols())?;
        validator.check_n_features(x.ncols(), self.categories.len())?;
        let par = parallel(x.nrows(), x.ncols());
        let encoded = map_columns(cols.len(), par, |j| {
            cols[j]
                .iter()
                .map(|&v| {
                    self.code(j, v).or(self.unknown_value).ok_or_else(|| {
                        RuntimeError::data(format!(
                            "Found unknown categories in column {j} during transform ({NAME} \
                             with handle_unknown='error'; set \
                             handle_unknown='use_encoded_value' to encode them)"
                        ))
                    })
                })
                .collect::<Result<Vec<f64>>>()
        })
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
        Ok(build_matrix(x.nrows(), x.ncols(), par, |j, out| {
            out.copy_from_slice(&encoded[j]);
        }))
    }
}

#[cfg(test)]
mod tests {
    use faer::Mat;

    use super::*;
    use crate::kernels::columns::test_util::{
        assert_close, assert_rejects_shapes, categorical_train as train, flat, mat,
    };

    const NAN: f64 = f64::NAN;

    fn test_rows() -> Matrix {
        mat(&[&[2.0, NAN], &[5.0, 0.0], &[1.0, 7.0], &[NAN, -0.0]])
    }

    fn params(categories: Option<Vec<Vec<f64>>>, unknown: Option<f64>, missing: f64) -> Params {
        Params {
            categories,
            unknown_value: unknown,
            encoded_missing_value: missing,
        }
    }

    fn encode(p: &Params) -> Vec<f64> {
        let enc = fit(train().as_ref(), p).unwrap();
        flat(&enc.transform(test_rows().as_ref()).unwrap())
    }

    #[test]
    fn auto_categories_sorted_with_nan_last() {
        // OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
        // .fit(O).transform(OT), column-major
        let p = params(None, Some(-1.0), NAN);
        assert_close(&encode(&p), &[1.0, -1.0, 0.0, -1.0, NAN, 0.0, -1.0, 0.0]);
        // unknown_value=np.nan, encoded_missing_value=-2
        let p = params(None, Some(NAN), -2.0);
        assert_close(&encode(&p), &[1.0, NAN, 0.0, NAN, -2.0, 0.0, NAN, 0.0]);
    }

    #[test]
    fn explicit_categories_keep_their_order() {
        // categories=[[1, 3], [0, 1, nan]], unknown_value=9
        let p = params(
            Some(vec![vec![1.0, 3.0], vec![0.0, 1.0, NAN]]),
            Some(9.0),
            NAN,
        );
        assert_close(&encode(&p), &[9.0, 9.0, 0.0, 9.0, NAN, 0.0, 9.0, 0.0]);
        // Unsorted (string codes): the code is the position in the list.
        let p = params(
            Some(vec![vec![3.0, 1.0, 2.0], vec![1.0, 0.0, NAN]]),
            None,
            NAN,
        );
        let enc = fit(train().as_ref(), &p).unwrap();
        let out = enc.transform(train().as_ref()).unwrap();
        assert_close(
            &flat(&out),
            &[0.0, 1.0, 2.0, 0.0, 1.0, 0.0, NAN, 0.0, 1.0, 1.0],
        );
    }

    #[test]
    fn errors_match_sklearn() {
        let msg = |p: Params| fit(train().as_ref(), &p).unwrap_err().to_string();
        assert_eq!(
            msg(params(None, Some(2.0), NAN)),
            "invalid parameter: The used value for unknown_value 2 is one of the values \
             already used for encoding the seen categories."
        );
        assert_eq!(
            msg(params(None, None, 1.0)),
            "invalid parameter: encoded_missing_value (1) is already used to encode a known \
             category in features: [1]"
        );
        let explicit = Some(vec![vec![1.0, 2.0, 3.0], vec![0.0, 1.0]]);
        assert!(msg(params(explicit, None, NAN))
            .starts_with("Found unknown categories in column 1 during fit"));
        let duplicated = Some(vec![vec![1.0, 2.0, 3.0], vec![0.0, -0.0]]);
        assert!(msg(params(duplicated, Some(-1.0), NAN)).contains("duplicate"));
        assert!(msg(params(Some(vec![vec![NAN, 1.0]; 2]), Some(-1.0), NAN))
            .contains("Nan should be the last"));
        assert!(msg(params(Some(vec![vec![1.0]]), Some(-1.0), NAN)).contains("Shape mismatch"));
        assert_eq!(
            fit(mat(&[&[f64::INFINITY]]).as_ref(), &params(None, None, NAN))
                .unwrap_err()
                .to_string(),
            "Input contains infinity or a value too large for dtype('float64')."
        );

        let enc = fit(train().as_ref(), &params(None, None, NAN)).unwrap();
        let err = enc.transform(test_rows().as_ref()).unwrap_err();
        assert!(matches!(err, RuntimeError::Data(_)));
        assert!(err
            .to_string()
            .starts_with("Found unknown categories in column 0 during transform"));
        assert_rejects_shapes(|x| enc.transform(x), (2, 3), 2, NAME);
    }

    #[test]
    fn large_strided_input_is_consistent() {
        // Codes 0..96 spaced by 2 in three columns, parallel path: the
        // ordinal code of v is v / 2.
        let x = Mat::from_fn(50_000, 3, |i, j| (2 * ((i * 7 + j) % 97)) as f64);
        let xt = x.transpose().to_owned();
        let enc = fit(xt.transpose(), &params(None, None, NAN)).unwrap();
        let out = enc.transform(x.as_ref()).unwrap();
        for i in (0..x.nrows()).step_by(101) {
            for j in 0..3 {
                assert_eq!(out[(i, j)], x[(i, j)] / 2.0);
            }
        }
    }
}
