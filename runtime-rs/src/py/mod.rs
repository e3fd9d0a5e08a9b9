//! Python bindings: `academy_ml._runtime`.

mod cache;
mod errors;
mod gil;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

use faer::MatRef;
use numpy::ndarray::{Array1, Array2, ShapeBuilder};
use numpy::{IntoPyArray, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};

use crate::data::{Matrix, Value};
use crate::error::RuntimeError;
use crate::exec::{self, Dataset, Failure, Outcome};
use crate::plan::{Plan, PLAN_VERSION};

/// Registers the module's contents.
pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("PLAN_VERSION", PLAN_VERSION)?;
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    module.add("RUNTIME_ID", crate::cache::RUNTIME_ID)?;
    module.add_class::<cache::PyNodeCache>()?;
    module.add_function(wrap_pyfunction!(check_plan, module)?)?;
    module.add_function(wrap_pyfunction!(run_plan, module)?)?;
    module.add_function(wrap_pyfunction!(max_threads, module)?)?;
    module.add_function(wrap_pyfunction!(gil::interrupt_runs, module)?)?;
    module.add_function(wrap_pyfunction!(cache::cache_summary, module)?)?;
    Ok(())
}

/// Decodes and checks plan bytes; returns the number of nodes.
#[pyfunction]
fn check_plan(plan: &Bound<'_, PyBytes>) -> PyResult<usize> {
    gil::guard("check_plan", || {
        let plan = Plan::decode(plan.as_bytes()).map_err(errors::to_py)?;
        Ok(plan.nodes.len())
    })
}

/// The most worker threads `run_plan` accepts: the cores this process may use.
#[pyfunction]
fn max_threads() -> usize {
    exec::max_threads()
}

/// Runs a plan; returns `(outputs, counters)`. Each output is a float, an
/// ndarray, or a `(node, kind, message)` tuple for a failed node; counters
/// hold `executed`, `cache_hits`, `cache_stores` and `profile` (a list of
/// `(step, nodes, seconds)`, slowest first).
#[pyfunction]
#[pyo3(signature = (plan, x, targets, indices, threads=None, cache=None))]
fn run_plan<'py>(
    py: Python<'py>,
    plan: &Bound<'py, PyBytes>,
    x: PyReadonlyArray2<'py, f64>,
    targets: HashMap<String, PyReadonlyArray1<'py, f64>>,
    indices: HashMap<String, PyReadonlyArray1<'py, i64>>,
    threads: Option<usize>,
    cache: Option<&Bound<'py, cache::PyNodeCache>>,
) -> PyResult<(Vec<Bound<'py, PyAny>>, Bound<'py, PyDict>)> {
    gil::guard("run_plan", || {
        run_plan_body(py, plan, x, targets, indices, threads, cache)
    })
}

fn run_plan_body<'py>(
    py: Python<'py>,
    plan: &Bound<'py, PyBytes>,
    x: PyReadonlyArray2<'py, f64>,
    targets: HashMap<String, PyReadonlyArray1<'py, f64>>,
    indices: HashMap<String, PyReadonlyArray1<'py, i64>>,
    threads: Option<usize>,
    cache: Option<&Bound<'py, cache::PyNodeCache>>,
) -> PyResult<(Vec<Bound<'py, PyAny>>, Bound<'py, PyDict>)> {
    let plan = Plan::decode(plan.as_bytes()).map_err(errors::to_py)?;
    let x = matrix_view(&x)?;
    let targets = contiguous(&targets, "target")?;
    let indices = contiguous(&indices, "row index")?;
    let data = Dataset {
        x,
        targets,
        indices,
    };
    let pool = exec::pool(threads).map_err(errors::to_py)?;
    let cancel = AtomicBool::new(false);
    let cache = cache.map(|c| &c.get().inner);
    let report = gil::detach_interruptible(py, &pool, &cancel, || {
        exec::run_cached(&plan, &data, &pool, &cancel, cache)
    })?;
    let outputs = report
        .outputs
        .into_iter()
        .map(|outcome| outcome_to_py(py, outcome))
        .collect::<PyResult<Vec<_>>>()?;
    let counters = PyDict::new(py);
    counters.set_item("executed", report.executed)?;
    counters.set_item("cache_hits", report.cache_hits)?;
    counters.set_item("cache_stores", report.cache_stores)?;
    let profile: Vec<(String, usize, f64)> = report
        .profile
        .into_iter()
        .map(|(step, nodes, took)| (step, nodes, took.as_secs_f64()))
        .collect();
    counters.set_item("profile", profile)?;
    Ok((outputs, counters))
}

