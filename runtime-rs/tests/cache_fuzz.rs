//! Cache entries are bytes read back from a directory: this test fuzzes
//! `cache::decode` with random bytes, mutated entries of every kind and
//! msgpack token soup in structured payloads.
//!
//! What is checked, for every input:
//! - decoding returns `Ok` or `Err(CorruptEntry)`, never panics (a panic
//!   fails the case; a stack overflow aborts this test binary, which fails
//!   `cargo test`);
//! - bytes changed by anyone without the directory's secret never decode
//!   (the keyed checksum covers header and payload);
//! - no single allocation is larger than a small multiple of the input, so
//!   a length or shape field cannot make the decoder reserve memory.
//!
//! Each property runs 10,000 cases; `PROPTEST_CASES=1000000` (`make soak`)
//! runs more. Resealed inputs (checksum recomputed with the secret) reach
//! the payload decoders behind the checksum.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use _runtime::cache::{decode, encode, reseal, Entry, Key, Secret};
use _runtime::data::{Gram, Matrix, Prediction, Value};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};

struct Counting;

#[global_allocator]
static ALLOCATOR: Counting = Counting;

thread_local! {
    /// Largest single request on this thread since `measure` reset it.
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

impl Counting {
    fn note(size: usize) {
        let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments and
// only updates a const-initialised thread-local cell, which neither
// allocates nor unwinds.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::note(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Matrices may be padded per column by the linear algebra backend (up to
/// eight `f64` per row of one); anything a length field could claim is far
/// beyond this.
fn allowed(input: usize) -> usize {
    16 * input + (1 << 20)
}

/// Decodes `bytes`, failing the case if one allocation exceeded the bound.
fn decode_bounded(secret: &Secret, key: &Key, bytes: &[u8]) -> Result<bool, TestCaseError> {
    LARGEST.with(|l| l.set(0));
    let ok = decode(secret, key, bytes).is_ok();
    let largest = LARGEST.with(Cell::get);
    prop_assert!(
        largest <= allowed(bytes.len()),
        "decoding {} bytes allocated {largest} at once",
        bytes.len()
    );
    Ok(ok)
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        // Never write regression files into the repository.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const SECRET: Secret = Secret::new([0x5a; 32]);
const KEY: Key = Key([0x11; 32]);
/// The msgpack dtype byte of the entry header.
const MSGPACK: u8 = 4;

fn matrix(rows: usize, cols: usize) -> Matrix {
    Matrix::from_fn(rows, cols, |i, j| i as f64 * 0.5 - j as f64)
}

/// A valid entry of each kind the cache stores.
fn seeds() -> Vec<Vec<u8>> {
    let prediction = Prediction {
        values: vec![0.0, 1.0, 1.0],
        classes: vec![0.0, 1.0],
        proba: Some(matrix(3, 2)),
        decision: Some(vec![-0.5, 0.25, 0.75]),
    };
    let gram = Gram {
        xtx: matrix(2, 2),
        xty: vec![1.0, 2.0],
        x_mean: vec![0.0, 0.5],
        y_mean: 1.5,
        eigenvalues: vec![0.1, 2.0],
        eigenvectors: matrix(2, 2),
        n_rows: 7,
    };
    [
        Entry::Value(Value::Matrix(Arc::new(matrix(4, 3)))),
        Entry::Value(Value::Matrix(Arc::new(matrix(0, 5)))),
        Entry::Value(Value::Vector(Arc::new(vec![1.0, -2.0, 3.5]))),
        Entry::Value(Value::Scalar(0.75)),
        Entry::Blob(Arc::new(b"fold score".to_vec())),
        Entry::Value(Value::Prediction(Arc::new(prediction))),
        Entry::Value(Value::Gram(Arc::new(gram))),
    ]
    .iter()
    .map(|entry| encode(&SECRET, &KEY, entry))
    .collect()
}

/// Values that break naive length and shape arithmetic.
const INTERESTING: [u64; 10] = [
    0,
    1,
    7,
    8,
    u32::MAX as u64,
    u32::MAX as u64 + 1,
    1 << 40,
    1 << 61,
    u64::MAX / 8 + 1,
    u64::MAX,
];

#[derive(Debug, Clone)]
enum Mutation {
    Flip(Index, u8),
    Truncate(Index),
    Insert(Index, Vec<u8>),
    /// Overwrites rows (8), cols (16) or the payload length (24).
    Field(usize, u64),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 1..=255u8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), vec(any::<u8>(), 1..16)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (select(vec![8usize, 16, 24]), select(INTERESTING.to_vec()))
            .prop_map(|(at, v)| Mutation::Field(at, v)),
    ]
}

fn mutate(bytes: &mut Vec<u8>, mutation: &Mutation) {
    match mutation {
        Mutation::Flip(i, b) if !bytes.is_empty() => {
            let at = i.index(bytes.len());
            bytes[at] ^= b;
        }
        Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len() + 1)),
        Mutation::Insert(i, extra) => {
            let at = i.index(bytes.len() + 1);
            bytes.splice(at..at, extra.iter().copied());
        }
        Mutation::Field(at, v) if bytes.len() >= at + 8 => {
            bytes[*at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
        _ => {}
    }
}

/// msgpack tokens, including headers that claim huge sizes and deep nesting.
fn token() -> impl Strategy<Value = Vec<u8>> {
    let fixed: Vec<Vec<u8>> = vec![
        vec![0xc0],
        vec![0xc3],
        vec![0x00],
        vec![0xff],
        vec![0xcb, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f],
        vec![0xdd, 0xff, 0xff, 0xff, 0xff],
        vec![0xdf, 0xff, 0xff, 0xff, 0xff],
        vec![0xc6, 0xff, 0xff, 0xff, 0xff],
        vec![0xdb, 0xff, 0xff, 0xff, 0xf0],
        vec![0xc9, 0x7f, 0xff, 0xff, 0xff, 0x01],
        vec![0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        vec![0x92],
        vec![0x81],
        vec![0x93],
        vec![0xc4, 0x08, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f],
        vec![0x91; 64],
        vec![0x91; 5000],
        [0x81, 0xa1, b'a'].repeat(2000),
    ];
    let names = [
        "Fitted",
        "Gram",
        "Prediction",
        "Neighbors",
        "Knn",
        "Linear",
        "Scaler",
        "Pca",
        "rows",
        "cols",
        "data",
        "values",
        "classes",
        "proba",
        "xtx",
    ];
    prop_oneof![
        select(fixed),
        select(names.to_vec()).prop_map(|n| {
            let mut t = vec![0xa0 | n.len() as u8];
            t.extend_from_slice(n.as_bytes());
            t
        }),
        vec(any::<u8>(), 1..8),
    ]
}

/// `payload` as a resealed msgpack entry.
fn msgpack_entry(payload: Vec<u8>) -> Vec<u8> {
    let mut bytes = encode(&SECRET, &KEY, &Entry::Blob(Arc::new(payload)));
    bytes[6] = MSGPACK;
    bytes[8..24].fill(0);
    reseal(&SECRET, &mut bytes);
    bytes
}

proptest! {
    #![proptest_config(config())]

    /// Random bytes never verify; resealed, they decode or fail cleanly.
    #[test]
    fn random_bytes_fail_cleanly(mut bytes in vec(any::<u8>(), 0..400), header in any::<bool>()) {
        if header && bytes.len() >= 8 {
            bytes[..6].copy_from_slice(b"AMLC\x02\x00");
            bytes.resize(bytes.len().max(96), 0);
            bytes[32..64].copy_from_slice(&KEY.0);
        }
        prop_assert!(!decode_bounded(&SECRET, &KEY, &bytes)?);
        reseal(&SECRET, &mut bytes);
        decode_bounded(&SECRET, &KEY, &bytes)?;
    }

    /// Any change to a valid entry by someone without the secret is refused;
    /// with the checksum recomputed, the payload decoders fail cleanly.
    #[test]
    fn mutated_entries_are_refused_or_fail_cleanly(
        seed in any::<Index>(),
        mutations in vec(mutation(), 1..5),
    ) {
        let seeds = seeds();
        let original = &seeds[seed.index(seeds.len())];
        let mut bytes = original.clone();
        for m in &mutations {
            mutate(&mut bytes, m);
        }
        if bytes != *original {
            prop_assert!(!decode_bounded(&SECRET, &KEY, &bytes)?, "forged entry verified");
        }
        reseal(&SECRET, &mut bytes);
        decode_bounded(&SECRET, &KEY, &bytes)?;
    }

    /// Structured payloads made of msgpack tokens (huge headers, deep
    /// nesting, variant and field names) fail cleanly.
    #[test]
    fn msgpack_token_soup_fails_cleanly(tokens in vec(token(), 1..24), seed in any::<Index>()) {
        let soup: Vec<u8> = tokens.concat();
        decode_bounded(&SECRET, &KEY, &msgpack_entry(soup.clone()))?;
        // A valid structured payload with tokens spliced in.
        let seeds = seeds();
        let mut payload = seeds[5 + seed.index(2)][96..].to_vec();
        let at = seed.index(payload.len() + 1);
        payload.splice(at..at, soup);
        decode_bounded(&SECRET, &KEY, &msgpack_entry(payload))?;
    }
}

#[test]
fn seeds_decode_and_the_bound_is_measured() {
    for bytes in seeds() {
        assert!(decode(&SECRET, &KEY, &bytes).is_ok());
    }
    LARGEST.with(|l| l.set(0));
    let big = vec![0u8; 1 << 16];
    assert_eq!(LARGEST.with(Cell::get), 1 << 16);
    drop(big);
}
