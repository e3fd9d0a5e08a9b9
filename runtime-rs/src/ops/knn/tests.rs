//! One shared search versus one fitted model per variant, and error cases.

use faer::Mat;

use super::reference_tests::{mat, TEST, TRAIN, Y_CLASS, Y_REG};
use super::*;

/// Deterministic pseudo-random numbers in [0, 1).
fn lcg(state: &mut u64) -> f64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*state >> 11) as f64 / (1u64 << 53) as f64
}

/// Bit-for-bit equality of two predictions.
fn assert_identical(a: &Prediction, b: &Prediction, what: &str) {
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&a.values), bits(&b.values), "{what}: values");
    assert_eq!(bits(&a.classes), bits(&b.classes), "{what}: classes");
    assert_eq!(a.decision, b.decision, "{what}: decision");
    match (&a.proba, &b.proba) {
        (None, None) => {}
        (Some(pa), Some(pb)) => {
            assert_eq!((pa.nrows(), pa.ncols()), (pb.nrows(), pb.ncols()));
            for i in 0..pa.nrows() {
                for j in 0..pa.ncols() {
                    assert_eq!(pa[(i, j)].to_bits(), pb[(i, j)].to_bits(), "{what}: proba");
                }
            }
        }
        _ => panic!("{what}: proba presence differs"),
    }
}

#[test]
fn neighbors_is_send_sync() {
    fn check<T: Send + Sync + std::fmt::Debug>() {}
    check::<Neighbors>();
}

/// Training rows on a small integer grid (many exact duplicates and equal
/// distances), test rows partly copied from the training rows; classes with
/// non-contiguous codes.
fn tie_heavy(n: usize, nq: usize, p: usize, seed: u64) -> (Mat<f64>, Mat<f64>, Vec<f64>, Vec<f64>) {
    let mut s = seed;
    let x = Mat::from_fn(n, p, |_, _| (lcg(&mut s) * 4.0).floor());
    let q = Mat::from_fn(nq, p, |i, j| {
        if i % 3 == 0 {
            x[((i * 7) % n, j)]
        } else {
            (lcg(&mut s) * 5.0).floor() - 0.5 * (i % 2) as f64
        }
    });
    let codes = [0.0, 2.0, 5.0, 7.0];
    let y_class = (0..n)
        .map(|_| codes[(lcg(&mut s) * 4.0) as usize])
        .collect();
    let y_reg = (0..n).map(|_| lcg(&mut s) * 20.0 - 10.0).collect();
    (x, q, y_class, y_reg)
}

#[test]
fn shared_search_equals_separate_models() {
    for &(n, nq, p, seed) in &[(40usize, 30usize, 2usize, 1u64), (3000, 90, 3, 2)] {
        let (x, q, y_class, y_reg) = tie_heavy(n, nq, p, seed);
        let found = neighbors(x.as_ref(), q.as_ref(), 25).unwrap();
        assert_eq!((found.k(), found.n_train(), found.n_test()), (25, n, nq));
        for k in [1, 5, 25] {
            for w in [Weights::Uniform, Weights::Distance] {
                for (classifier, y) in [(true, &y_class), (false, &y_reg)] {
                    let shared = predict_neighbors(&found, y, k, w, classifier).unwrap();
                    let own = fit(x.as_ref(), y, k, w, classifier)
                        .unwrap()
                        .predict(q.as_ref())
                        .unwrap();
                    let what = format!("n={n} k={k} {w:?} classifier={classifier}");
                    assert_identical(&shared, &own, &what);
                }
            }
        }
        // The neighbour lists themselves: the first k of the 25 are a k-search.
        for k in [1, 5] {
            let fewer = neighbors(x.as_ref(), q.as_ref(), k).unwrap();
            for r in 0..nq {
                assert_eq!(fewer.indices(r), &found.indices(r)[..k]);
                assert_eq!(fewer.sq_distances(r), &found.sq_distances(r)[..k]);
            }
        }
    }
}