/// Borrows named 1-D arrays as slices.
fn contiguous<'a, T: numpy::Element>(
    arrays: &'a HashMap<String, PyReadonlyArray1<'_, T>>,
    what: &str,
) -> PyResult<HashMap<String, &'a [T]>> {
    arrays
        .iter()
        .map(|(name, array)| {
            array.as_slice().map(|s| (name.clone(), s)).map_err(|_| {
                errors::to_py(RuntimeError::data(format!(
                    "{what} {name:?} must be a contiguous 1-D array"
                )))
            })
        })
        .collect()
}

/// Views a numpy matrix without copying (C or Fortran order).
fn matrix_view<'a>(x: &'a PyReadonlyArray2<'_, f64>) -> PyResult<MatRef<'a, f64>> {
    let [rows, cols] = [x.shape()[0], x.shape()[1]];
    let slice = x.as_slice().map_err(|_| {
        errors::to_py(RuntimeError::data(
            "X must be a contiguous array (C or Fortran order)",
        ))
    })?;
    Ok(if x.is_fortran_contiguous() {
        MatRef::from_column_major_slice(slice, rows, cols)
    } else {
        MatRef::from_row_major_slice(slice, rows, cols)
    })
}

fn outcome_to_py(py: Python<'_>, outcome: Outcome) -> PyResult<Bound<'_, PyAny>> {
    match outcome {
        Ok(Value::Scalar(v)) => Ok(v.into_pyobject(py)?.into_any()),
        Ok(Value::Vector(v)) => Ok(Array1::from(v.to_vec()).into_pyarray(py).into_any()),
        Ok(Value::Prediction(p)) => Ok(Array1::from(p.values.clone()).into_pyarray(py).into_any()),
        Ok(Value::Matrix(m)) => Ok(matrix_to_py(py, &m).into_any()),
        Ok(Value::Fitted(_) | Value::Gram(_) | Value::Neighbors(_)) => {
            Err(errors::to_py(RuntimeError::Plan(
                "plan outputs must be matrices, vectors, predictions or scores".into(),
            )))
        }
        Err(Failure { node, error }) => {
            let kind = errors::kind_name(&error);
            let message = match error {
                RuntimeError::Data(m)
                | RuntimeError::Parameter(m)
                | RuntimeError::Numerical(m)
                | RuntimeError::Plan(m)
                | RuntimeError::Cache(m)
                | RuntimeError::Internal(m) => m,
                RuntimeError::Interrupted => "interrupted".into(),
            };
            Ok(PyTuple::new(
                py,
                [
                    node.into_pyobject(py)?.into_any(),
                    kind.into_pyobject(py)?.into_any(),
                    message.into_pyobject(py)?.into_any(),
                ],
            )?
            .into_any())
        }
    }
}

/// Copies a faer matrix into a Fortran-ordered numpy array.
fn matrix_to_py<'py>(py: Python<'py>, m: &Matrix) -> Bound<'py, numpy::PyArray2<f64>> {
    let mut data = Vec::with_capacity(m.nrows() * m.ncols());
    for j in 0..m.ncols() {
        data.extend(m.col(j).iter().copied());
    }
    Array2::from_shape_vec((m.nrows(), m.ncols()).f(), data)
        .expect("shape matches the data")
        .into_pyarray(py)
}
