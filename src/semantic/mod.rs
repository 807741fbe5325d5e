//! Sentence embeddings on the CPU, with no network: the model that topic rules
//! (`about = "…"`) score items with.
//!
//! Three kinds of model, all turning a text into one normalised vector:
//! - the **builtin** table, compiled into the binary: a static (model2vec-style)
//!   table distilled from all-MiniLM-L6-v2 by `models/builtin/make.py`;
//! - a **model2vec directory** (`model.safetensors` with an `embeddings` table,
//!   `tokenizer.json`): the same arithmetic on someone else's table;
//! - a **BERT sentence-transformer directory** (`config.json` of a BERT model,
//!   `model.safetensors`, `tokenizer.json`, optionally `1_Pooling/config.json`), such
//!   as all-MiniLM-L6-v2 itself, run with candle.
//!
//! Loading reads files; embedding is pure computation, meant for a blocking thread.
//! [`shared`] keeps the last model loaded, so that reloading a config with the same
//! `[semantic] model` does not load it again.

mod bert;
mod table;
pub mod testing;
mod wordpiece;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Deserialize;

use bert::{Bert, BertConfig, Pooling};
use table::Table;
use wordpiece::WordPiece;

/// The builtin table and its tokenizer (see `models/builtin/`, a model2vec directory).
const BUILTIN_TABLE: &[u8] = include_bytes!("../../models/builtin/model.safetensors");
const BUILTIN_TOKENIZER: &str = include_str!("../../models/builtin/tokenizer.json");

/// `min_score` of a topic rule unless it says, for static models (the builtin one and
/// model2vec directories): the threshold at which the builtin table did best on the
/// labelled set in `tests/fixtures/topics` (see BENCHMARKS.md).
pub const STATIC_MIN_SCORE: f32 = 0.52;
/// `min_score` of a topic rule unless it says, for BERT sentence encoders: where
/// all-MiniLM-L6-v2 did best on the same set.
pub const BERT_MIN_SCORE: f32 = 0.37;
/// `daemon.rewrite_threshold` unless it says, for static models: the closeness of
/// meaning at which, on the labelled set in `tests/fixtures/stories`, meaning and
/// shared names alone merged rewrites with precision above 0.8 (see BENCHMARKS.md).
pub const STATIC_REWRITE_THRESHOLD: f32 = 0.9;
/// `daemon.rewrite_threshold` unless it says, for BERT sentence encoders.
pub const BERT_REWRITE_THRESHOLD: f32 = 0.8;

/// Which model `[semantic] model` names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Setting {
    Builtin,
    Directory(PathBuf),
}

/// Why a model could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("{0}: no such directory")]
    NoDirectory(PathBuf),
    #[error("{dir}: {file} is missing (a {kind} directory needs it)")]
    MissingFile {
        dir: PathBuf,
        file: &'static str,
        kind: &'static str,
    },
    #[error(
        "{0}: no model here that newshound can read; it reads a model2vec directory \
         (model.safetensors with an `embeddings` table, tokenizer.json) or a BERT \
         sentence-transformer (config.json with \"model_type\": \"bert\", \
         model.safetensors, tokenizer.json)"
    )]
    Unrecognised(PathBuf),
    #[error("{path}: {why}")]
    File { path: PathBuf, why: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("weights: {0}")]
    Weights(String),
}

impl ModelError {
    /// The error with the file it is about.
    fn at(self, path: &Path) -> ModelError {
        match self {
            ModelError::Tokenizer(why) | ModelError::Weights(why) => ModelError::File {
                path: path.to_owned(),
                why,
            },
            other => other,
        }
    }
}

/// What `check` says about a model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// `builtin`, or the directory.
    pub name: String,
    /// What kind of model it is, in words.
    pub kind: &'static str,
    pub dims: usize,
    /// Tokens in its vocabulary.
    pub vocabulary: usize,
    /// The most tokens of an item it reads.
    pub max_tokens: usize,
    pub load_time: Duration,
    /// Bytes its weights take in memory.
    pub bytes: usize,
    /// A topic rule's `min_score` unless it says.
    pub default_min_score: f32,
    /// `daemon.rewrite_threshold` unless it says.
    pub default_rewrite_threshold: f32,
}

