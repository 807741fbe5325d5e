//! BERT's tokenizer: its normaliser (clean, pad CJK ideographs, strip accents,
//! lowercase), its pre-tokeniser (split at whitespace and punctuation) and WordPiece
//! (greedy longest match, `##` for the rest of a word), as Hugging Face's `tokenizers`
//! does them, so that a model sees the ids it was trained on.

use std::collections::HashMap;

use serde::Deserialize;
use unicode_categories::UnicodeCategories;
use unicode_normalization::UnicodeNormalization;

use super::ModelError;

/// A WordPiece vocabulary with its normalisation settings.
#[derive(Debug)]
pub struct WordPiece {
    /// Whole words and word starts.
    starts: HashMap<Box<str>, u32>,
    /// Word continuations, without their `##` prefix.
    rests: HashMap<Box<str>, u32>,
    pub unk: u32,
    pub cls: Option<u32>,
    pub sep: Option<u32>,
    lowercase: bool,
    strip_accents: bool,
    chinese_chars: bool,
    clean_text: bool,
    max_word_chars: usize,
    /// The tokenizer's own cap on a sequence (with `[CLS]` and `[SEP]`), if it has one.
    pub truncation: Option<usize>,
    size: usize,
}

const PREFIX: &str = "##";

impl WordPiece {
    /// The tokenizer a `tokenizer.json` describes; only WordPiece with BERT's
    /// normaliser and pre-tokeniser is read.
    pub fn from_json(text: &str) -> Result<WordPiece, ModelError> {
        // The model's kind first (serde skips the rest quickly): other kinds'
        // vocabularies have other shapes.
        let peek: Peek = serde_json::from_str(text)
            .map_err(|e| ModelError::Tokenizer(format!("not a tokenizer.json: {e}")))?;
        if peek.model.kind != "WordPiece" {
            return Err(ModelError::Tokenizer(format!(
                "its model is {:?}; newshound reads WordPiece (BERT) tokenizers",
                peek.model.kind
            )));
        }
        let file: TokenizerFile = serde_json::from_str(text)
            .map_err(|e| ModelError::Tokenizer(format!("its WordPiece model: {e}")))?;
        let model = file.model;
        let normalizer = match file.normalizer {
            Some(n) if n.kind == "BertNormalizer" => n,
            Some(n) => {
                return Err(ModelError::Tokenizer(format!(
                    "its normalizer is {:?}; newshound reads BertNormalizer",
                    n.kind
                )));
            }
            // No normaliser: the text as it is.
            None => Normalizer {
                kind: String::new(),
                clean_text: false,
                handle_chinese_chars: false,
                strip_accents: Some(false),
                lowercase: false,
            },
        };
        WordPiece::new(
            model.vocab,
            model.unk_token.as_deref().unwrap_or("[UNK]"),
            normalizer,
            model.max_input_chars_per_word.unwrap_or(100),
            file.truncation.map(|t| t.max_length),
        )
    }

    fn new(
        vocab: HashMap<String, u32>,
        unk: &str,
        normalizer: Normalizer,
        max_word_chars: usize,
        truncation: Option<usize>,
    ) -> Result<WordPiece, ModelError> {
        let size = vocab.values().max().map_or(0, |&m| m as usize + 1);
        let id = |t: &str| vocab.get(t).copied();
        let unk = id(unk).ok_or_else(|| {
            ModelError::Tokenizer(format!("its vocabulary has no unknown token {unk:?}"))
        })?;
        let (cls, sep) = (id("[CLS]"), id("[SEP]"));
        let mut starts = HashMap::with_capacity(vocab.len());
        let mut rests = HashMap::new();
        for (token, id) in vocab {
            match token.strip_prefix(PREFIX) {
                Some(rest) if !rest.is_empty() => rests.insert(rest.into(), id),
                _ => starts.insert(token.into_boxed_str(), id),
            };
        }
        Ok(WordPiece {
            starts,
            rests,
            unk,
            cls,
            sep,
            lowercase: normalizer.lowercase,
            strip_accents: normalizer.strip_accents.unwrap_or(normalizer.lowercase),
            chinese_chars: normalizer.handle_chinese_chars,
            clean_text: normalizer.clean_text,
            max_word_chars,
            truncation,
            size,
        })
    }

    /// How many ids the vocabulary has.
    pub fn len(&self) -> usize {
        self.size
    }

