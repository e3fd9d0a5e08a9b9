//! Row and column gathers: fold splits, column selections and side-by-side
//! stacking, column-parallel when the matrix is large.

use faer::{Mat, MatRef};
use rayon::prelude::*;

use crate::data::{check_width, Matrix};
use crate::error::{Result, RuntimeError};

/// Matrices larger than this many cells are gathered column-parallel.
const PARALLEL_CELLS: usize = 1 << 16;

/// Copies `rows` of `x` (in that order) into a new matrix.
pub fn take_rows(x: MatRef<'_, f64>, rows: &[usize]) -> Matrix {
    let mut out = Mat::<f64>::zeros(rows.len(), x.ncols());
    let fill = |(j, col): (usize, &mut [f64])| {
        let src = x.col(j);
        for (dst, &r) in col.iter_mut().zip(rows) {
            *dst = src[r];
        }
    };
    if rows.len() * x.ncols() >= PARALLEL_CELLS {
        columns_mut(&mut out)
            .into_par_iter()
            .enumerate()
            .for_each(fill);
    } else {
        columns_mut(&mut out).into_iter().enumerate().for_each(fill);
    }
    out
}

/// Copies the listed columns of `x` into a new matrix.
pub fn select_cols(x: MatRef<'_, f64>, cols: &[u32]) -> Result<Matrix> {
    if let Some(&bad) = cols.iter().find(|&&c| c as usize >= x.ncols()) {
        return Err(RuntimeError::data(format!(
            "column {bad} is out of range for a matrix with {} columns",
            x.ncols()
        )));
    }
    let parts: Vec<MatRef<'_, f64>> = cols.iter().map(|&c| x.subcols(c as usize, 1)).collect();
    hstack(&parts)
}

/// Places matrices with equal row counts side by side.
pub fn hstack(parts: &[MatRef<'_, f64>]) -> Result<Matrix> {
    let rows = parts.first().map_or(0, |p| p.nrows());
    if let Some(bad) = parts.iter().find(|p| p.nrows() != rows) {
        return Err(RuntimeError::data(format!(
            "cannot place side by side matrices with {rows} and {} rows",
            bad.nrows()
        )));
    }
    let width: usize = parts.iter().map(|p| p.ncols()).sum();
    check_width(width)?;
    let sources: Vec<(usize, usize)> = parts
        .iter()
        .enumerate()
        .flat_map(|(p, part)| (0..part.ncols()).map(move |j| (p, j)))
        .collect();
    let mut out = Mat::<f64>::zeros(rows, sources.len());
    let fill = |(col, &(p, j)): (&mut [f64], &(usize, usize))| {
        for (dst, src) in col.iter_mut().zip(parts[p].col(j).iter()) {
            *dst = *src;
        }
    };
    if rows * sources.len() >= PARALLEL_CELLS {
        columns_mut(&mut out)
            .into_par_iter()
            .zip(sources.par_iter())
            .for_each(fill);
    } else {
        columns_mut(&mut out)
            .into_iter()
            .zip(sources.iter())
            .for_each(fill);
    }
    Ok(out)
}

/// The columns of an owned matrix as disjoint mutable slices.
fn columns_mut(m: &mut Matrix) -> Vec<&mut [f64]> {
    let rows = m.nrows();
    let cols = m.ncols();
    if rows == 0 {
        return (0..cols).map(|_| <&mut [f64]>::default()).collect();
    }
    let stride = m.col_stride() as usize;
    let ptr = m.as_ptr_mut();
    // SAFETY: an owned faer matrix stores column j at ptr + j * col_stride with
    // unit row stride and col_stride >= rows, so these slices never overlap.
    (0..cols)
        .map(|j| unsafe { std::slice::from_raw_parts_mut(ptr.add(j * stride), rows) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathers_rows_and_columns() {
        let x = Mat::from_fn(4, 3, |i, j| (10 * i + j) as f64);
        let rows = take_rows(x.as_ref(), &[3, 0]);
        assert_eq!(rows[(0, 2)], 32.0);
        assert_eq!(rows[(1, 1)], 1.0);
        let cols = select_cols(x.as_ref(), &[2, 0]).unwrap();
        assert_eq!(cols[(3, 0)], 32.0);
        assert_eq!(cols[(3, 1)], 30.0);
        assert!(select_cols(x.as_ref(), &[3]).is_err());
        let both = hstack(&[x.as_ref(), cols.as_ref()]).unwrap();
        assert_eq!(both.ncols(), 5);
        assert_eq!(both[(2, 4)], 20.0);
        let short = Mat::<f64>::zeros(2, 1);
        assert!(hstack(&[x.as_ref(), short.as_ref()]).is_err());
    }

    #[test]
    fn empty_gathers_do_not_panic() {
        let x = Mat::<f64>::zeros(0, 3);
        assert_eq!(take_rows(x.as_ref(), &[]).ncols(), 3);
        assert_eq!(hstack(&[x.as_ref()]).unwrap().nrows(), 0);
    }
}
