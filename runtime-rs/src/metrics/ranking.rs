//! `roc_auc`: the area under the ROC curve of a binary classifier's scores,
//! with `roc_curve`'s threshold collapsing and `drop_intermediate`.

use super::labels::{sorted_unique, type_of_target, TargetType};
use crate::data::Prediction;
use crate::error::{Result, RuntimeError};
use crate::kernels::check::{check_all_finite, check_consistent_length, check_min_len};
use crate::kernels::columns::numpy_sum;

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

pub(super) fn roc_auc(y_true: &[f64], pred: &Prediction) -> Result<f64> {
    let kind = type_of_target(y_true, "y_true")?;
    let scores = binary_scores(pred)?;
    check_consistent_length(y_true.len(), scores.len())?;
    check_min_len(y_true.len(), None)?;
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
#[cfg(test)]
mod tests {
    use super::super::tests::{s, values, with_proba};
    use super::super::{score, Metric};
    use crate::error::RuntimeError;

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
}
