//! The on-disk form of one cache entry: a fixed header (magic, format
//! version, dtype, shape, payload length, the entry's key and a keyed blake3
//! checksum of the header and payload) followed by the payload. Matrices and
//! vectors are raw little-endian `f64`s; fitted steps, Gram statistics,
//! predictions and neighbour lists are msgpack. The checksum is keyed with the
//! directory's secret, so an entry forged by someone who can write the
//! directory but not read the secret is refused; every field is verified on
//! the way back in, and decoding is bounded (shape, msgpack depth, no
//! allocation beyond the bytes at hand), so a truncated, corrupted, misplaced
//! or forged file is reported, never returned.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::key::{Key, FORMAT};
use crate::data::{matrix_serde, Fitted, Gram, Neighbors, Prediction, Value};

/// Bytes before the payload.
pub const HEADER_LEN: usize = 96;
const MAGIC: &[u8; 4] = b"AMLC";
/// Where the checksum starts: it covers every byte before it and the payload.
const MAC_AT: usize = 64;
/// Largest number of rows or columns a stored shape may claim.
const MAX_DIM: u64 = u32::MAX as u64;
/// Deepest msgpack nesting accepted (stored values nest a few levels).
const MAX_DEPTH: usize = 32;

/// The per-directory key of the entries' checksums.
#[derive(Clone)]
pub struct Secret([u8; 32]);

