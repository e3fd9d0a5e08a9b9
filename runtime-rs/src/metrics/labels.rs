//! What the scorers share: NumPy's mean, label typing (`type_of_target`)
//! and the number formatting of scikit-learn's error messages.

use crate::error::Result;
use crate::kernels::check::check_all_finite;
use crate::kernels::columns::numpy_sum;

/// NumPy's `np.mean` of a non-empty contiguous `float64` array.
pub(super) fn numpy_mean(a: &[f64]) -> f64 {
    numpy_sum(a) / a.len() as f64
}

/// Python's `repr` of a float, close enough for error messages.
pub(super) fn py_float(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e16 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// NumPy's `repr` of a 1-D float array (`[0. 1.]`), for error messages.
pub(super) fn np_array(values: &[f64]) -> String {
    let items: Vec<String> = values
        .iter()
        .map(|&v| {
            if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e16 {
                format!("{v:.0}.")
            } else {
                py_float(v)
            }
        })
        .collect();
    format!("[{}]", items.join(" "))
}

/// `type_of_target` restricted to 1-D float label vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TargetType {
    Binary,
    Multiclass,
    Continuous,
}

impl TargetType {
    pub(super) fn name(self) -> &'static str {
        match self {
            TargetType::Binary => "binary",
            TargetType::Multiclass => "multiclass",
            TargetType::Continuous => "continuous",
        }
    }
}

pub(super) fn sorted_unique(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut u: Vec<f64> = values.collect();
    u.sort_by(f64::total_cmp);
    u.dedup_by(|a, b| a == b);
    u
}

pub(super) fn type_of_target(y: &[f64], name: &str) -> Result<TargetType> {
    if y.iter().any(|v| v.fract() != 0.0 || !v.is_finite()) {
        check_all_finite(y.iter().copied(), name)?;
        return Ok(TargetType::Continuous);
    }
    Ok(if sorted_unique(y.iter().copied()).len() <= 2 {
        TargetType::Binary
    } else {
        TargetType::Multiclass
    })
}
