//! The crate's module graph, read from its source: every `crate::`, `super::`,
//! `self::` and child-module path of every file under `src/` is an edge from
//! the file's module to the file module it names. The top-level modules sit
//! on floors and may only use floors below their own ([`FLOORS`]); no set of
//! file modules may use each other in a cycle; no source file reaches 700
//! lines. Test-only modules (`#[cfg(test)]`) are left out: they may reach
//! anywhere the code they test does.

#[path = "module_graph/lex.rs"]
mod lex;
#[path = "module_graph/read.rs"]
mod read;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use lex::lex;
use read::{module_of, read_file, Module};

/// Top-level modules and their floor: a module may use modules on lower
/// floors only (not its own floor's neighbours). The crate root (`lib.rs`)
/// only registers and sits above everything.
const FLOORS: &[(&str, u32)] = &[
    // The one error enum.
    ("error", 0),
    // Matrices, values, predictions, fitted-step state, their serde.
    ("data", 1),
    // Input checks and numeric helpers shared by ops and metrics.
    ("kernels", 2),
    // The node cache stores and loads data values; it knows no algorithm.
    ("cache", 2),
    // Estimators (fit / apply) and scorers.
    ("ops", 3),
    ("metrics", 3),
    // The plan: nodes naming ops and metrics, type-checked on data kinds.
    ("plan", 4),
    // The scheduler and op dispatch, reading and filling the cache.
    ("exec", 5),
    // PyO3 bindings (feature `python`).
    ("py", 6),
];

/// Longest source file allowed, in lines (the design's "split past ~700").
const MAX_LINES: usize = 700;

/// One use of another file module, for error messages.
#[derive(Debug, Clone)]
struct Edge {
    from: Module,
    to: Module,
    line: usize,
    path: String,
}

/// The edges between file modules of the sources (`relative path -> text`),
/// test-only file modules left out.
fn edges(sources: &BTreeMap<String, String>) -> (BTreeSet<Module>, Vec<Edge>) {
    let modules: BTreeMap<Module, &String> = sources
        .iter()
        .map(|(path, text)| (module_of(path), text))
        .collect();
    let mut facts = BTreeMap::new();
    for (module, text) in &modules {
        let children = modules
            .keys()
            .filter(|m| m.len() == module.len() + 1 && m.starts_with(module))
            .map(|m| m.last().expect("a child has a name").clone())
            .collect();
        facts.insert(module.clone(), read_file(module, &children, &lex(text)));
    }
    let mut test_only = BTreeSet::new();
    for (module, fact) in &facts {
        for child in &fact.test_children {
            let mut path = module.clone();
            path.push(child.clone());
            test_only.insert(path);
        }
    }
    let shipped: BTreeSet<Module> = modules
        .keys()
        .filter(|m| !test_only.iter().any(|t| m.starts_with(t)))
        .cloned()
        .collect();
    let mut out = Vec::new();
    for (module, fact) in &facts {
        if !shipped.contains(module) {
            continue;
        }
        for (path, line, text) in &fact.paths {
            // The file module holding the named item: the longest known prefix.
            let to = (0..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|prefix| modules.contains_key(prefix));
            if let Some(to) = to.filter(|to| to != module) {
                out.push(Edge {
                    from: module.clone(),
                    to,
                    line: *line,
                    path: text.clone(),
                });
            }
        }
    }
    (shipped, out)
}

fn name(module: &Module) -> String {
    if module.is_empty() {
        "crate".into()
    } else {
        module.join("::")
    }
}

/// Edges that go up or sideways between floors, or leave a known floor.
fn floor_violations(edges: &[Edge]) -> Vec<String> {
    let floor = |m: &Module| match m.first() {
        None => Ok(u32::MAX),
        Some(top) => FLOORS
            .iter()
            .find(|(name, _)| name == top)
            .map(|f| f.1)
            .ok_or_else(|| format!("top-level module `{top}` is on no floor (add it to FLOORS)")),
    };
    let mut out = BTreeSet::new();
    for edge in edges {
        if edge.from.first() == edge.to.first() {
            continue;
        }
        match (floor(&edge.from), floor(&edge.to)) {
            (Ok(from), Ok(to)) if to < from => {}
            (Ok(_), Ok(_)) => {
                out.insert(format!(
                    "{} (line {}) uses `{}`: {} is not on a floor below {}",
                    name(&edge.from),
                    edge.line,
                    edge.path,
                    name(&edge.to[..1].to_vec()),
                    name(&edge.from[..1].to_vec()),
                ));
            }
            (Err(e), _) | (_, Err(e)) => {
                out.insert(e);
            }
        }
    }
    out.into_iter().collect()
}

/// Every cycle's members, as `a -> b -> ... -> a` with the lines that make it.
fn cycles(modules: &BTreeSet<Module>, edges: &[Edge]) -> Vec<String> {
    let mut next: BTreeMap<&Module, BTreeMap<&Module, &Edge>> = BTreeMap::new();
    for edge in edges {
        next.entry(&edge.from)
            .or_default()
            .entry(&edge.to)
            .or_insert(edge);
    }
    // Depth-first search; a grey node met again closes a cycle.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        White,
        Grey,
        Black,
    }
    let mut mark: BTreeMap<&Module, Mark> = modules.iter().map(|m| (m, Mark::White)).collect();
    let mut found = Vec::new();
    fn visit<'m>(
        node: &'m Module,
        next: &BTreeMap<&'m Module, BTreeMap<&'m Module, &'m Edge>>,
        mark: &mut BTreeMap<&'m Module, Mark>,
        stack: &mut Vec<&'m Edge>,
        found: &mut Vec<String>,
    ) {
        mark.insert(node, Mark::Grey);
        for (&to, &edge) in next.get(node).into_iter().flatten() {
            match mark.get(to).copied().unwrap_or(Mark::Black) {
                Mark::White => {
                    stack.push(edge);
                    visit(to, next, mark, stack, found);
                    stack.pop();
                }
                Mark::Grey => {
                    let start = stack
                        .iter()
                        .position(|e| e.from == *to)
                        .unwrap_or(stack.len());
                    let ring: Vec<String> = stack[start..]
                        .iter()
                        .copied()
                        .chain([edge])
                        .map(|e| format!("{} (line {}: `{}`)", name(&e.from), e.line, e.path))
                        .collect();
                    found.push(format!("{} -> {}", ring.join(" -> "), name(to)));
                }
                Mark::Black => {}
            }
        }
        mark.insert(node, Mark::Black);
    }
    for module in modules {
        if mark[module] == Mark::White {
            visit(module, &next, &mut mark, &mut Vec::new(), &mut found);
        }
    }
    found
}

