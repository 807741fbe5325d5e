//! A BERT-class sentence encoder (all-MiniLM-L6-v2 and its kind) on the CPU with
//! candle: the encoder's last hidden state, mean-pooled over the tokens.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder};
use serde::Deserialize;

use super::ModelError;

/// The fields of a model's `config.json` that the encoder needs.
#[derive(Debug, Deserialize)]
pub struct BertConfig {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub vocab_size: usize,
    #[serde(default = "layer_norm_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "gelu")]
    pub hidden_act: String,
}

fn layer_norm_eps() -> f64 {
    1e-12
}

fn gelu() -> String {
    "gelu".into()
}

/// How a sentence-transformer makes one vector of its tokens' (`1_Pooling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    Mean,
    Cls,
}

pub struct Bert {
    words: Embedding,
    positions: Embedding,
    token_type: Tensor,
    norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    pub config: BertConfig,
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

impl Bert {
    /// The weights in `safetensors` (as sentence-transformers saves them: with or
    /// without a `bert.` prefix).
    pub fn load(config: BertConfig, safetensors: Vec<u8>) -> Result<Bert, ModelError> {
        if config.hidden_act != "gelu" {
            return Err(ModelError::Weights(format!(
                "its activation is {:?}; newshound runs BERT models with gelu",
                config.hidden_act
            )));
        }
        if config.num_attention_heads == 0
            || !config
                .hidden_size
                .is_multiple_of(config.num_attention_heads)
        {
            return Err(ModelError::Weights(
                "hidden_size is not a multiple of num_attention_heads".into(),
            ));
        }
        let all = VarBuilder::from_buffered_safetensors(safetensors, DType::F32, &Device::Cpu)
            .map_err(weights)?;
        let vb = if all.contains_tensor("bert.embeddings.word_embeddings.weight") {
            all.pp("bert")
        } else {
            all
        };
        let (h, eps) = (config.hidden_size, config.layer_norm_eps);
        let emb = vb.pp("embeddings");
        let words = candle_nn::embedding(config.vocab_size, h, emb.pp("word_embeddings"))
            .map_err(weights)?;
        let positions = candle_nn::embedding(
            config.max_position_embeddings,
            h,
            emb.pp("position_embeddings"),
        )
        .map_err(weights)?;
        let token_type = emb
            .pp("token_type_embeddings")
            .get((2, h), "weight")
            .and_then(|t| t.get(0))
            .map_err(weights)?;
        let norm = candle_nn::layer_norm(h, eps, emb.pp("LayerNorm")).map_err(weights)?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| Layer::load(&config, vb.pp(format!("encoder.layer.{i}"))))
            .collect::<Result<_, _>>()
            .map_err(weights)?;
        Ok(Bert {
            words,
            positions,
            token_type,
            norm,
            layers,
            heads: config.num_attention_heads,
            config,
        })
    }

    /// The last hidden state of `ids` (one sequence, special tokens included) pooled
    /// into one vector, not normalised.
    pub fn pooled(&self, ids: &[u32], pooling: Pooling) -> Result<Vec<f32>, candle_core::Error> {
        let len = ids.len();
        let device = Device::Cpu;
        let ids = Tensor::new(ids, &device)?.unsqueeze(0)?;
        let positions = Tensor::arange(0u32, len as u32, &device)?.unsqueeze(0)?;
        let x = self
            .words
            .forward(&ids)?
            .add(&self.positions.forward(&positions)?)?
            .broadcast_add(&self.token_type)?;
        let mut x = self.norm.forward(&x)?;
        for layer in &self.layers {
            x = layer.forward(&x, self.heads)?;
        }
        let pooled = match pooling {
            Pooling::Mean => x.mean(1)?,
            Pooling::Cls => x.get_on_dim(1, 0)?,
        };
        pooled.squeeze(0)?.to_vec1()
    }
}

impl Layer {
    fn load(config: &BertConfig, vb: VarBuilder) -> candle_core::Result<Layer> {
        let (h, inner, eps) = (
            config.hidden_size,
            config.intermediate_size,
            config.layer_norm_eps,
        );
        let attention = vb.pp("attention");
        Ok(Layer {
            query: candle_nn::linear(h, h, attention.pp("self.query"))?,
            key: candle_nn::linear(h, h, attention.pp("self.key"))?,
            value: candle_nn::linear(h, h, attention.pp("self.value"))?,
            attention_out: candle_nn::linear(h, h, attention.pp("output.dense"))?,
            attention_norm: candle_nn::layer_norm(h, eps, attention.pp("output.LayerNorm"))?,
            intermediate: candle_nn::linear(h, inner, vb.pp("intermediate.dense"))?,
            output: candle_nn::linear(inner, h, vb.pp("output.dense"))?,
            output_norm: candle_nn::layer_norm(h, eps, vb.pp("output.LayerNorm"))?,
        })
    }

    /// Self-attention then the feed-forward block, each with its residual and norm.
    /// One sequence without padding, so no attention mask is needed.
    fn forward(&self, x: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
        let (batch, len, hidden) = x.dims3()?;
        let size = hidden / heads;
        let split = |t: Tensor| {
            t.reshape((batch, len, heads, size))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = split(self.query.forward(x)?)?;
        let k = split(self.key.forward(x)?)?;
        let v = split(self.value.forward(x)?)?;
        let scores = (q.matmul(&k.t()?)? / (size as f64).sqrt())?;
        let weights = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = weights
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((batch, len, hidden))?;
        let x = self
            .attention_norm
            .forward(&(self.attention_out.forward(&context)? + x)?)?;
        let inner = self.intermediate.forward(&x)?.gelu_erf()?;
        self.output_norm
            .forward(&(self.output.forward(&inner)? + x)?)
    }
}

fn weights(e: candle_core::Error) -> ModelError {
    ModelError::Weights(e.to_string())
}