/// A loaded embedding model.
pub struct Model {
    encoder: Encoder,
    tokenizer: WordPiece,
    info: ModelInfo,
}

enum Encoder {
    Table(Table),
    Bert {
        bert: Bert,
        pooling: Pooling,
        cls: u32,
        sep: u32,
    },
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("info", &self.info).finish()
    }
}

impl Model {
    /// The model `setting` names.
    pub fn load(setting: &Setting) -> Result<Model, ModelError> {
        let start = Instant::now();
        let mut model = match setting {
            Setting::Builtin => Model::builtin()?,
            Setting::Directory(dir) => Model::directory(dir)?,
        };
        model.info.load_time = start.elapsed();
        Ok(model)
    }

    fn builtin() -> Result<Model, ModelError> {
        let table = Table::from_static(BUILTIN_TABLE)?;
        let tokenizer = WordPiece::from_json(BUILTIN_TOKENIZER)?;
        Ok(Model::static_table(
            "builtin".into(),
            "static table distilled from all-MiniLM-L6-v2 (builtin)",
            table,
            tokenizer,
        ))
    }

    fn static_table(name: String, kind: &'static str, table: Table, tokenizer: WordPiece) -> Model {
        Model {
            info: ModelInfo {
                name,
                kind,
                dims: table.dims,
                vocabulary: tokenizer.len(),
                max_tokens: table::MAX_TOKENS,
                load_time: Duration::ZERO,
                bytes: table.bytes(),
                default_min_score: STATIC_MIN_SCORE,
                default_rewrite_threshold: STATIC_REWRITE_THRESHOLD,
            },
            encoder: Encoder::Table(table),
            tokenizer,
        }
    }

    fn directory(dir: &Path) -> Result<Model, ModelError> {
        if !dir.is_dir() {
            return Err(ModelError::NoDirectory(dir.to_owned()));
        }
        let config_path = dir.join("config.json");
        let bad_config = |e: serde_json::Error| ModelError::File {
            path: config_path.clone(),
            why: e.to_string(),
        };
        let config: Option<serde_json::Value> = read_optional(&config_path)?
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(bad_config)?;
        let bert_config: Option<BertConfig> = config
            .as_ref()
            .filter(|c| c.get("model_type").and_then(|t| t.as_str()) == Some("bert"))
            .map(|c| serde_json::from_value(c.clone()))
            .transpose()
            .map_err(bad_config)?;
        let kind = if bert_config.is_some() {
            "BERT sentence-transformer"
        } else {
            "model2vec"
        };
        let need = |file: &'static str| {
            let path = dir.join(file);
            match std::fs::read(&path) {
                Ok(bytes) => Ok((path, bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if bert_config.is_none() && !dir.join("model.safetensors").exists() {
                        Err(ModelError::Unrecognised(dir.to_owned()))
                    } else {
                        Err(ModelError::MissingFile {
                            dir: dir.to_owned(),
                            file,
                            kind,
                        })
                    }
                }
                Err(e) => Err(ModelError::File {
                    path,
                    why: e.to_string(),
                }),
            }
        };
        let (weights_path, weights) = need("model.safetensors")?;
        let (tokenizer_path, tokenizer) = need("tokenizer.json")?;
        let tokenizer = String::from_utf8(tokenizer)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))
            .and_then(|text| WordPiece::from_json(&text))
            .map_err(|e| e.at(&tokenizer_path))?;
        let name = dir.display().to_string();
        let Some(config) = bert_config else {
            let table = Table::from_safetensors(&weights).map_err(|e| match e {
                ModelError::Unrecognised(_) => ModelError::Unrecognised(dir.into()),
                e => e.at(&weights_path),
            })?;
            return Ok(Model::static_table(
                name,
                "static (model2vec)",
                table,
                tokenizer,
            ));
        };
        let pooling = read_pooling(dir)?;
        let weights_bytes = weights.len();
        let (Some(cls), Some(sep)) = (tokenizer.cls, tokenizer.sep) else {
            return Err(
                ModelError::Tokenizer("its vocabulary lacks [CLS] or [SEP]".into())
                    .at(&tokenizer_path),
            );
        };
        if tokenizer.len() > config.vocab_size {
            return Err(ModelError::Tokenizer(format!(
                "its vocabulary has {} tokens, the model {}",
                tokenizer.len(),
                config.vocab_size
            ))
            .at(&tokenizer_path));
        }
        let max_tokens = [
            Some(config.max_position_embeddings),
            tokenizer.truncation,
            read_max_seq_length(dir)?,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(config.max_position_embeddings);
        let bert = Bert::load(config, weights).map_err(|e| e.at(&weights_path))?;
        Ok(Model {
            info: ModelInfo {
                name,
                kind: "BERT sentence encoder",
                dims: bert.config.hidden_size,
                vocabulary: tokenizer.len(),
                max_tokens,
                load_time: Duration::ZERO,
                bytes: weights_bytes,
                default_min_score: BERT_MIN_SCORE,
                default_rewrite_threshold: BERT_REWRITE_THRESHOLD,
            },
            encoder: Encoder::Bert {
                bert,
                pooling,
                cls,
                sep,
            },
            tokenizer,
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The normalised vector of `text` (of its first `max_tokens` tokens); all zeros
    /// for a text with no known token, which is similar to nothing.
    pub fn embed(&self, text: &str) -> Vec<f32> {
        match &self.encoder {
            Encoder::Table(table) => table.embed(&self.tokenizer.encode(text, table::MAX_TOKENS)),
            Encoder::Bert {
                bert,
                pooling,
                cls,
                sep,
            } => {
                let mut ids = vec![*cls];
                ids.extend(
                    self.tokenizer
                        .encode(text, self.info.max_tokens.saturating_sub(2)),
                );
                ids.push(*sep);
                // Only an allocation failure can fail here: the ids were checked
                // against the vocabulary when the model was loaded.
                let mut vector = bert
                    .pooled(&ids, *pooling)
                    .unwrap_or_else(|_| vec![0.0; self.info.dims]);
                normalise(&mut vector);
                vector
            }
        }
    }
}

/// Scales `v` to length 1 (a zero vector stays zero).
fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// The model `setting` names, loaded once per process: the last one loaded is kept
/// and handed out again while the setting is the same (reloads keep their model).
pub fn shared(setting: &Setting) -> Result<Arc<Model>, ModelError> {
    static LOADED: Mutex<Option<(Setting, Arc<Model>)>> = Mutex::new(None);
    let mut loaded = LOADED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((last, model)) = loaded.as_ref()
        && last == setting
    {
        return Ok(Arc::clone(model));
    }
    let model = Arc::new(Model::load(setting)?);
    *loaded = Some((setting.clone(), Arc::clone(&model)));
    Ok(model)
}

fn read_optional(path: &Path) -> Result<Option<String>, ModelError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ModelError::File {
            path: path.to_owned(),
            why: e.to_string(),
        }),
    }
}

