//! `PolynomialFeatures(degree, interaction_only, include_bias)` for degree 1
//! and 2, dense, with scikit-learn's column order. Like scikit-learn (default
//! `ensure_all_finite=True`), NaN and infinities are refused.

use faer::MatRef;

use crate::data::fitted::{Poly, Term};
use crate::data::{check_width, Matrix};
use crate::error::{Result, RuntimeError};

use crate::kernels::check::Validator;
use crate::kernels::columns::{build_matrix, columns, parallel};

const NAME: &str = "PolynomialFeatures";

/// Checks the parameters and records the output columns: bias, `x0..xn`,
/// then `x0*x0, x0*x1, ..., x1*x1, ...` (squares left out when
/// `interaction_only`). Only degrees 1 and 2 are supported natively.
pub fn fit(
    x: MatRef<'_, f64>,
    degree: u32,
    interaction_only: bool,
    include_bias: bool,
) -> Result<Poly> {
    if !(1..=2).contains(&degree) {
        return Err(RuntimeError::parameter(format!(
            "PolynomialFeatures degree={degree} is not supported natively; degree must be 1 or 2"
        )));
    }
    let cols = columns(x);
    Validator::named(NAME, false).check(&cols, x.nrows(), x.ncols())?;
    let p = x.ncols();

    let n_products = if degree < 2 {
        Some(0)
    } else if interaction_only {
        p.checked_mul(p.saturating_sub(1)).map(|v| v / 2)
    } else {
        p.checked_mul(p + 1).map(|v| v / 2)
    };
    let n_out = n_products
        .and_then(|v| v.checked_add(p + usize::from(include_bias)))
        .unwrap_or(usize::MAX);
    check_width(n_out)?;

    let mut terms = Vec::with_capacity(n_out);
    if include_bias {
        terms.push(Term::Bias);
    }
    terms.extend((0..p).map(Term::Linear));
    if degree == 2 {
        for i in 0..p {
            let first = if interaction_only { i + 1 } else { i };
            terms.extend((first..p).map(|j| Term::Product(i, j)));
        }
    }
    Ok(Poly {
        n_features: p,
        terms,
    })
}

