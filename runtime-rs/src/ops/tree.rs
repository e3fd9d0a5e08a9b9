//! DecisionTreeRegressor / DecisionTreeClassifier with `splitter="best"`:
//! scikit-learn's parameter resolution (`BaseDecisionTree._fit`) in front of
//! the tree kernel, and prediction.

use faer::MatRef;
use serde::{Deserialize, Serialize};

use crate::data::tree::DecisionTree;
use crate::data::{Matrix, Prediction};
use crate::error::{Result, RuntimeError};
use crate::kernels::check::{check_min_shape, check_n_features, check_x_y};
use crate::kernels::columns::numpy_sum;
use crate::kernels::tree::{grow, rng, Columns, Kind, Limits, Targets};

/// A count, or a fraction of the training rows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Size {
    Count(u64),
    Fraction(f64),
}

/// How many features each split samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxFeatures {
    All,
    Sqrt,
    Log2,
    Count(u64),
    Fraction(f64),
}

/// Row weights derived from the classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassWeight {
    None,
    Balanced,
}

/// The tree's parameters as the plan carries them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub classifier: bool,
    pub criterion: Kind,
    pub max_depth: Option<u64>,
    pub min_samples_split: Size,
    pub min_samples_leaf: Size,
    pub min_weight_fraction_leaf: f64,
    pub max_features: MaxFeatures,
    pub max_leaf_nodes: Option<u64>,
    pub min_impurity_decrease: f64,
    pub class_weight: ClassWeight,
    /// scikit-learn's integer `random_state`.
    pub random_state: u32,
}

/// A plan count as `usize`, saturating where `usize` is narrower (every
/// count bounds a comparison with a data size).
pub(crate) fn count(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

fn name(classifier: bool) -> &'static str {
    if classifier {
        "DecisionTreeClassifier"
    } else {
        "DecisionTreeRegressor"
    }
}

impl Params {
    pub(crate) fn limits(
        &self,
        n_samples: usize,
        n_features: usize,
        total_weight: f64,
    ) -> Result<Limits> {
        let bad = |what: &str| {
            RuntimeError::parameter(format!("{}: invalid {what}", name(self.classifier)))
        };
        let frac = |f: f64| (f * n_samples as f64).ceil() as usize;
        let min_samples_leaf = match self.min_samples_leaf {
            Size::Count(c) if c >= 1 => count(c),
            Size::Fraction(f) if f > 0.0 && f < 1.0 => frac(f),
            _ => return Err(bad("min_samples_leaf")),
        };
        let min_samples_split = match self.min_samples_split {
            Size::Count(c) if c >= 2 => count(c),
            Size::Fraction(f) if f > 0.0 && f <= 1.0 => frac(f).max(2),
            _ => return Err(bad("min_samples_split")),
        }
        .max(min_samples_leaf.saturating_mul(2));
        let nf = n_features as f64;
        let max_features = match self.max_features {
            MaxFeatures::All => n_features,
            MaxFeatures::Sqrt => (nf.sqrt() as usize).max(1),
            MaxFeatures::Log2 => (nf.log2() as usize).max(1),
            MaxFeatures::Count(c) => count(c),
            MaxFeatures::Fraction(f) if f > 0.0 && f <= 1.0 => ((f * nf) as usize).max(1),
            MaxFeatures::Fraction(_) => return Err(bad("max_features")),
        };
        if max_features == 0 || max_features > n_features {
            return Err(bad("max_features"));
        }
        let w = self.min_weight_fraction_leaf;
        if !(0.0..=0.5).contains(&w) || self.min_impurity_decrease < 0.0 {
            return Err(bad("min_weight_fraction_leaf or min_impurity_decrease"));
        }
        let max_leaf_nodes = match self.max_leaf_nodes {
            Some(n) if n < 2 => return Err(bad("max_leaf_nodes")),
            n => n.map(count),
        };
        Ok(Limits {
            max_depth: self.max_depth.map_or(i32::MAX as usize, count),
            min_samples_split,
            min_samples_leaf,
            min_weight_leaf: w * total_weight,
            min_impurity_decrease: self.min_impurity_decrease,
            max_features,
            max_leaf_nodes,
        })
    }
}

/// Fits a tree on `x`, `y` (class codes for a classifier).
pub fn fit(x: MatRef<'_, f64>, y: &[f64], params: &Params) -> Result<DecisionTree> {
    let estimator = name(params.classifier);
    check_x_y(x, y, estimator)?;
    if params.classifier != (params.criterion != Kind::SquaredError) {
        return Err(RuntimeError::parameter(format!(
            "{estimator}: criterion {:?} does not fit this estimator",
            params.criterion
        )));
    }
    let (classes, encoded, weights) = if params.classifier {
        let (classes, encoded) = encode(y);
        let weights = match params.class_weight {
            ClassWeight::None => None,
            ClassWeight::Balanced => Some(balanced(&encoded, classes.len())),
        };
        (classes, encoded, weights)
    } else {
        (Vec::new(), y.to_vec(), None)
    };
    let total_weight = weights.as_deref().map_or(x.nrows() as f64, numpy_sum);
    let limits = params.limits(x.nrows(), x.ncols(), total_weight)?;
    let targets = Targets {
        y: &encoded,
        weights: weights.as_deref(),
        kind: params.criterion,
        n_classes: classes.len().max(1),
    };
    let seed = rng::splitter_seed(params.random_state);
    let tree = grow(&Columns::new(x), &targets, &limits, seed);
    Ok(DecisionTree { tree, classes })
}

