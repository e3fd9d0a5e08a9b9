//! Input validation with scikit-learn's messages, shared by every kernel and
//! by the metrics: one place decides what `check_array`, `check_X_y` and
//! `_check_n_features` say, so the wording cannot drift between steps.

use std::borrow::Cow;

use faer::MatRef;
use rayon::prelude::*;

use crate::error::{Result, RuntimeError};
use crate::kernels::columns::{map_columns, parallel};

/// `_assert_all_finite`'s message for the input called `name` (`""` when
/// `check_array` is not told a name).
fn non_finite_message(has_nan: bool, name: &str) -> String {
    let sep = if name.is_empty() { "" } else { " " };
    if has_nan {
        format!("Input {name}{sep}contains NaN.")
    } else {
        format!("Input {name}{sep}contains infinity or a value too large for dtype('float64').")
    }
}

/// Refuses NaN (first) and infinite values of a 1-D input.
pub(crate) fn check_all_finite(values: impl IntoIterator<Item = f64>, name: &str) -> Result<()> {
    let (mut nan, mut inf) = (false, false);
    for v in values {
        nan |= v.is_nan();
        inf |= v.is_infinite();
    }
    if nan || inf {
        return Err(RuntimeError::data(non_finite_message(nan, name)));
    }
    Ok(())
}

/// Refuses NaN / infinite entries of a matrix, without the NaN hint.
pub(crate) fn check_finite(x: MatRef<'_, f64>, name: &str) -> Result<()> {
    // `v * 0.0` is NaN exactly for NaN and +-inf, so one vectorisable sum per
    // column detects any non-finite value.
    let col_ok = |j: usize| -> bool {
        let col = x.col(j);
        let acc = match col.try_as_col_major() {
            Some(c) => c.as_slice().iter().fold(0.0, |a, &v| a + v * 0.0),
            None => col.iter().fold(0.0, |a, &v| a + v * 0.0),
        };
        acc == 0.0
    };
    let all_ok = if x.nrows() * x.ncols() >= 1 << 16 {
        (0..x.ncols()).into_par_iter().all(col_ok)
    } else {
        (0..x.ncols()).all(col_ok)
    };
    if all_ok {
        return Ok(());
    }
    let has_nan = (0..x.ncols()).any(|j| x.col(j).iter().any(|v| v.is_nan()));
    Err(RuntimeError::data(non_finite_message(has_nan, name)))
}

/// `check_array`'s minimum-size checks on a 2-D input (one sample, one
/// feature); `estimator` adds " by Name" when `check_array` is told it.
pub(crate) fn check_min_shape(nrows: usize, ncols: usize, estimator: Option<&str>) -> Result<()> {
    let by = estimator.map_or(String::new(), |e| format!(" by {e}"));
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

/// `check_array`'s minimum-size check on a 1-D input.
pub(crate) fn check_min_len(len: usize, estimator: Option<&str>) -> Result<()> {
    if len == 0 {
        let by = estimator.map_or(String::new(), |e| format!(" by {e}"));
        return Err(RuntimeError::data(format!(
            "Found array with 0 sample(s) (shape=(0,)) while a minimum of 1 is required{by}."
        )));
    }
    Ok(())
}

/// `check_consistent_length` of two inputs.
pub(crate) fn check_consistent_length(a: usize, b: usize) -> Result<()> {
    if a != b {
        return Err(RuntimeError::data(format!(
            "Found input variables with inconsistent numbers of samples: [{a}, {b}]"
        )));
    }
    Ok(())
}

/// `_check_n_features` at predict / transform time.
pub(crate) fn check_n_features(got: usize, expected: usize, estimator: &str) -> Result<()> {
    if got != expected {
        return Err(RuntimeError::data(format!(
            "X has {got} features, but {estimator} is expecting {expected} features as input."
        )));
    }
    Ok(())
}

/// `check_X_y` as the models run it: `x` non-empty and finite, `y` as long
/// as `x` and finite. NaN in `x` gets no hint (the models' messages).
pub(crate) fn check_x_y(x: MatRef<'_, f64>, y: &[f64], estimator: &str) -> Result<()> {
    check_min_shape(x.nrows(), x.ncols(), Some(estimator))?;
    check_finite(x, "X")?;
    check_consistent_length(x.nrows(), y.len())?;
    check_all_finite(y.iter().copied(), "y")
}

/// Input checks of scikit-learn's `check_array` as one preprocessing
/// estimator runs them: finiteness, at least one sample and one feature.
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
    pub(crate) fn check(&self, cols: &[Cow<'_, [f64]>], nrows: usize, ncols: usize) -> Result<()> {
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
        if has_nan || has_inf {
            let mut msg = non_finite_message(has_nan, if self.named { "X" } else { "" });
            if has_nan && self.named {
                msg.push('\n');
                msg.push_str(&nan_hint(self.estimator));
            }
            return Err(RuntimeError::data(msg));
        }
        check_min_shape(nrows, ncols, self.named.then_some(self.estimator))
    }

    /// `_check_n_features` at transform time.
    pub(crate) fn check_n_features(&self, got: usize, expected: usize) -> Result<()> {
        check_n_features(got, expected, self.estimator)
    }
}

/// The advice scikit-learn appends when an estimator refuses NaN.
fn nan_hint(estimator: &str) -> String {
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
