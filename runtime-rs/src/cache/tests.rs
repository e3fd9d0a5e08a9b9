use std::fs;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::data::{Matrix, Value};

const SLOW: Duration = Duration::from_secs(10);

fn config(dir: &Path, memory_bytes: u64, disk_bytes: u64) -> CacheConfig {
    CacheConfig {
        dir: dir.to_path_buf(),
        memory_bytes,
        disk_bytes,
    }
}

fn matrix(rows: usize, seed: f64) -> Entry {
    Entry::Value(Value::Matrix(Arc::new(Matrix::from_fn(rows, 4, |i, j| {
        seed + i as f64 * 0.25 - j as f64
    }))))
}

fn as_matrix(entry: Option<Entry>) -> Option<Matrix> {
    match entry? {
        Entry::Value(Value::Matrix(m)) => Some((*m).clone()),
        _ => None,
    }
}

fn entry_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for shard in fs::read_dir(dir.join("entries")).unwrap() {
        for file in fs::read_dir(shard.unwrap().path()).unwrap() {
            files.push(file.unwrap().path());
        }
    }
    files
}

#[test]
fn keys_depend_on_node_key_and_runtime() {
    assert_eq!(Key::for_node("a"), Key::for_node("a"));
    assert_ne!(Key::for_node("a"), Key::for_node("b"));
    assert_eq!(Key::for_node("a").hex().len(), 64);
    assert!(RUNTIME_ID.starts_with(env!("CARGO_PKG_VERSION")));
}

#[test]
fn memory_then_disk_tier_and_other_processes_see_entries() {
    let dir = tempfile::tempdir().unwrap();
    let key = Key::for_node("m");
    let first = NodeCache::open(&config(dir.path(), 1 << 20, 1 << 30)).unwrap();
    assert!(first.get(&key, |_| true).is_none());
    assert!(first.put(&key, &matrix(10, 1.0), SLOW));
    assert_eq!(
        as_matrix(first.get(&key, |_| true)),
        as_matrix(Some(matrix(10, 1.0)))
    );
    let stats = first.stats();
    assert_eq!(
        (stats.hits, stats.memory_hits, stats.misses, stats.stores),
        (1, 1, 1, 1)
    );
    // A second cache on the same directory stands for another process.
    let second = NodeCache::open(&config(dir.path(), 1 << 20, 1 << 30)).unwrap();
    assert_eq!(
        as_matrix(second.get(&key, |_| true)),
        as_matrix(Some(matrix(10, 1.0)))
    );
    let stats = second.stats();
    assert_eq!((stats.hits, stats.memory_hits), (1, 0));
    assert_eq!(stats.bytes_read, first.stats().bytes_written);
    // Now it is in the second cache's memory too.
    second.get(&key, |_| true);
    assert_eq!(second.stats().memory_hits, 1);
}

#[test]
fn memory_budget_evicts_and_disk_still_answers() {
    let dir = tempfile::tempdir().unwrap();
    let one = codec::encoded_len(&matrix(100, 0.0)).unwrap() as u64;
    let cache = NodeCache::open(&config(dir.path(), 2 * one, 1 << 30)).unwrap();
    for i in 0..3 {
        cache.put(&Key::for_node(&i.to_string()), &matrix(100, i as f64), SLOW);
    }
    assert_eq!(cache.stats().evictions, 1);
    assert_eq!(cache.memory_used(), 2 * one);
    let oldest = cache.get(&Key::for_node("0"), |_| true);
    assert_eq!(as_matrix(oldest), as_matrix(Some(matrix(100, 0.0))));
    assert_eq!(cache.stats().memory_hits, 0, "served from disk");
}

#[test]
fn disk_budget_evicts_least_recently_used() {
    let dir = tempfile::tempdir().unwrap();
    let one = codec::encoded_len(&matrix(1000, 0.0)).unwrap() as u64;
    let cache = NodeCache::open(&config(dir.path(), 0, 3 * one)).unwrap();
    for i in 0..4 {
        cache.put(
            &Key::for_node(&i.to_string()),
            &matrix(1000, i as f64),
            SLOW,
        );
    }
    assert!(cache.stats().evictions >= 1);
    let summary = NodeCache::summary(dir.path()).unwrap();
    assert!(summary.bytes <= 3 * one, "{} > {}", summary.bytes, 3 * one);
    assert!(
        cache.get(&Key::for_node("3"), |_| true).is_some(),
        "newest survives"
    );
}

