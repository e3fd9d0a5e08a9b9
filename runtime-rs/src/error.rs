//! The crate's single error type. The bindings map each variant to a
//! specific Python exception class (see `py/errors.rs`).

use thiserror::Error;

/// Every failure the runtime can report.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum RuntimeError {
    /// The plan bytes are malformed, truncated, of another version or ill-typed.
    #[error("invalid plan: {0}")]
    Plan(String),
    /// A step was given a parameter value it cannot work with.
    #[error("invalid parameter: {0}")]
    Parameter(String),
    /// The data does not fit the step (NaN reaching a model, too few rows, ...).
    #[error("{0}")]
    Data(String),
    /// A numerical routine failed (singular system, no convergence, ...).
    #[error("numerical failure: {0}")]
    Numerical(String),
    /// The cache directory cannot be used (permissions, not a directory, ...).
    #[error("cache: {0}")]
    Cache(String),
    /// The caller asked the run to stop (Ctrl-C).
    #[error("interrupted")]
    Interrupted,
    /// The runtime broke one of its own invariants (a bug, such as a Rust
    /// panic): the work it touched failed, the process carries on.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Shorthand used throughout the crate.
pub type Result<T> = std::result::Result<T, RuntimeError>;

impl RuntimeError {
    /// Builds a [`RuntimeError::Data`] from anything printable.
    pub fn data(message: impl Into<String>) -> Self {
        Self::Data(message.into())
    }

    /// Builds a [`RuntimeError::Parameter`] from anything printable.
    pub fn parameter(message: impl Into<String>) -> Self {
        Self::Parameter(message.into())
    }

    /// Builds a [`RuntimeError::Numerical`] from anything printable.
    pub fn numerical(message: impl Into<String>) -> Self {
        Self::Numerical(message.into())
    }

    /// Builds a [`RuntimeError::Internal`] from anything printable.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal(message.into())
    }

    /// The [`RuntimeError::Internal`] for a caught panic, saying where it happened.
    pub fn from_panic(context: &str, payload: &(dyn std::any::Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Self::Internal(format!("panic in {context}: {message}"))
    }
}

/// Runs `work`, turning a panic in it into [`RuntimeError::Internal`] naming
/// `context`. What `work` touched may be half-updated: callers only use this
/// where shared state is behind poison-tolerant locks or discarded.
pub fn catch_panic<T>(context: &str, work: impl FnOnce() -> T) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
        .map_err(|payload| RuntimeError::from_panic(context, &*payload))
}