#[test]
fn search_k_is_clamped_to_training_rows() {
    let (x, t) = (mat(&TRAIN[..5]), mat(&TEST[..3]));
    let found = neighbors(x.as_ref(), t.as_ref(), 9).unwrap();
    assert_eq!((found.k(), found.n_train(), found.n_test()), (5, 5, 3));
    for r in 0..3 {
        let d = found.sq_distances(r);
        assert!(d.windows(2).all(|w| w[0] <= w[1]));
        let mut idx = found.indices(r).to_vec();
        idx.sort_unstable();
        assert_eq!(idx, vec![0, 1, 2, 3, 4]);
    }
    let shared = predict_neighbors(&found, &Y_REG[..5], 5, Weights::Distance, false).unwrap();
    let own = fit(x.as_ref(), &Y_REG[..5], 5, Weights::Distance, false)
        .unwrap()
        .predict(t.as_ref())
        .unwrap();
    assert_identical(&shared, &own, "k = n_train");
    let err = predict_neighbors(&found, &Y_CLASS[..5], 6, Weights::Uniform, true).unwrap_err();
    assert_eq!(
        err,
        RuntimeError::data(
            "Expected n_neighbors <= n_samples_fit, but n_neighbors = 6, n_samples_fit = 5, n_samples = 3"
        )
    );
    // A huge k (u32::MAX from a plan) is clamped too.
    let found = neighbors(x.as_ref(), t.as_ref(), u32::MAX as usize).unwrap();
    assert_eq!(found.k(), 5);
}

#[test]
fn shared_search_errors() {
    let (x, t) = (mat(&TRAIN), mat(&TEST));
    let err = neighbors(x.as_ref(), t.as_ref(), 0).unwrap_err();
    assert!(matches!(err, RuntimeError::Parameter(_)));
    let mut bad = x.clone();
    bad[(3, 1)] = f64::NAN;
    assert_eq!(
        neighbors(bad.as_ref(), t.as_ref(), 3).unwrap_err(),
        RuntimeError::data("Input X contains NaN.")
    );
    let mut bad = t.clone();
    bad[(1, 0)] = f64::NEG_INFINITY;
    assert_eq!(
        neighbors(x.as_ref(), bad.as_ref(), 3).unwrap_err(),
        RuntimeError::data("Input X contains infinity or a value too large for dtype('float64').")
    );
    assert_eq!(
        neighbors(x.as_ref(), Mat::<f64>::zeros(2, 3).as_ref(), 3).unwrap_err(),
        RuntimeError::data(
            "X has 3 features, but NearestNeighbors is expecting 2 features as input."
        )
    );
    assert_eq!(
        neighbors(Mat::<f64>::zeros(0, 2).as_ref(), t.as_ref(), 3).unwrap_err(),
        RuntimeError::data(
            "Found array with 0 sample(s) (shape=(0, 2)) while a minimum of 1 is required by NearestNeighbors."
        )
    );
    assert!(neighbors(x.as_ref(), Mat::<f64>::zeros(0, 2).as_ref(), 3).is_err());

    let found = neighbors(x.as_ref(), t.as_ref(), 4).unwrap();
    let err = predict_neighbors(&found, &Y_REG, 0, Weights::Uniform, false).unwrap_err();
    assert!(matches!(err, RuntimeError::Parameter(_)));
    assert_eq!(
        predict_neighbors(&found, &Y_REG[..5], 3, Weights::Uniform, false).unwrap_err(),
        RuntimeError::data("Found input variables with inconsistent numbers of samples: [12, 5]")
    );
    let mut y = Y_CLASS;
    y[2] = f64::NAN;
    assert_eq!(
        predict_neighbors(&found, &y, 3, Weights::Uniform, true).unwrap_err(),
        RuntimeError::data("Input y contains NaN.")
    );
    assert_eq!(
        predict_neighbors(&found, &Y_REG, 13, Weights::Uniform, false).unwrap_err(),
        RuntimeError::data(
            "Expected n_neighbors <= n_samples_fit, but n_neighbors = 13, n_samples_fit = 12, n_samples = 6"
        )
    );
    // More neighbours than the search kept (a plan inconsistency).
    let err = predict_neighbors(&found, &Y_REG, 5, Weights::Uniform, false).unwrap_err();
    assert!(matches!(err, RuntimeError::Plan(_)));
}