#[test]
fn damaged_entries_are_counted_removed_and_never_returned() {
    let dir = tempfile::tempdir().unwrap();
    let cache = NodeCache::open(&config(dir.path(), 0, 1 << 30)).unwrap();
    let (a, b) = (Key::for_node("a"), Key::for_node("b"));
    cache.put(&a, &matrix(50, 1.0), SLOW);
    cache.put(&b, &matrix(50, 2.0), SLOW);
    for (n, path) in entry_files(dir.path()).into_iter().enumerate() {
        let mut bytes = fs::read(&path).unwrap();
        if n == 0 {
            bytes.truncate(bytes.len() / 2);
        } else {
            let last = bytes.len() - 1;
            bytes[last] ^= 0xff;
        }
        fs::write(&path, bytes).unwrap();
    }
    assert!(cache.get(&a, |_| true).is_none());
    assert!(cache.get(&b, |_| true).is_none());
    let stats = cache.stats();
    assert_eq!((stats.corrupt, stats.misses, stats.hits), (2, 2, 0));
    assert!(
        entry_files(dir.path()).is_empty(),
        "damaged entries are removed"
    );
    cache.put(&a, &matrix(50, 1.0), SLOW);
    assert!(cache.get(&a, |_| true).is_some());
}

#[test]
fn admission_keeps_small_or_expensive_values_only() {
    let dir = tempfile::tempdir().unwrap();
    let cache = NodeCache::open(&config(dir.path(), 1 << 30, 1 << 30)).unwrap();
    let big = matrix(SMALL_ENTRY / 16, 0.0);
    assert!(!cache.put(&Key::for_node("cheap"), &big, Duration::from_micros(1)));
    assert!(cache.put(&Key::for_node("dear"), &big, SLOW));
    assert!(cache.put(&Key::for_node("small"), &matrix(4, 0.0), Duration::ZERO));
    assert_eq!(cache.stats().stores, 2);
}

#[test]
fn refused_entries_are_misses() {
    let dir = tempfile::tempdir().unwrap();
    let cache = NodeCache::open(&config(dir.path(), 1 << 20, 1 << 30)).unwrap();
    cache.put(&Key::for_node("a"), &matrix(3, 0.0), SLOW);
    assert!(cache.get(&Key::for_node("a"), |_| false).is_none());
    assert_eq!(cache.stats().misses, 1);
    assert_eq!(cache.stats().corrupt, 0);
}

#[test]
fn totals_add_up_across_processes_and_clear_resets() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["x", "y"] {
        let cache = NodeCache::open(&config(dir.path(), 0, 1 << 30)).unwrap();
        cache.get(&Key::for_node(name), |_| true);
        cache.put(&Key::for_node(name), &matrix(2, 0.0), SLOW);
        cache.flush_stats().unwrap();
        cache.flush_stats().unwrap();
    }
    let summary = NodeCache::summary(dir.path()).unwrap();
    assert_eq!(
        (
            summary.entries,
            summary.totals.misses,
            summary.totals.stores
        ),
        (2, 2, 2)
    );
    let cache = NodeCache::open(&config(dir.path(), 0, 1 << 30)).unwrap();
    assert_eq!(cache.clear().unwrap(), 2);
    let summary = NodeCache::summary(dir.path()).unwrap();
    assert_eq!((summary.entries, summary.totals), (0, Stats::default()));
}

#[test]
fn unusable_directories_are_cache_errors() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    fs::write(&file, b"not a directory").unwrap();
    let err = NodeCache::open(&config(&file, 0, 1)).err().unwrap();
    assert!(matches!(err, RuntimeError::Cache(_)), "{err:?}");
    assert!(NodeCache::open(&config(&file, 1, 0)).is_ok(), "memory only");
}

// Private directory, temporary files and keyed checksums (issue 14).

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn reason(dir: &Path) -> Reason {
    disk::Store::open(dir, 1 << 20).err().unwrap().reason
}

