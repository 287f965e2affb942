//! Znode path rules and helpers: ZooKeeper's `PathUtils.validatePath` reproduced exactly (including its
//! error messages and UTF-16 character positions), plus `parent`, `basename` and `join`.
//!
//! Paths are plain `&str` here; this module does not intern or own them. Read requests only reject NUL
//! (a lookup of an invalid path simply finds nothing), so callers choose when to apply [`validate`].

/// Why a path is invalid; `Display` gives the message Java's `IllegalArgumentException` carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError(pub String);

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PathError {}

/// True for the UTF-16 code units `PathUtils.validatePath` rejects (besides NUL): C0 controls, DEL and the
/// C1 controls, surrogates and the private-use area, and U+FFF0..=U+FFFF.
fn is_forbidden_unit(c: u16) -> bool {
    (c > 0x0000 && c <= 0x001f)
        || (0x007f..=0x009f).contains(&c)
        || (0xd800..=0xf8ff).contains(&c)
        || c >= 0xfff0
}

/// Validates a znode path exactly as `PathUtils.validatePath(String)` does.
///
/// Java walks the string as UTF-16 code units; so do we (characters outside the BMP become surrogate pairs,
/// which the D800..F8FF rule rejects, and the reported `@index` is a UTF-16 index, as in Java's message).
pub fn validate(path: &str) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(PathError("Path length must be > 0".into()));
    }
    let chars: Vec<u16> = path.encode_utf16().collect();
    if chars[0] != u16::from(b'/') {
        return Err(PathError("Path must start with / character".into()));
    }
    if chars.len() == 1 {
        return Ok(());
    }
    if chars[chars.len() - 1] == u16::from(b'/') {
        return Err(PathError("Path must not end with / character".into()));
    }
    let slash = u16::from(b'/');
    let dot = u16::from(b'.');
    let mut reason = None;
    let mut lastc = slash;
    for i in 1..chars.len() {
        let c = chars[i];
        // The branch order mirrors Java's if/else chain: a ".." component is checked before a "." one,
        // and the character-range check only runs for characters that are not '/' or '.'.
        if c == 0 {
            reason = Some(format!("null character not allowed @{i}"));
            break;
        } else if c == slash && lastc == slash {
            reason = Some(format!("empty node name specified @{i}"));
            break;
        } else if c == dot && lastc == dot {
            if chars[i - 2] == slash && (i + 1 == chars.len() || chars[i + 1] == slash) {
                reason = Some(format!("relative paths not allowed @{i}"));
                break;
            }
        } else if c == dot {
            if chars[i - 1] == slash && (i + 1 == chars.len() || chars[i + 1] == slash) {
                reason = Some(format!("relative paths not allowed @{i}"));
                break;
            }
        } else if is_forbidden_unit(c) {
            reason = Some(format!("invalid character @{i}"));
            break;
        }
        lastc = c;
    }
    match reason {
        None => Ok(()),
        Some(r) => Err(PathError(format!(
            "Invalid path string \"{path}\" caused by {r}"
        ))),
    }
}

/// `PathUtils.validatePath(path, isSequential)`: a sequential create is validated with a digit appended,
/// so a prefix ending in `/` (e.g. `/queue/`) is accepted.
pub fn validate_create(path: &str, sequential: bool) -> Result<(), PathError> {
    if sequential {
        validate(&format!("{path}1"))
    } else {
        validate(path)
    }
}

/// The parent as ZooKeeper computes it (`path.substring(0, path.lastIndexOf('/'))`): `""` for children of
/// the root, `None` when there is no `/` at all. The root `/` itself has parent `""`.
pub fn parent(path: &str) -> Option<&str> {
    path.rfind('/').map(|i| &path[..i])
}

/// The parent in client form: `/` for children of the root (what watch events use), `None` for the root
/// itself or a string without `/`.
pub fn parent_display(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match parent(path)? {
        "" => Some("/"),
        p => Some(p),
    }
}

