//! Maps [`RuntimeError`] onto the exception classes of `academy_ml.exceptions`.

use pyo3::exceptions::PyKeyboardInterrupt;
use pyo3::PyErr;

use crate::error::RuntimeError;

pyo3::import_exception!(academy_ml.exceptions, PlanError);
pyo3::import_exception!(academy_ml.exceptions, ParameterError);
pyo3::import_exception!(academy_ml.exceptions, DataError);
pyo3::import_exception!(academy_ml.exceptions, NumericalError);
pyo3::import_exception!(academy_ml.exceptions, CacheError);
pyo3::import_exception!(academy_ml.exceptions, InternalError);

/// The Python exception for a runtime error.
pub fn to_py(error: RuntimeError) -> PyErr {
    let message = error.to_string();
    match error {
        RuntimeError::Plan(_) => PlanError::new_err(message),
        RuntimeError::Parameter(_) => ParameterError::new_err(message),
        RuntimeError::Data(_) => DataError::new_err(message),
        RuntimeError::Numerical(_) => NumericalError::new_err(message),
        RuntimeError::Cache(_) => CacheError::new_err(message),
        RuntimeError::Interrupted => PyKeyboardInterrupt::new_err(message),
        RuntimeError::Internal(_) => InternalError::new_err(message),
    }
}

/// The name Python uses to pick the exception class for a per-node failure.
pub fn kind_name(error: &RuntimeError) -> &'static str {
    match error {
        RuntimeError::Plan(_) => "plan",
        RuntimeError::Parameter(_) => "parameter",
        RuntimeError::Data(_) => "data",
        RuntimeError::Numerical(_) => "numerical",
        RuntimeError::Cache(_) => "cache",
        RuntimeError::Interrupted => "interrupted",
        RuntimeError::Internal(_) => "internal",
    }
}
