//! Per-znode subjects: `<prefix>.node.<escaped path tokens>`, so a subscriber picks a subtree with NATS
//! wildcards (`outpost.node.app.config.>`).
//!
//! Each `/`-separated path component becomes one subject token. Bytes `A-Z a-z 0-9 - _` stay as they are;
//! every other byte of the component's UTF-8 (`.`, `*`, `>`, `%`, whitespace, control characters,
//! non-ASCII, any other punctuation) becomes `%XX` with two upper-case hex digits. An empty component (only
//! the root `/` has one) becomes the lone token `%`, which no escaped component can equal. The mapping is
//! reversible ([`unescape_token`]) and never yields `*`, `>`, `.`, whitespace or an empty token.

use std::fmt::Write;

/// Escapes one path component into a NATS subject token.
pub fn escape_token(component: &str) -> String {
    if component.is_empty() {
        return "%".to_string();
    }
    let mut out = String::with_capacity(component.len());
    for b in component.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Reverses [`escape_token`]; `None` when `token` is not an escaped component.
pub fn unescape_token(token: &str) -> Option<String> {
    if token == "%" {
        return Some(String::new());
    }
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = token.get(i + 1..i + 3)?;
                if !hex
                    .bytes()
                    .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c))
                {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    let s = String::from_utf8(out).ok()?;
    // Canonical form only: a byte that needs no escape must not have been escaped.
    (escape_token(&s) == token).then_some(s)
}

/// The escaped tokens of a znode path, dot-joined: `/app/db.url` gives `app.db%2Eurl`, `/` gives `%`.
pub fn path_tokens(path: &str) -> String {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    trimmed
        .split('/')
        .map(escape_token)
        .collect::<Vec<_>>()
        .join(".")
}

/// `<prefix>.node.<escaped path tokens>`.
pub fn node_subject(prefix: &str, path: &str) -> String {
    format!("{prefix}.node.{}", path_tokens(path))
}

/// The znode path of a per-node subject under `prefix`, or `None` when it is not one.
pub fn path_of_subject(prefix: &str, subject: &str) -> Option<String> {
    let rest = subject.strip_prefix(prefix)?.strip_prefix(".node.")?;
    let mut path = String::new();
    for token in rest.split('.') {
        let component = unescape_token(token)?;
        if component.is_empty() && rest != "%" {
            return None;
        }
        path.push('/');
        path.push_str(&component);
    }
    Some(path)
}

/// The subject filter for a subtree: `<prefix>.node.<tokens>.>` (the subtree's root itself has the
/// subject without `.>`; subscribe to both).
pub fn subtree_filter(prefix: &str, path: &str) -> String {
    if path == "/" {
        format!("{prefix}.node.>")
    } else {
        format!("{}.>", node_subject(prefix, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Characters NATS tokens cannot hold are escaped, and escaping round-trips.
    #[test]
    fn escaping_is_safe_and_reversible() {
        let cases = [
            ("", "%"),
            ("plain-Name_09", "plain-Name_09"),
            ("db.url", "db%2Eurl"),
            ("*", "%2A"),
            (">", "%3E"),
            ("a b\tc", "a%20b%09c"),
            ("100%", "100%25"),
            ("ü", "%C3%BC"),
            ("%", "%25"),
            ("lock-0000000001", "lock-0000000001"),
        ];
        for (component, token) in cases {
            assert_eq!(escape_token(component), token, "{component:?}");
            assert_eq!(
                unescape_token(token).as_deref(),
                Some(component),
                "{token:?}"
            );
        }
        for bad in ["%2", "%zz", "a.b", "%2e", "%41", "*"] {
            assert_eq!(unescape_token(bad), None, "{bad:?}");
        }
    }

    /// Every escaped token is a legal NATS subject token for any component (exhaustive over one or two
    /// bytes of printable and non-ASCII text), and distinct components give distinct tokens.
    #[test]
    fn tokens_are_legal_and_injective() {
        let mut seen = std::collections::HashMap::new();
        let alphabet: Vec<char> = (0x20u8..0x7f)
            .map(char::from)
            .chain(['é', '→', '\u{3000}', '\n'])
            .collect();
        let mut comps = vec![String::new()];
        for a in &alphabet {
            comps.push(a.to_string());
            for b in &alphabet {
                comps.push(format!("{a}{b}"));
            }
        }
        for c in comps {
            let t = escape_token(&c);
            assert!(!t.is_empty() && t != "*" && t != ">", "{c:?} -> {t:?}");
            assert!(
                !t.contains('.') && !t.chars().any(char::is_whitespace),
                "{c:?} -> {t:?}"
            );
            assert!(t.is_ascii(), "{c:?} -> {t:?}");
            assert_eq!(unescape_token(&t).as_deref(), Some(c.as_str()));
            if let Some(prev) = seen.insert(t.clone(), c.clone()) {
                panic!("{prev:?} and {c:?} both map to {t:?}");
            }
        }
    }

    /// Paths map to subjects under the prefix and back, the root included.
    #[test]
    fn paths_round_trip_through_subjects() {
        for path in ["/", "/app", "/app/config/db.url", "/a b/*/>", "/ü/x"] {
            let subject = node_subject("outpost", path);
            assert!(subject.starts_with("outpost.node."));
            assert_eq!(path_of_subject("outpost", &subject).as_deref(), Some(path));
        }
        assert_eq!(node_subject("outpost", "/"), "outpost.node.%");
        assert_eq!(node_subject("o", "/app/config"), "o.node.app.config");
        assert_eq!(subtree_filter("o", "/app/config"), "o.node.app.config.>");
        assert_eq!(path_of_subject("o", "o.log"), None);
    }
}