#[test]
fn fitted_model_errors() {
    let x = mat(&TRAIN);
    let err = fit(x.as_ref(), &Y_REG, 0, Weights::Uniform, false).unwrap_err();
    assert!(matches!(err, RuntimeError::Parameter(_)));
    let err = fit(x.as_ref(), &Y_REG[..5], 3, Weights::Uniform, false).unwrap_err();
    assert_eq!(
        err,
        RuntimeError::data("Found input variables with inconsistent numbers of samples: [12, 5]")
    );
    let mut bad = x.clone();
    bad[(3, 1)] = f64::NAN;
    let err = fit(bad.as_ref(), &Y_REG, 3, Weights::Uniform, false).unwrap_err();
    assert_eq!(err, RuntimeError::data("Input X contains NaN."));

    let small = fit(
        x.as_ref().subrows(0, 5),
        &Y_REG[..5],
        6,
        Weights::Uniform,
        true,
    )
    .unwrap();
    let err = small.predict(mat(&TEST[..3]).as_ref()).unwrap_err();
    assert_eq!(
        err,
        RuntimeError::data(
            "Expected n_neighbors <= n_samples_fit, but n_neighbors = 6, n_samples_fit = 5, n_samples = 3"
        )
    );
    let m = fit(x.as_ref(), &Y_REG, 3, Weights::Distance, false).unwrap();
    let err = m.predict(Mat::<f64>::zeros(2, 3).as_ref()).unwrap_err();
    assert_eq!(
        err,
        RuntimeError::data(
            "X has 3 features, but KNeighborsRegressor is expecting 2 features as input."
        )
    );
    let mut bad = mat(&TEST);
    bad[(0, 0)] = f64::NAN;
    assert_eq!(
        m.predict(bad.as_ref()).unwrap_err(),
        RuntimeError::data("Input X contains NaN.")
    );
    assert!(m.predict(Mat::<f64>::zeros(0, 2).as_ref()).is_err());
    // Overflowing distances do not panic.
    let huge = Mat::from_fn(4, 2, |i, _| if i % 2 == 0 { 1e300 } else { -1e300 });
    let m = fit(
        huge.as_ref(),
        &[0.0, 1.0, 0.0, 1.0],
        2,
        Weights::Uniform,
        true,
    )
    .unwrap();
    assert!(m.predict(huge.as_ref()).is_ok());
}

/// Neighbours are scale-invariant: at 2^500 (~3e150) they are those of the unscaled
/// rows; squared distances that overflow (1e300) or underflow (1e-170) are
/// refused by the shared search and by a fitted model alike, while exact
/// duplicates (distance zero) at a tiny scale are not an underflow.
#[test]
fn extreme_scales_are_exact_or_refused() {
    let (x, t) = (mat(&TRAIN), mat(&TEST));
    let scaled = |m: &Mat<f64>, s: f64| Mat::from_fn(m.nrows(), m.ncols(), |i, j| m[(i, j)] * s);
    let want = neighbors(x.as_ref(), t.as_ref(), 4).unwrap();
    // A power of two scales every distance exactly.
    let s = 2f64.powi(500);
    let big = neighbors(scaled(&x, s).as_ref(), scaled(&t, s).as_ref(), 4).unwrap();
    for r in 0..t.nrows() {
        assert_eq!(big.indices(r), want.indices(r), "row {r}");
    }
    for (s, what) in [(1e300, "overflow"), (1e-170, "underflow")] {
        let (xs, ts) = (scaled(&x, s), scaled(&t, s));
        let err = neighbors(xs.as_ref(), ts.as_ref(), 4).unwrap_err();
        assert!(
            matches!(&err, RuntimeError::Numerical(m) if m.contains(what)),
            "{s}: {err}"
        );
        let model = fit(xs.as_ref(), &Y_REG, 4, Weights::Distance, false).unwrap();
        let err = model.predict(ts.as_ref()).unwrap_err();
        assert!(
            matches!(&err, RuntimeError::Numerical(m) if m.contains(what) && m.contains("KNeighborsRegressor")),
            "{s}: {err}"
        );
    }
    let tiny = scaled(&mat(&[[1.0, 2.0]; 5]), 1e-170);
    let found = neighbors(tiny.as_ref(), tiny.as_ref(), 3).unwrap();
    assert_eq!(found.sq_distances(0), &[0.0; 3]);
}