impl Secret {
    /// A secret made of these bytes.
    pub const fn new(bytes: [u8; 32]) -> Secret {
        Secret(bytes)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

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
pub fn encode(secret: &Secret, key: &Key, entry: &Entry) -> Vec<u8> {
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
    out.extend_from_slice(&key.0);
    debug_assert_eq!(out.len(), MAC_AT);
    let mac = checksum(secret, &out, &payload);
    out.extend_from_slice(mac.as_bytes());
    debug_assert_eq!(out.len(), HEADER_LEN);
    out.extend_from_slice(&payload);
    out
}

/// Keyed blake3 of the header fields before the checksum and the payload;
/// large payloads are hashed on all cores.
fn checksum(secret: &Secret, fields: &[u8], payload: &[u8]) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new_keyed(&secret.0);
    hasher.update(fields);
    if payload.len() < 1 << 20 {
        hasher.update(payload);
    } else {
        hasher.update_rayon(payload);
    }
    hasher.finalize()
}

/// Recomputes the checksum of encoded bytes in place (bytes shorter than a
/// header are left alone). Only a holder of the secret can do this; tests use
/// it to reach the payload decoder with damaged fields.
pub fn reseal(secret: &Secret, bytes: &mut [u8]) {
    if bytes.len() >= HEADER_LEN {
        let mac = checksum(secret, &bytes[..MAC_AT], &bytes[HEADER_LEN..]);
        bytes[MAC_AT..HEADER_LEN].copy_from_slice(mac.as_bytes());
    }
}

/// Decodes bytes stored under `key`, verifying every header field and the
/// keyed checksum before looking at the payload.
pub fn decode(secret: &Secret, key: &Key, bytes: &[u8]) -> Result<Entry, Corrupt> {
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
    if header[32..MAC_AT] != key.0 {
        return bad("stored under another key");
    }
    if u64_at(24) != payload.len() as u64 {
        return bad("truncated or padded payload");
    }
    let stored = blake3::Hash::from_bytes(header[MAC_AT..].try_into().expect("32 bytes"));
    // blake3::Hash compares in constant time.
    if checksum(secret, &header[..MAC_AT], payload) != stored {
        return bad("checksum mismatch");
    }
    let Some(dtype) = Dtype::from_byte(header[6]) else {
        return bad("unknown dtype");
    };
    if header[7] != 0 {
        return bad("reserved header byte is set");
    }
    let (rows, cols) = (u64_at(8), u64_at(16));
    if rows > MAX_DIM || cols > MAX_DIM {
        return bad("shape too large");
    }
    decode_payload(dtype, rows as usize, cols as usize, payload)
}

/// The value of a verified payload of `dtype` and shape `rows x cols`.
fn decode_payload(
    dtype: Dtype,
    rows: usize,
    cols: usize,
    payload: &[u8],
) -> Result<Entry, Corrupt> {
    let bad = |why: &str| Err(Corrupt(why.to_string()));
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
        Dtype::Msgpack if (rows, cols) == (0, 0) => {
            // Reading through a cursor: byte strings are copied as they are
            // read, never reserved from their length field.
            let mut cursor = std::io::Cursor::new(payload);
            let mut decoder = rmp_serde::Deserializer::new(&mut cursor);
            decoder.set_max_depth(MAX_DEPTH);
            let structured = Structured::deserialize(&mut decoder)
                .map_err(|e| Corrupt(format!("cannot decode payload: {e}")))?;
            if cursor.position() != payload.len() as u64 {
                return bad("bytes after the payload's value");
            }
            Entry::Value(match structured {
                Structured::Fitted(f) => Value::Fitted(Arc::new(f)),
                Structured::Gram(g) => Value::Gram(Arc::new(g)),
                Structured::Prediction(p) => Value::Prediction(Arc::new(p)),
                Structured::Neighbors(n) => Value::Neighbors(Arc::new(n)),
            })
        }
        Dtype::Vector | Dtype::Scalar | Dtype::Blob | Dtype::Msgpack => {
            return bad("shape does not match dtype")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Matrix;

    fn key(byte: u8) -> Key {
        Key([byte; 32])
    }

    fn secret() -> Secret {
        Secret::new([7; 32])
    }

    fn matrix() -> Entry {
        Entry::Value(Value::Matrix(Arc::new(Matrix::from_fn(5, 3, |i, j| {
            i as f64 - 0.5 * j as f64
        }))))
    }

    #[test]
    fn matrices_round_trip_with_exact_length() {
        let bytes = encode(&secret(), &key(1), &matrix());
        assert_eq!(Some(bytes.len()), encoded_len(&matrix()));
        let Entry::Value(Value::Matrix(m)) = decode(&secret(), &key(1), &bytes).unwrap() else {
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
            decode(&secret(), &key(2), &encode(&secret(), &key(2), &entry)).unwrap()
        else {
            panic!("not a prediction");
        };
        assert_eq!(*back, pred);
    }

    #[test]
    fn damage_is_detected() {
        let bytes = encode(&secret(), &key(3), &matrix());
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(
            decode(&secret(), &key(3), &flipped).unwrap_err().0,
            "checksum mismatch"
        );
        let truncated = &bytes[..bytes.len() - 8];
        assert!(decode(&secret(), &key(3), truncated).is_err());
        assert!(decode(&secret(), &key(3), &bytes[..10]).is_err());
        assert_eq!(
            decode(&secret(), &key(4), &bytes).unwrap_err().0,
            "stored under another key"
        );
        let mut other_format = bytes.clone();
        other_format[4] = 9;
        assert!(decode(&secret(), &key(3), &other_format)
            .unwrap_err()
            .0
            .contains("format"));
        let mut lying_shape = bytes.clone();
        lying_shape[8] = 6;
        assert!(decode(&secret(), &key(3), &lying_shape).is_err());
        reseal(&secret(), &mut lying_shape);
        assert_eq!(
            decode(&secret(), &key(3), &lying_shape).unwrap_err().0,
            "payload does not match its shape"
        );
    }

    #[test]
    fn another_secret_or_an_unkeyed_checksum_is_refused() {
        let bytes = encode(&secret(), &key(5), &matrix());
        assert_eq!(
            decode(&Secret::new([8; 32]), &key(5), &bytes)
                .unwrap_err()
                .0,
            "checksum mismatch"
        );
        // A forger who can write entries but not read the secret, moving a
        // valid entry to another key, or hashing without a key.
        let mut moved = bytes.clone();
        moved[32..64].copy_from_slice(&key(6).0);
        assert_eq!(
            decode(&secret(), &key(6), &moved).unwrap_err().0,
            "checksum mismatch"
        );
        let mut unkeyed = bytes;
        let plain = blake3::Hasher::new()
            .update(&unkeyed[..MAC_AT])
            .update(&unkeyed[HEADER_LEN..])
            .finalize();
        unkeyed[MAC_AT..HEADER_LEN].copy_from_slice(plain.as_bytes());
        assert_eq!(
            decode(&secret(), &key(5), &unkeyed).unwrap_err().0,
            "checksum mismatch"
        );
    }

    #[test]
    fn deep_or_trailing_msgpack_is_refused_without_panicking() {
        // {"Gram": {"z": [[[...]]]}}: an unknown field is skipped, nesting
        // and all, which is where unbounded recursion would overflow.
        let mut deep = b"\x81\xa4Gram\x81\xa1z".to_vec();
        deep.extend(std::iter::repeat_n(0x91, 100_000));
        deep.push(0xc0);
        let mut bytes = encode(&secret(), &key(9), &Entry::Blob(Arc::new(deep.clone())));
        bytes[6] = Dtype::Msgpack as u8;
        bytes[8..24].fill(0);
        reseal(&secret(), &mut bytes);
        let err = decode(&secret(), &key(9), &bytes).unwrap_err().0;
        assert!(err.contains("depth"), "{err}");
        let pred = Prediction {
            values: vec![1.0],
            classes: vec![],
            proba: None,
            decision: None,
        };
        let entry = Entry::Value(Value::Prediction(Arc::new(pred)));
        let mut bytes = encode(&secret(), &key(9), &entry);
        bytes.push(0xc0);
        let len = (bytes.len() - HEADER_LEN) as u64;
        bytes[24..32].copy_from_slice(&len.to_le_bytes());
        reseal(&secret(), &mut bytes);
        assert_eq!(
            decode(&secret(), &key(9), &bytes).unwrap_err().0,
            "bytes after the payload's value"
        );
    }
}