fn entry_path(dir: &Path, key: &Key) -> PathBuf {
    let hex = key.hex();
    dir.join("entries").join(&hex[..2]).join(&hex[2..])
}

#[test]
fn new_directories_files_and_secret_are_private() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("a/b/cache");
    let cache = NodeCache::open(&config(&dir, 0, 1 << 30)).unwrap();
    cache.put(&Key::for_node("x"), &matrix(3, 0.0), SLOW);
    cache.flush_stats().unwrap();
    for sub in ["", "entries", "tmp"] {
        assert_eq!(mode(&dir.join(sub)), 0o700, "{sub}/");
    }
    assert_eq!(mode(&base.path().join("a")), 0o700, "created parents too");
    let secret = dir.join(secure::SECRET_FILE);
    assert_eq!(mode(&secret), 0o600);
    assert_eq!(fs::read(&secret).unwrap().len(), secure::SECRET_LEN);
    assert_eq!(mode(&dir.join(TOTALS_FILE)), 0o600);
    for file in entry_files(&dir) {
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(file.parent().unwrap()), 0o700);
    }
}

#[test]
fn group_or_world_writable_directories_are_refused() {
    for bits in [0o777, 0o770, 0o702] {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("c");
        fs::create_dir(&dir).unwrap();
        chmod(&dir, bits);
        assert_eq!(reason(&dir), Reason::Writable { mode: bits });
        let err = NodeCache::open(&config(&dir, 0, 1 << 20)).err().unwrap();
        let RuntimeError::Cache(message) = err else {
            panic!("{err:?}")
        };
        assert!(message.contains(&dir.display().to_string()), "{message}");
        assert!(message.contains("writable by group or others"), "{message}");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0, "nothing created");
    }
    // Readable by others is private enough: nothing in it is readable.
    let base = tempfile::tempdir().unwrap();
    chmod(base.path(), 0o755);
    assert!(disk::Store::open(base.path(), 1 << 20).is_ok());
}

#[test]
fn directories_of_another_user_are_refused() {
    let me = secure::euid();
    if me != 0 {
        eprintln!("skipped: only root can give a directory to another user");
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("theirs");
    fs::create_dir(&dir).unwrap();
    chmod(&dir, 0o700);
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
    assert_eq!(reason(&dir), Reason::OtherOwner { owner: 65534, me });
    assert!(NodeCache::summary(&dir).is_err());
}

#[test]
fn symbolic_links_files_and_missing_paths_are_refused() {
    let base = tempfile::tempdir().unwrap();
    let real = base.path().join("real");
    NodeCache::open(&config(&real, 0, 1 << 20)).unwrap();
    let link = base.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    assert_eq!(reason(&link), Reason::Symlink);
    let file = base.path().join("file");
    fs::write(&file, b"x").unwrap();
    assert_eq!(reason(&file), Reason::NotADirectory);
    for refused in [&link, &file] {
        assert!(NodeCache::summary(refused).is_err());
        assert!(NodeCache::clear_dir(refused).is_err());
    }
    let missing = base.path().join("missing");
    let err = disk::Store::existing(&missing).err().unwrap();
    assert_eq!(err.reason, Reason::Missing);
    assert!(!missing.exists(), "summary never creates");
}

#[test]
fn summary_and_clear_refuse_other_directories_and_create_nothing() {
    let base = tempfile::tempdir().unwrap();
    chmod(base.path(), 0o700);
    fs::write(base.path().join("notes.txt"), b"mine").unwrap();
    let err = disk::Store::existing(base.path()).err().unwrap();
    assert_eq!(err.reason, Reason::NotACache);
    let err = NodeCache::summary(base.path()).unwrap_err().to_string();
    assert!(err.contains("not a cache directory"), "{err}");
    assert!(NodeCache::clear_dir(base.path()).is_err());
    let names: Vec<_> = fs::read_dir(base.path()).unwrap().flatten().collect();
    assert_eq!(names.len(), 1, "only notes.txt: {names:?}");
    // A cache directory is cleared without opening a cache.
    let cache = NodeCache::open(&config(base.path(), 0, 1 << 20)).unwrap();
    cache.put(&Key::for_node("a"), &matrix(3, 0.0), SLOW);
    cache.flush_stats().unwrap();
    assert_eq!(NodeCache::summary(base.path()).unwrap().entries, 1);
    assert_eq!(NodeCache::clear_dir(base.path()).unwrap(), 1);
    let summary = NodeCache::summary(base.path()).unwrap();
    assert_eq!((summary.entries, summary.totals), (0, Stats::default()));
}

#[test]
fn planted_links_at_the_totals_are_replaced_not_followed() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("cache");
    let victim = base.path().join("victim");
    fs::write(&victim, b"precious").unwrap();
    let cache = NodeCache::open(&config(&dir, 0, 1 << 20)).unwrap();
    let pid = std::process::id();
    // The names older versions wrote to, and the totals themselves.
    for name in [format!("stats.{pid}.tmp"), format!("tmp/stats.{pid}.tmp")] {
        std::os::unix::fs::symlink(&victim, dir.join(name)).unwrap();
    }
    std::os::unix::fs::symlink(&victim, dir.join(TOTALS_FILE)).unwrap();
    cache.get(&Key::for_node("a"), |_| true);
    cache.flush_stats().unwrap();
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
    assert!(!fs::symlink_metadata(dir.join(TOTALS_FILE))
        .unwrap()
        .is_symlink());
    assert_eq!(NodeCache::summary(&dir).unwrap().totals.misses, 1);
    // A link at the lock file fails the flush, leaving the target alone.
    fs::remove_file(dir.join("stats.lock")).unwrap();
    std::os::unix::fs::symlink(&victim, dir.join("stats.lock")).unwrap();
    cache.get(&Key::for_node("b"), |_| true);
    assert!(cache.flush_stats().is_err());
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
}

