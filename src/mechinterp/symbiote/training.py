"""Training the symbiote B against a frozen primary A, with a checkpoint cache.

Each step pairs a batch of training images with classes to inhibit: half of the images are
asked to inhibit their own label (the hard case), the other half a random other class (the
images must then keep A's prediction). The loss has three parts:

* **inhibition**: a hinge on the inhibited class's logit, which must trail the best other
  logit by ``margin``, for every image;
* **preservation**: cross-entropy towards A's original prediction, for every image that is not
  of the inhibited class and that A did not already assign to it (weighted by
  ``SymbioteConfig.preservation``);
* **sparsity**: the mean absolute deviation of the modulations from the identity, so that B
  changes as few units as it can.

A stays frozen: gradients flow through its activations to B only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from mechinterp import __version__
from mechinterp.ablation import unit_means
from mechinterp.checkpoints import (
    cache_lock,
    checkpoint_key,
    checkpoint_paths,
    load_checkpoint,
    save_checkpoint,
    source_digest,
)
from mechinterp.config import seed_everything
from mechinterp.data import DigitData
from mechinterp.symbiote.network import Symbiote, SymbioteConfig, build_symbiote
from mechinterp.train import TrainedClassifier, predict, progress_enabled

__all__ = ["TrainedSymbiote", "train_symbiote", "symbiote_loss", "inhibition_loss",
           "inhibition_batch"]


@dataclass
class TrainedSymbiote:
    """A trained symbiote with its primary.

    Attributes:
        symbiote: B, in eval mode.
        primary: the frozen A it was trained against.
        config: B's settings.
        seed: B's training seed.
        cached: loaded from the cache rather than trained now.
        history: loss components every 50 steps.
        meta: the sidecar (with the original training time, ``train_seconds``).
    """

    symbiote: Symbiote
    primary: TrainedClassifier
    config: SymbioteConfig
    seed: int
    cached: bool
    history: list[dict[str, float]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


def symbiote_loss(
    symbiote: Symbiote,
    primary: torch.nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    original_pred: torch.Tensor,
    labels: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """The three loss terms for one batch (see the module docstring)."""
    config = symbiote.config
    modulations = symbiote.modulations(primary, targets, images)
    logits = primary.run_with_hooks(images, fwd_hooks=symbiote.hooks_from(modulations))
    deviation = torch.cat([(gate - 1).abs() + shift.abs() for gate, shift in modulations.values()],
                          dim=1)
    return inhibition_loss(logits, targets, original_pred, labels, deviation, config.margin,
                           config.sparsity, config.preservation)


def inhibition_loss(logits: torch.Tensor, targets: torch.Tensor, original_pred: torch.Tensor,
                    labels: torch.Tensor, deviation: torch.Tensor, margin: float,
                    sparsity: float, preservation_weight: float = 1.0
                    ) -> dict[str, torch.Tensor]:
    """The three terms from the logits of the modulated primary and each row's deviation of
    its modulations from the identity (``(batch, n_units)``); shared by the symbiote and the
    trained-gates baseline so that both optimise the same objective."""
    target_logit = logits.gather(1, targets[:, None]).squeeze(1)
    others = logits.scatter(1, targets[:, None], float("-inf"))
    inhibition = F.relu(target_logit - others.max(1).values + margin).mean()
    keep = (labels != targets) & (original_pred != targets)
    if keep.any():
        preservation = F.cross_entropy(logits[keep], original_pred[keep])
    else:
        preservation = logits.sum() * 0.0
    total = inhibition + preservation_weight * preservation + sparsity * deviation.sum(1).mean()
    return {"total": total, "inhibition": inhibition, "preservation": preservation,
            "sparsity": deviation.mean()}


def inhibition_batch(data: DigitData, classes: torch.Tensor, batch_size: int,
                     generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """``(indices, labels, targets)`` of one training batch: random training images, half of
    them asked to inhibit their own label, the others a random class."""
    idx = torch.randint(0, data.n_train, (batch_size,), generator=generator).to(data.device)
    labels = data.train_labels[idx]
    random_class = classes[torch.randint(0, len(classes), (batch_size,),
                                         generator=generator).to(data.device)]
    own = torch.rand(batch_size, generator=generator).to(data.device) < 0.5
    return idx, labels, torch.where(own, labels, random_class)


def _unit_scales(primary, images: torch.Tensor) -> dict[str, torch.Tensor]:
    return {name: unit_means(primary, name, images) for name in primary.hidden_hooks}


def train_symbiote(
    primary: TrainedClassifier,
    data: DigitData,
    config: SymbioteConfig | None = None,
    *,
    seed: int = 0,
    retrain: bool = False,
) -> TrainedSymbiote:
    """Train one symbiote that can inhibit any class of ``data`` in ``primary``, or load it.

    Args:
        primary: the trained primary A (it is frozen here and never modified).
        data: the data A was trained on; B trains on its training split only.
        config: B's settings (default :class:`SymbioteConfig`).
        seed: seeds B's initialisation and the batches.
        retrain: ignore a cached entry.
    """
    config = config or SymbioteConfig()
    model = primary.model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    spec = {"primary": primary.meta.get("key"), "symbiote": config.as_dict(), "seed": seed,
            "data_source": data.source, "classes": list(data.classes), "code": __version__,
            "source": source_digest("symbiote.network", "symbiote.training")}
    key = checkpoint_key(spec)
    with cache_lock("symbiotes", key):
        weights, sidecar = checkpoint_paths("symbiotes", key)
        generator = seed_everything(seed)
        scales = _unit_scales(model, data.train_images)
        symbiote = build_symbiote(model, model.n_classes, config, scales).to(data.device)
        shapes = {k: tuple(v.shape) for k, v in symbiote.state_dict().items()}
        found = None if retrain else load_checkpoint(weights, sidecar, key, shapes)
        if found is not None:
            tensors, meta = found
            symbiote.load_state_dict(tensors)
            return TrainedSymbiote(symbiote.eval(), primary, config, seed, True,
                                   meta.get("history", []), meta)

        classes = torch.tensor(data.classes, device=data.device)
        original = predict(model, data.train_images)
        optimizer = torch.optim.Adam(symbiote.parameters(), lr=config.lr)
        history: list[dict[str, float]] = []
        started = time.perf_counter()
        bar = tqdm(range(config.steps), desc="symbiote", disable=not progress_enabled(), leave=False)
        for step in bar:
            idx, labels, targets = inhibition_batch(data, classes, config.batch_size, generator)
            parts = symbiote_loss(symbiote, model, data.train_images[idx], targets, original[idx],
                                  labels)
            optimizer.zero_grad(set_to_none=True)
            parts["total"].backward()
            optimizer.step()
            if step % 50 == 0 or step == config.steps - 1:
                record = {"step": step, **{k: v.item() for k, v in parts.items()}}
                history.append(record)
                bar.set_postfix(inh=f"{record['inhibition']:.3f}", pres=f"{record['preservation']:.3f}")
        seconds = time.perf_counter() - started
        meta = {**spec, "key": key, "history": history, "train_seconds": seconds}
        save_checkpoint(symbiote.state_dict(), meta, weights, sidecar)
        return TrainedSymbiote(symbiote.eval(), primary, config, seed, False, history,
                               {**meta, "format": 1})
