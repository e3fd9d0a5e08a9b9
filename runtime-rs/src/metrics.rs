//! Scoring functions with the semantics of scikit-learn's named scorers
//! (`neg_*` scorers return the negated loss). Sums follow NumPy's pairwise
//! summation so results match scikit-learn to the last bit where possible.

use serde::{Deserialize, Serialize};

use crate::error::{Result, RuntimeError};
use crate::value::Prediction;

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

/// NumPy's `np.sum` of a contiguous `float64` array (pairwise summation with
/// 8 accumulators and blocks of 128), reproduced bit for bit.
pub(crate) fn numpy_sum(a: &[f64]) -> f64 {
    0.0 + pairwise_sum(a)
}

fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for &v in a {
            res += v;
        }
        res
    } else if n <= 128 {
        let mut r = [0.0; 8];
        r.copy_from_slice(&a[..8]);
        let full = n - n % 8;
        let mut i = 8;
        while i < full {
            for (j, acc) in r.iter_mut().enumerate() {
                *acc += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &a[full..] {
            res += v;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

/// NumPy's `np.mean` of a non-empty contiguous `float64` array.
fn numpy_mean(a: &[f64]) -> f64 {
    numpy_sum(a) / a.len() as f64
}

/// Python's `repr` of a float, close enough for error messages.
fn py_float(v: f64) -> String {
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
fn np_array(values: &[f64]) -> String {
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

fn inconsistent(a: usize, b: usize) -> RuntimeError {
    RuntimeError::data(format!(
        "Found input variables with inconsistent numbers of samples: [{a}, {b}]"
    ))
}

fn check_consistent(a: usize, b: usize) -> Result<()> {
    if a != b {
        return Err(inconsistent(a, b));
    }
    Ok(())
}

/// `check_array` on a 1-D float vector: non-empty and finite.
fn check_finite_vector(v: &[f64]) -> Result<()> {
    if v.is_empty() {
        return Err(RuntimeError::data(
            "Found array with 0 sample(s) (shape=(0,)) while a minimum of 1 is required.",
        ));
    }
    check_all_finite(v.iter().copied(), "")
}

fn check_all_finite(values: impl Iterator<Item = f64>, name: &str) -> Result<()> {
    let mut has_inf = false;
    for v in values {
        if v.is_nan() {
            return Err(RuntimeError::data(format!("Input {name}contains NaN.")));
        }
        if v.is_infinite() {
            has_inf = true;
        }
    }
    if has_inf {
        return Err(RuntimeError::data(format!(
            "Input {name}contains infinity or a value too large for dtype('float64')."
        )));
    }
    Ok(())
}

/// `_check_reg_targets`: same length, non-empty, finite.
fn check_regression(y_true: &[f64], y_pred: &[f64]) -> Result<()> {
    check_consistent(y_true.len(), y_pred.len())?;
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

/// `type_of_target` restricted to 1-D float label vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TargetType {
    Binary,
    Multiclass,
    Continuous,
}

impl TargetType {
    fn name(self) -> &'static str {
        match self {
            TargetType::Binary => "binary",
            TargetType::Multiclass => "multiclass",
            TargetType::Continuous => "continuous",
        }
    }
}

fn sorted_unique(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut u: Vec<f64> = values.collect();
    u.sort_by(f64::total_cmp);
    u.dedup_by(|a, b| a == b);
    u
}

fn type_of_target(y: &[f64], name: &str) -> Result<TargetType> {
    if y.iter().any(|v| v.fract() != 0.0 || !v.is_finite()) {
        check_all_finite(y.iter().copied(), &format!("{name} "))?;
        return Ok(TargetType::Continuous);
    }
    Ok(if sorted_unique(y.iter().copied()).len() <= 2 {
        TargetType::Binary
    } else {
        TargetType::Multiclass
    })
}

/// `_check_targets` for 1-D label vectors: returns the combined type and the
/// sorted union of labels.
fn check_targets(y_true: &[f64], y_pred: &[f64]) -> Result<(TargetType, Vec<f64>)> {
    check_consistent(y_true.len(), y_pred.len())?;
    if y_true.is_empty() {
        return Err(RuntimeError::data(
            "Found empty input array (e.g., `y_true` or `y_pred`) while a minimum of 1 \
             sample is required.",
        ));
    }
    let t = type_of_target(y_true, "y_true")?;
    let p = type_of_target(y_pred, "y_pred")?;
    let mut kind = if t == p {
        t
    } else if t != TargetType::Continuous && p != TargetType::Continuous {
        TargetType::Multiclass
    } else {
        return Err(RuntimeError::data(format!(
            "Classification metrics can't handle a mix of {} and {} targets",
            t.name(),
            p.name()
        )));
    };
    if kind == TargetType::Continuous {
        return Err(RuntimeError::data("continuous is not supported"));
    }
    let labels = sorted_unique(y_true.iter().chain(y_pred).copied());
    if kind == TargetType::Binary && labels.len() > 2 {
        kind = TargetType::Multiclass;
    }
    Ok((kind, labels))
}

fn accuracy(y_true: &[f64], y_pred: &[f64]) -> Result<f64> {
    check_targets(y_true, y_pred)?;
    let hits = y_true.iter().zip(y_pred).filter(|(t, p)| t == p).count();
    Ok(hits as f64 / y_true.len() as f64)
}

fn label_index(labels: &[f64], v: f64) -> usize {
    labels.partition_point(|&c| c < v)
}

fn balanced_accuracy(y_true: &[f64], y_pred: &[f64]) -> Result<f64> {
    let (_, labels) = check_targets(y_true, y_pred)?;
    let mut support = vec![0u64; labels.len()];
    let mut correct = vec![0u64; labels.len()];
    for (&t, &p) in y_true.iter().zip(y_pred) {
        let i = label_index(&labels, t);
        support[i] += 1;
        if t == p {
            correct[i] += 1;
        }
    }
    // Classes with no true sample give NaN recall; scikit-learn warns
    // ("y_pred contains classes not in y_true") and drops them.
    let per_class: Vec<f64> = support
        .iter()
        .zip(&correct)
        .filter(|(&s, _)| s > 0)
        .map(|(&s, &c)| c as f64 / s as f64)
        .collect();
    Ok(numpy_mean(&per_class))
}

fn f1(y_true: &[f64], y_pred: &[f64], pos_label: f64) -> Result<f64> {
    let (kind, labels) = check_targets(y_true, y_pred)?;
    if kind != TargetType::Binary {
        return Err(RuntimeError::data(
            "Target is multiclass but average='binary'. Please choose another average \
             setting, one of [None, 'micro', 'macro', 'weighted'].",
        ));
    }
    if !labels.contains(&pos_label) && labels.len() >= 2 {
        return Err(RuntimeError::data(format!(
            "pos_label={} is not a valid label. It should be one of {}",
            py_float(pos_label),
            np_array(&labels)
        )));
    }
    let mut tp = 0u64;
    let mut true_sum = 0u64;
    let mut pred_sum = 0u64;
    for (&t, &p) in y_true.iter().zip(y_pred) {
        let (t, p) = (t == pos_label, p == pos_label);
        tp += u64::from(t && p);
        true_sum += u64::from(t);
        pred_sum += u64::from(p);
    }
    let denom = true_sum as f64 + pred_sum as f64;
    // zero_division="warn" yields 0.0.
    Ok(if denom == 0.0 {
        0.0
    } else {
        2.0 * tp as f64 / denom
    })
}

/// The positive-class scores a binary scorer feeds to `roc_auc_score`.
fn binary_scores(pred: &Prediction) -> Result<Vec<f64>> {
    if let Some(decision) = &pred.decision {
        return Ok(decision.clone());
    }
    let proba = pred.proba.as_ref().ok_or_else(|| {
        RuntimeError::data(
            "roc_auc needs predicted probabilities or decision scores, but the model \
             provides neither.",
        )
    })?;
    match proba.ncols() {
        0 => Err(RuntimeError::data(
            "roc_auc needs predicted probabilities, but the model has no classes.",
        )),
        1 => Ok((0..proba.nrows()).map(|i| proba[(i, 0)]).collect()),
        2 => Ok((0..proba.nrows()).map(|i| proba[(i, 1)]).collect()),
        _ => Err(RuntimeError::data("multi_class must be in ('ovo', 'ovr')")),
    }
}

fn roc_auc(y_true: &[f64], pred: &Prediction) -> Result<f64> {
    let kind = type_of_target(y_true, "y_true")?;
    let scores = binary_scores(pred)?;
    check_consistent(y_true.len(), scores.len())?;
    if y_true.is_empty() {
        return Err(RuntimeError::data(
            "Found array with 0 sample(s) (shape=(0,)) while a minimum of 1 is required.",
        ));
    }
    check_all_finite(scores.iter().copied(), "")?;
    match kind {
        TargetType::Multiclass => {
            return Err(RuntimeError::data("multi_class must be in ('ovo', 'ovr')"))
        }
        TargetType::Continuous => {
            return Err(RuntimeError::data("continuous format is not supported"))
        }
        TargetType::Binary => {}
    }
    let labels = sorted_unique(y_true.iter().copied());
    if labels.len() != 2 {
        // scikit-learn 1.9 warns ("Only one class is present in y_true. ROC
        // AUC score is not defined in that case.") and returns NaN.
        return Ok(f64::NAN);
    }
    // `label_binarize(y_true, classes=np.unique(y_true))`: the larger label is
    // the positive class (classes[1] for a binary model).
    let positive = labels[1];
    Ok(binary_roc_auc(y_true, &scores, positive))
}

/// `auc(*roc_curve(y_true, y_score)[:2])` with `drop_intermediate=True`.
fn binary_roc_auc(y_true: &[f64], scores: &[f64], positive: f64) -> f64 {
    let n = scores.len();
    let mut order: Vec<usize> = (0..n).collect();
    // Stable descending sort; the order within ties does not matter because
    // ties are collapsed into a single threshold.
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    // Threshold indices: last position of each distinct score.
    let mut fps = Vec::new();
    let mut tps = Vec::new();
    let mut tp = 0.0;
    for (pos, &i) in order.iter().enumerate() {
        if y_true[i] == positive {
            tp += 1.0;
        }
        let last = pos + 1 == n || scores[order[pos + 1]] != scores[i];
        if last {
            tps.push(tp);
            fps.push(1.0 + pos as f64 - tp);
        }
    }
    // Drop collinear intermediate points.
    let (fps, tps) = if fps.len() > 2 {
        let m = fps.len();
        let keep = |i: usize| {
            i == 0
                || i == m - 1
                || (fps[i + 1] - fps[i]) - (fps[i] - fps[i - 1]) != 0.0
                || (tps[i + 1] - tps[i]) - (tps[i] - tps[i - 1]) != 0.0
        };
        let idx: Vec<usize> = (0..m).filter(|&i| keep(i)).collect();
        (
            idx.iter().map(|&i| fps[i]).collect::<Vec<_>>(),
            idx.iter().map(|&i| tps[i]).collect::<Vec<_>>(),
        )
    } else {
        (fps, tps)
    };
    let fps: Vec<f64> = std::iter::once(0.0).chain(fps).collect();
    let tps: Vec<f64> = std::iter::once(0.0).chain(tps).collect();
    let (fl, tl) = (fps[fps.len() - 1], tps[tps.len() - 1]);
    let fpr: Vec<f64> = fps.iter().map(|f| f / fl).collect();
    let tpr: Vec<f64> = tps.iter().map(|t| t / tl).collect();
    // scipy.integrate.trapezoid: sum(dx * (y[1:] + y[:-1]) / 2).
    let terms: Vec<f64> = (1..fpr.len())
        .map(|i| (fpr[i] - fpr[i - 1]) * (tpr[i] + tpr[i - 1]) / 2.0)
        .collect();
    numpy_sum(&terms)
}

fn log_loss(y_true: &[f64], pred: &Prediction) -> Result<f64> {
    let proba = pred.proba.as_ref().ok_or_else(|| {
        RuntimeError::data(
            "neg_log_loss needs predicted probabilities (predict_proba), but the model \
             does not provide them.",
        )
    })?;
    let (n, k) = (proba.nrows(), proba.ncols());
    if n == 0 {
        return Err(RuntimeError::data(format!(
            "Found array with 0 sample(s) (shape=(0, {k})) while a minimum of 1 is required."
        )));
    }
    if k == 0 {
        return Err(RuntimeError::data(format!(
            "Found array with 0 feature(s) (shape=({n}, 0)) while a minimum of 1 is required."
        )));
    }
    let values = || (0..k).flat_map(move |j| (0..n).map(move |i| proba[(i, j)]));
    check_all_finite(values(), "")?;
    let max = values().fold(f64::NEG_INFINITY, f64::max);
    if max > 1.0 {
        return Err(RuntimeError::data(format!(
            "y_prob contains values greater than 1: {}",
            py_float(max)
        )));
    }
    let min = values().fold(f64::INFINITY, f64::min);
    if min < 0.0 {
        return Err(RuntimeError::data(format!(
            "y_prob contains values lower than 0: {}",
            py_float(min)
        )));
    }
    check_consistent(n, y_true.len())?;
    let classes = &pred.classes;
    let undeclared = sorted_unique(y_true.iter().copied().filter(|v| !classes.contains(v)));
    if !undeclared.is_empty() {
        let list = |v: &[f64]| {
            v.iter()
                .map(|&x| py_float(x))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(RuntimeError::data(format!(
            "y_true contains values {{{}}} not belonging to the passed labels [{}].",
            list(&undeclared),
            list(classes)
        )));
    }
    if classes.len() < 2 {
        return Err(RuntimeError::data(format!(
            "The labels array needs to contain at least two labels, got {}.",
            np_array(classes)
        )));
    }
    // A single probability column is read as P(classes[1]).
    let width = if k == 1 { 2 } else { k };
    if width != classes.len() {
        return Err(RuntimeError::data(format!(
            "The number of classes in labels is different from that in y_prob. Classes \
             found in labels: {}",
            np_array(classes)
        )));
    }
    let eps = f64::EPSILON;
    let losses: Vec<f64> = y_true
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let c = classes.iter().position(|&c| c == t).unwrap_or(0);
            let p = if k == 1 {
                if c == 1 {
                    proba[(i, 0)]
                } else {
                    1.0 - proba[(i, 0)]
                }
            } else {
                proba[(i, c)]
            };
            // Only the true class has a non-zero indicator, so the row sum of
            // xlogy is exactly log(p) (adding zeros is exact).
            -p.clamp(eps, 1.0 - eps).ln()
        })
        .collect();
    Ok(numpy_mean(&losses))
}

#[cfg(test)]
mod tests {
    use super::*;
    use faer::Mat;

    fn values(v: &[f64]) -> Prediction {
        Prediction {
            values: v.to_vec(),
            classes: Vec::new(),
            proba: None,
            decision: None,
        }
    }

    fn with_proba(rows: &[&[f64]], classes: &[f64]) -> Prediction {
        let proba = Mat::from_fn(rows.len(), rows[0].len(), |i, j| rows[i][j]);
        Prediction {
            values: vec![0.0; rows.len()],
            classes: classes.to_vec(),
            proba: Some(proba),
            decision: None,
        }
    }

    fn s(metric: Metric, y: &[f64], pred: &Prediction) -> f64 {
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
    fn classification() {
        // accuracy_score / balanced_accuracy_score(CT, CP).
        let ct = [0.0, 1.0, 2.0, 2.0, 1.0, 0.0, 1.0, 2.0, 2.0, 0.0, 1.0, 1.0];
        let cp = values(&[0.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 0.0, 2.0, 0.0, 0.0, 1.0]);
        assert_eq!(s(Metric::Accuracy, &ct, &cp), 0.6666666666666666);
        assert_eq!(s(Metric::BalancedAccuracy, &ct, &cp), 0.6722222222222222);
        // balanced_accuracy_score([0,0,1,1,1], [0,2,1,2,1]): class 2 has no
        // true sample and is dropped.
        let p = values(&[0.0, 2.0, 1.0, 2.0, 1.0]);
        assert_eq!(
            s(Metric::BalancedAccuracy, &[0.0, 0.0, 1.0, 1.0, 1.0], &p),
            0.5833333333333333
        );
    }

    #[test]
    fn f1_scores() {
        let bt = [0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        let bp = values(&[0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0]);
        // f1_score(bt, bp) and f1_score(bt, bp, pos_label=0).
        assert_eq!(
            score(Metric::F1, &bt, &bp, 1.0).unwrap(),
            0.7272727272727273
        );
        assert_eq!(
            score(Metric::F1, &bt, &bp, 0.0).unwrap(),
            0.6666666666666666
        );
        // f1_score([0,1,1,0], [0,0,0,0]) == 0.0 (no positive prediction).
        let p = values(&[0.0; 4]);
        assert_eq!(
            score(Metric::F1, &[0.0, 1.0, 1.0, 0.0], &p, 1.0).unwrap(),
            0.0
        );
        // f1_score([0,0,0], [0,0,0]) == 0.0 (zero_division).
        assert_eq!(
            score(Metric::F1, &[0.0; 3], &values(&[0.0; 3]), 1.0).unwrap(),
            0.0
        );
        let err = score(Metric::F1, &[0.0, 1.0, 2.0], &values(&[0.0, 1.0, 1.0]), 1.0).unwrap_err();
        assert!(matches!(err, RuntimeError::Data(m) if m.starts_with("Target is multiclass")));
        let err = score(Metric::F1, &[0.0, 0.0], &values(&[2.0, 2.0]), 1.0).unwrap_err();
        assert_eq!(
            err,
            RuntimeError::data("pos_label=1.0 is not a valid label. It should be one of [0. 2.]")
        );
    }

    #[test]
    fn roc_auc() {
        let bt = [0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        let proba = |p1: &[f64]| {
            let rows: Vec<Vec<f64>> = p1.iter().map(|&p| vec![1.0 - p, p]).collect();
            let refs: Vec<&[f64]> = rows.iter().map(|r| r.as_slice()).collect();
            with_proba(&refs, &[0.0, 1.0])
        };
        // roc_auc_score(bt, s) with s as below (ties between classes included).
        let sc = [0.1, 0.8, 0.4, 0.35, 0.8, 0.2, 0.4, 0.9, 0.65, 0.4];
        assert_eq!(s(Metric::RocAuc, &bt, &proba(&sc)), 0.9583333333333333);
        let ties = [0.5, 0.5, 0.5, 0.2, 0.5, 0.9, 0.2, 0.5, 0.5, 0.1];
        assert_eq!(s(Metric::RocAuc, &bt, &proba(&ties)), 0.5208333333333334);
        assert_eq!(s(Metric::RocAuc, &bt, &proba(&[0.3; 10])), 0.5);
        // roc_auc_score([1,0,1,1,0], [-1.5,-2,0.3,2.2,0.3]): decision scores win.
        let mut p = proba(&[0.0; 5]);
        p.decision = Some(vec![-1.5, -2.0, 0.3, 2.2, 0.3]);
        assert_eq!(s(Metric::RocAuc, &[1.0, 0.0, 1.0, 1.0, 0.0], &p), 0.75);
        // One class in y_true: scikit-learn 1.9 warns and returns NaN.
        assert!(s(Metric::RocAuc, &[1.0; 3], &proba(&[0.1, 0.2, 0.3])).is_nan());
        let err = score(Metric::RocAuc, &bt, &values(&bt), 1.0).unwrap_err();
        assert!(matches!(err, RuntimeError::Data(_)));
        let err = score(
            Metric::RocAuc,
            &[0.0, 1.0, 2.0],
            &proba(&[0.1, 0.2, 0.3]),
            1.0,
        )
        .unwrap_err();
        assert_eq!(
            err,
            RuntimeError::data("multi_class must be in ('ovo', 'ovr')")
        );
    }

    #[test]
    fn log_loss_scores() {
        // log_loss([0,1,1,1,1,0], P, labels=[0,1]) (contains exact 0 and 1).
        let p = with_proba(
            &[
                &[0.9, 0.1],
                &[0.2, 0.8],
                &[0.6, 0.4],
                &[0.0, 1.0],
                &[1.0, 0.0],
                &[0.3, 0.7],
            ],
            &[0.0, 1.0],
        );
        let yt = [0.0, 1.0, 1.0, 1.0, 1.0, 0.0];
        assert_eq!(s(Metric::NegLogLoss, &yt, &p), -6.4154034987148805);
        let p3 = with_proba(
            &[
                &[0.2, 0.5, 0.3],
                &[0.1, 0.1, 0.8],
                &[0.7, 0.2, 0.1],
                &[0.25, 0.25, 0.5],
            ],
            &[0.0, 1.0, 2.0],
        );
        // log_loss([1,2,0,0], P3, labels=[0,1,2]) and log_loss([2,2,0,0], ...).
        assert_eq!(
            s(Metric::NegLogLoss, &[1.0, 2.0, 0.0, 0.0], &p3),
            -0.6648150092331946
        );
        assert_eq!(
            s(Metric::NegLogLoss, &[2.0, 2.0, 0.0, 0.0], &p3),
            -0.7925214151746922
        );
        // log_loss([0,1], [[.2,.3],[.3,.9]], labels=[0,1]): rows are not renormalised.
        let p = with_proba(&[&[0.2, 0.3], &[0.3, 0.9]], &[0.0, 1.0]);
        assert_eq!(s(Metric::NegLogLoss, &[0.0, 1.0], &p), -0.8573992140459633);
        let err = score(Metric::NegLogLoss, &[0.0, 3.0], &p, 1.0).unwrap_err();
        assert_eq!(
            err,
            RuntimeError::data(
                "y_true contains values {3.0} not belonging to the passed labels [0.0, 1.0]."
            )
        );
        let err = score(Metric::NegLogLoss, &[0.0, 1.0], &values(&[0.0, 1.0]), 1.0).unwrap_err();
        assert!(matches!(err, RuntimeError::Data(_)));
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

    #[test]
    fn numpy_sum_matches_pairwise_blocks() {
        // np.sum of [1e16, 1, -1e16, 1, ...] depends on the summation order;
        // np.sum(np.array(v)) == 9.0 where a left-to-right sum gives 0.0.
        let v: Vec<f64> = (0..300)
            .map(|i| {
                if i % 3 == 0 {
                    1e16
                } else if i % 3 == 1 {
                    1.0
                } else {
                    -1e16
                }
            })
            .collect();
        assert_eq!(numpy_sum(&v), 9.0);
    }
}
