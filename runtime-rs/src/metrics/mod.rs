//! Scoring functions with the semantics of scikit-learn's named scorers
//! (`neg_*` scorers return the negated loss). Sums follow NumPy's pairwise
//! summation so results match scikit-learn to the last bit where possible.
//!
//! This module holds the scorer dispatch, the regression metrics and what
//! the classification metrics share (label typing, number formatting);
//! [`classification`] and [`ranking`] hold the label and score metrics.

mod classification;
mod labels;
mod ranking;

use serde::{Deserialize, Serialize};

use crate::data::Prediction;
use crate::error::Result;
use crate::kernels::check::{check_all_finite, check_consistent_length, check_min_len};
use crate::kernels::columns::numpy_sum;
use classification::{accuracy, balanced_accuracy, f1, log_loss};
use labels::numpy_mean;
use ranking::roc_auc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    R2,
    NegMeanSquaredError,
    NegRootMeanSquaredError,
    NegMeanAbsoluteError,
    Accuracy,
    BalancedAccuracy,
    F1,
    RocAuc,
    NegLogLoss,
}

/// Scores `pred` against `y_true` as scikit-learn's scorer named `metric`
/// would. Classification targets are class codes; `pos_label` is the code of
/// the positive class (used by `F1` only).
pub fn score(metric: Metric, y_true: &[f64], pred: &Prediction, pos_label: f64) -> Result<f64> {
    match metric {
        Metric::R2 => r2(y_true, &pred.values),
        Metric::NegMeanSquaredError => mse(y_true, &pred.values).map(|v| -v),
        Metric::NegRootMeanSquaredError => mse(y_true, &pred.values).map(|v| -v.sqrt()),
        Metric::NegMeanAbsoluteError => mae(y_true, &pred.values).map(|v| -v),
        Metric::Accuracy => accuracy(y_true, &pred.values),
        Metric::BalancedAccuracy => balanced_accuracy(y_true, &pred.values),
        Metric::F1 => f1(y_true, &pred.values, pos_label),
        Metric::RocAuc => roc_auc(y_true, pred),
        Metric::NegLogLoss => log_loss(y_true, pred).map(|v| -v),
    }
}

/// `check_array` on a 1-D float vector: non-empty and finite.
fn check_finite_vector(v: &[f64]) -> Result<()> {
    check_min_len(v.len(), None)?;
    check_all_finite(v.iter().copied(), "")
}

/// `_check_reg_targets`: same length, non-empty, finite.
fn check_regression(y_true: &[f64], y_pred: &[f64]) -> Result<()> {
    check_consistent_length(y_true.len(), y_pred.len())?;
    check_finite_vector(y_true)?;
    check_finite_vector(y_pred)
}

fn r2(y_true: &[f64], y_pred: &[f64]) -> Result<f64> {
    check_regression(y_true, y_pred)?;
    if y_pred.len() < 2 {
        // scikit-learn warns (UndefinedMetricWarning) and returns NaN.
        return Ok(f64::NAN);
    }
    let residuals: Vec<f64> = y_true
        .iter()
        .zip(y_pred)
        .map(|(t, p)| (t - p) * (t - p))
        .collect();
    let numerator = numpy_sum(&residuals);
    let mean = numpy_mean(y_true);
    let deviations: Vec<f64> = y_true.iter().map(|t| (t - mean) * (t - mean)).collect();
    let denominator = numpy_sum(&deviations);
    // `_assemble_fraction_of_explained_deviance` with force_finite=True.
    Ok(if numerator == 0.0 {
        1.0
    } else if denominator == 0.0 {
        0.0
    } else {
        1.0 - numerator / denominator
    })
}

fn mse(y_true: &[f64], y_pred: &[f64]) -> Result<f64> {
    check_regression(y_true, y_pred)?;
    let sq: Vec<f64> = y_true
        .iter()
        .zip(y_pred)
        .map(|(t, p)| (t - p) * (t - p))
        .collect();
    Ok(numpy_mean(&sq))
}

