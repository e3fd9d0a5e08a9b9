//! Serde for matrices: shape plus the column-major values as one byte string
//! of little-endian `f64`s, so msgpack stores them without per-element tags.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::matrix::{Matrix, MAX_COLUMNS};

#[derive(Serialize, Deserialize)]
struct Raw {
    rows: usize,
    cols: usize,
    #[serde(with = "serde_bytes")]
    data: Vec<u8>,
}

/// Little-endian bytes of `m`, column by column.
pub(crate) fn to_bytes(m: &Matrix) -> Vec<u8> {
    let mut data = Vec::with_capacity(m.nrows() * m.ncols() * 8);
    for j in 0..m.ncols() {
        let col = m
            .col(j)
            .try_as_col_major()
            .expect("owned matrices have unit row stride");
        data.extend(col.as_slice().iter().flat_map(|v| v.to_le_bytes()));
    }
    data
}

/// The matrix stored by [`to_bytes`]; None when the length does not match.
pub(crate) fn from_bytes(data: &[u8], rows: usize, cols: usize) -> Option<Matrix> {
    // No step builds wider matrices; an empty one claiming more columns
    // would cost a loop over them.
    if cols > MAX_COLUMNS {
        return None;
    }
    let cells = rows.checked_mul(cols)?;
    if cells.checked_mul(8)? != data.len() {
        return None;
    }
    let values: Vec<f64> = data
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().expect("8-byte chunk")))
        .collect();
    Some(faer::MatRef::from_column_major_slice(&values, rows, cols).to_owned())
}

pub(crate) fn serialize<S: Serializer>(m: &Matrix, s: S) -> Result<S::Ok, S::Error> {
    Raw {
        rows: m.nrows(),
        cols: m.ncols(),
        data: to_bytes(m),
    }
    .serialize(s)
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Matrix, D::Error> {
    let raw = Raw::deserialize(d)?;
    from_bytes(&raw.data, raw.rows, raw.cols)
        .ok_or_else(|| D::Error::custom("matrix data does not match its shape"))
}

pub(crate) mod optional {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::data::matrix::Matrix;

    pub(crate) fn serialize<S: Serializer>(m: &Option<Matrix>, s: S) -> Result<S::Ok, S::Error> {
        match m {
            Some(m) => s.serialize_some(&Wrap(m)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Matrix>, D::Error> {
        Ok(Option::<Owned>::deserialize(d)?.map(|o| o.0))
    }

    struct Wrap<'a>(&'a Matrix);

    impl serde::Serialize for Wrap<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            super::serialize(self.0, s)
        }
    }

    struct Owned(Matrix);

    impl<'de> Deserialize<'de> for Owned {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            super::deserialize(d).map(Owned)
        }
    }
}
