use faer::MatRef;

use crate::error::Result;
use crate::value::Prediction;

#[derive(Debug, Clone)]
pub struct Logistic {}

pub fn fit(_x: MatRef<'_, f64>, _y: &[f64], _c: f64, _fit_intercept: bool, _max_iter: u32, _tol: f64) -> Result<Logistic> {
    unimplemented!()
}

impl Logistic {
    pub fn predict(&self, _x: MatRef<'_, f64>) -> Result<Prediction> {
        unimplemented!()
    }
}
