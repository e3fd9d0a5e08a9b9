//! scikit-learn reference values, through the fitted model and through the
//! shared search.

use faer::Mat;

use super::*;

pub(super) const TRAIN: [[f64; 2]; 12] = [
    [0.05, 0.0],
    [1.0, 0.0],
    [0.0, 1.05],
    [1.0, 1.0],
    [2.0, 2.0],
    [2.0, 2.0],
    [3.0, 1.1],
    [0.5, 2.5],
    [-1.0, 0.3],
    [2.5, -1.0],
    [1.5, 1.5],
    [-0.7, -0.2],
];
pub(super) const Y_CLASS: [f64; 12] = [0.0, 1.0, 1.0, 0.0, 2.0, 2.0, 1.0, 0.0, 2.0, 0.0, 1.0, 2.0];
pub(super) const Y_REG: [f64; 12] = [
    0.5, 1.25, -2.0, 3.5, 10.0, 10.0, -1.5, 0.75, 2.25, 4.0, -3.25, 6.5,
];
pub(super) const TEST: [[f64; 2]; 6] = [
    [2.0, 2.0],
    [0.4, 0.3],
    [1.2, 0.9],
    [-0.5, 1.7],
    [3.3, 0.4],
    [1.0, 1.0],
];

pub(super) fn mat(rows: &[[f64; 2]]) -> Mat<f64> {
    Mat::from_fn(rows.len(), 2, |i, j| rows[i][j])
}

/// (k, weights, classifier predict, classifier predict_proba (row-major),
/// regressor predict), from scikit-learn 1.9.1:
/// `KNeighborsClassifier(n_neighbors=k, weights=w).fit(TRAIN, Y_CLASS)`
/// `.predict(TEST)` / `.predict_proba(TEST).ravel()` and
/// `KNeighborsRegressor(n_neighbors=k, weights=w).fit(TRAIN, Y_REG).predict(TEST)`.
/// TEST[0] and TEST[5] coincide with training rows (zero distance; rows 4
/// and 5 are duplicates, with equal targets so that scikit-learn's
/// heap-order tie-breaking cannot matter); several rows have vote ties
/// (e.g. k=4: rows 0 and 1, k=3: row 3).
#[allow(clippy::type_complexity)]
const REFERENCE: [(usize, Weights, &[f64], &[f64], &[f64]); 8] = [
    (
        3,
        Weights::Uniform,
        &[2.0, 1.0, 1.0, 0.0, 0.0, 1.0],
        &[
            0.0,
            0.3333333333333333,
            0.6666666666666666,
            0.3333333333333333,
            0.6666666666666666,
            0.0,
            0.3333333333333333,
            0.6666666666666666,
            0.0,
            0.3333333333333333,
            0.3333333333333333,
            0.3333333333333333,
            0.3333333333333333,
            0.3333333333333333,
            0.3333333333333333,
            0.3333333333333333,
            0.6666666666666666,
            0.0,
        ],
        &[
            5.583333333333333,
            -0.08333333333333333,
            0.5,
            0.3333333333333333,
            4.166666666666667,
            0.5,
        ],
    ),
    (
        3,
        Weights::Distance,
        &[2.0, 1.0, 0.0, 1.0, 1.0, 0.0],
        &[
            0.0,
            0.0,
            1.0,
            0.44852896539772275,
            0.5514710346022771,
            0.0,
            0.6345705299218292,
            0.36542947007817084,
            0.0,
            0.2921360201714353,
            0.45620589009663065,
            0.2516580897319339,
            0.25644928270924705,
            0.5429679135205,
            0.20058280377025284,
            1.0,
            0.0,
            0.0,
        ],
        &[
            10.0,
            0.12304407625637613,
            1.7259278974413719,
            -0.12707906316783346,
            2.2171732982587664,
            3.5,
        ],
    ),
    (
        4,
        Weights::Uniform,
        &[1.0, 0.0, 1.0, 0.0, 2.0, 1.0],
        &[
            0.0, 0.5, 0.5, 0.5, 0.5, 0.0, 0.25, 0.75, 0.0, 0.5, 0.25, 0.25, 0.25, 0.25, 0.5, 0.25,
            0.75, 0.0,
        ],
        &[3.8125, 0.8125, -0.125, 1.125, 5.625, -0.125],
    ),
    (
        4,
        Weights::Distance,
        &[2.0, 0.0, 0.0, 0.0, 1.0, 0.0],
        &[
            0.0,
            0.0,
            1.0,
            0.5495491028322796,
            0.4504508971677203,
            0.0,
            0.5679336622212399,
            0.43206633777876013,
            0.0,
            0.42262889441132456,
            0.3721055268343354,
            0.20526557875433998,
            0.21360399457988735,
            0.4522536153403077,
            0.33414239007980495,
            1.0,
            0.0,
            0.0,
        ],
        &[
            10.0,
            0.7416451089888629,
            1.3346645899658092,
            0.5415634805066225,
            3.5174594561071366,
            3.5,
        ],
    ),
    (
        5,
        Weights::Uniform,
        &[1.0, 0.0, 1.0, 0.0, 1.0, 1.0],
        &[
            0.2, 0.4, 0.4, 0.4, 0.4, 0.2, 0.2, 0.6, 0.2, 0.6, 0.2, 0.2, 0.2, 0.4, 0.4, 0.4, 0.6,
            0.0,
        ],
        &[3.75, 1.95, 1.9, 1.0, 3.85, 0.0],
    ),
    (
        5,
        Weights::Distance,
        &[2.0, 0.0, 0.0, 0.0, 1.0, 0.0],
        &[
            0.0,
            0.0,
            1.0,
            0.4821573060759446,
            0.3952116198143725,
            0.12263107410968291,
            0.5194351839646592,
            0.395170197820779,
            0.08539461821456189,
            0.5068508134887776,
            0.31782598068808093,
            0.17532320582314131,
            0.18362317321070265,
            0.529133668760644,
            0.2872431580286533,
            1.0,
            0.0,
            0.0,
        ],
        &[
            10.0,
            1.4477983543783046,
            2.074637599006803,
            0.5355005583099238,
            2.567598974912502,
            3.5,
        ],
    ),
    (
        9,
        Weights::Uniform,
        &[1.0, 0.0, 1.0, 0.0, 1.0, 1.0],
        &[
            0.3333333333333333,
            0.4444444444444444,
            0.2222222222222222,
            0.3333333333333333,
            0.3333333333333333,
            0.3333333333333333,
            0.3333333333333333,
            0.4444444444444444,
            0.2222222222222222,
            0.3333333333333333,
            0.3333333333333333,
            0.3333333333333333,
            0.3333333333333333,
            0.4444444444444444,
            0.2222222222222222,
            0.3333333333333333,
            0.4444444444444444,
            0.2222222222222222,
        ],
        &[
            2.138888888888889,
            2.1666666666666665,
            2.138888888888889,
            2.1666666666666665,
            2.5,
            2.138888888888889,
        ],
    ),
    (
        9,
        Weights::Distance,
        &[2.0, 0.0, 0.0, 1.0, 1.0, 0.0],
        &[
            0.0,
            0.0,
            1.0,
            0.4138543056322816,
            0.3662463350157136,
            0.21989935935200475,
            0.5136570622260184,
            0.35451754900975246,
            0.13182538876422914,
            0.34141276137506843,
            0.3788705521114453,
            0.27971668651348636,
            0.27877666281512375,
            0.5203318922266345,
            0.20089144495824174,
            1.0,
            0.0,
            0.0,
        ],
        &[
            10.0,
            1.5631668310852993,
            2.255401031647873,
            1.4681993908741886,
            2.1199913835610826,
            3.5,
        ],
    ),
];

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-13 * (1.0 + b.abs())
}

