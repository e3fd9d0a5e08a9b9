//! The paths a file uses, resolved to absolute module paths: `crate::`,
//! `super::`, `self::` and child-module paths, `use` trees included;
//! `#[cfg(test)]` modules and uses left out.

use std::collections::BTreeSet;

use super::lex::Tok;

/// A file module: its path below the crate root (`[]` for `lib.rs`).
pub(crate) type Module = Vec<String>;

/// The file module of a path below `src/`.
pub(crate) fn module_of(relative: &str) -> Module {
    let mut parts: Module = relative
        .trim_end_matches(".rs")
        .split('/')
        .map(String::from)
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// What one file says about the graph.
#[derive(Default)]
pub(crate) struct FileFacts {
    /// Paths used outside test-only code: (resolved path, line, as written).
    pub(crate) paths: Vec<(Module, usize, String)>,
    /// Child file modules declared under `#[cfg(test)]`.
    pub(crate) test_children: Vec<String>,
}

/// An open inline module: its full path, the brace depth inside it, and
/// whether it is test-only.
pub(crate) struct Scope {
    path: Module,
    depth: usize,
    test: bool,
}

/// Reads the paths `tokens` (of the file module `module`, whose child file
/// modules are `children`) use, resolved to absolute module paths.
pub(crate) fn read_file(
    module: &Module,
    children: &BTreeSet<String>,
    tokens: &[(Tok, usize)],
) -> FileFacts {
    let mut facts = FileFacts::default();
    let mut scopes = vec![Scope {
        path: module.clone(),
        depth: 0,
        test: false,
    }];
    let (mut depth, mut pending_test, mut i) = (0usize, false, 0usize);
    let ident = |i: usize| match tokens.get(i) {
        Some((Tok::Ident(s), _)) => Some(s.as_str()),
        _ => None,
    };
    let is = |i: usize, t: &Tok| tokens.get(i).map(|x| &x.0) == Some(t);
    while i < tokens.len() {
        let scope = scopes.last().expect("the file scope stays");
        let in_test = scope.test;
        match &tokens[i].0 {
            Tok::Punct('#') if is(i + 1, &Tok::Punct('[')) => {
                // An attribute: note `cfg(test)`, read the paths it names
                // (`#[serde(with = "crate::data::matrix_serde")]`).
                let mut j = i + 2;
                let mut level = 1;
                let mut words = Vec::new();
                while j < tokens.len() && level > 0 {
                    match &tokens[j].0 {
                        Tok::Punct('[') => level += 1,
                        Tok::Punct(']') => level -= 1,
                        Tok::Ident(s) if is(j + 1, &Tok::Sep) && !is(j - 1, &Tok::Sep) => {
                            let base = scope.path.clone();
                            j = read_path(
                                tokens,
                                j,
                                &base,
                                Vec::new(),
                                &mut |resolved, line, text| {
                                    if !in_test {
                                        facts.paths.push((resolved, line, text));
                                    }
                                },
                            );
                            words.push(s.as_str());
                            continue;
                        }
                        Tok::Ident(s) => words.push(s.as_str()),
                        _ => {}
                    }
                    j += 1;
                }
                if words == ["cfg", "test"] {
                    pending_test = true;
                }
                i = j;
                continue;
            }
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth -= 1;
                if scopes.len() > 1 && scopes.last().is_some_and(|s| s.depth > depth) {
                    scopes.pop();
                }
            }
            Tok::Ident(word) if word == "mod" => {
                let name = ident(i + 1).unwrap_or_default().to_string();
                if is(i + 2, &Tok::Punct('{')) {
                    let mut path = scope.path.clone();
                    path.push(name);
                    depth += 1;
                    scopes.push(Scope {
                        path,
                        depth,
                        test: in_test || pending_test,
                    });
                    pending_test = false;
                    i += 3;
                    continue;
                }
                if pending_test || in_test {
                    facts.test_children.push(name);
                }
                pending_test = false;
                i += 2;
                continue;
            }
            Tok::Ident(word) if word == "use" && (pending_test || in_test) => {
                while i < tokens.len() && !is(i, &Tok::Punct(';')) {
                    i += 1;
                }
                pending_test = false;
                continue;
            }
            Tok::Ident(word)
                if is(i + 1, &Tok::Sep)
                    && (i == 0 || !is(i - 1, &Tok::Sep))
                    && (matches!(word.as_str(), "crate" | "super" | "self")
                        || (scope.path == *module && children.contains(word))) =>
            {
                let base = scope.path.clone();
                let end = read_path(tokens, i, &base, Vec::new(), &mut |resolved, line, text| {
                    if !in_test {
                        facts.paths.push((resolved, line, text));
                    }
                });
                pending_test = false;
                i = end;
                continue;
            }
            Tok::Ident(word) if matches!(word.as_str(), "pub" | "crate" | "in") => {}
            Tok::Punct('(' | ')') => {}
            _ => pending_test = false,
        }
        i += 1;
    }
    facts
}

/// Reads the path (or `use` tree) starting at token `i`, relative to module
/// `base` with the segments `prefix` already read; calls `found` with each
/// resolved path. Returns the index after the path.
pub(crate) fn read_path(
    tokens: &[(Tok, usize)],
    mut i: usize,
    base: &Module,
    mut prefix: Vec<String>,
    found: &mut dyn FnMut(Module, usize, String),
) -> usize {
    let line = tokens[i].1;
    loop {
        match tokens.get(i).map(|t| &t.0) {
            Some(Tok::Ident(s)) => prefix.push(s.clone()),
            Some(Tok::Punct('*')) => {
                i += 1;
                break;
            }
            Some(Tok::Punct('{')) => {
                i += 1;
                while !matches!(tokens.get(i).map(|t| &t.0), Some(Tok::Punct('}')) | None) {
                    if matches!(tokens[i].0, Tok::Punct(',')) {
                        i += 1;
                        continue;
                    }
                    if tokens[i].0 == Tok::Ident("self".into()) {
                        report(base, &prefix, line, found);
                        i += 1;
                        continue;
                    }
                    i = read_path(tokens, i, base, prefix.clone(), found);
                    // `a as b` inside a group.
                    if tokens.get(i).map(|t| &t.0) == Some(&Tok::Ident("as".into())) {
                        i += 2;
                    }
                }
                return i + 1;
            }
            _ => break,
        }
        i += 1;
        if tokens.get(i).map(|t| &t.0) != Some(&Tok::Sep) {
            break;
        }
        i += 1;
    }
    report(base, &prefix, line, found);
    i
}

/// Resolves `segments` (written in module `base`) to an absolute path.
pub(crate) fn report(
    base: &Module,
    segments: &[String],
    line: usize,
    found: &mut dyn FnMut(Module, usize, String),
) {
    let mut resolved = base.clone();
    for (n, segment) in segments.iter().enumerate() {
        match segment.as_str() {
            "crate" if n == 0 => resolved.clear(),
            "self" if n == 0 => {}
            "super" => {
                resolved.pop();
            }
            other => resolved.push(other.to_string()),
        }
    }
    found(resolved, line, segments.join("::"));
}
