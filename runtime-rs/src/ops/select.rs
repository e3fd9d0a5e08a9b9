use faer::MatRef;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::value::Matrix;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreFunc {
    FRegression,
    FClassif,
}

#[derive(Debug, Clone)]
pub struct Select {}

pub fn fit(_x: MatRef<'_, f64>, _y: &[f64], _score_func: ScoreFunc, _k: usize) -> Result<Select> {
    unimplemented!()
}

impl Select {
    pub fn transform(&self, _x: MatRef<'_, f64>) -> Result<Matrix> {
        unimplemented!()
    }
}
