//! The on-disk form of one cache entry: a fixed header (magic, format
//! version, dtype, shape, payload length, the entry's key and a blake3
//! checksum of the payload) followed by the payload. Matrices and vectors are
//! raw little-endian `f64`s; fitted steps, Gram statistics, predictions and
//! neighbour lists are msgpack. Every field is verified on the way back in,
//! so a truncated, corrupted or misplaced file is reported, never returned.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::Key;
use crate::ops::knn::Neighbors;
use crate::ops::Fitted;
use crate::value::{matrix_serde, Gram, Prediction, Value};

/// Version of the entry layout; entries of another version are rejected.
pub const FORMAT: u16 = 1;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 96;
const MAGIC: &[u8; 4] = b"AMLC";

/// What a payload holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Dtype {
    /// `rows x cols` column-major `f64`.
    Matrix = 1,
    /// `rows` `f64`.
    Vector = 2,
    /// One `f64`.
    Scalar = 3,
    /// A structured value in msgpack.
    Msgpack = 4,
    /// Opaque bytes stored for the Python side.
    Blob = 5,
}

impl Dtype {
    fn from_byte(byte: u8) -> Option<Dtype> {
        [
            Dtype::Matrix,
            Dtype::Vector,
            Dtype::Scalar,
            Dtype::Msgpack,
            Dtype::Blob,
        ]
        .into_iter()
        .find(|d| *d as u8 == byte)
    }
}

/// What an entry holds: a plan value, or bytes the Python side stored.
#[derive(Debug, Clone)]
pub enum Entry {
    Value(Value),
    Blob(Arc<Vec<u8>>),
}

/// Structured values, as msgpack stores them.
#[derive(Serialize, Deserialize)]
enum Structured {
    Fitted(Fitted),
    Gram(Gram),
    Prediction(Prediction),
    Neighbors(Neighbors),
}

/// Why stored bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corrupt(pub String);

/// Size of the encoded entry, computed without encoding when the payload
/// size is known from the shape.
pub fn encoded_len(entry: &Entry) -> Option<usize> {
    let payload = match entry {
        Entry::Value(Value::Matrix(m)) => m.nrows() * m.ncols() * 8,
        Entry::Value(Value::Vector(v)) => v.len() * 8,
        Entry::Value(Value::Scalar(_)) => 8,
        Entry::Blob(b) => b.len(),
        Entry::Value(_) => return None,
    };
    Some(HEADER_LEN + payload)
}

