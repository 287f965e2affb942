//! A small reader for Java `.properties` text, following `java.util.Properties.load(InputStream)`:
//! ISO-8859-1 bytes, `#`/`!` comment lines, `=`, `:` or blanks as the key/value separator, trailing
//! backslash continuations and `\t \n \r \f \uXXXX` escapes. Unlike `Properties`, it keeps every entry
//! in file order with the line it starts on, so errors can name a line and duplicates can be reported.

/// One `key=value` entry as `Properties.load` would store it (escapes resolved, value untrimmed at the end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The key, escapes resolved.
    pub key: String,
    /// The value, escapes resolved; leading blanks removed, trailing blanks kept (as Java does).
    pub value: String,
    /// 1-based line number of the line on which the entry starts.
    pub line: u32,
}

/// A syntax error in properties text: the only one Java reports is a malformed `\uXXXX` escape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based line number of the entry with the bad escape.
    pub line: u32,
    /// What is wrong.
    pub message: String,
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\x0c'
}

/// Decodes bytes as ISO-8859-1, as `Properties.load(InputStream)` does: every byte is one char.
pub fn decode_latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Splits text into natural lines (`\n`, `\r` or `\r\n` terminated) with their 1-based numbers.
fn natural_lines(text: &str) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut line_no: u32 = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' | '\n' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push((line_no, std::mem::take(&mut cur)));
                line_no += 1;
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push((line_no, cur));
    }
    out
}

/// True when the line ends in an odd number of backslashes (a continuation).
fn continues(line: &str) -> bool {
    line.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

/// Parses properties text into entries in file order.
pub fn parse(text: &str) -> Result<Vec<Entry>, SyntaxError> {
    let lines = natural_lines(text);
    let mut entries = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let (start_line, first) = &lines[i];
        i += 1;
        let trimmed = first.trim_start_matches(is_blank);
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('!') {
            // Comment lines never continue, even when they end in a backslash.
            continue;
        }
        // Build the logical line: drop the continuation backslash, strip leading blanks of the next line.
        let mut logical = trimmed.to_string();
        while continues(&logical) {
            logical.pop();
            match lines.get(i) {
                Some((_, next)) => {
                    logical.push_str(next.trim_start_matches(is_blank));
                    i += 1;
                }
                None => break,
            }
        }
        let (raw_key, raw_value) = split_key_value(&logical);
        let key = unescape(raw_key, *start_line)?;
        let value = unescape(raw_value, *start_line)?;
        entries.push(Entry {
            key,
            value,
            line: *start_line,
        });
    }
    Ok(entries)
}

/// Splits a logical line into its raw (still escaped) key and value.
fn split_key_value(line: &str) -> (&str, &str) {
    let mut key_end = line.len();
    let mut escaped = false;
    for (idx, c) in line.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
        } else if c == '=' || c == ':' || is_blank(c) {
            key_end = idx;
            break;
        }
    }
    let key = &line[..key_end];
    let mut rest = line[key_end..].trim_start_matches(is_blank);
    if rest.starts_with('=') || rest.starts_with(':') {
        rest = rest[1..].trim_start_matches(is_blank);
    }
    (key, rest)
}

/// Resolves Java properties escapes: `\t \n \r \f`, `\uXXXX`, and `\x` meaning `x` for any other char.
fn unescape(raw: &str, line: u32) -> Result<String, SyntaxError> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = if hex.len() == 4 && hex.chars().all(|h| h.is_ascii_hexdigit()) {
                    u32::from_str_radix(&hex, 16).ok()
                } else {
                    None
                };
                match code {
                    // A lone surrogate (half of a UTF-16 pair) has no char; keep the replacement char.
                    Some(code) => out.push(char::from_u32(code).unwrap_or('\u{fffd}')),
                    None => {
                        return Err(SyntaxError {
                            line,
                            message: format!("malformed \\uxxxx encoding: \\u{hex}"),
                        })
                    }
                }
            }
            Some(other) => out.push(other),
            // A trailing lone backslash (continuation at end of file) is dropped, as Java does.
            None => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(text: &str) -> Vec<(String, String, u32)> {
        parse(text)
            .expect("parses")
            .into_iter()
            .map(|e| (e.key, e.value, e.line))
            .collect()
    }

    /// The three separators, blanks around them, and comments with `#` and `!` behave as in Java.
    #[test]
    fn separators_and_comments() {
        let got = kv("# c\n! c\n  a=1\nb : 2\nc 3\nd\t=\t4 \n\n e:\n");
        assert_eq!(
            got,
            vec![
                ("a".into(), "1".into(), 3),
                ("b".into(), "2".into(), 4),
                ("c".into(), "3".into(), 5),
                ("d".into(), "4 ".into(), 6),
                ("e".into(), "".into(), 8),
            ]
        );
    }

    /// A trailing backslash joins the next line with its leading blanks removed; the entry keeps its first line.
    #[test]
    fn continuation_lines() {
        let got = kv("x=1\nk = a,\\\n    b,\\\n  c\ny=2\n");
        assert_eq!(got[1], ("k".into(), "a,b,c".into(), 2));
        assert_eq!(got[2], ("y".into(), "2".into(), 5));
    }

    /// An even number of trailing backslashes is an escaped backslash, not a continuation.
    #[test]
    fn escaped_backslash_is_not_continuation() {
        let got = kv("k=a\\\\\nz=1\n");
        assert_eq!(got[0].1, "a\\");
        assert_eq!(got[1].0, "z");
    }

    /// Escapes in keys and values resolve, including escaped separators inside keys and `\uXXXX`.
    #[test]
    fn escapes() {
        let got = kv("a\\=b\\:c\\ d=v\\tw\\nx\\u0041\\q\n");
        assert_eq!(got[0].0, "a=b:c d");
        assert_eq!(got[0].1, "v\tw\nxAq");
    }

    /// A malformed `\u` escape is an error naming its line.
    #[test]
    fn malformed_unicode_escape() {
        let err = parse("a=1\nb=\\u12g4\n").expect_err("malformed");
        assert_eq!(err.line, 2);
    }

    /// A comment line ending in a backslash does not swallow the next line; CRLF and CR line ends count once.
    #[test]
    fn comment_continuation_and_line_ends() {
        let got = kv("# x \\\na=1\r\nb=2\rc=3");
        assert_eq!(
            got,
            vec![
                ("a".into(), "1".into(), 2),
                ("b".into(), "2".into(), 3),
                ("c".into(), "3".into(), 4)
            ]
        );
    }

    /// Bytes are ISO-8859-1: 0xE9 is 'é'.
    #[test]
    fn latin1_decoding() {
        assert_eq!(decode_latin1(b"a=\xe9"), "a=\u{e9}");
    }
}
