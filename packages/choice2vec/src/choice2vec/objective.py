"""The losses (wav2vec 2.0's, plus behaviour) and the jitted multi-step training function.

* behavioural: at masked trials, binary cross-entropy of the predicted correctness plus the
  squared error of the predicted (standardised) log reaction time;
* contrastive: at masked trials, InfoNCE between the representation and the trial's quantised
  target among ``distractors`` targets drawn from the whole batch (cosine / ``kappa``). wav2vec
  draws them from the same utterance; trials of one window are nearly exchangeable given the
  participant's state, so same-window distractors make the task impossible, while distractors
  from other windows (other participants, other states) make it about the context;
* diversity: (G V - sum over groups of the perplexity of the mean code distribution) / (G V),
  which keeps all codes in use.
Total = behavioural + ``contrastive_weight`` x contrastive + ``diversity_weight`` x diversity.

One call of :func:`make_train_chunk`'s function runs ``n`` optimisation steps inside
``jax.lax.scan`` (one compilation, one host round trip per chunk); batches are cut on the device
from the training sequences with keys split from the state's key, so a run is a pure function of
its seed and a resumed run continues bit-identically.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from choice2vec.features import CORRECT, LOG_RT
from choice2vec.model import Choice2Vec


def span_mask(key, batch: int, length: int, prob: float, span: int):
    """wav2vec masking: each trial starts a masked span of ``span`` trials with probability ``prob``
    (spans of 1: each trial is masked with probability ``prob``)."""
    starts = jax.random.bernoulli(key, prob, (batch, length)).astype(jnp.int32)
    cum = jnp.cumsum(starts, 1)
    shifted = jnp.pad(cum, ((0, 0), (span, 0)))[:, :length]
    mask = (cum - shifted) > 0
    # at least one masked trial per window
    return mask.at[:, length // 2].set(True)


def losses(params, model: Choice2Vec, x, mask, key, temperature, config: dict):
    k_gumbel, k_dropout, k_neg = jax.random.split(key, 3)
    out = model.apply(params, x, mask, k_gumbel, temperature, True, rngs={"dropout": k_dropout})
    weight = mask.astype(jnp.float32)
    denom = jnp.maximum(weight.sum(), 1.0)
    correct01 = (x[..., CORRECT] + 1) / 2
    logit, log_rt = out["behaviour"][..., 0], out["behaviour"][..., 1]
    bce = optax.sigmoid_binary_cross_entropy(logit, correct01)
    behavioural = ((bce + 0.5 * (log_rt - x[..., LOG_RT]) ** 2) * weight).sum() / denom

    r = out["representation"]
    q = out["quantized"]
    b, t, d = r.shape
    pool = jax.random.choice(k_neg, b * t, (config["distractors"],), replace=False)
    rn = r / (jnp.linalg.norm(r, axis=-1, keepdims=True) + 1e-6)
    qn = q / (jnp.linalg.norm(q, axis=-1, keepdims=True) + 1e-6)
    positive = (rn * qn).sum(-1, keepdims=True)
    negative = rn @ qn.reshape(b * t, d)[pool].T  # (B, T, distractors)
    own = jnp.arange(b * t).reshape(b, t)[..., None] == pool[None, None, :]  # a trial is never its own distractor
    logits = jnp.concatenate([positive, jnp.where(own, -jnp.inf, negative)], -1) / config["kappa"]
    contrastive = (-jax.nn.log_softmax(logits, -1)[..., 0] * weight).sum() / denom

    probs = out["probs"]  # (G, V) mean code probabilities
    perplexity = jnp.exp(-(probs * jnp.log(probs + 1e-9)).sum(-1)).sum()
    gv = probs.shape[0] * probs.shape[1]
    diversity = (gv - perplexity) / gv
    total = behavioural + config["contrastive_weight"] * contrastive + config["diversity_weight"] * diversity
    return total, {"total": total, "behavioral": behavioural, "contrastive": contrastive, "diversity": diversity, "perplexity": perplexity}


def make_optimizer(config: dict) -> optax.GradientTransformation:
    schedule = optax.warmup_cosine_decay_schedule(
        0.0,
        config["learning_rate"],
        config["warmup_epochs"],
        max(config["epochs"], config["warmup_epochs"] + 1),
        config["final_lr_fraction"] * config["learning_rate"],
    )
    return optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, weight_decay=config["weight_decay"]))


def temperature_at(epoch, config: dict):
    return jnp.maximum(config["min_temperature"], config["max_temperature"] * config["temperature_decay"] ** epoch)


def make_train_chunk(model: Choice2Vec, optimizer: optax.GradientTransformation, sequences, config: dict, mesh=None):
    """A jitted ``chunk(state, n) -> (state, per-step metrics)`` running n steps in one scan.

    ``state`` = {"params", "opt_state", "key", "epoch"}; ``sequences`` (P, T, 4) on the device.
    With ``mesh`` (a ``jax.sharding.Mesh`` with a ``data`` axis) the sequences and the state are
    replicated and each sampled batch is sharded over ``data``: XLA splits the forward and backward
    by rows and reduces the gradients. The program is the single-device one (the batch is sampled
    with the partitionable threefry, so its values do not depend on the sharding): only the float
    summation order differs.
    """
    if mesh is not None:
        from jax.sharding import NamedSharding, PartitionSpec

        from choice2vec.devices import replicate

        rows = NamedSharding(mesh, PartitionSpec("data"))
        sequences = replicate(np.asarray(sequences), mesh)
    else:
        sequences = jnp.asarray(sequences)
    participants, total = sequences.shape[:2]
    window, batch = config["window"], config["batch_size"]

    def step(state, _):
        key, k_batch, k_start, k_mask, k_loss = jax.random.split(state["key"], 5)
        who = jax.random.randint(k_batch, (batch,), 0, participants)
        start = jax.random.randint(k_start, (batch,), 0, total - window + 1)
        x = jax.vmap(lambda p, s: jax.lax.dynamic_slice_in_dim(sequences[p], s, window, 0))(who, start)
        mask = span_mask(k_mask, batch, window, config["mask_prob"], config["mask_span"])
        if mesh is not None:
            x, mask = jax.lax.with_sharding_constraint(x, rows), jax.lax.with_sharding_constraint(mask, rows)
        temperature = temperature_at(state["epoch"], config)
        grads, metrics = jax.grad(losses, has_aux=True)(state["params"], model, x, mask, k_loss, temperature, config)
        updates, opt_state = optimizer.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        return {"params": params, "opt_state": opt_state, "key": key, "epoch": state["epoch"] + 1}, metrics

    def chunk(state, n: int):
        return jax.lax.scan(step, state, None, length=n)

    if mesh is None:
        return jax.jit(chunk, static_argnums=1, donate_argnums=0)
    # the state comes back replicated, as it went in: the next chunk reuses the one compilation
    return jax.jit(chunk, static_argnums=1, donate_argnums=0, out_shardings=NamedSharding(mesh, PartitionSpec()))


def init_state(model: Choice2Vec, optimizer: optax.GradientTransformation, config: dict, seed: int) -> dict[str, Any]:
    key = jax.random.key(seed)
    key, k_init = jax.random.split(key)
    x = jnp.zeros((1, config["window"], model.inputs))
    params = model.init(k_init, x, jnp.zeros((1, config["window"]), bool), None, 1.0, False)
    return {"params": params, "opt_state": optimizer.init(params), "key": key, "epoch": jnp.asarray(0, jnp.int32)}


def make_representer(model: Choice2Vec, window: int, passes: int = 4):
    """A function (params, sequences (P, T, 4)) -> (P, T, repr_dim): each trial's representation
    is the network's output at that trial with the trial masked, in the context of its neighbours.

    ``passes`` forward passes per window mask every ``passes``-th trial (offset 0, 1, ...), close to
    the training masks; windows of ``window`` trials every ``window // 2`` trials, each trial taken
    from the window where it is most central."""
    import numpy as np

    masks = np.stack([(np.arange(window) % passes) == o for o in range(passes)])

    @jax.jit
    def windows_repr(params, xs):
        def one(mask):
            return model.apply(params, xs, jnp.broadcast_to(mask, xs.shape[:2]), method=Choice2Vec.represent)

        reps = jax.vmap(one)(jnp.asarray(masks))  # (passes, N, window, D)
        take = jnp.asarray(masks)[:, None, :, None]
        return (reps * take).sum(0)

    def represent(params, sequences):
        p, t, _ = sequences.shape
        if t < window:
            raise ValueError(f"participants need at least {window} trials (the model's window); they have {t}")
        stride = window // 2
        starts = list(range(0, t - window + 1, stride))
        if starts[-1] != t - window:
            starts.append(t - window)
        xs = np.stack([sequences[:, s : s + window] for s in starts], 1).reshape(-1, window, sequences.shape[-1])
        reps = np.concatenate([np.asarray(windows_repr(params, jnp.asarray(xs[i : i + 64]))) for i in range(0, len(xs), 64)])
        reps = reps.reshape(p, len(starts), window, -1)
        out = np.empty((p, t, reps.shape[-1]), dtype=np.float32)
        best = np.full(t, np.inf)
        for i, s in enumerate(starts):
            centrality = np.abs(np.arange(s, s + window) - (s + (window - 1) / 2))
            take = centrality < best[s : s + window]
            pos = np.arange(s, s + window)[take]
            out[:, pos] = reps[:, i, take]
            best[pos] = centrality[take]
        return out

    return represent
