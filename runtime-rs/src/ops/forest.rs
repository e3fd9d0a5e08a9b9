//! RandomForestRegressor / RandomForestClassifier: scikit-learn's
//! `BaseForest.fit` in front of the tree kernel (its seeds, bootstrap counts
//! and class weights), trees grown in parallel on the run's pool, and the
//! mean of the trees' predictions summed in scikit-learn's order.

use faer::MatRef;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::tree::{self, balanced, count, encode, leaf_proba, ClassWeight, Size};
use crate::data::tree::{Forest, Tree};
use crate::data::{Matrix, Prediction};
use crate::error::{Result, RuntimeError};
use crate::kernels::check::{check_min_shape, check_n_features, check_x_y};
use crate::kernels::columns::numpy_sum;
use crate::kernels::tree::bootstrap::{
    balance_sample, tree_seeds, uniform_counts, weighted_counts,
};
use crate::kernels::tree::{grow, rng, Columns, Kind, Targets};

/// The forest's `class_weight`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForestClassWeight {
    None,
    Balanced,
    BalancedSubsample,
}

/// The forest's parameters as the plan carries them; `tree` holds what each
/// tree is given (its `class_weight` is `none`: the forest weighs rows).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub tree: tree::Params,
    pub n_estimators: u64,
    pub bootstrap: bool,
    /// Rows drawn per tree (all rows when `None`); only with `bootstrap`.
    pub max_samples: Option<Size>,
    pub class_weight: ForestClassWeight,
}

fn name(classifier: bool) -> &'static str {
    if classifier {
        "RandomForestClassifier"
    } else {
        "RandomForestRegressor"
    }
}

impl Params {
    fn check(&self) -> Result<()> {
        let t = &self.tree;
        let bad = |what: &str| {
            Err(RuntimeError::parameter(format!(
                "{}: invalid {what}",
                name(t.classifier)
            )))
        };
        if t.classifier != (t.criterion != Kind::SquaredError) {
            return bad("criterion for this estimator");
        }
        if t.class_weight != ClassWeight::None
            || (!t.classifier && self.class_weight != ForestClassWeight::None)
        {
            return bad("class_weight");
        }
        if self.n_estimators == 0 {
            return bad("n_estimators");
        }
        match self.max_samples {
            Some(_) if !self.bootstrap => bad("max_samples (only with bootstrap)"),
            Some(Size::Count(0)) => bad("max_samples"),
            Some(Size::Fraction(f)) if !(f > 0.0 && f.is_finite()) => bad("max_samples"),
            _ => Ok(()),
        }
    }

    /// `_get_n_samples_bootstrap`: a fraction counts against the total weight.
    fn n_draws(&self, n_rows: usize, weights: Option<&[f64]>) -> usize {
        match self.max_samples {
            None => n_rows,
            Some(Size::Count(c)) => count(c),
            Some(Size::Fraction(f)) => {
                let total = weights.map_or(n_rows as f64, numpy_sum);
                ((f * total) as usize).max(1)
            }
        }
    }
}

/// Fits a forest on `x`, `y` (class codes for a classifier).
pub fn fit(x: MatRef<'_, f64>, y: &[f64], params: &Params) -> Result<Forest> {
    let classifier = params.tree.classifier;
    check_x_y(x, y, name(classifier))?;
    params.check()?;
    let (classes, encoded) = if classifier {
        encode(y)
    } else {
        (Vec::new(), y.to_vec())
    };
    let n_classes = classes.len().max(1);
    let subsample = params.bootstrap && params.class_weight == ForestClassWeight::BalancedSubsample;
    // Without a bootstrap, "balanced_subsample" is "balanced".
    let class_weights = (params.class_weight != ForestClassWeight::None && !subsample)
        .then(|| balanced(&encoded, n_classes));
    let n_draws = params.n_draws(x.nrows(), class_weights.as_deref());
    let columns = Columns::new(x);
    let seeds = tree_seeds(params.tree.random_state, count(params.n_estimators));
    let grow_one = |seed: u32| -> Result<Tree> {
        let weights = match (params.bootstrap, &class_weights) {
            (false, w) => w.clone(),
            (true, None) => {
                let mut counts = uniform_counts(seed, x.nrows(), n_draws);
                if subsample {
                    balance_sample(&mut counts, &encoded, n_classes);
                }
                Some(counts)
            }
            // scikit-learn draws weighted rows; the tree sees only the counts.
            (true, Some(w)) => Some(weighted_counts(seed, w, n_draws)),
        };
        let total = weights.as_deref().map_or(x.nrows() as f64, numpy_sum);
        let limits = params.tree.limits(x.nrows(), x.ncols(), total)?;
        let targets = Targets {
            y: &encoded,
            weights: weights.as_deref(),
            kind: params.tree.criterion,
            n_classes,
        };
        Ok(grow(&columns, &targets, &limits, rng::splitter_seed(seed)))
    };
    let trees = seeds
        .into_par_iter()
        .map(grow_one)
        .collect::<Result<Vec<_>>>()?;
    Ok(Forest { trees, classes })
}

/// Rows per parallel task of a prediction.
const PREDICT_CHUNK: usize = 256;

impl Forest {
    /// The mean prediction of the trees (class probabilities for a
    /// classifier, the predicted class the most probable one). Every row
    /// adds the trees up in their order, as scikit-learn's `n_jobs=None`
    /// loop does.
    pub fn predict(&self, x: MatRef<'_, f64>) -> Result<Prediction> {
        let classifier = !self.classes.is_empty();
        let estimator = name(classifier);
        check_min_shape(x.nrows(), x.ncols(), Some(estimator))?;
        let n_features = self.trees.first().map_or(0, |t| t.n_features);
        check_n_features(x.ncols(), n_features, estimator)?;
        if (0..x.ncols()).any(|j| x.col(j).iter().any(|v| v.is_infinite())) {
            return Err(RuntimeError::data(
                "Input X contains infinity or a value too large for dtype('float32').",
            ));
        }
        let k = self.classes.len().max(1);
        let n_trees = self.trees.len() as f64;
        let mut sums = vec![0.0; x.nrows() * k];
        sums.par_chunks_mut(PREDICT_CHUNK * k)
            .enumerate()
            .for_each(|(chunk, out)| {
                let first = chunk * PREDICT_CHUNK;
                // Tree after tree over the chunk: a tree's nodes stay in cache.
                for tree in &self.trees {
                    for (r, row) in out.chunks_mut(k).enumerate() {
                        let v = tree.value(tree.leaf(|j| x[(first + r, j)]));
                        if classifier {
                            for (s, p) in row.iter_mut().zip(leaf_proba(v)) {
                                *s += p;
                            }
                        } else {
                            row[0] += v[0];
                        }
                    }
                }
                for s in out.iter_mut() {
                    *s /= n_trees;
                }
            });
        if !classifier {
            return Ok(Prediction {
                values: sums,
                classes: Vec::new(),
                proba: None,
                decision: None,
            });
        }
        let proba = Matrix::from_fn(x.nrows(), k, |i, c| sums[i * k + c]);
        let values = sums
            .chunks(k)
            .map(|row| {
                // argmax keeps the first maximum, like numpy.
                let best = (0..k).fold(0, |b, c| if row[c] > row[b] { c } else { b });
                self.classes[best]
            })
            .collect();
        Ok(Prediction {
            values,
            classes: self.classes.clone(),
            proba: Some(proba),
            decision: None,
        })
    }
}

#[cfg(test)]
mod tests;
