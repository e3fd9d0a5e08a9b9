use faer::Mat;

use super::*;
use crate::data::Fitted;
use crate::ops::tree::MaxFeatures;

fn tree_params(classifier: bool) -> tree::Params {
    tree::Params {
        classifier,
        criterion: if classifier {
            Kind::Gini
        } else {
            Kind::SquaredError
        },
        max_depth: Some(4),
        min_samples_split: Size::Count(2),
        min_samples_leaf: Size::Count(1),
        min_weight_fraction_leaf: 0.0,
        max_features: MaxFeatures::Sqrt,
        max_leaf_nodes: None,
        min_impurity_decrease: 0.0,
        class_weight: ClassWeight::None,
        random_state: 3,
    }
}

fn params(classifier: bool) -> Params {
    Params {
        tree: tree_params(classifier),
        n_estimators: 8,
        bootstrap: true,
        max_samples: None,
        class_weight: ForestClassWeight::None,
    }
}

fn data() -> (Mat<f64>, Vec<f64>) {
    let x = Mat::from_fn(60, 5, |i, j| {
        ((i * 7 + j * 13) % 17) as f64 + 0.1 * j as f64
    });
    let y = (0..60).map(|i| [2.0, 5.0, 9.0][(i + i / 5) % 3]).collect();
    (x, y)
}

fn on_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(f)
}

#[test]
fn trees_grown_in_parallel_are_the_trees_grown_one_by_one() {
    let (x, y) = data();
    for class_weight in [
        ForestClassWeight::None,
        ForestClassWeight::Balanced,
        ForestClassWeight::BalancedSubsample,
    ] {
        let p = Params {
            class_weight,
            ..params(true)
        };
        let one = on_threads(1, || fit(x.as_ref(), &y, &p).unwrap());
        let four = on_threads(4, || fit(x.as_ref(), &y, &p).unwrap());
        assert_eq!(one.trees, four.trees, "{class_weight:?}");
        let predicted = on_threads(4, || four.predict(x.as_ref()).unwrap());
        assert_eq!(one.predict(x.as_ref()).unwrap(), predicted);
    }
}

#[test]
fn one_tree_without_bootstrap_is_the_decision_tree_of_its_seed() {
    let (x, y) = data();
    for classifier in [false, true] {
        let p = Params {
            n_estimators: 1,
            bootstrap: false,
            ..params(classifier)
        };
        let forest = fit(x.as_ref(), &y, &p).unwrap();
        let mut single = tree_params(classifier);
        single.random_state = tree_seeds(p.tree.random_state, 1)[0];
        let tree = tree::fit(x.as_ref(), &y, &single).unwrap();
        assert_eq!(forest.trees, std::slice::from_ref(&tree.tree));
        assert_eq!(
            forest.predict(x.as_ref()).unwrap(),
            tree.predict(x.as_ref()).unwrap()
        );
    }
}

#[test]
fn bootstrap_samples_differ_between_trees() {
    let (x, y) = data();
    let forest = fit(x.as_ref(), &y, &params(false)).unwrap();
    assert_eq!(forest.trees.len(), 8);
    assert!(forest.trees.windows(2).all(|w| w[0] != w[1]));
    // The mean of 8 trees predicts a training row between the trees' extremes.
    let mean = forest.predict(x.as_ref()).unwrap().values[0];
    let each: Vec<f64> = forest
        .trees
        .iter()
        .map(|t| t.value(t.leaf(|j| x[(0, j)]))[0])
        .collect();
    let (lo, hi) = each
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    assert!(lo <= mean && mean <= hi);
}

#[test]
fn a_fitted_forest_survives_the_cache_encoding() {
    let (x, y) = data();
    let fitted = Fitted::Forest(fit(x.as_ref(), &y, &params(true)).unwrap());
    let bytes = rmp_serde::to_vec(&fitted).unwrap();
    let back: Fitted = rmp_serde::from_slice(&bytes).unwrap();
    let (Fitted::Forest(a), Fitted::Forest(b)) = (&fitted, &back) else {
        panic!("not a forest");
    };
    assert_eq!(a.trees, b.trees);
    let prediction = a.predict(x.as_ref()).unwrap();
    assert_eq!(prediction, b.predict(x.as_ref()).unwrap());
    assert_eq!(prediction.classes, [2.0, 5.0, 9.0]);
    let proba = prediction.proba.unwrap();
    for i in 0..proba.nrows() {
        let total: f64 = (0..3).map(|c| proba[(i, c)]).sum();
        assert!((total - 1.0).abs() < 1e-12);
    }
}

#[test]
fn bad_parameters_and_inputs_are_typed_errors() {
    let (x, y) = data();
    let refused = |p: Params| {
        matches!(
            fit(x.as_ref(), &y, &p),
            Err(RuntimeError::Parameter(m)) if m.starts_with("RandomForest")
        )
    };
    assert!(refused(Params {
        n_estimators: 0,
        ..params(false)
    }));
    assert!(refused(Params {
        bootstrap: false,
        max_samples: Some(Size::Count(5)),
        ..params(false)
    }));
    assert!(refused(Params {
        max_samples: Some(Size::Fraction(f64::NAN)),
        ..params(false)
    }));
    assert!(refused(Params {
        class_weight: ForestClassWeight::Balanced,
        ..params(false)
    }));
    let mut weighted_trees = params(true);
    weighted_trees.tree.class_weight = ClassWeight::Balanced;
    assert!(refused(weighted_trees));
    let mut gini_regressor = params(false);
    gini_regressor.tree.criterion = Kind::Gini;
    assert!(refused(gini_regressor));
    let mut nan = x.clone();
    nan[(0, 0)] = f64::NAN;
    assert!(matches!(
        fit(nan.as_ref(), &y, &params(false)),
        Err(RuntimeError::Data(_))
    ));
    let forest = fit(x.as_ref(), &y, &params(false)).unwrap();
    assert!(forest.predict(Mat::<f64>::zeros(2, 4).as_ref()).is_err());
    let mut inf = x.clone();
    inf[(1, 1)] = f64::INFINITY;
    assert!(matches!(
        forest.predict(inf.as_ref()),
        Err(RuntimeError::Data(_))
    ));
}
