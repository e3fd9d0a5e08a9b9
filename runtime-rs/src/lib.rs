//! academy_ml's pipeline runtime. The core modules are plain Rust; the Python
//! bindings (feature `python`) live in `py/` and are only registered here.

pub mod error;
pub mod metrics;
pub mod ops;
pub mod value;
