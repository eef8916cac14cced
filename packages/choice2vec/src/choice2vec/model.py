"""Choice2Vec: a wav2vec-2.0-style model over sequences of trials (Flax linen).

* feature encoder: an MLP from each trial's 4 inputs (see :mod:`choice2vec.features`) to ``d_model`` (z_t);
* masking: masked trials are hidden entirely: z_t is replaced by a learned mask vector;
* context network: a bidirectional transformer whose attention is biased toward nearby trials
  (ALiBi: head h subtracts slope_h x |i - j| from its attention logits). Nothing depends on a
  trial's absolute position, so representations do not vary with where a trial falls in a window
  (wav2vec's convolutional positional embedding does the same job but is slow to differentiate
  on CPU);
* representation: ``final_proj(c_t)``, ``repr_dim`` (256) numbers per trial, taken (as in training)
  where trial t is masked: what the network infers about the trial from its whole context;
* quantiser: Gumbel-softmax product quantisation of z_t (``groups`` x ``codes``), the targets of
  the contrastive loss;
* behavioural head: predicts a masked trial's correctness (logit) and log reaction time from the
  representation and the trial's coherence (what the participant was shown). The coherence enters only the head,
  so the representation itself is built from the context alone.

``Choice2Vec(**model_config)`` rebuilds the model from a checkpoint's ``model_config``.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


def alibi_bias(heads: int, length: int):
    """(heads, length, length) additive attention bias: -slope_h * |i - j|, slopes 2^-1 ... 2^-heads/..."""
    slopes = 2.0 ** (-8.0 * (jnp.arange(heads) + 1) / heads)
    distance = jnp.abs(jnp.arange(length)[:, None] - jnp.arange(length)[None, :])
    return -slopes[:, None, None] * distance[None]


class TransformerBlock(nn.Module):
    d_model: int
    heads: int
    ff_dim: int
    dropout: float

    @nn.compact
    def __call__(self, x, train: bool):
        b, t, _ = x.shape
        head_dim = self.d_model // self.heads
        h = nn.LayerNorm()(x)
        qkv = nn.Dense(3 * self.d_model)(h).reshape(b, t, 3, self.heads, head_dim)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(head_dim) + alibi_bias(self.heads, t)
        weights = nn.Dropout(self.dropout, deterministic=not train)(jax.nn.softmax(logits, -1))
        h = jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(b, t, self.d_model)
        x = x + nn.Dropout(self.dropout, deterministic=not train)(nn.Dense(self.d_model)(h))
        h = nn.LayerNorm()(x)
        h = nn.Dense(self.ff_dim)(h)
        h = nn.gelu(h)
        h = nn.Dense(self.d_model)(h)
        return x + nn.Dropout(self.dropout, deterministic=not train)(h)


class GumbelQuantizer(nn.Module):
    groups: int
    codes: int
    dim: int

    @nn.compact
    def __call__(self, z, key, temperature: float, train: bool):
        """(quantised (..., dim), per-group code probabilities averaged over positions, hard codes)."""
        logits = nn.Dense(self.groups * self.codes)(z).reshape(*z.shape[:-1], self.groups, self.codes)
        codebook = self.param("codebook", nn.initializers.normal(1.0), (self.groups, self.codes, self.dim // self.groups))
        if train:
            gumbel = jax.random.gumbel(key, logits.shape)
            soft = jax.nn.softmax((logits + gumbel) / temperature, -1)
            hard = jax.nn.one_hot(jnp.argmax(soft, -1), self.codes)
            onehot = hard + soft - jax.lax.stop_gradient(soft)
        else:
            onehot = jax.nn.one_hot(jnp.argmax(logits, -1), self.codes)
        quantized = jnp.einsum("...gv,gvd->...gd", onehot, codebook).reshape(*z.shape[:-1], self.dim)
        probs = jax.nn.softmax(logits, -1).reshape(-1, self.groups, self.codes).mean(0)
        return quantized, probs, jnp.argmax(logits, -1)


class Choice2Vec(nn.Module):
    d_model: int = 128
    repr_dim: int = 256
    layers: int = 2
    heads: int = 4
    ff_dim: int = 256
    dropout: float = 0.1
    window: int = 128  # trials per window in training and representation extraction
    groups: int = 2
    codes: int = 32
    inputs: int = 4

    def setup(self):
        self.encoder = [nn.Dense(self.d_model), nn.Dense(self.d_model)]
        self.mask_vector = self.param("mask_vector", nn.initializers.normal(0.1), (self.d_model,))
        self.blocks = [TransformerBlock(self.d_model, self.heads, self.ff_dim, self.dropout) for _ in range(self.layers)]
        self.norm = nn.LayerNorm()
        self.final_proj = nn.Dense(self.repr_dim)
        self.quantizer = GumbelQuantizer(self.groups, self.codes, self.repr_dim)
        self.behaviour_head = [nn.Dense(self.d_model), nn.Dense(self.d_model), nn.Dense(2)]

    def encode_trials(self, x):
        return self.encoder[1](nn.gelu(self.encoder[0](x)))

    def context(self, z, mask, train: bool):
        z = jnp.where(mask[..., None], self.mask_vector, z)
        h = z
        for block in self.blocks:
            h = block(h, train)
        return self.norm(h)

    def __call__(self, x, mask, key=None, temperature: float = 1.0, train: bool = False):
        """x (B, T, 4), mask (B, T) bool. Returns a dict of representations, quantised targets,
        code probabilities and behavioural predictions."""
        z = self.encode_trials(x)
        c = self.context(z, mask, train)
        representation = self.final_proj(c)
        quantized, probs, code_ids = self.quantizer(z, key, temperature, train)
        shown = self.behaviour_head[1](x[..., :1])  # the trial's coherence
        behaviour = self.behaviour_head[2](nn.gelu(self.behaviour_head[0](representation) + shown))
        return {"representation": representation, "quantized": quantized, "probs": probs, "codes": code_ids, "behaviour": behaviour}

    def represent(self, x, mask):
        """Representations (evaluation, no dropout) under ``mask``."""
        return self.final_proj(self.context(self.encode_trials(x), mask, False))
