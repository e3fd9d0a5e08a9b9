//! The best splitter (`splitter="best"`) on dense data: scikit-learn's
//! feature sampling (Fisher-Yates draws that skip known constant features),
//! its in-place sorts, its tie rules (a candidate must beat the best proxy
//! strictly) and its midpoint thresholds.

use super::criterion::Criterion;
use super::rng::rand_int;
use super::sort::sort;

/// Values closer than this (in `f32`) are treated as equal.
const FEATURE_THRESHOLD: f32 = 1e-7;

/// The best split found for a node.
#[derive(Debug, Clone, Copy)]
pub struct Split {
    pub feature: usize,
    pub threshold: f64,
    /// Samples `start..pos` go left.
    pub pos: usize,
    pub impurity_left: f64,
    pub impurity_right: f64,
    pub improvement: f64,
    /// Where unseen NaN goes at prediction: the larger child.
    pub missing_go_to_left: bool,
}

/// Per-tree splitting state, reused across the nodes of one tree.
pub struct Splitter<'a> {
    /// Training matrix as `f32`, column-major (`n_rows` per column).
    x: &'a [f32],
    n_rows: usize,
    /// Positively weighted training rows, permuted in place as nodes split.
    pub samples: Vec<usize>,
    features: Vec<usize>,
    constant_features: Vec<usize>,
    feature_values: Vec<f32>,
    max_features: usize,
    min_samples_leaf: usize,
    min_weight_leaf: f64,
    rand_state: u32,
    pub criterion: Criterion<'a>,
}

impl<'a> Splitter<'a> {
    /// A splitter over `rows` of the column-major `x`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        x: &'a [f32],
        n_rows: usize,
        n_features: usize,
        rows: Vec<usize>,
        mut criterion: Criterion<'a>,
        weighted_n_samples: f64,
        (max_features, min_samples_leaf, min_weight_leaf): (usize, usize, f64),
        seed: u32,
    ) -> Self {
        criterion.weighted_n_samples = weighted_n_samples;
        Self {
            x,
            n_rows,
            samples: rows,
            features: (0..n_features).collect(),
            constant_features: vec![0; n_features],
            feature_values: vec![0.0; n_rows],
            max_features,
            min_samples_leaf,
            min_weight_leaf,
            rand_state: seed,
            criterion,
        }
    }

    fn value(&self, row: usize, feature: usize) -> f32 {
        self.x[feature * self.n_rows + row]
    }

    /// Starts the node `samples[start..end]`; returns its weight.
    pub fn node_reset(&mut self, start: usize, end: usize) -> f64 {
        self.criterion.init(&self.samples, start, end);
        self.criterion.weighted_n_node
    }

    /// Searches the best split of `samples[start..end]` whose impurity is
    /// `impurity`; `n_constants` features known constant on entry are updated.
    pub fn split_best(
        &mut self,
        start: usize,
        end: usize,
        impurity: f64,
        n_constants: &mut usize,
    ) -> Option<Split> {
        let n_features = self.features.len();
        let n_known = *n_constants;
        let mut n_total = n_known;
        let (mut n_found, mut n_drawn, mut n_visited) = (0, 0, 0);
        let mut f_i = n_features;
        let mut best: Option<Split> = None;
        let mut best_proxy = f64::NEG_INFINITY;
        while f_i > n_total && (n_visited < self.max_features || n_visited <= n_found + n_drawn) {
            n_visited += 1;
            let mut f_j = rand_int(n_drawn, f_i - n_found, &mut self.rand_state);
            if f_j < n_known {
                self.features.swap(n_drawn, f_j);
                n_drawn += 1;
                continue;
            }
            f_j += n_found;
            let feature = self.features[f_j];
            self.sort_node(feature, start, end);
            if self.feature_values[end - 1] <= self.feature_values[start] + FEATURE_THRESHOLD {
                self.features.swap(f_j, n_total);
                n_found += 1;
                n_total += 1;
                continue;
            }
            f_i -= 1;
            self.features.swap(f_i, f_j);
            self.search_feature(feature, start, end, &mut best, &mut best_proxy);
        }
        let best = best.map(|split| self.finish(split, start, end, impurity));
        self.features[..n_known].copy_from_slice(&self.constant_features[..n_known]);
        self.constant_features[n_known..n_total].copy_from_slice(&self.features[n_known..n_total]);
        *n_constants = n_total;
        best
    }

    fn sort_node(&mut self, feature: usize, start: usize, end: usize) {
        for p in start..end {
            self.feature_values[p] = self.value(self.samples[p], feature);
        }
        sort(
            &mut self.feature_values[start..end],
            &mut self.samples[start..end],
        );
    }

    /// Scans the split positions of one sorted feature.
    fn search_feature(
        &mut self,
        feature: usize,
        start: usize,
        end: usize,
        best: &mut Option<Split>,
        best_proxy: &mut f64,
    ) {
        self.criterion.reset();
        let values = &self.feature_values;
        let mut p = start;
        while p < end {
            p += 1;
            while p < end && values[p] <= values[p - 1] + FEATURE_THRESHOLD {
                p += 1;
            }
            if p == end {
                // No split with every row on the left.
                break;
            }
            let (n_left, n_right) = (p - start, end - p);
            if n_left < self.min_samples_leaf || n_right < self.min_samples_leaf {
                continue;
            }
            self.criterion.update(&self.samples, p);
            if self.criterion.weighted_n_left < self.min_weight_leaf
                || self.criterion.weighted_n_right < self.min_weight_leaf
            {
                continue;
            }
            let proxy = self.criterion.proxy_improvement(&self.samples);
            if proxy > *best_proxy {
                *best_proxy = proxy;
                *best = Some(Split {
                    feature,
                    threshold: f64::from(values[p - 1]) / 2.0 + f64::from(values[p]) / 2.0,
                    pos: p,
                    impurity_left: f64::INFINITY,
                    impurity_right: f64::INFINITY,
                    improvement: f64::NEG_INFINITY,
                    missing_go_to_left: n_left > n_right,
                });
            }
        }
    }

    /// Partitions the node's rows by the chosen split and scores it.
    fn finish(&mut self, mut split: Split, start: usize, end: usize, impurity: f64) -> Split {
        let (mut lo, mut hi) = (start, end);
        while lo < hi {
            let v = self.value(self.samples[lo], split.feature);
            let left = if v.is_nan() {
                split.missing_go_to_left
            } else {
                f64::from(v) <= split.threshold
            };
            if left {
                lo += 1;
            } else {
                hi -= 1;
                self.samples.swap(lo, hi);
            }
        }
        self.criterion.reset();
        self.criterion.update(&self.samples, split.pos);
        let (left, right) = self.criterion.children_impurity(&self.samples);
        split.impurity_left = left;
        split.impurity_right = right;
        split.improvement = self.criterion.improvement(impurity, left, right);
        split
    }
}
