//! The data that crosses between ops, metrics, the scheduler and the cache:
//! matrices and their serde, values along plan edges, predictions, Gram
//! statistics, fitted-step state and neighbour lists. A leaf: it uses
//! nothing of the crate but `error`, so every layer above can share it
//! without a cycle (the algorithms stay in `ops` and `metrics`).

pub mod fitted;
pub mod matrix;
pub(crate) mod matrix_serde;
pub mod neighbors;
pub mod tree;
pub mod value;

pub use fitted::{Fitted, StepName};
pub use matrix::{check_width, Matrix, MAX_COLUMNS};
pub use neighbors::{Neighbors, Weights};
pub use value::{Gram, Kind, Prediction, Value};
