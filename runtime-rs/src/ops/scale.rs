use faer::MatRef;

use crate::error::Result;
use crate::value::Matrix;

#[derive(Debug, Clone)]
pub struct Scaler {}

pub fn fit_standard(_x: MatRef<'_, f64>, _with_mean: bool, _with_std: bool) -> Result<Scaler> {
    unimplemented!()
}

pub fn fit_min_max(_x: MatRef<'_, f64>, _low: f64, _high: f64, _clip: bool) -> Result<Scaler> {
    unimplemented!()
}

pub fn fit_max_abs(_x: MatRef<'_, f64>) -> Result<Scaler> {
    unimplemented!()
}

impl Scaler {
    pub fn transform(&self, _x: MatRef<'_, f64>) -> Result<Matrix> {
        unimplemented!()
    }
}
