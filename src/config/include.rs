//! `include = ["rules.d/*.toml"]`: more `[[feeds]]`, `[[rules]]`, `[[filters]]`,
//! `[lists]` and `[channels.*]` from other files, merged after the main file's own,
//! and where each merged entry came from, so an error names its file and line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::check::Checker;
use super::error::{Origin, Segment};
use super::raw::{RawChannel, RawConfig, RawFeed, RawFilter, RawRule};
use super::{ConfigError, KeyPath};

/// What an included file may hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPart {
    #[serde(default)]
    feeds: Vec<RawFeed>,
    #[serde(default)]
    rules: Vec<RawRule>,
    #[serde(default)]
    filters: Vec<RawFilter>,
    #[serde(default)]
    channels: BTreeMap<String, RawChannel>,
    #[serde(default)]
    lists: BTreeMap<String, Vec<String>>,
}

/// One `include` pattern: as written, and the folder it is relative to (the main
/// file's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    pub folder: PathBuf,
    pub pattern: String,
}

impl Include {
    pub(super) fn new(folder: &Path, pattern: &str) -> Include {
        let folder = match folder.as_os_str().is_empty() {
            true => Path::new("."),
            false => folder,
        };
        Include {
            folder: folder.to_owned(),
            pattern: pattern.to_owned(),
        }
    }

    /// The patterns the main config `file` names now, read without checking the rest
    /// of it: to follow them while the file as a whole is refused. None when the file
    /// cannot be read or is no TOML.
    pub fn of_file(file: &Path) -> Vec<Include> {
        let table = std::fs::read_to_string(file)
            .ok()
            .and_then(|text| text.parse::<toml::Table>().ok());
        let folder = file.parent().unwrap_or(Path::new("."));
        let patterns = table
            .as_ref()
            .and_then(|t| t.get("include"))
            .and_then(toml::Value::as_array);
        patterns
            .into_iter()
            .flatten()
            .filter_map(toml::Value::as_str)
            .map(|pattern| Include::new(folder, pattern))
            .collect()
    }

    /// The pattern from the folder: the folder's name is no pattern (`[1]` in it is
    /// not a character class).
    pub fn glob(&self) -> Result<glob::Pattern, glob::PatternError> {
        glob::Pattern::new(&self.full())
    }

    fn full(&self) -> String {
        match Path::new(&self.pattern).is_absolute() {
            true => self.pattern.clone(),
            false => {
                let folder = glob::Pattern::escape(&self.folder.to_string_lossy());
                format!("{}/{}", folder.trim_end_matches('/'), self.pattern)
            }
        }
    }

    /// The folder its files are looked for in (the deepest one the pattern names
    /// without a wildcard), and whether they may be further below it (`rules.d/*/x`,
    /// `**`).
    pub fn searched(&self) -> (PathBuf, bool) {
        let pattern = Path::new(&self.pattern).components().count();
        let fixed = self.literal();
        let below = pattern > self.literal_parts() + 1;
        match fixed.is_dir() {
            true => (fixed, below),
            false => (
                fixed.parent().map(Path::to_owned).unwrap_or_default(),
                below,
            ),
        }
    }

    /// The pattern up to its first part with a wildcard, from the folder: the path
    /// whose creation or removal may change what it matches.
    pub fn literal(&self) -> PathBuf {
        let parts = Path::new(&self.pattern)
            .components()
            .take(self.literal_parts());
        self.folder.join(parts.collect::<PathBuf>())
    }

    fn literal_parts(&self) -> usize {
        Path::new(&self.pattern)
            .components()
            .take_while(|c| !c.as_os_str().to_string_lossy().contains(['*', '?', '[']))
            .count()
    }

    /// How files are matched: a hidden one (`.name`, `._name`) only where the pattern
    /// spells out its leading dot.
    pub const OPTIONS: glob::MatchOptions = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
}

/// Tables only the main file may hold: they set up the daemon as a whole.
const MAIN_ONLY: [&str; 5] = ["daemon", "smtp", "store", "semantic", "include"];

/// Where the entries of one array (`feeds`, say) sit: how many the main file holds,
/// and for each entry after those, its file (an index into `files`) and its index
/// there.
type Entries = (usize, Vec<(usize, usize)>);

/// The files `include` named, read, and where each entry they added sits.
#[derive(Debug, Default)]
pub(super) struct Included {
    /// Each file with its text, in the order read.
    files: Vec<(PathBuf, String)>,
    /// For `feeds`, `rules` and `filters`: where their entries sit.
    arrays: BTreeMap<&'static str, Entries>,
    /// For `channels` and `lists`: the file each name added by an included file is in.
    tables: BTreeMap<(&'static str, String), usize>,
}

impl Included {
    /// The included file holding the entry `key` is about, with the key as that file
    /// spells it; `None` for the main file.
    pub(super) fn locate(&self, key: &KeyPath) -> Option<(&Path, &str, KeyPath)> {
        let (top, second, rest) = match key.segments() {
            [Segment::Key(top), second, rest @ ..] => (top.as_str(), second, rest),
            _ => return None,
        };
        let (file, local) = match second {
            Segment::Index(i) => {
                let (main, places) = self.arrays.get(top)?;
                let (file, local) = *places.get(i.checked_sub(*main)?)?;
                (file, Segment::Index(local))
            }
            Segment::Key(name) => {
                let file = *self
                    .tables
                    .iter()
                    .find_map(|((table, n), file)| (*table == top && n == name).then_some(file))?;
                (file, second.clone())
            }
        };
        let (path, text) = &self.files[file];
        let local = [Segment::Key(top.to_owned()), local]
            .into_iter()
            .chain(rest.iter().cloned());
        Some((path, text, KeyPath::from_segments(local)))
    }

