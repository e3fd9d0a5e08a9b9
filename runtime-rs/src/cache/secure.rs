//! Filesystem primitives that keep a cache directory private.
//!
//! The directory is shared by the processes of one user on a node, and other
//! local users must neither read nor plant anything in it. So it is created
//! with mode 0700 in one `mkdir` and refused when it is a symbolic link, owned
//! by someone else or writable by group or others; temporary files get
//! unpredictable names and are created 0600 with `O_EXCL|O_NOFOLLOW`; files
//! are opened with `O_NOFOLLOW|O_NONBLOCK` and checked on the open descriptor
//! (no `lstat`-then-open race), so a planted symbolic link is never followed
//! and a planted FIFO never blocks.

use std::fmt;
use std::fs::{self, DirBuilder, File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Why a cache directory cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Nothing exists at the path (and it was not to be created).
    Missing,
    /// The path is a symbolic link.
    Symlink,
    /// The path is a file or another non-directory.
    NotADirectory,
    /// A directory, but not one a cache made (no `entries/` folder).
    NotACache,
    /// Owned by another user.
    OtherOwner {
        /// The directory's owner.
        owner: u32,
        /// This process's effective user.
        me: u32,
    },
    /// Writable by group or others.
    Writable {
        /// The directory's permission bits.
        mode: u32,
    },
    /// The checksum secret is missing, unsafe or damaged.
    Secret(String),
    /// The operating system refused an operation.
    Io(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Missing => write!(f, "no such directory"),
            Reason::Symlink => write!(f, "it is a symbolic link"),
            Reason::NotADirectory => write!(f, "it is not a directory"),
            Reason::NotACache => write!(f, "it is not a cache directory (no entries/ folder)"),
            Reason::OtherOwner { owner, me } => {
                write!(f, "it is owned by uid {owner}, not by this user (uid {me})")
            }
            Reason::Writable { mode } => {
                write!(f, "it is writable by group or others (mode {mode:04o})")
            }
            Reason::Secret(why) => write!(f, "its checksum secret {why}"),
            Reason::Io(why) => write!(f, "{why}"),
        }
    }
}

/// A cache directory that was refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The directory.
    pub path: PathBuf,
    /// Why.
    pub reason: Reason,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cache directory {} refused: {}",
            self.path.display(),
            self.reason
        )
    }
}

/// This process's effective user id.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Creates `path` with mode 0700 unless it exists (its missing parents too,
/// also 0700), then checks that it is a private directory of this user.
pub(super) fn create_private_dir(path: &Path) -> Result<(), Reason> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| Reason::Io(format!("cannot create its parent: {e}")))?;
    }
    match DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Reason::Io(format!("cannot create it: {e}"))),
    }
    check_private_dir(path)
}

/// Checks that `path` is a directory (not a symbolic link) owned by this user
/// and not writable by group or others.
pub(super) fn check_private_dir(path: &Path) -> Result<(), Reason> {
    let dir = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => Reason::Missing,
            Some(libc::ELOOP) => Reason::Symlink,
            // O_NOFOLLOW|O_DIRECTORY on a symbolic link may also say ENOTDIR.
            Some(libc::ENOTDIR) if fs::symlink_metadata(path).is_ok_and(|m| m.is_symlink()) => {
                Reason::Symlink
            }
            Some(libc::ENOTDIR) => Reason::NotADirectory,
            _ => Reason::Io(format!("cannot open it: {e}")),
        })?;
    let meta = dir
        .metadata()
        .map_err(|e| Reason::Io(format!("cannot stat it: {e}")))?;
    let me = euid();
    if meta.uid() != me {
        return Err(Reason::OtherOwner {
            owner: meta.uid(),
            me,
        });
    }
    if meta.mode() & 0o022 != 0 {
        return Err(Reason::Writable {
            mode: meta.mode() & 0o7777,
        });
    }
    Ok(())
}

