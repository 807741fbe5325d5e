//! A story's gist, for finding rewrites: the same story told in other words by another
//! newsroom. Two texts are one story when their meanings are close (the cosine of
//! their sentence embeddings) **and** the evidence that tells stories apart agrees:
//! they name the same people and places, their numbers do not conflict, and they were
//! published close together. Closeness of meaning alone cannot tell Monday's talks
//! from Wednesday's: those name the same people in the same words, so the numbers and
//! the dates decide (BENCHMARKS.md, "Rewrites of a story", measured each signal).
//!
//! The embedding comes from the `[semantic]` model; this module only keeps it
//! (quantised to one byte a dimension) beside the names and numbers it reads itself.

use chrono::{DateTime, Utc};

/// Names a gist keeps, in the order the text first mentions them (the title first).
pub const MAX_NAMES: usize = 16;
/// Numbers a gist keeps.
const MAX_NUMBERS: usize = 32;
/// Names two texts must share to be one story.
pub const MIN_SHARED_NAMES: usize = 2;
/// Of the numbers of the text that gives fewer, the share the other must give too.
const NUMBERS_AGREE: f32 = 0.8;
/// Published further apart than this, two texts are two stories (a follow-up).
const CLOSE_DATES: i64 = 36 * 60 * 60;

/// Capitalised words that name nothing: articles and the like at the start of a
/// clause, and days and months (a date, not a party to the story).
const NOT_NAMES: &[&str] = &[
    "a",
    "an",
    "and",
    "as",
    "at",
    "but",
    "by",
    "for",
    "from",
    "he",
    "her",
    "his",
    "i",
    "in",
    "it",
    "its",
    "of",
    "on",
    "or",
    "our",
    "she",
    "that",
    "the",
    "their",
    "these",
    "they",
    "this",
    "those",
    "to",
    "we",
    "with",
    "you",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// What a story says, in the terms that tell one story from another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gist {
    /// The embedding, scaled so that its largest component is ±127.
    vector: Vec<i8>,
    /// Hashes of the names it mentions (capitalised words past a sentence's first).
    names: Vec<u32>,
    /// Hashes of the numbers it gives, sorted.
    numbers: Vec<u32>,
    /// When it was published (Unix seconds), if it says.
    published: Option<i64>,
}

/// Why two gists are one story: how close their meanings are, and how many names
/// they share.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Likeness {
    pub similarity: f32,
    pub shared_names: usize,
}

impl Gist {
    /// The gist of the text `parts` (title, summary, content, article) whose embedding
    /// is `vector`; `None` when the model knew none of its words (a zero vector).
    pub fn new(vector: &[f32], parts: &[&str], published: Option<DateTime<Utc>>) -> Option<Gist> {
        let largest = vector.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        if largest == 0.0 || !largest.is_finite() {
            return None;
        }
        let vector = vector
            .iter()
            .map(|x| (x / largest * 127.0).round() as i8)
            .collect();
        let mut names = Vec::new();
        let mut numbers = Vec::new();
        for part in parts {
            read_part(part, &mut names, &mut numbers);
        }
        names.truncate(MAX_NAMES);
        numbers.sort_unstable();
        numbers.dedup();
        numbers.truncate(MAX_NUMBERS);
        Some(Gist {
            vector,
            names,
            numbers,
            published: published.map(|p| p.timestamp()),
        })
    }

    /// The cosine of the two embeddings (as kept).
    pub fn similarity(&self, other: &Gist) -> f32 {
        let dot = |a: &[i8], b: &[i8]| -> f32 {
            a.iter()
                .zip(b)
                .map(|(x, y)| i32::from(*x) * i32::from(*y))
                .sum::<i32>() as f32
        };
        if self.vector.len() != other.vector.len() {
            return 0.0;
        }
        let norms = (dot(&self.vector, &self.vector) * dot(&other.vector, &other.vector)).sqrt();
        if norms == 0.0 {
            0.0
        } else {
            dot(&self.vector, &other.vector) / norms
        }
    }

    /// How many names the two mention both.
    pub fn shared_names(&self, other: &Gist) -> usize {
        self.names
            .iter()
            .filter(|n| other.names.contains(n))
            .count()
    }

    /// Whether their numbers agree: the text that gives fewer numbers gives mostly
    /// numbers the other gives too (or one of them gives none).
    pub fn numbers_agree(&self, other: &Gist) -> bool {
        let fewer = self.numbers.len().min(other.numbers.len());
        if fewer == 0 {
            return true;
        }
        let shared = self
            .numbers
            .iter()
            .filter(|n| other.numbers.binary_search(n).is_ok())
            .count();
        shared as f32 >= NUMBERS_AGREE * fewer as f32
    }