    /// The files read, in order.
    pub(super) fn files(&self) -> Vec<PathBuf> {
        self.files.iter().map(|(path, _)| path.clone()).collect()
    }
}

impl Checker<'_> {
    /// Reads the files `raw.include` names (each pattern relative to the main file's
    /// folder, its matches sorted; a file matched twice, or the main file, is read
    /// once) and adds what they hold to `raw`, after the main file's own entries.
    pub(super) fn read_includes(&self, raw: &mut RawConfig) -> Result<Included, ConfigError> {
        let mut included = Included::default();
        included
            .arrays
            .insert("feeds", (raw.feeds.len(), Vec::new()));
        included
            .arrays
            .insert("rules", (raw.rules.len(), Vec::new()));
        included
            .arrays
            .insert("filters", (raw.filters.len(), Vec::new()));
        // A pattern like `*.toml` beside the main file matches it too: it is read once,
        // however the path to it is written (`./`, a link).
        let mut seen = std::collections::HashSet::from([same_file(self.file)]);
        for (i, pattern) in raw.include.clone().iter().enumerate() {
            let key = KeyPath::default().key("include").index(i);
            for path in self.matches(&key, pattern)? {
                if seen.insert(same_file(&path)) {
                    self.read_part(&mut included, raw, path)?;
                }
            }
        }
        Ok(included)
    }

    /// The files `pattern` matches, sorted.
    fn matches(&self, key: &KeyPath, pattern: &str) -> Result<Vec<PathBuf>, ConfigError> {
        let include = Include::new(self.file.parent().unwrap_or(Path::new(".")), pattern);
        let paths = glob::glob_with(&include.full(), Include::OPTIONS).map_err(|e| {
            self.invalid(
                key.clone(),
                format!("{pattern:?} is not a file pattern: {}", e.msg),
            )
        })?;
        let mut files = Vec::new();
        for path in paths {
            let path = path.map_err(|e| {
                self.invalid(
                    key.clone(),
                    format!("cannot read {}: {}", e.path().display(), e.error()),
                )
            })?;
            if path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        Ok(files)
    }

    /// Reads one included file into `raw`, noting where its entries sit.
    fn read_part(
        &self,
        included: &mut Included,
        raw: &mut RawConfig,
        path: PathBuf,
    ) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            self.invalid(
                KeyPath::default().key("include"),
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        let alone = Included::default();
        let part_checker = Checker {
            file: &path,
            text: &text,
            env: self.env,
            included: &alone,
        };
        if let Ok(table) = text.parse::<toml::Table>()
            && let Some(top) = MAIN_ONLY.iter().find(|k| table.contains_key(**k))
        {
            let what = match *top {
                "include" => "includes do not nest: list every pattern in".to_owned(),
                top => format!("[{top}] belongs in"),
            };
            return Err(part_checker.invalid(
                KeyPath::default().key(*top),
                format!(
                    "{what} the main config file, {}, not in an included one",
                    self.file.display()
                ),
            ));
        }
        let part: RawPart = part_checker.parse_as()?;
        let file = included.files.len();
        let clash = |table: &str, name: &String| {
            let key = KeyPath::default().key(table).key(name.clone());
            let first = self.place_in(included, &key);
            part_checker.invalid(
                key,
                format!("defined twice: here and at {first}; names must be unique"),
            )
        };
        if let Some(name) = part.channels.keys().find(|n| raw.channels.contains_key(*n)) {
            return Err(clash("channels", name));
        }
        if let Some(name) = part.lists.keys().find(|n| raw.lists.contains_key(*n)) {
            return Err(clash("lists", name));
        }
        for name in part.channels.keys() {
            included.tables.insert(("channels", name.clone()), file);
        }
        for name in part.lists.keys() {
            included.tables.insert(("lists", name.clone()), file);
        }
        raw.channels.extend(part.channels);
        raw.lists.extend(part.lists);
        for (name, len) in [
            ("feeds", part.feeds.len()),
            ("rules", part.rules.len()),
            ("filters", part.filters.len()),
        ] {
            let places = &mut included
                .arrays
                .get_mut(name)
                .expect("every array is noted")
                .1;
            places.extend((0..len).map(|i| (file, i)));
        }
        raw.feeds.extend(part.feeds);
        raw.rules.extend(part.rules);
        raw.filters.extend(part.filters);
        included.files.push((path, text));
        Ok(())
    }

    /// Where the entry at `key` is written: `key (file:line)`, in whichever file
    /// holds it.
    pub(super) fn place(&self, key: &KeyPath) -> String {
        self.place_in(self.included, key)
    }

    /// [`Checker::place`], with the entries of included files placed by `included`.
    fn place_in(&self, included: &Included, key: &KeyPath) -> String {
        let (file, text, local) = match included.locate(key) {
            Some(found) => found,
            None => (self.file, self.text, key.clone()),
        };
        match local.line_in(text) {
            Some(line) => format!("{} ({}:{line})", local, file.display()),
            None => format!("{} ({})", local, file.display()),
        }
    }

    /// Where an error about `key` is: its file, and the line when the key is written
    /// there.
    pub(super) fn origin_of(&self, key: KeyPath) -> (PathBuf, Origin, KeyPath) {
        let (file, text, key) = match self.included.locate(&key) {
            Some((file, text, local)) => (file, text, local),
            None => (self.file, self.text, key),
        };
        let origin = match key.line_in(text) {
            Some(line) => Origin::Line(line),
            None => Origin::Environment,
        };
        (file.to_owned(), origin, key)
    }
}

/// A file's path as the file system resolves it, to tell that two paths name one
/// file; the path as given when it cannot be resolved.
fn same_file(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}
