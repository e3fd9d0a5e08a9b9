//! What names a cache entry: the runtime's identity and the entry layout's
//! version, hashed with the compiler's node key, so a code or format change
//! never reads an older runtime's results.

/// This runtime's identity, part of every key.
pub const RUNTIME_ID: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "+",
    env!("ACADEMY_ML_RUNTIME_SOURCE")
);

/// Version of the entry layout; entries of another version are rejected.
/// 2: keyed checksum over header and payload (1 was unkeyed, payload only).
pub const FORMAT: u16 = 2;

/// A cache key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key(pub [u8; 32]);

impl Key {
    /// The key of a plan node (or of a Python-side result) named `key` by the
    /// compiler.
    pub fn for_node(key: &str) -> Key {
        let mut hasher = blake3::Hasher::new();
        hasher.update(RUNTIME_ID.as_bytes());
        hasher.update(&FORMAT.to_le_bytes());
        hasher.update(key.as_bytes());
        Key(*hasher.finalize().as_bytes())
    }

    /// Lower-case hex.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}
