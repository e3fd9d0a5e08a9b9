//! A tiny tree worked out by hand.

use faer::Mat;

use super::*;
use crate::data::tree::LEAF;

fn limits() -> Limits {
    Limits {
        max_depth: usize::MAX,
        min_samples_split: 2,
        min_samples_leaf: 1,
        min_weight_leaf: 0.0,
        min_impurity_decrease: 0.0,
        max_features: 1,
        max_leaf_nodes: None,
    }
}

#[test]
fn regression_tree_by_hand() {
    // One feature 0..4, targets 0 0 10 10: one split at 1.5, two pure leaves.
    let x = Mat::from_fn(4, 1, |i, _| i as f64);
    let y = [0.0, 0.0, 10.0, 10.0];
    let targets = Targets {
        y: &y,
        weights: None,
        kind: Kind::SquaredError,
        n_classes: 1,
    };
    let tree = grow(&Columns::new(x.as_ref()), &targets, &limits(), 1);
    assert_eq!(tree.nodes.len(), 3);
    assert_eq!((tree.nodes[0].feature, tree.nodes[0].threshold), (0, 1.5));
    assert_eq!((tree.nodes[0].left, tree.nodes[0].right), (1, 2));
    assert_eq!(tree.nodes[1].left, LEAF);
    assert_eq!(tree.values, vec![5.0, 0.0, 10.0]);
    assert_eq!(tree.leaf(|_| 1.6), 2);
    assert_eq!(tree.leaf(|_| f64::NAN), 2, "ties send NaN right");
}

#[test]
fn leaf_budget_expands_the_best_node_first() {
    // Targets jump by 100 between rows 3 and 4 and by 1 between rows 1 and 2:
    // with two leaves only the large jump is split.
    let x = Mat::from_fn(6, 1, |i, _| i as f64);
    let y = [0.0, 0.0, 1.0, 1.0, 100.0, 100.0];
    let targets = Targets {
        y: &y,
        weights: None,
        kind: Kind::SquaredError,
        n_classes: 1,
    };
    let mut l = limits();
    l.max_leaf_nodes = Some(2);
    let tree = grow(&Columns::new(x.as_ref()), &targets, &l, 1);
    assert_eq!(tree.nodes.len(), 3);
    assert_eq!(tree.nodes[0].threshold, 3.5);
    l.max_leaf_nodes = Some(3);
    let tree = grow(&Columns::new(x.as_ref()), &targets, &l, 1);
    assert_eq!(tree.nodes.len(), 5);
    assert_eq!(tree.nodes[1].threshold, 1.5);
}

#[test]
fn classifier_stores_weighted_fractions_and_skips_zero_weights() {
    let x = Mat::from_fn(4, 2, |i, j| if j == 0 { 1.0 } else { i as f64 });
    let y = [0.0, 1.0, 1.0, 0.0];
    let w = [1.0, 3.0, 0.0, 1.0];
    let targets = Targets {
        y: &y,
        weights: Some(&w),
        kind: Kind::Gini,
        n_classes: 2,
    };
    let mut l = limits();
    l.max_features = 2;
    let tree = grow(&Columns::new(x.as_ref()), &targets, &l, 3);
    assert_eq!(tree.value(0), &[0.4, 0.6]);
    // Column 0 is constant; column 1 separates row 1 (class 1) from rows 0 and 3.
    assert!(tree
        .nodes
        .iter()
        .filter(|n| n.left != LEAF)
        .all(|n| n.feature == 1));
    assert_eq!(tree.value(tree.leaf(|j| [1.0, 1.0][j])), &[0.0, 1.0]);
}
