//! Exposes a hash of the runtime's source as `ACADEMY_ML_RUNTIME_SOURCE`: it
//! is part of every cache key, so results cached by one build of the runtime
//! are never served by another.

use std::hash::{DefaultHasher, Hasher};
use std::path::Path;
use std::{fs, io};

fn visit(dir: &Path, files: &mut Vec<std::path::PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            visit(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}

fn main() -> io::Result<()> {
    let mut files = Vec::new();
    visit(Path::new("src"), &mut files)?;
    files.sort();
    let mut hasher = DefaultHasher::new();
    for file in files {
        hasher.write(file.to_string_lossy().as_bytes());
        hasher.write(&fs::read(&file)?);
    }
    println!("cargo:rerun-if-changed=src");
    println!(
        "cargo:rustc-env=ACADEMY_ML_RUNTIME_SOURCE={:016x}",
        hasher.finish()
    );
    Ok(())
}
