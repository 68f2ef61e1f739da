//! Just enough of Rust's lexical structure for the tidy checks: blanking comments and
//! literals (keeping line numbers), and finding a crate's name used as a path.

/// `src` with every comment and every string, byte-string and char literal replaced by
/// spaces (newlines kept, so line numbers stay right). With `keep_docs`, the text of doc
/// comments (`///`, `//!`, `/** */`, `/*! */`) is kept: their code blocks are doc tests.
pub(super) fn blank(src: &str, keep_docs: bool) -> String {
    let s: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    // Copies `s[from..to]` if `keep`, else blanks it (newlines stay).
    let emit = |out: &mut String, from: usize, to: usize, keep: bool| {
        for &c in &s[from..to] {
            out.push(if keep || c == '\n' { c } else { ' ' });
        }
    };
    while i < s.len() {
        let c = s[i];
        let next = s.get(i + 1).copied();
        let ident_before = i > 0 && is_ident(s[i - 1]);
        if c == '/' && next == Some('/') {
            let end = s[i..]
                .iter()
                .position(|&c| c == '\n')
                .map_or(s.len(), |p| i + p);
            let doc = matches!(s.get(i + 2), Some('!'))
                || (s.get(i + 2) == Some(&'/') && s.get(i + 3) != Some(&'/'));
            emit(&mut out, i, end, keep_docs && doc);
            i = end;
        } else if c == '/' && next == Some('*') {
            let doc = matches!(s.get(i + 2), Some('!'))
                || (s.get(i + 2) == Some(&'*') && !matches!(s.get(i + 3), Some('*' | '/')));
            let mut depth = 0;
            let mut j = i;
            while j < s.len() {
                if s[j] == '/' && s.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 2;
                } else if s[j] == '*' && s.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            let end = j.min(s.len());
            emit(&mut out, i, end, keep_docs && doc);
            i = end;
        } else if let Some(end) = (!ident_before).then(|| raw_string_end(&s, i)).flatten() {
            emit(&mut out, i, end, false);
            i = end;
        } else if c == '"' {
            let end = quoted_end(&s, i + 1, '"');
            emit(&mut out, i, end, false);
            i = end;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{1F600}') or a lifetime or label ('a, 'static).
            let end = if next == Some('\\') {
                quoted_end(&s, i + 1, '\'')
            } else if s.get(i + 2) == Some(&'\'') {
                i + 3
            } else {
                i + 1
            };
            emit(&mut out, i, end, end == i + 1);
            i = end;
        } else if is_ident(c) {
            // A whole identifier at once, so that `b"` inside `ab"` cannot start a literal.
            let end = s[i..]
                .iter()
                .position(|&c| !is_ident(c))
                .map_or(s.len(), |p| i + p);
            let prefixed = end - i <= 2 && matches!(s.get(end), Some('"' | '\''));
            if prefixed && matches!(&s[i..end], ['b'] | ['c']) {
                // The prefix of b"..", b'..' or c"..": blank prefix and literal together.
                let quote = s[end];
                let close = if quote == '\'' && s.get(end + 2) == Some(&'\'') {
                    end + 3
                } else {
                    quoted_end(&s, end + 1, quote)
                };
                emit(&mut out, i, close, false);
                i = close;
            } else {
                emit(&mut out, i, end, true);
                i = end;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The index after the closing `quote` of a literal whose body starts at `from`.
fn quoted_end(s: &[char], from: usize, quote: char) -> usize {
    let mut j = from;
    while j < s.len() {
        match s[j] {
            '\\' => j += 2,
            c if c == quote => return j + 1,
            _ => j += 1,
        }
    }
    s.len()
}

/// The end of a raw string (`r"..."`, `r#"..."#`, `br#".."#`, `cr".."`) starting at `i`.
fn raw_string_end(s: &[char], i: usize) -> Option<usize> {
    let mut j = i;
    if matches!(s.get(j), Some('b' | 'c')) {
        j += 1;
    }
    if s.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = s[j..].iter().take_while(|&&c| c == '#').count();
    j += hashes;
    if s.get(j) != Some(&'"') {
        return None;
    }
    j += 1;
    while j < s.len() {
        if s[j] == '"'
            && s[j + 1..]
                .iter()
                .take(hashes)
                .filter(|&&c| c == '#')
                .count()
                == hashes
        {
            return Some(j + 1 + hashes);
        }
        j += 1;
    }
    Some(s.len())
}

/// Whether blanked `code` uses the crate `name` (its identifier, `-` already `_`): as the
/// first segment of a path (`name::x`, `::name::x`), in `use name` or `extern crate name`.
pub(super) fn uses_crate(code: &str, name: &str) -> bool {
    code.match_indices(name).any(|(at, _)| {
        let before = &code[..at];
        let after = &code[at + name.len()..];
        if before.chars().next_back().is_some_and(is_ident)
            || after.chars().next().is_some_and(is_ident)
        {
            return false;
        }
        let before = before.trim_end();
        if let Some(path_head) = before.strip_suffix("::") {
            // `::name::x` names the crate; `a::name` is something inside `a`.
            let head = path_head.trim_end();
            let word = &head[head.trim_end_matches(is_ident).len()..];
            return word.is_empty() || KEYWORDS.contains(&word);
        }
        after.trim_start().starts_with("::")
            || ends_with_word(before, "use")
            || (ends_with_word(before, "crate")
                && ends_with_word(before[..before.len() - 5].trim_end(), "extern"))
    })
}

/// Keywords that can stand before a path starting with `::`.
const KEYWORDS: &[&str] = &[
    "use", "as", "dyn", "impl", "in", "return", "mut", "const", "static", "let", "else", "match",
    "if", "while", "for", "where", "move", "break",
];

/// Whether `s` ends with the whole word `word`.
fn ends_with_word(s: &str, word: &str) -> bool {
    s.strip_suffix(word)
        .is_some_and(|rest| !rest.chars().next_back().is_some_and(is_ident))
}

/// The 1-based line number of byte offset `at` of `text`.
pub(super) fn line_of(text: &str, at: usize) -> usize {
    text[..at].matches('\n').count() + 1
}

/// The byte offsets of `word` in blanked `code` as a whole word (not part of an identifier).
pub(super) fn word_offsets<'a>(code: &'a str, word: &'a str) -> impl Iterator<Item = usize> + 'a {
    code.match_indices(word).filter_map(move |(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + word.len()..].chars().next();
        (!before.is_some_and(is_ident) && !after.is_some_and(is_ident)).then_some(at)
    })
}

/// The identifier starting at byte `at` of `code` (empty if none).
pub(super) fn ident_at(code: &str, at: usize) -> &str {
    let rest = &code[at..];
    let end = rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len());
    &rest[..end]
}