fn check_classifier(p: &Prediction, k: usize, w: Weights, pred: &[f64], class_proba: &[f64]) {
    assert_eq!(p.values, pred, "k={k} {w:?}");
    assert_eq!(p.classes, vec![0.0, 1.0, 2.0]);
    assert!(p.decision.is_none());
    let proba = p.proba.as_ref().unwrap();
    assert_eq!((proba.nrows(), proba.ncols()), (6, 3));
    for i in 0..6 {
        for c in 0..3 {
            let (got, want) = (proba[(i, c)], class_proba[i * 3 + c]);
            assert!(
                close(got, want),
                "k={k} {w:?} proba[{i},{c}] {got} vs {want}"
            );
        }
    }
}

fn check_regressor(p: &Prediction, k: usize, w: Weights, pred: &[f64]) {
    assert!(p.classes.is_empty() && p.proba.is_none() && p.decision.is_none());
    assert_eq!(p.values.len(), pred.len());
    for (got, want) in p.values.iter().zip(pred) {
        assert!(close(*got, *want), "k={k} {w:?} regression {got} vs {want}");
    }
}

#[test]
fn matches_sklearn() {
    let (x, t) = (mat(&TRAIN), mat(&TEST));
    for (k, w, class_pred, class_proba, reg_pred) in REFERENCE {
        let clf = fit(x.as_ref(), &Y_CLASS, k, w, true).unwrap();
        let p = clf.predict(t.as_ref()).unwrap();
        check_classifier(&p, k, w, class_pred, class_proba);
        let reg = fit(x.as_ref(), &Y_REG, k, w, false).unwrap();
        let p = reg.predict(t.as_ref()).unwrap();
        check_regressor(&p, k, w, reg_pred);
    }
}

#[test]
fn shared_search_matches_sklearn() {
    // One search (k clamped to the 12 training rows) serves every variant.
    let found = neighbors(mat(&TRAIN).as_ref(), mat(&TEST).as_ref(), 50).unwrap();
    assert_eq!((found.k(), found.n_train(), found.n_test()), (12, 12, 6));
    for (k, w, class_pred, class_proba, reg_pred) in REFERENCE {
        let p = predict_neighbors(&found, &Y_CLASS, k, w, true).unwrap();
        check_classifier(&p, k, w, class_pred, class_proba);
        let p = predict_neighbors(&found, &Y_REG, k, w, false).unwrap();
        check_regressor(&p, k, w, reg_pred);
    }
}

#[test]
fn class_codes_are_mapped_back() {
    // Codes 1 and 3 only (a fold may miss codes): proba columns follow them.
    let x = mat(&[[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]]);
    let y = [3.0, 3.0, 1.0, 1.0];
    let m = fit(x.as_ref(), &y, 3, Weights::Uniform, true).unwrap();
    let p = m.predict(mat(&[[0.0, 0.1], [5.0, 5.1]]).as_ref()).unwrap();
    assert_eq!(p.classes, vec![1.0, 3.0]);
    assert_eq!(p.values, vec![3.0, 1.0]);
    let proba = p.proba.unwrap();
    assert!(close(proba[(0, 0)], 1.0 / 3.0) && close(proba[(0, 1)], 2.0 / 3.0));
}
