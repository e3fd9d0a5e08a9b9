use faer::MatRef;

use crate::error::Result;
use crate::value::Matrix;

#[derive(Debug, Clone)]
pub struct Pca {}

pub fn fit(_x: MatRef<'_, f64>, _n_components: usize, _whiten: bool) -> Result<Pca> {
    unimplemented!()
}

impl Pca {
    pub fn transform(&self, _x: MatRef<'_, f64>) -> Result<Matrix> {
        unimplemented!()
    }
}