impl Poly {
    /// Builds the expanded matrix. Products are `x_j * x_i` like
    /// scikit-learn's broadcasting loop (multiplication is commutative, so
    /// results are bit-identical).
    pub fn transform(&self, x: MatRef<'_, f64>) -> Result<Matrix> {
        let validator = Validator::named(NAME, false);
        let cols = columns(x);
        validator.check(&cols, x.nrows(), x.ncols())?;
        validator.check_n_features(x.ncols(), self.n_features)?;
        let n = x.nrows();

        let par = parallel(n, self.terms.len());
        Ok(build_matrix(
            n,
            self.terms.len(),
            par,
            |c, out| match self.terms[c] {
                Term::Bias => out.fill(1.0),
                Term::Linear(i) => out.copy_from_slice(&cols[i]),
                Term::Product(i, j) => {
                    for ((o, &a), &b) in out.iter_mut().zip(cols[i].iter()).zip(cols[j].iter()) {
                        *o = b * a;
                    }
                }
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use faer::Mat;

    use super::*;
    use crate::kernels::columns::test_util::{assert_close, assert_rejects_shapes, flat, mat};

    fn data() -> Matrix {
        mat(&[&[1.5, -2.0, 3.0], &[0.5, 4.0, -1.25]])
    }

    #[test]
    fn column_order_matches_sklearn() {
        // PolynomialFeatures(degree, interaction_only, include_bias).fit_transform(P), by rows.
        #[rustfmt::skip]
        let cases: [(u32, bool, bool, &[&[f64]]); 5] = [
            // ['1', 'x0', 'x1', 'x2', 'x0^2', 'x0 x1', 'x0 x2', 'x1^2', 'x1 x2', 'x2^2']
            (2, false, true, &[
                &[1.0, 1.5, -2.0, 3.0, 2.25, -3.0, 4.5, 4.0, -6.0, 9.0],
                &[1.0, 0.5, 4.0, -1.25, 0.25, 2.0, -0.625, 16.0, -5.0, 1.5625],
            ]),
            // ['1', 'x0', 'x1', 'x2', 'x0 x1', 'x0 x2', 'x1 x2']
            (2, true, true, &[
                &[1.0, 1.5, -2.0, 3.0, -3.0, 4.5, -6.0],
                &[1.0, 0.5, 4.0, -1.25, 2.0, -0.625, -5.0],
            ]),
            (2, false, false, &[
                &[1.5, -2.0, 3.0, 2.25, -3.0, 4.5, 4.0, -6.0, 9.0],
                &[0.5, 4.0, -1.25, 0.25, 2.0, -0.625, 16.0, -5.0, 1.5625],
            ]),
            (2, true, false, &[
                &[1.5, -2.0, 3.0, -3.0, 4.5, -6.0],
                &[0.5, 4.0, -1.25, 2.0, -0.625, -5.0],
            ]),
            (1, false, true, &[&[1.0, 1.5, -2.0, 3.0], &[1.0, 0.5, 4.0, -1.25]]),
        ];
        let x = data();
        for (degree, interaction_only, include_bias, rows) in cases {
            let poly = fit(x.as_ref(), degree, interaction_only, include_bias).unwrap();
            let out = poly.transform(x.as_ref()).unwrap();
            assert_close(&flat(&out), &flat(&mat(rows)));
        }
    }

    #[test]
    fn unsupported_degrees_are_parameter_errors() {
        let x = data();
        for degree in [0, 3, 7] {
            let err = fit(x.as_ref(), degree, false, true).unwrap_err();
            assert!(matches!(err, RuntimeError::Parameter(_)), "{err:?}");
        }
    }

    #[test]
    fn nan_inf_and_shapes_are_refused_like_sklearn() {
        let nan = mat(&[&[1.0, f64::NAN]]);
        let err = fit(nan.as_ref(), 2, false, true).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "Input X contains NaN.\nPolynomialFeatures does not accept missing values"
            ),
            "{err}"
        );
        let inf = mat(&[&[1.0, f64::INFINITY]]);
        assert_eq!(
            fit(inf.as_ref(), 2, false, true).unwrap_err().to_string(),
            "Input X contains infinity or a value too large for dtype('float64')."
        );
        assert_eq!(
            fit(Mat::<f64>::zeros(0, 3).as_ref(), 2, false, true).unwrap_err().to_string(),
            "Found array with 0 sample(s) (shape=(0, 3)) while a minimum of 1 is required by PolynomialFeatures."
        );
        assert!(fit(Mat::<f64>::zeros(3, 0).as_ref(), 2, true, false).is_err());
        let poly = fit(data().as_ref(), 2, false, true).unwrap();
        assert_rejects_shapes(|x| poly.transform(x), (1, 4), 3, NAME);
        assert!(poly.transform(nan.as_ref()).is_err());
    }

    #[test]
    fn single_feature_interaction_only_and_large_strided_input() {
        let one = mat(&[&[2.0], &[-3.0]]);
        let out = fit(one.as_ref(), 2, true, false)
            .unwrap()
            .transform(one.as_ref())
            .unwrap();
        assert_close(&flat(&out), &[2.0, -3.0]);

        let x = Mat::from_fn(20_000, 4, |i, j| (i as f64 - 7.0) * 0.25 + j as f64);
        let xt = x.transpose().to_owned();
        let poly = fit(x.as_ref(), 2, false, true).unwrap();
        let out = poly.transform(xt.transpose()).unwrap();
        assert_eq!(out.ncols(), 1 + 4 + 10);
        for i in (0..x.nrows()).step_by(331) {
            let mut c = 5;
            for a in 0..4 {
                assert_eq!(out[(i, 1 + a)], x[(i, a)]);
                for b in a..4 {
                    assert_eq!(out[(i, c)], x[(i, a)] * x[(i, b)]);
                    c += 1;
                }
            }
            assert_eq!(out[(i, 0)], 1.0);
        }
    }
}
