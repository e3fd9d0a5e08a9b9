use faer::MatRef;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::value::Prediction;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Weights {
    Uniform,
    Distance,
}

#[derive(Debug, Clone)]
pub struct Knn {}

pub fn fit(_x: MatRef<'_, f64>, _y: &[f64], _n_neighbors: usize, _weights: Weights, _classifier: bool) -> Result<Knn> {
    unimplemented!()
}

impl Knn {
    pub fn predict(&self, _x: MatRef<'_, f64>) -> Result<Prediction> {
        unimplemented!()
    }
}