    /// Whether they were published close together (or one does not say when).
    pub fn dates_close(&self, other: &Gist) -> bool {
        match (self.published, other.published) {
            (Some(a), Some(b)) => a.abs_diff(b) <= CLOSE_DATES as u64,
            _ => true,
        }
    }

    /// Whether `other` tells the same story as this one: meanings at `threshold` or
    /// closer, at least [`MIN_SHARED_NAMES`] names in common, numbers that agree and
    /// dates close together. How alike they are when so.
    pub fn same_story(&self, other: &Gist, threshold: f32) -> Option<Likeness> {
        let similarity = self.similarity(other);
        let shared_names = self.shared_names(other);
        let same = similarity >= threshold
            && shared_names >= MIN_SHARED_NAMES
            && self.numbers_agree(other)
            && self.dates_close(other);
        same.then_some(Likeness {
            similarity,
            shared_names,
        })
    }

    /// Keys to look its possible rewrites up by, one per name: two gists that share
    /// [`MIN_SHARED_NAMES`] keys are compared. Tagged so that they differ from a
    /// [`Sketch`](super::Sketch)'s bands.
    pub fn name_keys(&self) -> impl Iterator<Item = i64> + '_ {
        const TAG: i64 = 0x4e41_4d45 << 32;
        self.names.iter().map(|n| TAG | i64::from(*n))
    }

    /// Its [`name_keys`](Gist::name_keys) as a lookup takes them: always
    /// [`MAX_NAMES`], the first repeated where it has fewer; `None` when it names too
    /// few to be anything's rewrite.
    pub fn lookup_keys(&self) -> Option<[i64; MAX_NAMES]> {
        if self.names.len() < MIN_SHARED_NAMES {
            return None;
        }
        let mut keys = [0; MAX_NAMES];
        let mut names = self.name_keys();
        let first = names.next()?;
        keys.fill(first);
        for (key, name) in keys.iter_mut().skip(1).zip(names) {
            *key = name;
        }
        Some(keys)
    }

    /// The gist as bytes, to store: dimensions (u16), names (u8), numbers (u8),
    /// whether dated (u8), then the vector, the names, the numbers and the date.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(
            5 + self.vector.len() + 4 * (self.names.len() + self.numbers.len()) + 8,
        );
        bytes.extend((self.vector.len() as u16).to_le_bytes());
        bytes.push(self.names.len() as u8);
        bytes.push(self.numbers.len() as u8);
        bytes.push(u8::from(self.published.is_some()));
        bytes.extend(self.vector.iter().map(|x| *x as u8));
        for n in self.names.iter().chain(&self.numbers) {
            bytes.extend(n.to_le_bytes());
        }
        if let Some(at) = self.published {
            bytes.extend(at.to_le_bytes());
        }
        bytes
    }

    /// A gist stored with [`Gist::to_bytes`]; `None` for bytes of another shape.
    pub fn from_bytes(bytes: &[u8]) -> Option<Gist> {
        let (head, rest) = bytes.split_at_checked(5)?;
        let dims = usize::from(u16::from_le_bytes([head[0], head[1]]));
        let (names, numbers, dated) = (usize::from(head[2]), usize::from(head[3]), head[4]);
        let (vector, rest) = rest.split_at_checked(dims)?;
        let (hashes, rest) = rest.split_at_checked(4 * (names + numbers))?;
        let hashes: Vec<u32> = hashes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let published = match (dated, rest.len()) {
            (0, 0) => None,
            (1, 8) => Some(i64::from_le_bytes(rest.try_into().ok()?)),
            _ => return None,
        };
        Some(Gist {
            vector: vector.iter().map(|x| *x as i8).collect(),
            names: hashes[..names].to_vec(),
            numbers: hashes[names..].to_vec(),
            published,
        })
    }
}