/// Class codes to indices `0..k` over the sorted distinct codes.
pub(crate) fn encode(y: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let mut classes = y.to_vec();
    classes.sort_by(f64::total_cmp);
    classes.dedup();
    let encoded = y
        .iter()
        .map(|&v| classes.partition_point(|&c| c < v) as f64)
        .collect();
    (classes, encoded)
}

/// `compute_sample_weight("balanced", y)`: `n / (k * count[class])`.
pub(crate) fn balanced(encoded: &[f64], k: usize) -> Vec<f64> {
    let mut counts = vec![0usize; k];
    for &c in encoded {
        counts[c as usize] += 1;
    }
    let n = encoded.len() as f64;
    encoded
        .iter()
        .map(|&c| n / (k as f64 * counts[c as usize] as f64))
        .collect()
}

/// A leaf's class fractions as `predict_proba` returns them: divided by
/// their sum (left as they are when it is zero).
pub(crate) fn leaf_proba(v: &[f64]) -> impl Iterator<Item = f64> + '_ {
    let total = v.iter().fold(0.0, |sum, &p| sum + p);
    let total = if total == 0.0 { 1.0 } else { total };
    v.iter().map(move |&p| p / total)
}

impl DecisionTree {
    /// Predicts targets (and class probabilities for a classifier); NaN
    /// follows each split's missing-value direction, as in scikit-learn.
    pub fn predict(&self, x: MatRef<'_, f64>) -> Result<Prediction> {
        let classifier = !self.classes.is_empty();
        let estimator = name(classifier);
        check_min_shape(x.nrows(), x.ncols(), Some(estimator))?;
        check_n_features(x.ncols(), self.tree.n_features, estimator)?;
        if (0..x.ncols()).any(|j| x.col(j).iter().any(|v| v.is_infinite())) {
            return Err(RuntimeError::data(
                "Input X contains infinity or a value too large for dtype('float32').",
            ));
        }
        let leaves: Vec<usize> = (0..x.nrows())
            .map(|i| self.tree.leaf(|j| x[(i, j)]))
            .collect();
        if !classifier {
            let values = leaves.iter().map(|&l| self.tree.value(l)[0]).collect();
            return Ok(Prediction {
                values,
                classes: Vec::new(),
                proba: None,
                decision: None,
            });
        }
        let k = self.classes.len();
        let mut values = Vec::with_capacity(leaves.len());
        let mut proba = Matrix::zeros(leaves.len(), k);
        for (i, &leaf) in leaves.iter().enumerate() {
            let v = self.tree.value(leaf);
            // argmax keeps the first maximum, like numpy.
            let best = (0..k).fold(0, |b, c| if v[c] > v[b] { c } else { b });
            values.push(self.classes[best]);
            for (c, p) in leaf_proba(v).enumerate() {
                proba[(i, c)] = p;
            }
        }
        Ok(Prediction {
            values,
            classes: self.classes.clone(),
            proba: Some(proba),
            decision: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use faer::Mat;

    use super::*;
    use crate::data::Fitted;

    fn params(classifier: bool, criterion: Kind) -> Params {
        Params {
            classifier,
            criterion,
            max_depth: Some(3),
            min_samples_split: Size::Count(2),
            min_samples_leaf: Size::Fraction(0.1),
            min_weight_fraction_leaf: 0.0,
            max_features: MaxFeatures::Sqrt,
            max_leaf_nodes: None,
            min_impurity_decrease: 0.0,
            class_weight: ClassWeight::Balanced,
            random_state: 7,
        }
    }

    #[test]
    fn a_fitted_tree_survives_the_cache_encoding() {
        let x = Mat::from_fn(30, 4, |i, j| ((i * 7 + j * 3) % 11) as f64);
        let y: Vec<f64> = (0..30).map(|i| [2.0, 5.0, 9.0][i % 3]).collect();
        let fitted = Fitted::DecisionTree(fit(x.as_ref(), &y, &params(true, Kind::Gini)).unwrap());
        let bytes = rmp_serde::to_vec(&fitted).unwrap();
        let back: Fitted = rmp_serde::from_slice(&bytes).unwrap();
        let (Fitted::DecisionTree(a), Fitted::DecisionTree(b)) = (&fitted, &back) else {
            panic!("not a tree");
        };
        assert_eq!(a.tree, b.tree);
        let (pa, pb) = (
            a.predict(x.as_ref()).unwrap(),
            b.predict(x.as_ref()).unwrap(),
        );
        assert_eq!(pa, pb);
        assert_eq!(pa.classes, vec![2.0, 5.0, 9.0]);
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let x = Mat::from_fn(6, 2, |i, j| (i + j) as f64);
        let y = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut p = params(false, Kind::SquaredError);
        p.class_weight = ClassWeight::None;
        p.max_features = MaxFeatures::Count(3);
        assert!(matches!(
            fit(x.as_ref(), &y, &p),
            Err(RuntimeError::Parameter(_))
        ));
        p.max_features = MaxFeatures::All;
        let gini = params(false, Kind::Gini);
        assert!(matches!(
            fit(x.as_ref(), &y, &gini),
            Err(RuntimeError::Parameter(_))
        ));
        let mut nan = x.clone();
        nan[(0, 0)] = f64::NAN;
        assert!(matches!(
            fit(nan.as_ref(), &y, &p),
            Err(RuntimeError::Data(_))
        ));
        let tree = fit(x.as_ref(), &y, &p).unwrap();
        let wide = Mat::<f64>::zeros(2, 3);
        assert!(tree.predict(wide.as_ref()).is_err());
        let mut inf = x.clone();
        inf[(1, 1)] = f64::INFINITY;
        assert!(matches!(
            tree.predict(inf.as_ref()),
            Err(RuntimeError::Data(_))
        ));
    }
}
