//! Static embeddings (model2vec): one vector per token; a text's vector is the mean
//! of its tokens' rows. Rows are kept as the file stores them: float32, float16
//! (widened once at load), or int8 with one scale per row (the builtin table, read
//! in place from the binary).

use std::borrow::Cow;

use safetensors::{Dtype, SafeTensors};

use super::ModelError;

/// The most tokens of a text a static model reads (model2vec's own default).
pub const MAX_TOKENS: usize = 512;

#[derive(Debug)]
pub struct Table {
    rows: Rows,
    pub dims: usize,
    pub len: usize,
}

#[derive(Debug)]
enum Rows {
    F32(Vec<f32>),
    /// Bytes read as `i8`.
    I8 {
        values: Cow<'static, [u8]>,
        scales: Vec<f32>,
    },
}

impl Table {
    /// The `embeddings` tensor of a model2vec `model.safetensors` (and `scales`, for
    /// an int8 table). A file without one is no static model: `Unrecognised`, for
    /// the caller to name its directory.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Table, ModelError> {
        Table::parse(bytes, |values| Cow::Owned(values.to_vec()))
    }

    /// The same, from bytes that live as long as the program (the builtin table's,
    /// compiled in): its int8 rows are not copied.
    pub fn from_static(bytes: &'static [u8]) -> Result<Table, ModelError> {
        Table::parse(bytes, Cow::Borrowed)
    }

    fn parse<'a>(
        bytes: &'a [u8],
        keep: impl FnOnce(&'a [u8]) -> Cow<'static, [u8]>,
    ) -> Result<Table, ModelError> {
        let bad = |why: String| ModelError::Weights(why);
        let file = SafeTensors::deserialize(bytes).map_err(|e| bad(e.to_string()))?;
        let embeddings = file
            .tensor("embeddings")
            .map_err(|_| ModelError::Unrecognised(Default::default()))?;
        let [len, dims] = embeddings.shape() else {
            return Err(bad(format!(
                "`embeddings` has shape {:?}, not [tokens, dimensions]",
                embeddings.shape()
            )));
        };
        let (len, dims) = (*len, *dims);
        let data = embeddings.data();
        let rows = match embeddings.dtype() {
            Dtype::F32 => Rows::F32(
                data.chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
            ),
            Dtype::F16 => Rows::F32(
                data.chunks_exact(2)
                    .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect(),
            ),
            Dtype::I8 => {
                let scales = match file.tensor("scales") {
                    Ok(s) if s.dtype() == Dtype::F32 && s.shape() == [len] => s
                        .data()
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                    _ => return Err(bad("an int8 table needs `scales`: F32 [tokens]".into())),
                };
                Rows::I8 {
                    values: keep(data),
                    scales,
                }
            }
            other => return Err(bad(format!("`embeddings` is {other:?}; F32, F16 or I8"))),
        };
        if dims == 0 {
            return Err(bad("`embeddings` has no dimensions".into()));
        }
        Ok(Table { rows, dims, len })
    }

    /// The mean of the rows of `ids` (ids beyond the table are skipped), normalised;
    /// all zeros when no id has a row.
    pub fn embed(&self, ids: &[u32]) -> Vec<f32> {
        let mut sum = vec![0f32; self.dims];
        let mut count = 0usize;
        for &id in ids {
            let id = id as usize;
            if id >= self.len {
                continue;
            }
            let range = id * self.dims..(id + 1) * self.dims;
            match &self.rows {
                Rows::F32(values) => {
                    for (s, v) in sum.iter_mut().zip(&values[range]) {
                        *s += v;
                    }
                }
                Rows::I8 { values, scales } => {
                    let scale = scales[id];
                    for (s, &v) in sum.iter_mut().zip(&values[range]) {
                        *s += f32::from(v as i8) * scale;
                    }
                }
            }
            count += 1;
        }
        if count > 0 {
            super::normalise(&mut sum);
        }
        sum
    }

    /// Bytes the rows take in memory.
    pub fn bytes(&self) -> usize {
        match &self.rows {
            Rows::F32(values) => values.len() * 4,
            Rows::I8 { values, scales } => values.len() + scales.len() * 4,
        }
    }
}
