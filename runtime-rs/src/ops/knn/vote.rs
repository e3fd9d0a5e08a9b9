//! KNN predictions from neighbour lists: scikit-learn's uniform / distance
//! weighted averages (regressor) and votes with probabilities (classifier).

use faer::Mat;

use crate::data::{Neighbors, Prediction, Weights};
use crate::error::{Result, RuntimeError};
use crate::kernels::columns::numpy_sum;

/// `_get_weights(dist, "distance")`: `1 / d`, except that a row with a zero
/// distance (infinite weight) gives weight 1 to those and 0 to others.
fn distance_weights(sq_dist: &[f64]) -> Vec<f64> {
    let w: Vec<f64> = sq_dist.iter().map(|s| 1.0 / s.sqrt()).collect();
    if w.iter().any(|v| v.is_infinite()) {
        w.iter()
            .map(|v| if v.is_infinite() { 1.0 } else { 0.0 })
            .collect()
    } else {
        w
    }
}

/// `KNeighborsRegressor.predict` from the first `k` neighbours of each row
/// (`1 <= k <= found.k`).
pub(super) fn regress(
    found: &Neighbors,
    targets: &[f64],
    k: usize,
    weights: Weights,
) -> Prediction {
    let values = (0..found.n_test)
        .map(|r| {
            let ys: Vec<f64> = found.indices(r)[..k].iter().map(|&j| targets[j]).collect();
            match weights {
                Weights::Uniform => numpy_sum(&ys) / k as f64,
                Weights::Distance => {
                    let w = distance_weights(&found.sq_distances(r)[..k]);
                    let num: Vec<f64> = ys.iter().zip(&w).map(|(y, w)| y * w).collect();
                    numpy_sum(&num) / numpy_sum(&w)
                }
            }
        })
        .collect();
    Prediction {
        values,
        classes: Vec::new(),
        proba: None,
        decision: None,
    }
}

/// Sorted distinct class codes and the class index of every target.
pub(super) fn encode(y: &[f64]) -> (Vec<f64>, Vec<usize>) {
    let mut classes = y.to_vec();
    classes.sort_by(f64::total_cmp);
    classes.dedup_by(|a, b| a == b);
    let labels = y
        .iter()
        .map(|&v| classes.partition_point(|&c| c < v))
        .collect();
    (classes, labels)
}

/// `KNeighborsClassifier.predict` / `predict_proba` from the first `k`
/// neighbours of each row (`1 <= k <= found.k`); `labels[j]` is the index in
/// `classes` of training row `j`.
pub(super) fn classify(
    found: &Neighbors,
    classes: Vec<f64>,
    labels: &[usize],
    k: usize,
    weights: Weights,
) -> Result<Prediction> {
    let n_classes = classes.len();
    let nq = found.n_test;
    let mut proba = Mat::<f64>::zeros(nq, n_classes);
    let mut values = Vec::with_capacity(nq);
    let mut scores = vec![0.0; n_classes];
    let mut template = vec![0.0; k];
    for r in 0..nq {
        let row: Vec<usize> = found.indices(r)[..k].iter().map(|&j| labels[j]).collect();
        scores.iter_mut().for_each(|s| *s = 0.0);
        let best = match weights {
            Weights::Uniform => {
                for &c in &row {
                    scores[c] += 1.0;
                }
                // argmax of the probabilities: first maximum.
                let mut best = 0;
                for (c, &s) in scores.iter().enumerate() {
                    if s > scores[best] {
                        best = c;
                    }
                }
                best
            }
            Weights::Distance => {
                let w = distance_weights(&found.sq_distances(r)[..k]);
                if w.iter().all(|&v| v == 0.0) {
                    return Err(RuntimeError::data(
                        "All neighbors of some sample is getting zero weights. Please modify \
                         'weights' to avoid this case if you are using a user-defined function.",
                    ));
                }
                for (&c, &wi) in row.iter().zip(&w) {
                    scores[c] += wi;
                }
                // `weighted_mode`: per-class sums over the neighbour row,
                // strict improvement in ascending class order.
                let mut best = 0;
                let mut best_count = 0.0;
                for c in 0..n_classes {
                    for ((t, &l), &wi) in template.iter_mut().zip(&row).zip(&w) {
                        *t = if l == c { wi } else { 0.0 };
                    }
                    let count = numpy_sum(&template);
                    if count > best_count {
                        best = c;
                        best_count = count;
                    }
                }
                best
            }
        };
        let total = numpy_sum(&scores);
        for (c, &s) in scores.iter().enumerate() {
            proba[(r, c)] = s / total;
        }
        values.push(classes[best]);
    }
    Ok(Prediction {
        values,
        classes,
        proba: Some(proba),
        decision: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(index: Vec<usize>, sq_dist: Vec<f64>, n_train: usize) -> Neighbors {
        let k = index.len();
        Neighbors {
            n_train,
            n_test: 1,
            k,
            index,
            sq_dist,
        }
    }

    #[test]
    fn zero_distance_takes_all_weight() {
        let f = found(vec![0, 1, 2, 3], vec![0.0, 0.0, 1.0, 1.0], 4);
        let reg = regress(&f, &[1.0, 2.0, 100.0, 100.0], 4, Weights::Distance);
        assert_eq!(reg.values, vec![1.5]);
        let (classes, labels) = encode(&[0.0, 1.0, 2.0, 2.0]);
        let p = classify(&f, classes, &labels, 4, Weights::Distance).unwrap();
        assert_eq!(p.values, vec![0.0]);
        let proba = p.proba.unwrap();
        assert_eq!(
            [proba[(0, 0)], proba[(0, 1)], proba[(0, 2)]],
            [0.5, 0.5, 0.0]
        );
    }

    #[test]
    fn only_the_first_k_vote() {
        let f = found(vec![3, 0, 1, 2], vec![1.0, 4.0, 4.0, 9.0], 4);
        let y = [5.0, 5.0, 5.0, 1.0];
        assert_eq!(regress(&f, &y, 1, Weights::Uniform).values, vec![1.0]);
        assert_eq!(
            regress(&f, &y, 3, Weights::Uniform).values,
            vec![11.0 / 3.0]
        );
        let (classes, labels) = encode(&y);
        assert_eq!(classes, vec![1.0, 5.0]);
        assert_eq!(labels, vec![1, 1, 1, 0]);
        let p = classify(&f, classes.clone(), &labels, 1, Weights::Uniform).unwrap();
        assert_eq!((p.values, p.proba.unwrap().ncols()), (vec![1.0], 2));
        // Vote tie (one neighbour of each class): the smallest code wins.
        let p = classify(&f, classes, &labels, 2, Weights::Uniform).unwrap();
        assert_eq!(p.values, vec![1.0]);
    }
}