#[test]
fn temporary_files_get_fresh_names_and_never_open_what_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let names: std::collections::HashSet<_> = (0..200)
        .map(|_| {
            let path = secure::write_temp(dir.path(), "t-", b"x").unwrap();
            assert_eq!(mode(&path), 0o600);
            path
        })
        .collect();
    assert_eq!(names.len(), 200);
    assert!(names
        .iter()
        .all(|p| p.file_name().unwrap().len() == "t-".len() + 32 + ".tmp".len()));
}

fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

#[test]
fn a_fifo_planted_as_an_entry_does_not_block_and_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(NodeCache::open(&config(dir.path(), 0, 1 << 30)).unwrap());
    let key = Key::for_node("fifo");
    cache.put(&key, &matrix(3, 0.0), SLOW);
    let path = entry_path(dir.path(), &key);
    fs::remove_file(&path).unwrap();
    mkfifo(&path);
    let (done, finished) = std::sync::mpsc::channel();
    let reader = Arc::clone(&cache);
    std::thread::spawn(move || {
        let found = reader.get(&key, |_| true).is_some();
        done.send(found).unwrap();
    });
    // Generous: a blocked open never returns; a working one takes microseconds.
    let found = finished
        .recv_timeout(Duration::from_secs(120))
        .expect("reading a FIFO entry blocked");
    assert!(!found);
    assert_eq!((cache.stats().corrupt, cache.stats().misses), (1, 1));
    assert!(fs::symlink_metadata(&path).is_err(), "the FIFO is removed");
    // Scans skip (and clear removes) whatever is not a regular file.
    mkfifo(&path);
    assert_eq!(NodeCache::summary(dir.path()).unwrap().entries, 0);
    assert_eq!(cache.clear().unwrap(), 0);
    assert!(fs::symlink_metadata(&path).is_err());
}

#[test]
fn a_link_planted_as_an_entry_is_not_followed() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("cache");
    let cache = NodeCache::open(&config(&dir, 0, 1 << 30)).unwrap();
    let (a, b) = (Key::for_node("a"), Key::for_node("b"));
    cache.put(&a, &matrix(3, 0.0), SLOW);
    // Outside the cache, a copy of a valid entry with an old timestamp.
    let victim = base.path().join("victim");
    fs::copy(entry_path(&dir, &a), &victim).unwrap();
    let long_ago = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 30);
    fs::File::options()
        .write(true)
        .open(&victim)
        .unwrap()
        .set_modified(long_ago)
        .unwrap();
    for key in [a, b] {
        let path = entry_path(&dir, &key);
        let _ = fs::remove_file(&path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        assert!(cache.get(&key, |_| true).is_none());
        assert!(fs::symlink_metadata(&path).is_err(), "the link is removed");
    }
    assert_eq!(cache.stats().corrupt, 2);
    assert_eq!(fs::metadata(&victim).unwrap().modified().unwrap(), long_ago);
}

