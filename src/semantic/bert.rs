//! A BERT-class sentence encoder (all-MiniLM-L6-v2 and its kind) on the CPU with
//! candle: the encoder's last hidden state, mean-pooled over the tokens.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Embedding, LayerNorm, VarBuilder};
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
    /// Query (scaled by 1/√head size), key and value in one.
    qkv: Affine,
    attention_out: Affine,
    attention_norm: LayerNorm,
    intermediate: Affine,
    output: Affine,
    output_norm: LayerNorm,
}

/// `x·Wᵀ + b` as one matrix product: `W`ᵀ with `b` as an extra row, times `x` with a
/// column of ones. A separate broadcast add of the bias cost as much as a third of
/// the product on the CPU.
struct Affine(Tensor);

impl Affine {
    fn load(
        vb: &VarBuilder,
        inputs: usize,
        outputs: usize,
        scale: f64,
    ) -> candle_core::Result<Tensor> {
        let weight = vb.get((outputs, inputs), "weight")?;
        let bias = vb.get(outputs, "bias")?;
        Tensor::cat(&[weight.t()?, bias.unsqueeze(0)?], 0)? * scale
    }

    fn new(parts: &[Tensor]) -> candle_core::Result<Affine> {
        Ok(Affine(Tensor::cat(parts, 1)?.contiguous()?))
    }

    /// `x` is `(tokens, inputs)`; `ones` is `(tokens, 1)`.
    fn forward(&self, x: &Tensor, ones: &Tensor) -> candle_core::Result<Tensor> {
        Tensor::cat(&[x, ones], 1)?.matmul(&self.0)
    }
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
        let ids = Tensor::new(ids, &device)?;
        let positions = Tensor::arange(0u32, len as u32, &device)?;
        let x = self
            .words
            .forward(&ids)?
            .add(&self.positions.forward(&positions)?)?
            .broadcast_add(&self.token_type)?;
        let mut x = self.norm.forward(&x)?;
        let ones = Tensor::ones((len, 1), DType::F32, &device)?;
        for layer in &self.layers {
            x = layer.forward(&x, &ones, self.heads)?;
        }
        match pooling {
            Pooling::Mean => x.mean(0)?.to_vec1(),
            Pooling::Cls => x.get(0)?.to_vec1(),
        }
    }
}

impl Layer {
    fn load(config: &BertConfig, vb: VarBuilder) -> candle_core::Result<Layer> {
        let (h, inner, eps) = (
            config.hidden_size,
            config.intermediate_size,
            config.layer_norm_eps,
        );
        let scale = 1.0 / ((h / config.num_attention_heads) as f64).sqrt();
        let attention = vb.pp("attention");
        Ok(Layer {
            qkv: Affine::new(&[
                Affine::load(&attention.pp("self.query"), h, h, scale)?,
                Affine::load(&attention.pp("self.key"), h, h, 1.0)?,
                Affine::load(&attention.pp("self.value"), h, h, 1.0)?,
            ])?,
            attention_out: Affine::new(&[Affine::load(&attention.pp("output.dense"), h, h, 1.0)?])?,
            attention_norm: candle_nn::layer_norm(h, eps, attention.pp("output.LayerNorm"))?,
            intermediate: Affine::new(&[Affine::load(
                &vb.pp("intermediate.dense"),
                h,
                inner,
                1.0,
            )?])?,
            output: Affine::new(&[Affine::load(&vb.pp("output.dense"), inner, h, 1.0)?])?,
            output_norm: candle_nn::layer_norm(h, eps, vb.pp("output.LayerNorm"))?,
        })
    }

    /// Self-attention then the feed-forward block, each with its residual and norm,
    /// over `x`: `(tokens, hidden)`. One sequence without padding, so no attention
    /// mask is needed.
    fn forward(&self, x: &Tensor, ones: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
        let (len, hidden) = x.dims2()?;
        let size = hidden / heads;
        let qkv = self.qkv.forward(x, ones)?;
        let head = |i: usize| {
            qkv.narrow(1, i * hidden, hidden)?
                .reshape((len, heads, size))?
                .transpose(0, 1)?
                .contiguous()
        };
        let (q, k, v) = (head(0)?, head(1)?, head(2)?);
        let weights = candle_nn::ops::softmax_last_dim(&q.matmul(&k.t()?)?)?;
        let context = weights
            .matmul(&v)?
            .transpose(0, 1)?
            .contiguous()?
            .reshape((len, hidden))?;
        let x = self
            .attention_norm
            .forward(&(self.attention_out.forward(&context, ones)? + x)?)?;
        let inner = self.intermediate.forward(&x, ones)?.gelu_erf()?;
        self.output_norm
            .forward(&(self.output.forward(&inner, ones)? + x)?)
    }
}

fn weights(e: candle_core::Error) -> ModelError {
    ModelError::Weights(e.to_string())
}
