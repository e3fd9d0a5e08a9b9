//! Numeric building blocks shared by the steps (`ops`) and the scorers
//! (`metrics`): scikit-learn's input checks and their messages, column-wise
//! work with NumPy's pairwise summation, and dense linear algebra. Below
//! both, so neither reaches into the other.

pub(crate) mod check;
pub(crate) mod columns;
pub(crate) mod linalg;
pub mod tree;
