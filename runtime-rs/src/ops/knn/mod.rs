//! KNeighborsClassifier / KNeighborsRegressor (brute force, Euclidean).
//!
//! A prediction is a neighbour search ([`neighbors`], in `search.rs`)
//! followed by a vote over the first `k` neighbours of each row
//! ([`predict_neighbors`], in `vote.rs`). Neighbour lists are sorted by
//! (exact squared distance, training index), so one search for the largest
//! `n_neighbors` serves every KNN variant on the same train/test matrices,
//! bit for bit as if each had searched on its own. A fitted [`Knn`] keeps the
//! prepared training rows and runs the same two steps.

mod candidates;
mod search;
mod vote;

#[cfg(test)]
mod reference_tests;
#[cfg(test)]
mod tests;

use faer::MatRef;

use crate::data::fitted::Knn;
use crate::data::neighbors::Train;
use crate::data::{Neighbors, Prediction, Weights};
use crate::error::{Result, RuntimeError};
use crate::kernels::check::{
    check_all_finite, check_consistent_length, check_finite, check_min_shape, check_n_features,
};

/// Estimator named in the errors of the shared search, which serves
/// classifiers and regressors alike (scikit-learn's own unsupervised search).
const SEARCH_NAME: &str = "NearestNeighbors";

fn estimator_name(classifier: bool) -> &'static str {
    if classifier {
        "KNeighborsClassifier"
    } else {
        "KNeighborsRegressor"
    }
}

/// Parameter validation of `n_neighbors`.
fn check_n_neighbors(k: usize, name: &str) -> Result<()> {
    if k == 0 {
        return Err(RuntimeError::parameter(format!(
            "The 'n_neighbors' parameter of {name} must be an int in the range [1, inf) or None. Got 0 instead."
        )));
    }
    Ok(())
}

/// `check_array` on X: non-empty, at least one feature, finite.
fn check_x(x: MatRef<'_, f64>, name: &str) -> Result<()> {
    check_min_shape(x.nrows(), x.ncols(), Some(name))?;
    check_finite(x, "X")
}

/// Test rows: `check_array`, then the fitted feature count.
fn check_query(x: MatRef<'_, f64>, n_features: usize, name: &str) -> Result<()> {
    check_x(x, name)?;
    check_n_features(x.ncols(), n_features, name)
}

/// The fit-time checks of y: finite, one target per training row.
fn check_y(y: &[f64], n_train: usize) -> Result<()> {
    check_all_finite(y.iter().copied(), "y")?;
    check_consistent_length(n_train, y.len())
}

/// `kneighbors`' check that there are enough training rows.
fn check_fits(k: usize, n_train: usize, n_test: usize) -> Result<()> {
    if k > n_train {
        return Err(RuntimeError::data(format!(
            "Expected n_neighbors <= n_samples_fit, but n_neighbors = {k}, n_samples_fit = {n_train}, n_samples = {n_test}"
        )));
    }
    Ok(())
}

/// The `min(k, n_train)` nearest training rows of every test row, sorted by
/// (exact distance, training index). `k` is the largest `n_neighbors` of the
/// consumers, so it may exceed the training rows (clamped, no error).
pub fn neighbors(train: MatRef<'_, f64>, test: MatRef<'_, f64>, k: usize) -> Result<Neighbors> {
    check_n_neighbors(k, SEARCH_NAME)?;
    check_x(train, SEARCH_NAME)?;
    check_query(test, train.ncols(), SEARCH_NAME)?;
    let prepared = Train::new(train);
    let found = prepared.search(test, k);
    prepared.check_distances(test, &found, SEARCH_NAME)?;
    Ok(found)
}

/// A KNN prediction from the first `k` neighbours of each test row, identical
/// to fitting on the searched training rows with targets `y_train` and
/// `n_neighbors = k`, then predicting the test rows.
pub fn predict_neighbors(
    found: &Neighbors,
    y_train: &[f64],
    k: usize,
    weights: Weights,
    classifier: bool,
) -> Result<Prediction> {
    check_n_neighbors(k, estimator_name(classifier))?;
    check_y(y_train, found.n_train)?;
    check_fits(k, found.n_train, found.n_test)?;
    if k > found.k {
        return Err(RuntimeError::Plan(format!(
            "the neighbour search kept {} neighbours per row, {k} are needed",
            found.k
        )));
    }
    if classifier {
        let (classes, labels) = vote::encode(y_train);
        vote::classify(found, classes, &labels, k, weights)
    } else {
        Ok(vote::regress(found, y_train, k, weights))
    }
}

/// Learns a k-nearest-neighbours model (stores the training data).
pub fn fit(
    x: MatRef<'_, f64>,
    y: &[f64],
    n_neighbors: usize,
    weights: Weights,
    classifier: bool,
) -> Result<Knn> {
    let name = estimator_name(classifier);
    check_n_neighbors(n_neighbors, name)?;
    check_x(x, name)?;
    check_y(y, x.nrows())?;
    Ok(Knn {
        n_neighbors,
        weights,
        classifier,
        train: Train::new(x),
        y: y.to_vec(),
    })
}

impl Knn {
    /// Predicts targets (and class probabilities for a classifier).
    pub fn predict(&self, x: MatRef<'_, f64>) -> Result<Prediction> {
        let k = self.n_neighbors;
        check_query(x, self.train.n_features(), estimator_name(self.classifier))?;
        // Before searching: a search for more rows than there are is wasted.
        check_fits(k, self.train.n_samples(), x.nrows())?;
        let found = self.train.search(x, k);
        self.train
            .check_distances(x, &found, estimator_name(self.classifier))?;
        predict_neighbors(&found, &self.y, k, self.weights, self.classifier)
    }
}
