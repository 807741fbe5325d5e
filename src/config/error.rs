//! Config errors that say where: the file, the line and the key path.

use std::fmt;
use std::path::PathBuf;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A key path inside the config, like `rules[2].channels[0]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(Vec<Segment>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Segment {
    Key(String),
    Index(usize),
}

impl KeyPath {
    pub fn key(mut self, key: impl Into<String>) -> KeyPath {
        self.0.push(Segment::Key(key.into()));
        self
    }

    pub fn index(mut self, index: usize) -> KeyPath {
        self.0.push(Segment::Index(index));
        self
    }

    pub(super) fn segments(&self) -> &[Segment] {
        &self.0
    }

    pub(super) fn from_segments(segments: impl IntoIterator<Item = Segment>) -> KeyPath {
        KeyPath(segments.into_iter().collect())
    }

    pub fn from_serde(path: &serde_path_to_error::Path) -> KeyPath {
        use serde_path_to_error::Segment as S;
        path.iter().fold(KeyPath::default(), |p, seg| match seg {
            S::Seq { index } => p.index(*index),
            S::Map { key } => p.key(key.clone()),
            S::Enum { variant } => p.key(variant.clone()),
            S::Unknown => p,
        })
    }

    /// The 1-based line where this key (or the closest enclosing one) is written in `text`.
    pub fn line_in(&self, text: &str) -> Option<usize> {
        let table = DeTable::parse(text).ok()?;
        let span = table.span();
        let root = Spanned::new(span, DeValue::Table(table.into_inner()));
        let mut node = &root;
        let mut found = None;
        for seg in &self.0 {
            let next = match seg {
                Segment::Key(k) => node.get_ref().get(k.as_str()),
                Segment::Index(i) => node.get_ref().get(*i),
            };
            let Some(next) = next else { break };
            found = Some(next.span().start);
            node = next;
        }
        found.map(|offset| line_of(text, offset))
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Key(k) if i == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// The 1-based line number of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Where a config error was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A line of the config file.
    Line(usize),
    /// Not in the file: an environment override or a default.
    Environment,
    /// The file as a whole.
    File,
}

/// The config is unusable. Displayed as one line: file, line, key, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {reason} (pass --config or set NEWSHOUND_CONFIG)", .file.display())]
    Unreadable { file: PathBuf, reason: String },
    #[error("{}", Invalid::render(.0))]
    Invalid(Box<Invalid>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub file: PathBuf,
    pub origin: Origin,
    pub key: KeyPath,
    pub message: String,
}

impl Invalid {
    fn render(&self) -> String {
        let file = self.file.display();
        let key = if self.key.is_empty() {
            String::new()
        } else {
            format!("{}: ", self.key)
        };
        match self.origin {
            Origin::Line(line) => format!("{file}:{line}: {key}{}", self.message),
            Origin::Environment => format!(
                "{file}: {key}{} (set by a NEWSHOUND__ environment variable)",
                self.message
            ),
            Origin::File => format!("{file}: {key}{}", self.message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_line_of_nested_keys() {
        let text = "[daemon]\nstate_dir = \"x\"\n\n[[rules]]\nname = \"a\"\n\n[[rules]]\nname = \"b\"\nchannels = [\"me\",\n  \"you\"]\n";
        let path = KeyPath::default()
            .key("rules")
            .index(1)
            .key("channels")
            .index(1);
        assert_eq!(path.to_string(), "rules[1].channels[1]");
        assert_eq!(path.line_in(text), Some(10));
        let missing = KeyPath::default().key("rules").index(1).key("feeds");
        assert_eq!(
            missing.line_in(text),
            Some(7),
            "falls back to the enclosing table"
        );
    }
}
