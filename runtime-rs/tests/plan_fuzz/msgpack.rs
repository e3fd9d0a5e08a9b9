//! msgpack at the byte level: a tolerant walker that finds the encoded
//! values of a plan, and a small writer for values a plan should not hold.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use crate::strategies::special_f64;

/// Where one encoded value sits: `start..end`, the first `header` bytes
/// being its marker and length.
#[derive(Debug, Clone, Copy)]
pub struct Extent {
    pub start: usize,
    pub header: usize,
    pub end: usize,
}

/// Header length, payload length and number of nested values of the value
/// starting at `b[0]`, if its header is complete.
fn header_of(b: &[u8]) -> Option<(usize, usize, u64)> {
    let be = |at: usize, len: usize| -> Option<u64> {
        let bytes = b.get(at..at + len)?;
        Some(bytes.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    };
    let marker = *b.first()?;
    Some(match marker {
        0x00..=0x7f | 0xc0..=0xc3 | 0xe0..=0xff => (1, 0, 0),
        0x80..=0x8f => (1, 0, 2 * u64::from(marker & 0x0f)),
        0x90..=0x9f => (1, 0, u64::from(marker & 0x0f)),
        0xa0..=0xbf => (1, usize::from(marker & 0x1f), 0),
        0xc4 | 0xd9 => (2, be(1, 1)? as usize, 0),
        0xc5 | 0xda => (3, be(1, 2)? as usize, 0),
        0xc6 | 0xdb => (5, be(1, 4)? as usize, 0),
        0xc7 => (3, be(1, 1)? as usize, 0),
        0xc8 => (4, be(1, 2)? as usize, 0),
        0xc9 => (6, be(1, 4)? as usize, 0),
        0xca | 0xce | 0xd2 => (1, 4, 0),
        0xcb | 0xcf | 0xd3 => (1, 8, 0),
        0xcc | 0xd0 => (1, 1, 0),
        0xcd | 0xd1 => (1, 2, 0),
        0xd4 => (2, 1, 0),
        0xd5 => (2, 2, 0),
        0xd6 => (2, 4, 0),
        0xd7 => (2, 8, 0),
        0xd8 => (2, 16, 0),
        0xdc => (3, 0, be(1, 2)?),
        0xdd => (5, 0, be(1, 4)?),
        0xde => (3, 0, 2 * be(1, 2)?),
        0xdf => (5, 0, 2 * be(1, 4)?),
    })
}

/// Extents of the values of the first top-level value of `bytes`, in
/// preorder; stops quietly at the first malformed or truncated value.
pub fn walk(bytes: &[u8]) -> Vec<Extent> {
    let mut out: Vec<Extent> = Vec::new();
    let mut open: Vec<(usize, u64)> = Vec::new();
    let mut pos = 0;
    loop {
        while let Some(&(idx, 0)) = open.last() {
            out[idx].end = pos;
            open.pop();
        }
        if open.is_empty() && !out.is_empty() {
            break;
        }
        let Some((header, payload, children)) = header_of(&bytes[pos.min(bytes.len())..]) else {
            break;
        };
        if let Some(top) = open.last_mut() {
            top.1 -= 1;
        }
        let start = pos;
        pos = (pos + header).saturating_add(payload).min(bytes.len());
        out.push(Extent {
            start,
            header: header.min(bytes.len() - start),
            end: pos,
        });
        if children > 0 {
            open.push((out.len() - 1, children));
        }
    }
    for (idx, _) in open {
        out[idx].end = pos;
    }
    out
}

/// A length header claiming far more content than any input holds.
#[derive(Debug, Clone, Copy)]
pub struct Huge {
    /// One of [`Huge::MARKERS`].
    pub marker: u8,
    pub count: u32,
}

impl Huge {
    /// array16, map16, str16, then array32, map32, str32, bin32, ext32.
    pub const MARKERS: [u8; 8] = [0xdc, 0xde, 0xda, 0xdd, 0xdf, 0xdb, 0xc6, 0xc9];

    pub fn header(self) -> Vec<u8> {
        let mut out = vec![self.marker];
        if matches!(self.marker, 0xdc | 0xde | 0xda) {
            let short = self.count.min(u16::MAX.into()) as u16;
            out.extend(short.to_be_bytes());
        } else {
            out.extend(self.count.to_be_bytes());
        }
        if self.marker == 0xc9 {
            // ext32's type byte.
            out.push(7);
        }
        out
    }

    /// Gives the value at `at` this header in place of its own (`replace`),
    /// or inserts the header before it.
    pub fn splice(self, bytes: &mut Vec<u8>, at: Extent, replace: bool) {
        let end = at.start + if replace { at.header } else { 0 };
        bytes.splice(at.start..end, self.header());
    }
}

pub fn huge() -> impl Strategy<Value = Huge> {
    let count = prop_oneof![
        3 => Just(u32::MAX),
        1 => Just(1u32 << 31),
        1 => Just(0x0001_0000),
        1 => 0u32..8,
        1 => any::<u32>(),
    ];
    (select(&Huge::MARKERS[..]), count).prop_map(|(marker, count)| Huge { marker, count })
}

/// Every string the plan format uses, so random values look plausible.
const WORDS: &str = "version nodes outputs op inputs kind source_x source_y take_rows \
    select_cols hstack fit apply gram solve neighbors knn_predict score target index cols \
    estimator fit_intercept alpha k weights classifier metric pos_label name simple_imputer \
    standard_scaler min_max_scaler max_abs_scaler one_hot_encoder polynomial_features pca \
    select_k_best linear_regression ridge logistic_regression k_neighbors strategy fill_value \
    with_mean with_std low high clip degree interaction_only include_bias n_components whiten \
    score_func c max_iter tol n_neighbors mean median most_frequent constant f_regression \
    f_classif uniform distance r2 accuracy roc_auc neg_log_loss y";

/// A msgpack value (containers as bare headers: their content follows).
#[derive(Debug, Clone)]
pub enum Token {
    Nil,
    Bool(bool),
    UInt(u64),
    Int(i64),
    F64(f64),
    F32(f32),
    Str(String),
    Bin(Vec<u8>),
    Array(u8),
    Map(u8),
    Ext(i8, Vec<u8>),
    Huge(Huge),
    Raw(Vec<u8>),
}

pub fn token() -> impl Strategy<Value = Token> {
    let words: Vec<String> = WORDS.split_whitespace().map(String::from).collect();
    prop_oneof![
        1 => Just(Token::Nil),
        1 => any::<bool>().prop_map(Token::Bool),
        4 => prop_oneof![0u64..8, Just(u64::from(u32::MAX)), Just(u64::MAX), any::<u64>()]
            .prop_map(Token::UInt),
        1 => prop_oneof![-3i64..0, Just(i64::MIN), any::<i64>()].prop_map(Token::Int),
        2 => special_f64().prop_map(Token::F64),
        1 => any::<f32>().prop_map(Token::F32),
        6 => select(words).prop_map(Token::Str),
        1 => "\\PC{0,8}".prop_map(Token::Str),
        1 => vec(any::<u8>(), 0..8).prop_map(Token::Bin),
        3 => (0u8..5).prop_map(Token::Array),
        3 => (0u8..4).prop_map(Token::Map),
        1 => (any::<i8>(), vec(any::<u8>(), 0..5)).prop_map(|(t, d)| Token::Ext(t, d)),
        1 => huge().prop_map(Token::Huge),
        1 => vec(any::<u8>(), 1..6).prop_map(Token::Raw),
    ]
}

/// Writes a marker and what follows it.
fn tagged(out: &mut Vec<u8>, marker: u8, rest: &[u8]) {
    out.push(marker);
    out.extend_from_slice(rest);
}

/// Writes a length in the shortest form `fix` (up to `fix_max`) or the 8-,
/// 16- or 32-bit `markers` allow (a 0 marker: no 8-bit form).
fn write_len(out: &mut Vec<u8>, len: usize, fix: u8, fix_max: usize, markers: [u8; 3]) {
    if len <= fix_max {
        out.push(fix | len as u8);
    } else if len <= 0xff && markers[0] != 0 {
        tagged(out, markers[0], &[len as u8]);
    } else if len <= 0xffff {
        tagged(out, markers[1], &(len as u16).to_be_bytes());
    } else {
        tagged(out, markers[2], &(len as u32).to_be_bytes());
    }
}

impl Token {
    pub fn str(s: &str) -> Token {
        Token::Str(s.into())
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Token::Nil => out.push(0xc0),
            Token::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
            Token::UInt(v) if *v < 0x80 => out.push(*v as u8),
            Token::UInt(v) if *v <= u64::from(u32::MAX) => {
                tagged(out, 0xce, &(*v as u32).to_be_bytes())
            }
            Token::UInt(v) => tagged(out, 0xcf, &v.to_be_bytes()),
            Token::Int(v) if *v >= -32 => out.push(*v as i8 as u8),
            Token::Int(v) => tagged(out, 0xd3, &v.to_be_bytes()),
            Token::F64(v) => tagged(out, 0xcb, &v.to_be_bytes()),
            Token::F32(v) => tagged(out, 0xca, &v.to_be_bytes()),
            Token::Str(s) => {
                write_len(out, s.len(), 0xa0, 31, [0xd9, 0xda, 0xdb]);
                out.extend(s.as_bytes());
            }
            Token::Bin(b) => {
                tagged(out, 0xc4, &[b.len() as u8]);
                out.extend(b);
            }
            Token::Array(n) => write_len(out, usize::from(*n), 0x90, 15, [0, 0xdc, 0xdd]),
            Token::Map(n) => write_len(out, usize::from(*n), 0x80, 15, [0, 0xde, 0xdf]),
            Token::Ext(t, d) => {
                tagged(out, 0xc7, &[d.len() as u8, *t as u8]);
                out.extend(d);
            }
            Token::Huge(h) => out.extend(h.header()),
            Token::Raw(b) => out.extend(b),
        }
    }
}

/// The bytes of `tokens`, one after the other.
pub fn encode(tokens: &[Token]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in tokens {
        t.encode(&mut out);
    }
    out
}

/// Bytes as hex, to report an input.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
