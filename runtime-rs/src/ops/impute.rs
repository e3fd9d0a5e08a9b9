use faer::MatRef;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::value::Matrix;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    Mean,
    Median,
    MostFrequent,
    Constant,
}

#[derive(Debug, Clone)]
pub struct Imputer {}

pub fn fit(_x: MatRef<'_, f64>, _strategy: Strategy, _fill_value: f64) -> Result<Imputer> {
    unimplemented!()
}

impl Imputer {
    pub fn transform(&self, _x: MatRef<'_, f64>) -> Result<Matrix> {
        unimplemented!()
    }
}
