//! academy_ml's pipeline runtime. The core modules are plain Rust, tested
//! with `cargo test`; the Python bindings (feature `python`) live in `py/`.

pub mod cache;
pub mod data;
pub mod error;
pub mod exec;
mod kernels;
pub mod metrics;
pub mod ops;
pub mod plan;

#[cfg(feature = "python")]
mod py;

// Plans allocate and free many large matrices in a row. jemalloc reuses the
// freed pages (the system allocator unmaps them, and each new matrix pays its
// page faults again) and backs them with transparent huge pages, which the
// kernel here only grants on request: on tall matrices, Gram products run
// 1.7x and row gathers 2.5x faster.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's compiled-in options (read once, at its first allocation).
#[cfg(feature = "jemalloc")]
#[export_name = "_rjem_malloc_conf"]
pub static MALLOC_CONF: &[u8] = b"thp:always,metadata_thp:auto\0";

#[cfg(feature = "python")]
#[pyo3::pymodule]
fn _runtime(module: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
    py::register(module)
}
