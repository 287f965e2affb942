//! Command-line splitting and option parsing the way zkCli does it: quotes group words (`ARGS_PATTERN`),
//! and each command's options are parsed like commons-cli's `DefaultParser` (options may appear anywhere,
//! option values are the next word, negative numbers are arguments, unknown options are errors).

/// Splits a line into words as zkCli's `MyCommandOptions.parseCommand` does: a word is a run of
/// non-blanks, or a `"..."` / `'...'` quoted string whose quotes are stripped.
pub fn split_line(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let c = chars[i];
        if c == '"' || c == '\'' {
            if let Some(end) = chars[i + 1..].iter().position(|&d| d == c) {
                out.push(chars[i + 1..i + 1 + end].iter().collect());
                i += end + 2;
                continue;
            }
        }
        let start = i;
        i += 1;
        while i < chars.len() && !chars[i].is_whitespace() {
            i += 1;
        }
        out.push(chars[start..i].iter().collect());
    }
    out
}

/// One option a command accepts: its name (without the dash) and whether it takes a value.
#[derive(Clone, Copy, Debug)]
pub struct OptSpec {
    /// Name, e.g. `s` or `members`.
    pub name: &'static str,
    /// True when the next word is its value.
    pub takes_value: bool,
}

/// Shorthand for a flag.
pub const fn flag(name: &'static str) -> OptSpec {
    OptSpec {
        name,
        takes_value: false,
    }
}

/// Shorthand for an option with a value.
pub const fn valued(name: &'static str) -> OptSpec {
    OptSpec {
        name,
        takes_value: true,
    }
}

/// Parsed options and the remaining words (`args[0]` is the command, like zkCli's `cl.getArgs()`).
#[derive(Debug, Default, Clone)]
pub struct Parsed {
    /// Positional words, command first.
    pub args: Vec<String>,
    opts: Vec<(String, Option<String>)>,
}

impl Parsed {
    /// True when the option was given.
    pub fn has(&self, name: &str) -> bool {
        self.opts.iter().any(|(n, _)| n == name)
    }

    /// The value of the option (the last one given).
    pub fn value(&self, name: &str) -> Option<&str> {
        self.opts
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
    }
}

fn is_number(s: &str) -> bool {
    s.parse::<f64>().is_ok()
}

/// Parses `words` against `spec`; the error is commons-cli's message.
pub fn parse(words: &[String], spec: &[OptSpec]) -> Result<Parsed, String> {
    let mut out = Parsed::default();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        i += 1;
        if w == "--" {
            out.args.extend(words[i..].iter().cloned());
            break;
        }
        if w.len() > 1 && w.starts_with('-') && !is_number(w) {
            let name = w.trim_start_matches('-');
            // `-v5` style: a one-letter option with its value attached.
            let (name, attached) = match spec.iter().find(|o| o.name == name) {
                Some(_) => (name.to_string(), None),
                None => {
                    let first: String = name.chars().take(1).collect();
                    match spec.iter().find(|o| o.name == first && o.takes_value) {
                        Some(_) => (first.clone(), Some(name[first.len()..].to_string())),
                        None => return Err(format!("Unrecognized option: {w}")),
                    }
                }
            };
            let Some(o) = spec.iter().find(|o| o.name == name) else {
                return Err(format!("Unrecognized option: {w}"));
            };
            if o.takes_value {
                let value = match attached {
                    Some(v) => v,
                    None => {
                        if i >= words.len() {
                            return Err(format!("Missing argument for option: {}", o.name));
                        }
                        i += 1;
                        words[i - 1].clone()
                    }
                };
                out.opts.push((name, Some(value)));
            } else {
                out.opts.push((name, None));
            }
        } else {
            out.args.push(w.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        split_line(s)
    }

    /// Quoted words keep their blanks and lose their quotes, as in zkCli.
    #[test]
    fn split_like_zkcli() {
        assert_eq!(
            words(r#"set /a "hello world""#),
            vec!["set", "/a", "hello world"]
        );
        assert_eq!(words("  ls   /  "), vec!["ls", "/"]);
        assert_eq!(
            words("create /a 'x y' world:anyone:r"),
            vec!["create", "/a", "x y", "world:anyone:r"]
        );
    }

    /// Options anywhere, values taken from the next word, negative numbers are arguments.
    #[test]
    fn options_like_commons_cli() {
        let spec = [flag("s"), valued("v")];
        let p = parse(&words("set /a -1 -v 3 -s"), &spec).unwrap();
        assert_eq!(p.args, vec!["set", "/a", "-1"]);
        assert_eq!(p.value("v"), Some("3"));
        assert!(p.has("s"));
        assert_eq!(
            parse(&words("get -x /a"), &spec).unwrap_err(),
            "Unrecognized option: -x"
        );
        assert_eq!(
            parse(&words("set -v5 /a d"), &spec).unwrap().value("v"),
            Some("5")
        );
    }
}
