//! Rust source as tokens for the module graph: comments and literals out,
//! paths (including those spelled in strings, as serde's `with`) kept.

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    Punct(char),
    /// `::`
    Sep,
}

/// Tokens of `source` with their line numbers: comments dropped, string and
/// character literals dropped except strings that spell a path (serde's
/// `with = "crate::data::matrix_serde"`), whose segments are kept.
pub(crate) fn lex(source: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = source.chars().collect();
    let (mut i, mut line, mut out) = (0, 1, Vec::new());
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if c[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(c[i] == '\n');
                    i += 1;
                }
            }
        } else if ch == '"' || (ch == 'r' && (at(i + 1) == '"' || at(i + 1) == '#')) {
            let raw = ch == 'r';
            let mut hashes = 0;
            if raw {
                i += 1;
                while at(i) == '#' {
                    hashes += 1;
                    i += 1;
                }
                if at(i) != '"' {
                    // `r#ident`: a raw identifier, read as a plain one.
                    out.push((Tok::Ident("r".into()), line));
                    continue;
                }
            }
            i += 1;
            let (start, start_line) = (i, line);
            loop {
                if i >= c.len() {
                    break;
                }
                if !raw && c[i] == '\\' {
                    line += usize::from(at(i + 1) == '\n');
                    i += 2;
                    continue;
                }
                if c[i] == '"' && (0..hashes).all(|h| at(i + 1 + h) == '#') {
                    break;
                }
                line += usize::from(c[i] == '\n');
                i += 1;
            }
            let text: String = c[start..i.min(c.len())].iter().collect();
            i += 1 + hashes;
            if text.contains("::") && text.split("::").all(is_ident) {
                for (n, segment) in text.split("::").enumerate() {
                    if n > 0 {
                        out.push((Tok::Sep, start_line));
                    }
                    out.push((Tok::Ident(segment.into()), start_line));
                }
            }
        } else if ch == '\'' {
            if at(i + 1) == '\\' {
                // An escaped character literal (`'\''`, `'\u{..}'`): past the
                // escaped character, up to the closing quote.
                i += 3;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                // A lifetime: the quote goes, the name is read as an ident.
                i += 1;
            }
        } else if ch.is_alphanumeric() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(c[start..i].iter().collect()), line));
        } else if ch == ':' && at(i + 1) == ':' {
            out.push((Tok::Sep, line));
            i += 2;
        } else {
            out.push((Tok::Punct(ch), line));
            i += 1;
        }
    }
    out
}

pub(crate) fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}
