use faer::MatRef;

use crate::error::Result;
use crate::value::Matrix;

#[derive(Debug, Clone)]
pub struct OneHot {}

pub fn fit(_x: MatRef<'_, f64>) -> Result<OneHot> {
    unimplemented!()
}

impl OneHot {
    pub fn transform(&self, _x: MatRef<'_, f64>) -> Result<Matrix> {
        unimplemented!()
    }
}
