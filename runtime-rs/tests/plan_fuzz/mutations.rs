//! Untrusted bytes: random ones, msgpack-shaped ones, and encoded valid
//! plans damaged at the byte level.

use _runtime::plan::Plan;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

use crate::builder::build;
use crate::msgpack::{encode, huge, token, walk, Huge, Token};
use crate::strategies::{pick, plan_spec};

/// One change to encoded plan bytes, at the byte or encoded value `at`
/// picks.
#[derive(Debug, Clone)]
pub struct Mutation {
    at: Index,
    change: Change,
}

#[derive(Debug, Clone)]
enum Change {
    FlipBit(u8),
    SetByte(u8),
    Truncate,
    Delete(u8),
    Insert(Vec<u8>),
    Duplicate(u8),
    /// Gives the value a huge length header in place of its own (`true`),
    /// or inserts one before it.
    Huge(Huge, bool),
    /// Replaces the value (and its content) by other values.
    Replace(Vec<Token>),
    /// Replaces the value by a copy of another one of the same plan.
    CopyFrom(Index),
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    let change = prop_oneof![
        2 => (0u8..8).prop_map(Change::FlipBit),
        1 => any::<u8>().prop_map(Change::SetByte),
        1 => Just(Change::Truncate),
        1 => (1u8..16).prop_map(Change::Delete),
        1 => vec(any::<u8>(), 1..8).prop_map(Change::Insert),
        1 => (1u8..32).prop_map(Change::Duplicate),
        3 => (huge(), prop::bool::weighted(0.67)).prop_map(|(h, replace)| Change::Huge(h, replace)),
        3 => vec(token(), 1..3).prop_map(Change::Replace),
        2 => any::<Index>().prop_map(Change::CopyFrom),
    ];
    (any::<Index>(), change).prop_map(|(at, change)| Mutation { at, change })
}

pub fn mutate(bytes: &mut Vec<u8>, Mutation { at, change }: &Mutation) {
    let n = bytes.len();
    let extents = walk(bytes);
    let value = |i: &Index| pick(i, extents.len()).map(|i| extents[i]);
    let byte = pick(at, n);
    // A run of `len` bytes from `byte`, cut at the end.
    let run = |len: u8| byte.map(|at| at..(at + usize::from(len)).min(n));
    match change {
        Change::FlipBit(bit) => {
            if let Some(at) = byte {
                bytes[at] ^= 1 << bit;
            }
        }
        Change::SetByte(new) => {
            if let Some(at) = byte {
                bytes[at] = *new;
            }
        }
        Change::Truncate => bytes.truncate(byte.unwrap_or(0)),
        Change::Delete(len) => {
            if let Some(run) = run(*len) {
                bytes.drain(run);
            }
        }
        Change::Insert(new) => {
            let at = pick(at, n + 1).unwrap_or(0);
            bytes.splice(at..at, new.iter().copied());
        }
        Change::Duplicate(len) => {
            if let Some(run) = run(*len) {
                let copy = bytes[run.clone()].to_vec();
                bytes.splice(run.start..run.start, copy);
            }
        }
        Change::Huge(huge, replace) => {
            if let Some(e) = value(at) {
                huge.splice(bytes, e, *replace);
            }
        }
        Change::Replace(with) => {
            if let Some(e) = value(at) {
                bytes.splice(e.start..e.end, encode(with));
            }
        }
        Change::CopyFrom(from) => {
            if let (Some(from), Some(to)) = (value(from), value(at)) {
                let copy = bytes[from.start..from.end].to_vec();
                bytes.splice(to.start..to.end, copy);
            }
        }
    }
}

/// The plan's bytes with named fields (as the Python side writes) or as
/// compact arrays (which serde accepts too).
pub fn encoded(plan: &Plan, compact: bool) -> Vec<u8> {
    if compact {
        rmp_serde::to_vec(plan).expect("a plan serialises")
    } else {
        plan.encode()
    }
}

/// Arbitrary bytes, msgpack-shaped token soup, and prefixes of valid plans
/// with garbage tails.
pub fn random_bytes() -> impl Strategy<Value = Vec<u8>> {
    let plan_prefix = (
        plan_spec(),
        any::<bool>(),
        any::<Index>(),
        vec(any::<u8>(), 0..48),
    )
        .prop_map(|(spec, compact, cut, tail)| {
            let mut bytes = encoded(&build(&spec), compact);
            bytes.truncate(cut.index(bytes.len() + 1));
            bytes.extend(tail);
            bytes
        });
    let soup = (
        prop_oneof![Just(vec![]), Just(vec![Token::Map(3)])],
        vec(token(), 0..48),
    )
        .prop_map(|(head, tail)| encode(&[head, tail].concat()));
    prop_oneof![
        2 => vec(any::<u8>(), 0..96),
        3 => soup,
        2 => plan_prefix,
    ]
}
