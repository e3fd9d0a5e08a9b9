//! academy_ml's pipeline runtime. The core modules are plain Rust, tested
//! with `cargo test`; the Python bindings (feature `python`) live in `py/`.

pub mod cache;
pub mod error;
pub mod exec;
pub mod metrics;
pub mod ops;
pub mod plan;
pub mod value;

#[cfg(feature = "python")]
mod py;

#[cfg(feature = "python")]
#[pyo3::pymodule]
fn _runtime(module: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
    py::register(module)
}
