//! A fitted decision tree: the nodes scikit-learn's builders produce, in
//! their order, and the value of every node.

use serde::{Deserialize, Serialize};

/// Marks a leaf's missing children.
pub const LEAF: u32 = u32::MAX;

/// One node; a leaf has `left == right == LEAF`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub left: u32,
    pub right: u32,
    pub feature: u32,
    /// Rows whose `f32` value is `<= threshold` go left.
    pub threshold: f64,
    /// Where a NaN goes.
    pub missing_go_to_left: bool,
}

/// A grown tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// Number of columns seen while fitting.
    pub n_features: usize,
    pub nodes: Vec<Node>,
    /// `values_per_node` numbers per node: the mean, or the weighted class
    /// fractions in class order.
    pub values: Vec<f64>,
    pub values_per_node: usize,
}

impl Tree {
    /// The leaf a row (read through `value(feature)`) falls in.
    pub fn leaf(&self, value: impl Fn(usize) -> f64) -> usize {
        let mut node = 0;
        loop {
            let n = &self.nodes[node];
            if n.left == LEAF {
                return node;
            }
            // scikit-learn compares the row converted to float32.
            let v = value(n.feature as usize) as f32;
            let left = if v.is_nan() {
                n.missing_go_to_left
            } else {
                f64::from(v) <= n.threshold
            };
            node = (if left { n.left } else { n.right }) as usize;
        }
    }

    /// The values stored for `node`.
    pub fn value(&self, node: usize) -> &[f64] {
        &self.values[node * self.values_per_node..(node + 1) * self.values_per_node]
    }
}

/// A fitted `DecisionTreeRegressor` / `DecisionTreeClassifier`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecisionTree {
    pub tree: Tree,
    /// Classifiers: the class codes seen while fitting, ascending; empty for
    /// regressors.
    pub classes: Vec<f64>,
}

/// A fitted `RandomForestRegressor` / `RandomForestClassifier`: its trees in
/// the order scikit-learn grows them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Forest {
    pub trees: Vec<Tree>,
    /// Classifiers: the class codes seen while fitting, ascending; empty for
    /// regressors.
    pub classes: Vec<f64>,
}