/// Creates the subdirectory `path` with mode 0700 unless it exists.
pub(super) fn create_subdir(path: &Path) -> io::Result<()> {
    match DirBuilder::new().mode(0o700).create(path) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

/// What opening a file of the cache found.
pub(super) enum Opened {
    /// A regular file of this user, open.
    File(File, Metadata),
    /// Nothing there.
    Missing,
    /// Something that must not be used (a symbolic link, a FIFO, a file of
    /// another user): what it is.
    Unsafe(&'static str),
}

/// Opens `path` for reading (or, with `create`, read-write, creating it
/// 0600) without following a symbolic link or blocking on a FIFO, and checks
/// on the open descriptor that it is a regular file of this user.
pub(super) fn open_regular(path: &Path, create: bool) -> io::Result<Opened> {
    let mut options = OpenOptions::new();
    options
        .read(true)
        .write(create)
        .create(create)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    let file = match options.open(path) {
        Ok(file) => file,
        Err(e) => {
            return match e.raw_os_error() {
                Some(libc::ENOENT) => Ok(Opened::Missing),
                Some(libc::ELOOP) => Ok(Opened::Unsafe("a symbolic link")),
                // A FIFO opened for writing without a reader, a device.
                Some(libc::ENXIO | libc::ENODEV | libc::EISDIR) => {
                    Ok(Opened::Unsafe("not a regular file"))
                }
                _ => Err(e),
            };
        }
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(Opened::Unsafe("not a regular file"));
    }
    if meta.uid() != euid() {
        return Ok(Opened::Unsafe("owned by another user"));
    }
    Ok(Opened::File(file, meta))
}

/// Reads a whole file opened by [`open_regular`], refusing more than `limit`
/// bytes (whatever its size said: it may grow meanwhile).
pub(super) fn read_bounded(file: File, size: u64, limit: u64) -> io::Result<Option<Vec<u8>>> {
    if size > limit {
        return Ok(None);
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(limit + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= limit).then_some(bytes))
}

/// `n` bytes from the operating system's random source.
pub(super) fn random<const N: usize>() -> io::Result<[u8; N]> {
    let mut bytes = [0; N];
    getrandom::fill(&mut bytes).map_err(io::Error::other)?;
    Ok(bytes)
}

/// Creates a new file 0600 in `dir` under an unpredictable name starting
/// with `prefix` (`O_CREAT|O_EXCL|O_NOFOLLOW`: nothing planted there is
/// opened or followed), writes `bytes` and closes it; returns its path.
pub(super) fn write_temp(dir: &Path, prefix: &str, bytes: &[u8]) -> io::Result<PathBuf> {
    let name: String = random::<16>()?.iter().map(|b| format!("{b:02x}")).collect();
    let path = dir.join(format!("{prefix}{name}.tmp"));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .and_then(|mut file| file.write_all(bytes));
    if let Err(e) = written {
        if e.kind() != io::ErrorKind::AlreadyExists {
            let _ = fs::remove_file(&path);
        }
        return Err(e);
    }
    Ok(path)
}

/// Writes `bytes` to `path` atomically: a private temporary file in
/// `temp_dir`, renamed over whatever `path` was (a planted link or FIFO is
/// replaced, never written through).
pub(super) fn replace(path: &Path, temp_dir: &Path, prefix: &str, bytes: &[u8]) -> io::Result<()> {
    let temp = write_temp(temp_dir, prefix, bytes)?;
    fs::rename(&temp, path).inspect_err(|_| {
        let _ = fs::remove_file(&temp);
    })
}

/// Size of the checksum secret.
pub const SECRET_LEN: usize = 32;
/// The secret's file, in the cache directory.
pub(super) const SECRET_FILE: &str = "secret";

/// The directory's checksum secret, created on first use: 32 random bytes
/// in a file of this user, mode 0600, written under a temporary name and
/// hard-linked into place so concurrent openers agree on one secret and
/// never read a partial one.
pub(super) fn load_or_create_secret(root: &Path, temp_dir: &Path) -> Result<[u8; 32], Reason> {
    let path = root.join(SECRET_FILE);
    let io = |e: io::Error| Reason::Secret(format!("cannot be used: {e}"));
    for _ in 0..3 {
        match open_regular(&path, false).map_err(io)? {
            Opened::File(mut file, meta) => {
                let mode = meta.mode() & 0o7777;
                if mode != 0o600 {
                    return Err(Reason::Secret(format!("has mode {mode:04o}, not 0600")));
                }
                if meta.len() != SECRET_LEN as u64 {
                    return Err(Reason::Secret(format!(
                        "holds {} bytes, not {SECRET_LEN}",
                        meta.len()
                    )));
                }
                let mut secret = [0; SECRET_LEN];
                file.read_exact(&mut secret).map_err(io)?;
                return Ok(secret);
            }
            Opened::Unsafe(what) => return Err(Reason::Secret(format!("is {what}"))),
            Opened::Missing => {
                let temp = write_temp(temp_dir, "secret-", &random::<SECRET_LEN>().map_err(io)?)
                    .map_err(io)?;
                let linked = fs::hard_link(&temp, &path);
                let _ = fs::remove_file(&temp);
                match linked {
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(io(e)),
                    // Ours, or another process's that won the race: read it.
                    _ => continue,
                }
            }
        }
    }
    Err(Reason::Secret("keeps disappearing".into()))
}
