"""Tiny transformers trained on the toy world, built with TransformerLens's ``TransformerBridge``.

Two models, each a named :class:`ToyModelSpec`:

* ``attn-only-2l``: two attention-only layers trained on induction sequences only, the
  classic setting in which a previous-token head and an induction head form (Olsson et al.,
  2022);
* ``toyworld-2l``: two layers with MLPs trained on the whole mixture (indirect objects, facts,
  the pronoun skew, toxic words and induction).

Models are ``TransformerBridge.boot_native`` models, so every TransformerLens tool
(``run_with_cache``, ``run_with_hooks``, hook names like ``blocks.0.attn.hook_z``) works on them.
Training is cached like every checkpoint (safetensors plus a JSON sidecar, keyed by the spec,
the profile's step count, the seed and the source). The quick profile's ``toyworld-2l`` seeds
0 and 1 (the subject of most pages and the self-report's cross-prediction model, about three
CPU minutes to train) also ship with the package (``weights/``, written by ``make
toy-models``): a shipped checkpoint is used only when its key, and so the code that trained
it, is the current one; otherwise the model is trained as usual.
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm
from transformer_lens import TransformerBridge, TransformerBridgeConfig

from mechinterp import __version__
from mechinterp.checkpoints import (
    cache_lock,
    checkpoint_key,
    checkpoint_paths,
    load_checkpoint,
    save_checkpoint,
    source_digest,
)
from mechinterp.config import get_device, get_profile, seed_everything
from mechinterp.errors import ConfigError
from mechinterp.toyworld.tasks import sample_training_batch
from mechinterp.toyworld.vocab import WordTokenizer, default_tokenizer
from mechinterp.train import progress_enabled

__all__ = ["ToyModelSpec", "TOY_MODELS", "ToyModel", "build_toy_model", "load_toy_model",
           "heldout_loss"]


@dataclass(frozen=True)
class ToyModelSpec:
    """Shape and training of one toy-world transformer.

    Attributes:
        name: registry name.
        n_layers, n_heads, d_model, d_mlp: sizes (``d_head = d_model // n_heads``).
        attn_only: no MLP blocks.
        n_ctx: context length used in training.
        mixture: training tasks and their weights.
        lr: AdamW learning rate; batch_size: sequences per step.
        steps: optimiser steps on the quick profile; ``full_steps`` on the full profile.
    """

    name: str
    n_layers: int
    n_heads: int
    d_model: int
    d_mlp: int
    attn_only: bool
    n_ctx: int
    mixture: dict[str, float] = field(default_factory=dict)
    lr: float = 3e-3
    batch_size: int = 64
    steps: int = 1500
    full_steps: int = 4000

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ConfigError(f"ToyModelSpec.d_model ({self.d_model}) must be divisible by "
                              f"n_heads ({self.n_heads})")
        if not self.mixture:
            raise ConfigError("ToyModelSpec.mixture must name at least one task")

    def config(self, vocab_size: int, seed: int) -> TransformerBridgeConfig:
        """The ``TransformerBridgeConfig`` for ``boot_native``."""
        return TransformerBridgeConfig(
            d_model=self.d_model, d_head=self.d_model // self.n_heads, n_heads=self.n_heads,
            n_layers=self.n_layers, n_ctx=self.n_ctx, d_vocab=vocab_size,
            d_mlp=None if self.attn_only else self.d_mlp, attn_only=self.attn_only,
            act_fn="gelu", normalization_type="LN", seed=seed, model_name=self.name)


TOY_MODELS: dict[str, ToyModelSpec] = {s.name: s for s in [
    ToyModelSpec("attn-only-2l", n_layers=2, n_heads=4, d_model=64, d_mlp=0, attn_only=True,
                 n_ctx=40, mixture={"induction": 1.0}, steps=600, full_steps=2000),
    ToyModelSpec("toyworld-2l", n_layers=2, n_heads=4, d_model=64, d_mlp=256,
                 attn_only=False, n_ctx=32,
                 mixture={"induction": 0.3, "ioi": 0.3, "facts": 0.2, "bias": 0.1,
                          "toxicity": 0.1}, steps=2500, full_steps=8000),
]}


@dataclass
class ToyModel:
    """A trained toy-world transformer and what produced it.

    Attributes:
        model: the ``TransformerBridge`` (in eval mode).
        tokenizer: the toy world's word tokenizer.
        spec: the model's spec.
        seed: training seed.
        meta: the checkpoint sidecar (training losses, seconds, profile...).
    """

    model: TransformerBridge
    tokenizer: WordTokenizer
    spec: ToyModelSpec
    seed: int
    meta: dict[str, Any]


def _spec(name: str) -> ToyModelSpec:
    if name not in TOY_MODELS:
        raise ConfigError(f"unknown toy model {name!r}; models: {sorted(TOY_MODELS)}")
    return TOY_MODELS[name]


def build_toy_model(name: str, *, seed: int = 0, device: torch.device | None = None
                    ) -> TransformerBridge:
    """An untrained toy model (random weights from ``seed``)."""
    spec = _spec(name)
    return TransformerBridge.boot_native(spec.config(len(default_tokenizer()), seed),
                                         device=device or get_device())


def heldout_loss(model: TransformerBridge, spec: ToyModelSpec, *, n: int = 256,
                 seed: int = 10_000, split: str = "eval") -> float:
    """Next-token loss on sequences of the model's mixture whose facts, bias and toxicity
    sentences are written from the ``split`` cells of the content split (by default ``eval``:
    frame-filler pairs no training sentence uses), drawn with a seed outside the training
    stream; the induction and indirect-object parts are fresh random draws. Pass
    ``split="train"`` for the same loss on seen cells.

    Raises:
        ConfigError: an unknown split.
    """
    g = torch.Generator().manual_seed(seed)
    tokens = sample_training_batch(default_tokenizer(), n, spec.n_ctx, g, spec.mixture,
                                   split=split)
    device = next(model.parameters()).device
    with torch.no_grad():
        return float(model(tokens.to(device), return_type="loss"))


SHIPPED = Path(__file__).resolve().parent / "weights"
"""Where the shipped checkpoints lie (safetensors and sidecar, named by their cache key)."""
SHIPPED_RUNS: tuple[tuple[str, int], ...] = (("toyworld-2l", 0), ("toyworld-2l", 1),
                                             ("toyworld-2l", 2))
"""The ``(model, seed)`` runs of the quick profile that ``make toy-models`` ships."""


def _run(name: str, seed: int, steps: int) -> dict[str, Any]:
    """What a trained toy model depends on (its cache key is a hash of this)."""
    return {"spec": asdict(_spec(name)), "steps": steps, "seed": seed,
            "vocab": list(default_tokenizer().vocab), "code": __version__,
            "source": source_digest("toyworld.models", "toyworld.tasks", "toyworld.vocab")}


def shipped_key(name: str, seed: int) -> str:
    """The cache key a shipped checkpoint of ``(name, seed)`` must carry to be used: the quick
    profile's steps and the current code."""
    return checkpoint_key(_run(name, seed, _spec(name).steps))


def _shipped_paths(key: str) -> tuple[Path, Path]:
    return SHIPPED / f"{key}.safetensors", SHIPPED / f"{key}.json"


def ship_toy_models(runs: Sequence[tuple[str, int]] = SHIPPED_RUNS) -> list[Path]:
    """Train each run at the quick profile's steps with the current code and copy its
    checkpoint into :data:`SHIPPED`, replacing what was there; returns the sidecars."""
    SHIPPED.mkdir(exist_ok=True)
    for old in SHIPPED.glob("*"):
        old.unlink()
    written = []
    for name, seed in runs:
        toy = load_toy_model(name, seed=seed, steps=_spec(name).steps, retrain=True)
        key = toy.meta["key"]
        for source, target in zip(checkpoint_paths("toy-models", key), _shipped_paths(key),
                                  strict=True):
            shutil.copyfile(source, target)
        written.append(_shipped_paths(key)[1])
    return written


def load_toy_model(name: str, *, seed: int = 0, retrain: bool = False,
                   steps: int | None = None) -> ToyModel:
    """Train ``name`` on its mixture, or load the same run from the cache.

    Args:
        name: a key of :data:`TOY_MODELS`.
        seed: weight initialisation and data stream.
        retrain: ignore a cached entry.
        steps: override the profile's step count.
    """
    spec = _spec(name)
    profile = get_profile()
    steps = steps or (spec.full_steps if profile.name == "full" else spec.steps)
    tokenizer = default_tokenizer()
    run = _run(name, seed, steps)
    key = checkpoint_key(run)
    device = get_device()
    with cache_lock("toy-models", key):
        weights, sidecar = checkpoint_paths("toy-models", key)
        model = build_toy_model(name, seed=seed, device=device)
        # the bridge exposes each weight under several module paths: save each parameter once
        params = dict(model.named_parameters())
        shapes = {k: tuple(v.shape) for k, v in params.items()}
        found = None if retrain else load_checkpoint(weights, sidecar, key, shapes)
        if found is None and not retrain and (SHIPPED / f"{key}.json").exists():
            found = load_checkpoint(*_shipped_paths(key), key, shapes)
        if found is not None:
            with torch.no_grad():
                for name_, param in params.items():
                    param.copy_(found[0][name_])
            return ToyModel(model.eval(), tokenizer, spec, seed, found[1])
        started = time.perf_counter()
        losses = _train(model, spec, tokenizer, steps, seed)
        meta = {**run, "key": key, "losses": losses, "train_seconds": time.perf_counter() - started,
                "heldout_loss": heldout_loss(model.eval(), spec), "profile": profile.name,
                "device": str(device)}
        save_checkpoint(dict(model.named_parameters()), meta, weights, sidecar)
        return ToyModel(model.eval(), tokenizer, spec, seed, meta)


def _train(model: TransformerBridge, spec: ToyModelSpec, tokenizer: WordTokenizer, steps: int,
           seed: int) -> list[float]:
    """AdamW with a linear warm-up and cosine decay; returns the loss every 50 steps."""
    generator = seed_everything(seed)
    device = next(model.parameters()).device
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=0.01)
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: min(1.0, (i + 1) / warmup)
                                                 * 0.5 * (1 + torch.cos(torch.tensor(
                                                     torch.pi * i / steps)).item()))
    model.train()
    losses = []
    for step in tqdm(range(steps), desc=f"training {spec.name}", disable=not progress_enabled(),
                     leave=False):
        tokens = sample_training_batch(tokenizer, spec.batch_size, spec.n_ctx, generator,
                                       spec.mixture).to(device)
        loss = model(tokens, return_type="loss")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if step % 50 == 0 or step == steps - 1:
            losses.append(loss.item())
    model.eval()
    return losses


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m mechinterp.toyworld.models --ship``: write the shipped checkpoints."""
    parser = argparse.ArgumentParser(description=ship_toy_models.__doc__)
    parser.add_argument("--ship", action="store_true", help="write the shipped checkpoints")
    args = parser.parse_args(argv)
    if not args.ship:
        parser.error("nothing to do: pass --ship")
    for path in ship_toy_models():
        print(path, flush=True)


if __name__ == "__main__":
    main()
