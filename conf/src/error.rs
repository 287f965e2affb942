//! The configuration error type: every variant names the file, and the line and key when there is one,
//! so `outpost conf check` can print `zoo.cfg:12: tickTime: expected an integer, found "abc"`.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where a configured value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Not set anywhere: ZooKeeper's default (or a default derived from other keys).
    Default,
    /// Set in the static configuration file (zoo.cfg) at this line.
    File {
        /// The file, as given.
        path: PathBuf,
        /// 1-based line.
        line: u32,
    },
    /// Set in the dynamic configuration file at this line.
    DynamicFile {
        /// The file, as given.
        path: PathBuf,
        /// 1-based line.
        line: u32,
    },
}

impl Source {
    /// The file and line, when the value came from a file.
    pub fn location(&self) -> Option<(&Path, u32)> {
        match self {
            Source::Default => None,
            Source::File { path, line } | Source::DynamicFile { path, line } => Some((path, *line)),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => write!(f, "default"),
            Source::File { path, line } => write!(f, "{}:{line}", path.display()),
            Source::DynamicFile { path, line } => write!(f, "dynamic {}:{line}", path.display()),
        }
    }
}

/// Why a configuration was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Properties syntax (a malformed `\uXXXX` escape).
    #[error("{}:{line}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u32,
        /// What is wrong.
        message: String,
    },
    /// A key with a bad value.
    #[error("{}:{line}: {key}: {message}", path.display())]
    Value {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u32,
        /// The key, as written.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A key that must be set, or a problem with a key that has no single line (e.g. a default).
    #[error("{}: {key}: {message}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A problem with the configuration as a whole (e.g. observers but no voters).
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl ConfError {
    /// An error about `key` whose value came from `source`; defaults have no line, so they are
    /// reported against `fallback` (the zoo.cfg path).
    pub fn at(source: &Source, fallback: &Path, key: &str, message: impl Into<String>) -> Self {
        match source.location() {
            Some((path, line)) => ConfError::Value {
                path: path.to_path_buf(),
                line,
                key: key.to_string(),
                message: message.into(),
            },
            None => ConfError::Key {
                path: fallback.to_path_buf(),
                key: key.to_string(),
                message: message.into(),
            },
        }
    }
}

/// A non-fatal finding: an unknown key, a value ZooKeeper reads differently than it looks, a duplicate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Where (file and line), when known.
    pub source: Source,
    /// The key concerned, when there is one.
    pub key: Option<String>,
    /// The message.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.source, &self.key) {
            (Source::Default, Some(key)) => write!(f, "{key}: {}", self.message),
            (Source::Default, None) => write!(f, "{}", self.message),
            (source, Some(key)) => {
                let (path, line) = source.location().unwrap_or((Path::new(""), 0));
                write!(f, "{}:{line}: {key}: {}", path.display(), self.message)
            }
            (source, None) => {
                let (path, line) = source.location().unwrap_or((Path::new(""), 0));
                write!(f, "{}:{line}: {}", path.display(), self.message)
            }
        }
    }
}