/// Adds the names and numbers of `text` to `names` (first mention first, once each)
/// and `numbers`. A word is read as a name when it is capitalised and does not start a
/// sentence, a line or a quotation (where every word is capitalised).
fn read_part(text: &str, names: &mut Vec<u32>, numbers: &mut Vec<u32>) {
    for line in text.lines() {
        let mut first = true;
        for token in line.split_whitespace() {
            first |= token.starts_with(['"', '“', '‘', '\'', '(']);
            let word = token.trim_matches(|c: char| !c.is_alphanumeric());
            if word.starts_with(|c: char| c.is_ascii_digit()) {
                // "1,200" and "1200" are one number; "2.8" keeps its point.
                let number: String = word.chars().filter(|c| *c != ',').collect();
                numbers.push(fnv1a(&number));
            } else if let Some(part) = word.split(|c: char| !c.is_alphanumeric()).next()
                && !first
                && part.starts_with(char::is_uppercase)
            {
                let lower = part.to_lowercase();
                let hash = fnv1a(&lower);
                if !NOT_NAMES.contains(&lower.as_str()) && !names.contains(&hash) {
                    names.push(hash);
                }
            }
            let end = token.trim_end_matches(['"', '”', '’', '\'', ')']);
            first = word.is_empty() || end.ends_with(['.', '!', '?', ':', ';']);
        }
    }
}

/// FNV-1a, 32 bits: fixed, so a gist means the same to every instance and version.
fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gist(text: &str, hour: i64) -> Gist {
        let vector = [0.6, -0.8, 0.0];
        let at = DateTime::from_timestamp(hour * 3600, 0);
        Gist::new(&vector, &[text], at).expect("a gist")
    }

    #[test]
    fn names_are_capitalised_words_past_the_first_of_a_sentence() {
        let g = gist(
            "Talks resumed in Geneva on Monday. The envoy, Adaeze Nwosu, met Markovic's \
             team. \"They are Serious\" — Ostrian-built Dams",
            0,
        );
        let expected: Vec<u32> = ["geneva", "adaeze", "nwosu", "markovic", "serious", "dams"]
            .iter()
            .map(|n| fnv1a(n))
            .collect();
        assert_eq!(g.names, expected);
    }

    #[test]
    fn numbers_keep_their_point_and_lose_thousands_separators() {
        let a = gist("Water: 2.8 billion, and 1,200 farms.", 0);
        let b = gist("Water: 2.8 billion, and 1200 farms.", 0);
        assert_eq!(a.numbers, b.numbers);
        assert_eq!(a.numbers.len(), 2);
    }

    #[test]
    fn conflicting_numbers_or_distant_dates_make_two_stories() {
        let monday = gist(
            "In Geneva Ostria offers Marovia 2 billion cubic metres; 61 percent.",
            0,
        );
        let rewrite = gist(
            "At the Geneva talks, Marovia hears Ostria offer 2 billion.",
            5,
        );
        let raised = gist(
            "In Geneva Ostria raises its offer to Marovia to 3 billion; 58 percent.",
            5,
        );
        let later = gist(
            "In Geneva Ostria offers Marovia 2 billion cubic metres; 61 percent.",
            50,
        );
        let likeness = monday.same_story(&rewrite, 0.9).expect("one story");
        assert_eq!(likeness.shared_names, 3);
        assert!(monday.same_story(&raised, 0.9).is_none());
        assert!(monday.same_story(&later, 0.9).is_none());
    }

    #[test]
    fn lookup_keys_repeat_the_first_name_and_need_two() {
        let g = gist("Talks in Geneva with Ostria.", 0);
        let keys = g.lookup_keys().expect("two names");
        let names: Vec<i64> = g.name_keys().collect();
        assert_eq!(keys[..2], names[..]);
        assert!(keys[2..].iter().all(|k| *k == names[0]));
        assert_eq!(gist("Talks in Geneva.", 0).lookup_keys(), None);
    }

    #[test]
    fn one_shared_name_is_not_enough() {
        let a = gist("The talks with Ostria went on.", 0);
        let b = gist("The talks with Ostria and Marovia went on.", 0);
        assert_eq!(a.shared_names(&b), 1);
        assert!(a.same_story(&b, 0.5).is_none());
    }

    #[test]
    fn a_gist_survives_its_bytes() {
        let dated = gist("Marovia and Ostria, 2 billion and 2.8 billion.", 7);
        assert_eq!(Gist::from_bytes(&dated.to_bytes()), Some(dated.clone()));
        let undated =
            Gist::new(&[0.1, 0.2], &["Talks in Geneva with Ostria"], None).expect("a gist");
        assert_eq!(Gist::from_bytes(&undated.to_bytes()), Some(undated));
        let bytes = dated.to_bytes();
        assert_eq!(Gist::from_bytes(&bytes[..bytes.len() - 1]), None);
    }

    #[test]
    fn a_zero_vector_has_no_gist() {
        assert_eq!(Gist::new(&[0.0; 4], &["Geneva talks"], None), None);
    }
}
