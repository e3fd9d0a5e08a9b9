use faer::MatRef;

use crate::error::Result;
use crate::value::{Gram, Prediction};

#[derive(Debug, Clone)]
pub struct Linear {}

pub fn gram(_x: MatRef<'_, f64>, _y: &[f64], _fit_intercept: bool) -> Result<Gram> {
    unimplemented!()
}

pub fn solve(_gram: &Gram, _alpha: f64) -> Result<Linear> {
    unimplemented!()
}

impl Linear {
    pub fn predict(&self, _x: MatRef<'_, f64>) -> Result<Prediction> {
        unimplemented!()
    }
}