/// `(relative path, text)` of every `.rs` file below `dir`.
fn read_tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).expect("readable source tree") {
            let path = entry.expect("readable entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(root).expect("below the root");
                let relative = relative.to_string_lossy().replace('\\', "/");
                let text = std::fs::read_to_string(&path).expect("UTF-8 source");
                out.insert(relative, text);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn top_level_modules_only_use_lower_floors() {
    let sources = read_tree(&crate_dir().join("src"));
    let (_, edges) = edges(&sources);
    assert!(edges.len() > 50, "too few edges read: {}", edges.len());
    let violations = floor_violations(&edges);
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn no_module_cycle_among_file_modules() {
    let sources = read_tree(&crate_dir().join("src"));
    let (modules, edges) = edges(&sources);
    let found = cycles(&modules, &edges);
    assert!(found.is_empty(), "module cycles:\n{}", found.join("\n"));
}

#[test]
fn every_source_file_is_under_the_line_limit() {
    let mut long = Vec::new();
    for dir in ["src", "tests"] {
        for (path, text) in read_tree(&crate_dir().join(dir)) {
            let lines = text.lines().count();
            if lines >= MAX_LINES {
                long.push(format!("{dir}/{path}: {lines} lines"));
            }
        }
    }
    assert!(
        long.is_empty(),
        "files of {MAX_LINES}+ lines:\n{}",
        long.join("\n")
    );
}

fn tree(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    files
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect()
}

#[test]
fn reads_groups_children_super_and_serde_paths() {
    let sources = tree(&[
        ("lib.rs", "pub mod data; pub mod ops; mod error;"),
        ("error.rs", ""),
        ("data/mod.rs", "pub mod matrix; pub use matrix::Matrix;"),
        ("data/matrix.rs", "use crate::error::{self, Result};"),
        (
            "ops/mod.rs",
            "mod a; mod b;\nfn f() { a::run() }\n#[derive(Serialize)] struct S { #[serde(with = \"crate::data::matrix\")] m: M }",
        ),
        ("ops/a.rs", "use super::b::{x, y as z};\n// use crate::py::X;\nconst S: &str = \"see crate::py\";"),
        ("ops/b.rs", "fn g<'a>(c: char) -> bool { c == '{' || c == '\\'' }"),
    ]);
    let (_, edges) = edges(&sources);
    let mut got: Vec<String> = edges
        .iter()
        .map(|e| format!("{} -> {}", name(&e.from), name(&e.to)))
        .collect();
    got.sort();
    got.dedup();
    assert_eq!(
        got,
        [
            "data -> data::matrix",
            "data::matrix -> error",
            "ops -> data::matrix",
            "ops -> ops::a",
            "ops::a -> ops::b",
        ]
    );
}

#[test]
fn finds_a_cycle_through_a_parent_and_skips_test_modules() {
    let sources = tree(&[
        ("lib.rs", "mod ops;"),
        (
            "ops/mod.rs",
            "mod knn;\n#[cfg(test)]\nmod tests;\npub struct Neighbors;\nfn f() { knn::search() }",
        ),
        (
            "ops/knn.rs",
            "use super::Neighbors;\n#[cfg(test)]\nmod t { use crate::ops::tests::*; }",
        ),
        ("ops/tests.rs", "use super::*; use crate::ops::knn::*;"),
    ]);
    let (modules, edges) = edges(&sources);
    assert!(!modules.contains(&vec!["ops".to_string(), "tests".to_string()]));
    let found = cycles(&modules, &edges);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with(
            "ops (line 5: `knn::search`) -> ops::knn (line 1: `super::Neighbors`) -> ops"
        ),
        "{}",
        found[0]
    );
}

#[test]
fn flags_upward_and_sideways_edges_and_unknown_modules() {
    let sources = tree(&[
        ("lib.rs", ""),
        ("data/mod.rs", "use crate::ops::Fitted;"),
        (
            "ops/mod.rs",
            "use crate::metrics::numpy_sum; use crate::data::Matrix;",
        ),
        ("metrics/mod.rs", "use crate::data::Prediction;"),
        ("extra.rs", "use crate::data::Matrix;"),
    ]);
    let (_, edges) = edges(&sources);
    let violations = floor_violations(&edges);
    assert_eq!(violations.len(), 3, "{violations:#?}");
    assert!(violations
        .iter()
        .any(|v| v.starts_with("data (line 1) uses `crate::ops::Fitted`")));
    assert!(violations
        .iter()
        .any(|v| v.starts_with("ops (line 1) uses `crate::metrics::numpy_sum`")));
    assert!(violations
        .iter()
        .any(|v| v.contains("`extra` is on no floor")));
}