/// The last component: text after the last `/` (the whole string when there is none; `""` for `/`).
pub fn basename(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// Joins a parent path and a child name; the root (`/` or `""`) joins as `/child`.
pub fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() || parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// Formats a sequential-node suffix as Java's `String.format(Locale.ENGLISH, "%010d", n)`: zero padded to
/// width 10, the sign counting toward the width (`-1` → `-000000001`).
pub fn sequence_suffix(n: i32) -> String {
    format!("{n:010}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Valid paths pass, including names with dots that are not whole "." or ".." components.
    #[test]
    fn valid_paths() {
        for p in [
            "/",
            "/a",
            "/a/b",
            "/a.b",
            "/..a",
            "/a..",
            "/...",
            "/a/.b",
            "/zookeeper/config",
            "/é",
        ] {
            assert_eq!(validate(p), Ok(()), "{p}");
        }
    }

    /// Each invalid shape fails with Java's exact message.
    #[test]
    fn invalid_paths_have_java_messages() {
        let cases = [
            ("", "Path length must be > 0"),
            ("a", "Path must start with / character"),
            ("/a/", "Path must not end with / character"),
            (
                "/a//b",
                "Invalid path string \"/a//b\" caused by empty node name specified @3",
            ),
            (
                "/a/./b",
                "Invalid path string \"/a/./b\" caused by relative paths not allowed @3",
            ),
            (
                "/a/..",
                "Invalid path string \"/a/..\" caused by relative paths not allowed @4",
            ),
            (
                "/.",
                "Invalid path string \"/.\" caused by relative paths not allowed @1",
            ),
            (
                "/a\0b",
                "Invalid path string \"/a\0b\" caused by null character not allowed @2",
            ),
            (
                "/a\u{1}",
                "Invalid path string \"/a\u{1}\" caused by invalid character @2",
            ),
            (
                "/a\u{7f}",
                "Invalid path string \"/a\u{7f}\" caused by invalid character @2",
            ),
            (
                "/\u{e000}",
                "Invalid path string \"/\u{e000}\" caused by invalid character @1",
            ),
            (
                "/\u{fff0}",
                "Invalid path string \"/\u{fff0}\" caused by invalid character @1",
            ),
            // An astral character is a surrogate pair in Java: rejected at its first unit.
            (
                "/x\u{1F600}",
                "Invalid path string \"/x\u{1F600}\" caused by invalid character @2",
            ),
        ];
        for (p, msg) in cases {
            assert_eq!(validate(p), Err(PathError(msg.to_string())), "{p:?}");
        }
    }

    /// Sequential creates validate with a digit appended, so a trailing `/` prefix is allowed.
    #[test]
    fn sequential_validation_appends_a_digit() {
        assert_eq!(validate_create("/q/", true), Ok(()));
        assert!(validate_create("/q/", false).is_err());
        assert!(validate_create("/q//", true).is_err());
    }

    /// parent/basename/join follow ZooKeeper's string arithmetic, with "" as the root's internal name.
    #[test]
    fn helpers() {
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(parent("/a"), Some(""));
        assert_eq!(parent("/"), Some(""));
        assert_eq!(parent("a"), None);
        assert_eq!(parent_display("/a"), Some("/"));
        assert_eq!(parent_display("/a/b"), Some("/a"));
        assert_eq!(parent_display("/"), None);
        assert_eq!(basename("/a/b"), "b");
        assert_eq!(basename("/"), "");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
    }

    /// Sequence suffixes match Java's `%010d`, negative values included.
    #[test]
    fn sequence_suffix_matches_java() {
        assert_eq!(sequence_suffix(7), "0000000007");
        assert_eq!(sequence_suffix(0), "0000000000");
        assert_eq!(sequence_suffix(-1), "-000000001");
        assert_eq!(sequence_suffix(i32::MAX), "2147483647");
        assert_eq!(sequence_suffix(i32::MIN), "-2147483648");
    }
}