/// A sentence-transformer's pooling (`1_Pooling/config.json`); mean when absent.
fn read_pooling(dir: &Path) -> Result<Pooling, ModelError> {
    #[derive(Deserialize)]
    struct PoolingFile {
        #[serde(default)]
        pooling_mode_mean_tokens: bool,
        #[serde(default)]
        pooling_mode_cls_token: bool,
    }
    let path = dir.join("1_Pooling/config.json");
    let Some(text) = read_optional(&path)? else {
        return Ok(Pooling::Mean);
    };
    let file: PoolingFile = serde_json::from_str(&text).map_err(|e| ModelError::File {
        path: path.clone(),
        why: e.to_string(),
    })?;
    match (file.pooling_mode_mean_tokens, file.pooling_mode_cls_token) {
        (true, false) => Ok(Pooling::Mean),
        (false, true) => Ok(Pooling::Cls),
        _ => Err(ModelError::File {
            path,
            why: "newshound pools by mean or by [CLS], one of them".into(),
        }),
    }
}

/// `max_seq_length` of `sentence_bert_config.json`, when there is one.
fn read_max_seq_length(dir: &Path) -> Result<Option<usize>, ModelError> {
    #[derive(Deserialize)]
    struct SentenceBert {
        max_seq_length: Option<usize>,
    }
    let path = dir.join("sentence_bert_config.json");
    let Some(text) = read_optional(&path)? else {
        return Ok(None);
    };
    serde_json::from_str::<SentenceBert>(&text)
        .map(|s| s.max_seq_length)
        .map_err(|e| ModelError::File {
            path,
            why: e.to_string(),
        })
}

#[cfg(test)]
mod tests;
