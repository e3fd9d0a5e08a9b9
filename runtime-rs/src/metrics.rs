use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::value::Prediction;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    R2,
    NegMeanSquaredError,
    NegRootMeanSquaredError,
    NegMeanAbsoluteError,
    Accuracy,
    BalancedAccuracy,
    F1,
    RocAuc,
    NegLogLoss,
}

pub fn score(_metric: Metric, _y_true: &[f64], _pred: &Prediction, _pos_label: f64) -> Result<f64> {
    unimplemented!()
}