fn mae(y_true: &[f64], y_pred: &[f64]) -> Result<f64> {
    check_regression(y_true, y_pred)?;
    let abs: Vec<f64> = y_true
        .iter()
        .zip(y_pred)
        .map(|(t, p)| (p - t).abs())
        .collect();
    Ok(numpy_mean(&abs))
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use faer::Mat;

    use super::*;
    use crate::error::RuntimeError;

    pub(super) fn values(v: &[f64]) -> Prediction {
        Prediction {
            values: v.to_vec(),
            classes: Vec::new(),
            proba: None,
            decision: None,
        }
    }

    pub(super) fn with_proba(rows: &[&[f64]], classes: &[f64]) -> Prediction {
        let proba = Mat::from_fn(rows.len(), rows[0].len(), |i, j| rows[i][j]);
        Prediction {
            values: vec![0.0; rows.len()],
            classes: classes.to_vec(),
            proba: Some(proba),
            decision: None,
        }
    }

    pub(super) fn s(metric: Metric, y: &[f64], pred: &Prediction) -> f64 {
        score(metric, y, pred, 1.0).unwrap()
    }

    const YT: [f64; 10] = [3.0, -0.5, 2.0, 7.0, 4.2, 1.1, 0.0, 5.5, 2.2, -1.3];
    const YP: [f64; 10] = [2.5, 0.0, 2.1, 7.8, 3.9, 1.0, 0.3, 4.9, 2.0, -1.0];

    #[test]
    fn regression() {
        // sklearn.metrics r2_score / mean_squared_error / root_mean_squared_error
        // / mean_absolute_error (YT, YP); scorers negate the losses.
        let p = values(&YP);
        assert_eq!(s(Metric::R2, &YT, &p), 0.971431247658299);
        assert_eq!(
            s(Metric::NegMeanSquaredError, &YT, &p),
            -0.18299999999999997
        );
        assert_eq!(
            s(Metric::NegRootMeanSquaredError, &YT, &p),
            -0.4277849927241487
        );
        assert_eq!(s(Metric::NegMeanAbsoluteError, &YT, &p), -0.37);
    }

    #[test]
    fn regression_long_vectors_use_pairwise_sums() {
        // a[i] = ((i*7919) % 1000)/37 - 13, b[i] = ((i*104729) % 997)/41 - 12,
        // i < 1000; r2_score(a, b), mean_squared_error(a, b), mean_absolute_error(a, b).
        let a: Vec<f64> = (0..1000u64)
            .map(|i| ((i * 7919) % 1000) as f64 / 37.0 - 13.0)
            .collect();
        let b: Vec<f64> = (0..1000u64)
            .map(|i| ((i * 104729) % 997) as f64 / 41.0 - 12.0)
            .collect();
        let p = values(&b);
        assert_eq!(s(Metric::R2, &a, &p), -0.8289002942328345);
        assert_eq!(s(Metric::NegMeanSquaredError, &a, &p), -111.32812669421354);
        assert_eq!(s(Metric::NegMeanAbsoluteError, &a, &p), -8.619885299934081);
    }

    #[test]
    fn r2_edge_cases() {
        // r2_score([0.1]*3, [0]*3): the mean of y_true is not exactly 0.1.
        assert_eq!(
            s(Metric::R2, &[0.1; 3], &values(&[0.0; 3])),
            -5.192296858534829e31
        );
        // r2_score([2]*3, [2]*3) == 1.0; r2_score([2]*3, [2, 2, 2.5]) == 0.0.
        assert_eq!(s(Metric::R2, &[2.0; 3], &values(&[2.0; 3])), 1.0);
        assert_eq!(s(Metric::R2, &[2.0; 3], &values(&[2.0, 2.0, 2.5])), 0.0);
        // r2_score([1], [2]) is NaN (fewer than two samples).
        assert!(s(Metric::R2, &[1.0], &values(&[2.0])).is_nan());
    }

    #[test]
    fn input_errors() {
        let err = score(Metric::R2, &[1.0, 2.0], &values(&[1.0]), 1.0).unwrap_err();
        assert_eq!(
            err,
            RuntimeError::data(
                "Found input variables with inconsistent numbers of samples: [2, 1]"
            )
        );
        let err = score(Metric::NegMeanSquaredError, &[], &values(&[]), 1.0).unwrap_err();
        assert_eq!(
            err,
            RuntimeError::data(
                "Found array with 0 sample(s) (shape=(0,)) while a minimum of 1 is required."
            )
        );
        let err = score(Metric::Accuracy, &[], &values(&[]), 1.0).unwrap_err();
        assert!(matches!(err, RuntimeError::Data(m) if m.starts_with("Found empty input array")));
        let err = score(
            Metric::Accuracy,
            &[0.0, 1.0],
            &values(&[0.0, f64::NAN]),
            1.0,
        )
        .unwrap_err();
        assert_eq!(err, RuntimeError::data("Input y_pred contains NaN."));
        let err = score(Metric::R2, &[0.0, f64::NAN], &values(&[0.0, 1.0]), 1.0).unwrap_err();
        assert_eq!(err, RuntimeError::data("Input contains NaN."));
    }
}
