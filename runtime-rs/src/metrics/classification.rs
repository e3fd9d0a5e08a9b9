//! Metrics on predicted labels (`accuracy`, `balanced_accuracy`, `f1`) and
//! on predicted probabilities (`neg_log_loss`), with `_check_targets`.

use super::labels::{np_array, numpy_mean, py_float, sorted_unique, type_of_target, TargetType};
use crate::data::Prediction;
use crate::error::{Result, RuntimeError};
use crate::kernels::check::{check_all_finite, check_consistent_length, check_min_shape};

/// `_check_targets` for 1-D label vectors: returns the combined type and the
/// sorted union of labels.
fn check_targets(y_true: &[f64], y_pred: &[f64]) -> Result<(TargetType, Vec<f64>)> {
    check_consistent_length(y_true.len(), y_pred.len())?;
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

pub(super) fn accuracy(y_true: &[f64], y_pred: &[f64]) -> Result<f64> {
    check_targets(y_true, y_pred)?;
    let hits = y_true.iter().zip(y_pred).filter(|(t, p)| t == p).count();
    Ok(hits as f64 / y_true.len() as f64)
}

fn label_index(labels: &[f64], v: f64) -> usize {
    labels.partition_point(|&c| c < v)
}

pub(super) fn balanced_accuracy(y_true: &[f64], y_pred: &[f64]) -> Result<f64> {
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

pub(super) fn f1(y_true: &[f64], y_pred: &[f64], pos_label: f64) -> Result<f64> {
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

pub(super) fn log_loss(y_true: &[f64], pred: &Prediction) -> Result<f64> {
    let proba = pred.proba.as_ref().ok_or_else(|| {
        RuntimeError::data(
            "neg_log_loss needs predicted probabilities (predict_proba), but the model \
             does not provide them.",
        )
    })?;
    let (n, k) = (proba.nrows(), proba.ncols());
    check_min_shape(n, k, None)?;
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
    check_consistent_length(n, y_true.len())?;
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
    use super::super::tests::{s, values, with_proba};
    use super::super::{score, Metric};
    use crate::error::RuntimeError;

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
}
