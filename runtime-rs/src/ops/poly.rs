use faer::MatRef;

use crate::error::Result;
use crate::value::Matrix;

#[derive(Debug, Clone)]
pub struct Poly {}

pub fn fit(_x: MatRef<'_, f64>, _degree: u32, _interaction_only: bool, _include_bias: bool) -> Result<Poly> {
    unimplemented!()
}

impl Poly {
    pub fn transform(&self, _x: MatRef<'_, f64>) -> Result<Matrix> {
        unimplemented!()
    }
}