    /// The ids of `text`, at most `limit` of them, without special tokens.
    pub fn encode(&self, text: &str, limit: usize) -> Vec<u32> {
        let mut ids = Vec::new();
        let mut word = String::new();
        let mut folded = String::new();
        for c in text.chars() {
            if ids.len() >= limit {
                break;
            }
            if c.is_ascii() {
                // The common case, without a trip through Unicode tables.
                if c.is_ascii_alphanumeric() {
                    word.push(if self.lowercase {
                        c.to_ascii_lowercase()
                    } else {
                        c
                    });
                } else if c.is_ascii_punctuation() {
                    self.word(&mut word, &mut ids);
                    self.word(&mut c.to_string(), &mut ids);
                } else if !(self.clean_text && c.is_ascii_control() && !is_space(c)) {
                    // Whitespace, or a control character left in by a tokenizer
                    // that does not clean text: either ends a word.
                    self.word(&mut word, &mut ids);
                }
                continue;
            }
            folded.clear();
            self.normalise(c, &mut folded);
            for c in folded.chars() {
                if c.is_whitespace() {
                    self.word(&mut word, &mut ids);
                } else if c.is_punctuation() || (self.chinese_chars && is_chinese(c)) {
                    self.word(&mut word, &mut ids);
                    self.word(&mut c.to_string(), &mut ids);
                } else {
                    word.push(c);
                }
            }
        }
        self.word(&mut word, &mut ids);
        ids.truncate(limit);
        ids
    }

    /// One non-ASCII character as the normaliser leaves it (none, one or more).
    fn normalise(&self, c: char, out: &mut String) {
        if self.clean_text && (c == '\u{fffd}' || (c.is_other() && !is_space(c))) {
            return;
        }
        let mut push = |c: char| {
            if self.lowercase {
                out.extend(c.to_lowercase());
            } else {
                out.push(c);
            }
        };
        if self.strip_accents {
            std::iter::once(c)
                .nfd()
                .filter(|c| !c.is_mark_nonspacing())
                .for_each(push);
        } else {
            push(c);
        }
    }

    /// Appends the pieces of `word` (emptied) to `ids`: the longest known start, then
    /// the longest known continuation, and so on; a word that cannot be split is
    /// unknown as a whole.
    fn word(&self, word: &mut String, ids: &mut Vec<u32>) {
        if word.is_empty() {
            return;
        }
        let before = ids.len();
        if word.chars().count() > self.max_word_chars {
            ids.push(self.unk);
            word.clear();
            return;
        }
        let mut start = 0;
        while start < word.len() {
            let table = if start == 0 {
                &self.starts
            } else {
                &self.rests
            };
            let rest = &word[start..];
            let found = rest
                .char_indices()
                .map(|(i, c)| i + c.len_utf8())
                .rev()
                .find_map(|end| table.get(&rest[..end]).map(|&id| (end, id)));
            match found {
                Some((end, id)) => {
                    ids.push(id);
                    start += end;
                }
                None => {
                    ids.truncate(before);
                    ids.push(self.unk);
                    break;
                }
            }
        }
        word.clear();
    }
}

/// Whitespace to BERT's normaliser: the Unicode kind, and tab, newline and return
/// (which are control characters but count as spaces).
fn is_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || c.is_whitespace()
}

/// CJK ideographs, each of which BERT makes a word of its own.
fn is_chinese(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF
        | 0x3400..=0x4DBF
        | 0x20000..=0x2A6DF
        | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F
        | 0x2B920..=0x2CEAF
        | 0xF900..=0xFAFF
        | 0x2F800..=0x2FA1F)
}

#[derive(Deserialize)]
struct Peek {
    model: PeekModel,
}

#[derive(Deserialize)]
struct PeekModel {
    #[serde(rename = "type", default)]
    kind: String,
}

#[derive(Deserialize)]
struct TokenizerFile {
    model: TokenizerModel,
    normalizer: Option<Normalizer>,
    truncation: Option<Truncation>,
}

#[derive(Deserialize)]
struct TokenizerModel {
    vocab: HashMap<String, u32>,
    unk_token: Option<String>,
    max_input_chars_per_word: Option<usize>,
}

#[derive(Deserialize)]
struct Truncation {
    max_length: usize,
}

#[derive(Deserialize)]
struct Normalizer {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default = "yes")]
    clean_text: bool,
    #[serde(default = "yes")]
    handle_chinese_chars: bool,
    strip_accents: Option<bool>,
    #[serde(default = "yes")]
    lowercase: bool,
}

fn yes() -> bool {
    true
}