#[test]
fn forged_and_old_format_entries_are_misses() {
    let dir = tempfile::tempdir().unwrap();
    let cache = NodeCache::open(&config(dir.path(), 0, 1 << 30)).unwrap();
    let key = Key::for_node("target");
    let forged = matrix(3, 666.0);
    // Someone who can write the directory but not read its secret: a guessed
    // key, and the checksum recomputed without a key as format 1 had it.
    let guessed = codec::encode(&Secret::new([0; 32]), &key, &forged);
    let mut unkeyed = guessed.clone();
    let plain = blake3::Hasher::new()
        .update(&unkeyed[..64])
        .update(&unkeyed[codec::HEADER_LEN..])
        .finalize();
    unkeyed[64..96].copy_from_slice(plain.as_bytes());
    let mut old_format = unkeyed.clone();
    old_format[4..6].copy_from_slice(&1u16.to_le_bytes());
    for bytes in [guessed, unkeyed, old_format] {
        let path = entry_path(dir.path(), &key);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, &bytes).unwrap();
        assert!(cache.get(&key, |_| true).is_none());
        assert!(!path.exists(), "removed");
    }
    assert_eq!(cache.stats().corrupt, 3);
    // A second cache on the directory shares its secret.
    cache.put(&key, &matrix(3, 1.0), SLOW);
    let other = NodeCache::open(&config(dir.path(), 0, 1 << 30)).unwrap();
    assert_eq!(
        as_matrix(other.get(&key, |_| true)),
        as_matrix(Some(matrix(3, 1.0)))
    );
}

#[test]
fn an_unsafe_secret_refuses_the_directory() {
    let base = tempfile::tempdir().unwrap();
    let dir = base.path().join("cache");
    NodeCache::open(&config(&dir, 0, 1 << 20)).unwrap();
    let secret = dir.join(secure::SECRET_FILE);
    let refused = |dir: &Path| match NodeCache::open(&config(dir, 0, 1 << 20)) {
        Err(RuntimeError::Cache(message)) => message,
        other => panic!("{:?}", other.map(|_| ())),
    };
    chmod(&secret, 0o644);
    assert!(refused(&dir).contains("mode 0644"), "{}", refused(&dir));
    chmod(&secret, 0o600);
    fs::write(&secret, b"short").unwrap();
    assert!(refused(&dir).contains("holds 5 bytes"));
    fs::remove_file(&secret).unwrap();
    let elsewhere = base.path().join("elsewhere");
    fs::write(&elsewhere, [1; 32]).unwrap();
    chmod(&elsewhere, 0o600);
    std::os::unix::fs::symlink(&elsewhere, &secret).unwrap();
    assert!(refused(&dir).contains("symbolic link"));
    fs::remove_file(&secret).unwrap();
    mkfifo(&secret);
    assert!(refused(&dir).contains("not a regular file"));
}

#[test]
fn concurrent_openers_of_a_new_directory_agree_on_one_secret() {
    for round in 0..20 {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("fresh");
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let dir = dir.clone();
                std::thread::spawn(move || {
                    let cache = NodeCache::open(&config(&dir, 0, 1 << 30)).unwrap();
                    let key = Key::for_node(&format!("{round}-{t}"));
                    cache.put(&key, &matrix(2, t as f64), SLOW);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let cache = NodeCache::open(&config(&dir, 0, 1 << 30)).unwrap();
        for t in 0..8 {
            let key = Key::for_node(&format!("{round}-{t}"));
            assert!(
                cache.get(&key, |_| true).is_some(),
                "round {round} thread {t}"
            );
        }
        assert_eq!(cache.stats().corrupt, 0);
        assert_eq!(fs::read_dir(dir.join("tmp")).unwrap().count(), 0);
    }
}