/// Encodes `entry` stored under `key`.
pub fn encode(key: &Key, entry: &Entry) -> Vec<u8> {
    let (dtype, rows, cols, payload) = match entry {
        Entry::Value(Value::Matrix(m)) => (
            Dtype::Matrix,
            m.nrows(),
            m.ncols(),
            matrix_serde::to_bytes(m),
        ),
        Entry::Value(Value::Vector(v)) => (
            Dtype::Vector,
            v.len(),
            1,
            v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        ),
        Entry::Value(Value::Scalar(x)) => (Dtype::Scalar, 1, 1, x.to_le_bytes().to_vec()),
        Entry::Value(value) => {
            let structured = match value {
                Value::Fitted(f) => Structured::Fitted((**f).clone()),
                Value::Gram(g) => Structured::Gram((**g).clone()),
                Value::Prediction(p) => Structured::Prediction((**p).clone()),
                Value::Neighbors(n) => Structured::Neighbors((**n).clone()),
                Value::Matrix(_) | Value::Vector(_) | Value::Scalar(_) => unreachable!(),
            };
            let bytes = rmp_serde::to_vec(&structured).expect("values always serialise");
            (Dtype::Msgpack, 0, 0, bytes)
        }
        Entry::Blob(b) => (Dtype::Blob, b.len(), 1, b.to_vec()),
    };
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.push(dtype as u8);
    out.push(0);
    out.extend_from_slice(&(rows as u64).to_le_bytes());
    out.extend_from_slice(&(cols as u64).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(checksum(&payload).as_bytes());
    out.extend_from_slice(&key.0);
    debug_assert_eq!(out.len(), HEADER_LEN);
    out.extend_from_slice(&payload);
    out
}

/// blake3 of a payload; large ones are hashed on all cores.
fn checksum(payload: &[u8]) -> blake3::Hash {
    if payload.len() < 1 << 20 {
        return blake3::hash(payload);
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update_rayon(payload);
    hasher.finalize()
}

/// Decodes bytes stored under `key`, verifying every header field.
pub fn decode(key: &Key, bytes: &[u8]) -> Result<Entry, Corrupt> {
    let bad = |why: &str| Err(Corrupt(why.to_string()));
    if bytes.len() < HEADER_LEN {
        return bad("shorter than its header");
    }
    let (header, payload) = bytes.split_at(HEADER_LEN);
    let u64_at = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().expect("8 bytes"));
    if &header[..4] != MAGIC {
        return bad("not a cache entry");
    }
    let format = u16::from_le_bytes([header[4], header[5]]);
    if format != FORMAT {
        return Err(Corrupt(format!("entry format {format}, expected {FORMAT}")));
    }
    let Some(dtype) = Dtype::from_byte(header[6]) else {
        return bad("unknown dtype");
    };
    let (rows, cols, len) = (u64_at(8), u64_at(16), u64_at(24));
    if header[64..96] != key.0 {
        return bad("stored under another key");
    }
    if len != payload.len() as u64 {
        return bad("truncated or padded payload");
    }
    if checksum(payload).as_bytes()[..] != header[32..64] {
        return bad("checksum mismatch");
    }
    let (rows, cols) = (usize::try_from(rows), usize::try_from(cols));
    let (Ok(rows), Ok(cols)) = (rows, cols) else {
        return bad("shape does not fit in memory");
    };
    let floats = |n: usize| -> Result<Vec<f64>, Corrupt> {
        if n.checked_mul(8) != Some(payload.len()) {
            return Err(Corrupt("payload does not match its shape".into()));
        }
        Ok(payload
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect())
    };
    Ok(match dtype {
        Dtype::Matrix => Entry::Value(Value::Matrix(Arc::new(
            matrix_serde::from_bytes(payload, rows, cols)
                .ok_or_else(|| Corrupt("payload does not match its shape".into()))?,
        ))),
        Dtype::Vector if cols == 1 => Entry::Value(Value::Vector(Arc::new(floats(rows)?))),
        Dtype::Scalar if (rows, cols) == (1, 1) => Entry::Value(Value::Scalar(floats(1)?[0])),
        Dtype::Blob if cols == 1 && rows == payload.len() => {
            Entry::Blob(Arc::new(payload.to_vec()))
        }
        Dtype::Msgpack => {
            let structured: Structured = rmp_serde::from_slice(payload)
                .map_err(|e| Corrupt(format!("cannot decode payload: {e}")))?;
            Entry::Value(match structured {
                Structured::Fitted(f) => Value::Fitted(Arc::new(f)),
                Structured::Gram(g) => Value::Gram(Arc::new(g)),
                Structured::Prediction(p) => Value::Prediction(Arc::new(p)),
                Structured::Neighbors(n) => Value::Neighbors(Arc::new(n)),
            })
        }
        Dtype::Vector | Dtype::Scalar | Dtype::Blob => return bad("shape does not match dtype"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Matrix;

    fn key(byte: u8) -> Key {
        Key([byte; 32])
    }

    fn matrix() -> Entry {
        Entry::Value(Value::Matrix(Arc::new(Matrix::from_fn(5, 3, |i, j| {
            i as f64 - 0.5 * j as f64
        }))))
    }

    #[test]
    fn matrices_round_trip_with_exact_length() {
        let bytes = encode(&key(1), &matrix());
        assert_eq!(Some(bytes.len()), encoded_len(&matrix()));
        let Entry::Value(Value::Matrix(m)) = decode(&key(1), &bytes).unwrap() else {
            panic!("not a matrix");
        };
        let Entry::Value(Value::Matrix(expected)) = matrix() else {
            unreachable!()
        };
        assert_eq!(*m, *expected);
    }

    #[test]
    fn structured_values_round_trip() {
        let pred = Prediction {
            values: vec![1.0, 0.0],
            classes: vec![0.0, 1.0],
            proba: Some(Matrix::from_fn(2, 2, |i, j| (i + j) as f64 / 3.0)),
            decision: None,
        };
        let entry = Entry::Value(Value::Prediction(Arc::new(pred.clone())));
        let Entry::Value(Value::Prediction(back)) =
            decode(&key(2), &encode(&key(2), &entry)).unwrap()
        else {
            panic!("not a prediction");
        };
        assert_eq!(*back, pred);
    }

    #[test]
    fn damage_is_detected() {
        let bytes = encode(&key(3), &matrix());
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(
            decode(&key(3), &flipped).unwrap_err().0,
            "checksum mismatch"
        );
        let truncated = &bytes[..bytes.len() - 8];
        assert!(decode(&key(3), truncated).is_err());
        assert!(decode(&key(3), &bytes[..10]).is_err());
        assert_eq!(
            decode(&key(4), &bytes).unwrap_err().0,
            "stored under another key"
        );
        let mut other_format = bytes.clone();
        other_format[4] = 9;
        assert!(decode(&key(3), &other_format)
            .unwrap_err()
            .0
            .contains("format"));
        let mut lying_shape = bytes;
        lying_shape[8] = 6;
        assert!(decode(&key(3), &lying_shape).is_err());
    }
}
