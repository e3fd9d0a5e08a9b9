//! The dense matrix every step reads and writes, and the width limit that
//! keeps a hostile plan from asking for more memory than the process has.

use faer::Mat;

use crate::error::{Result, RuntimeError};

/// Dense column-major matrix of `f64`; NaN marks a missing value.
pub type Matrix = Mat<f64>;

/// Widest matrix a step may produce. Far beyond real feature spaces, it stops
/// a small hostile plan (a doubling `hstack` chain, a polynomial expansion of
/// a huge selection) from requesting memory the process cannot have.
pub const MAX_COLUMNS: usize = 1 << 20;

/// Refuses to build a matrix wider than [`MAX_COLUMNS`].
pub fn check_width(columns: usize) -> Result<()> {
    if columns > MAX_COLUMNS {
        return Err(RuntimeError::data(format!(
            "the step would produce {columns} columns, more than the limit of {MAX_COLUMNS}"
        )));
    }
    Ok(())
}
