//! Op dispatch: what one node computes from its inputs, handed to the
//! kernel of its op (`ops`, `metrics`, the row and column gathers), apart
//! from scheduling.
//!
//! [`Plan::check`](crate::plan::Plan::check) types every input, so the
//! mismatches below cannot come from a checked plan; they are still typed
//! errors, not panics, so a runtime bug fails the pipelines it touches
//! instead of the process.

use std::collections::HashMap;
use std::sync::Arc;

use faer::MatRef;

use super::gather::{hstack, select_cols, take_rows};
use crate::data::Fitted;
use crate::data::Value;
use crate::error::{Result, RuntimeError};
use crate::metrics;
use crate::ops::knn;
use crate::ops::linear;
use crate::plan::Op;

/// An input as a node sees it: the borrowed dataset or a computed value.
pub(super) enum Arg<'a> {
    X(MatRef<'a, f64>),
    Y(&'a [f64]),
    Value(Value),
}

impl Arg<'_> {
    fn matrix(&self) -> Result<MatRef<'_, f64>> {
        match self {
            Arg::X(x) => Ok(*x),
            Arg::Value(Value::Matrix(m)) => Ok(m.as_ref().as_ref()),
            _ => Err(mismatch("a matrix")),
        }
    }

    fn vector(&self) -> Result<&[f64]> {
        match self {
            Arg::Y(y) => Ok(y),
            Arg::Value(Value::Vector(v)) => Ok(v),
            _ => Err(mismatch("a vector")),
        }
    }

    fn value(&self) -> Result<&Value> {
        match self {
            Arg::Value(v) => Ok(v),
            _ => Err(mismatch("a computed value")),
        }
    }

    fn is_matrix(&self) -> bool {
        matches!(self, Arg::X(_) | Arg::Value(Value::Matrix(_)))
    }
}

fn mismatch(expected: &str) -> RuntimeError {
    RuntimeError::internal(format!("a node input is not {expected}"))
}

/// The `i`-th input, or an internal error when the node has fewer.
fn nth<'a, 'b>(args: &'b [Arg<'a>], i: usize) -> Result<&'b Arg<'a>> {
    args.get(i)
        .ok_or_else(|| RuntimeError::internal(format!("a node is missing input {i}")))
}

/// Computes `op` on `args`; `indices` holds every row index the plan names.
pub(super) fn apply(
    op: &Op,
    args: &[Arg<'_>],
    indices: &HashMap<String, Vec<usize>>,
) -> Result<Value> {
    Ok(match op {
        Op::SourceX | Op::SourceY { .. } => {
            return Err(RuntimeError::internal("a source node was scheduled"))
        }
        Op::TakeRows { index } => {
            let rows = indices.get(index).ok_or_else(|| {
                RuntimeError::internal(format!("row index {index:?} was not resolved"))
            })?;
            let input = nth(args, 0)?;
            let available = if input.is_matrix() {
                input.matrix()?.nrows()
            } else {
                input.vector()?.len()
            };
            if let Some(&bad) = rows.iter().find(|&&r| r >= available) {
                return Err(RuntimeError::data(format!(
                    "row index {index:?} holds {bad}, but its input has {available} rows"
                )));
            }
            if input.is_matrix() {
                Value::Matrix(take_rows(input.matrix()?, rows).into())
            } else {
                let v = input.vector()?;
                Value::Vector(Arc::new(rows.iter().map(|&r| v[r]).collect()))
            }
        }
        Op::SelectCols { cols } => {
            Value::Matrix(select_cols(nth(args, 0)?.matrix()?, cols)?.into())
        }
        Op::Hstack => {
            let parts = args.iter().map(Arg::matrix).collect::<Result<Vec<_>>>()?;
            Value::Matrix(hstack(&parts)?.into())
        }
        Op::Fit { estimator } => {
            let y = args.get(1).map(Arg::vector).transpose()?;
            Value::Fitted(estimator.fit(nth(args, 0)?.matrix()?, y)?.into())
        }
        Op::Apply => match nth(args, 0)?.value()? {
            Value::Fitted(fitted) => fitted.apply(nth(args, 1)?.matrix()?)?,
            _ => return Err(mismatch("a fitted step")),
        },
        Op::Gram { fit_intercept } => Value::Gram(
            linear::gram(
                nth(args, 0)?.matrix()?,
                nth(args, 1)?.vector()?,
                *fit_intercept,
            )?
            .into(),
        ),
        Op::Solve { alpha } => match nth(args, 0)?.value()? {
            Value::Gram(gram) => Value::Fitted(Fitted::Linear(linear::solve(gram, *alpha)?).into()),
            _ => return Err(mismatch("a Gram matrix")),
        },
        Op::Neighbors { k } => Value::Neighbors(
            knn::neighbors(
                nth(args, 0)?.matrix()?,
                nth(args, 1)?.matrix()?,
                *k as usize,
            )?
            .into(),
        ),
        Op::KnnPredict {
            k,
            weights,
            classifier,
        } => match nth(args, 0)?.value()? {
            Value::Neighbors(found) => Value::Prediction(
                knn::predict_neighbors(
                    found,
                    nth(args, 1)?.vector()?,
                    *k as usize,
                    *weights,
                    *classifier,
                )?
                .into(),
            ),
            _ => return Err(mismatch("a neighbour search")),
        },
        Op::Score { metric, pos_label } => match nth(args, 1)?.value()? {
            Value::Prediction(pred) => Value::Scalar(metrics::score(
                *metric,
                nth(args, 0)?.vector()?,
                pred,
                *pos_label,
            )?),
            _ => return Err(mismatch("a prediction")),
        },
    })
}

/// What a node's time is filed under in the profile.
pub(super) fn step_label(op: &Op, args: &[Arg<'_>]) -> String {
    match (op, args.first()) {
        (Op::Fit { estimator }, _) => format!("fit {}", estimator.name()),
        (Op::Apply, Some(Arg::Value(Value::Fitted(fitted)))) => format!("apply {}", fitted.name()),
        _ => op.name().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ill_typed_inputs_are_internal_errors() {
        let y = [1.0, 2.0];
        let indices = HashMap::new();
        let internal = |op: &Op, args: &[Arg<'_>]| {
            matches!(apply(op, args, &indices), Err(RuntimeError::Internal(_)))
        };
        assert!(internal(&Op::Apply, &[Arg::Y(&y), Arg::Y(&y)]));
        assert!(internal(&Op::Apply, &[]));
        assert!(internal(&Op::Hstack, &[Arg::Y(&y)]));
        assert!(internal(&Op::SourceX, &[]));
        let take = Op::TakeRows { index: "tr".into() };
        assert!(internal(&take, &[Arg::Y(&y)]));
        let scalar = Arg::Value(Value::Scalar(1.0));
        assert!(internal(&Op::Solve { alpha: 1.0 }, &[scalar]));
    }
}
