"""Baselines the symbiote is compared with, each turning a class into forward hooks.

* :func:`logit_mask_hooks`: set the inhibited class's logit to minus infinity. It acts at the
  output, which the symbiote is not allowed to do, and is perfect by construction; it shows
  what acting at the output gives for free (the non-target accuracy it keeps is the ceiling).
* :func:`selective_units`: the ``budget`` units whose mean activation is most specific to the
  class (standardised difference between the class and the rest), mean-ablated.
* :func:`attribution_units`: the ``budget`` units whose mean-ablation is predicted by
  attribution patching (a first-order Taylor estimate, Nanda 2023) to lower the class's logit
  margin the most on the class's training images, mean-ablated.

The two ablation baselines get the same unit budget as the symbiote for that class.
"""

from __future__ import annotations

import torch

from mechinterp.ablation import ablation_hook, per_unit, unit_means
from mechinterp.data import DigitData
from mechinterp.errors import ConfigError
from mechinterp.models import HookedClassifier

__all__ = [
    "logit_mask_hooks",
    "selectivity_scores",
    "attribution_scores",
    "top_units",
    "selective_units",
    "attribution_units",
    "mean_ablation_hooks",
    "all_unit_means",
]

UnitSet = dict[str, torch.Tensor]


def logit_mask_hooks(digit: int) -> list:
    """Hooks that remove ``digit`` from the output by masking its logit."""

    def hook(logits: torch.Tensor, hook) -> torch.Tensor:
        logits = logits.clone()
        logits[:, digit] = float("-inf")
        return logits

    return [("hook_logits", hook)]


def all_unit_means(model: HookedClassifier, images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean activation of every hidden unit over ``images``: ``{hook: (n_units,)}``."""
    return {name: unit_means(model, name, images) for name in model.hidden_hooks}


def mean_ablation_hooks(units: UnitSet, means: dict[str, torch.Tensor]) -> list:
    """Hooks that mean-ablate the given units."""
    return [(name, ablation_hook(idx, "mean", means[name]))
            for name, idx in units.items() if len(idx)]


def top_units(scores: dict[str, torch.Tensor], budget: int) -> UnitSet:
    """The ``budget`` highest-scoring units across all hooks: ``{hook: sorted indices}``."""
    if budget < 0:
        raise ConfigError(f"unit budget must be >= 0, got {budget}")
    names = list(scores)
    flat = torch.cat([scores[n].flatten() for n in names])
    owner = torch.cat([torch.full((scores[n].numel(),), i) for i, n in enumerate(names)])
    local = torch.cat([torch.arange(scores[n].numel()) for n in names])
    chosen = torch.argsort(flat, descending=True)[:budget]
    return {n: torch.sort(local[chosen][owner[chosen] == i]).values for i, n in enumerate(names)}


@torch.no_grad()
def selectivity_scores(model: HookedClassifier, data: DigitData, digit: int
                       ) -> dict[str, torch.Tensor]:
    """How specific each unit is to ``digit``: (mean on the digit - mean on the rest) / std."""
    _, cache = model.run_with_cache(data.train_images,
                                    names_filter=lambda n: n in model.hidden_hooks)
    is_digit = data.train_labels == digit
    scores = {}
    for name in model.hidden_hooks:
        act = per_unit(cache[name])
        spread = act.std(0).clamp_min(1e-6)
        scores[name] = ((act[is_digit].mean(0) - act[~is_digit].mean(0)) / spread).cpu()
    return scores


def attribution_scores(model: HookedClassifier, data: DigitData, digit: int,
                       means: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Predicted drop of ``digit``'s logit margin when each unit is mean-ablated.

    The metric is the digit's logit minus the mean of the other logits, on the digit's
    training images. For each unit the estimated change under mean-ablation is
    ``sum((mean - act) * grad)`` over its positions, averaged over images (attribution
    patching: one forward and one backward pass for all units). Larger score = larger
    predicted drop.
    """
    # the input requires grad so activations carry gradients even when A's weights are frozen
    images = data.train_images[data.train_labels == digit].clone().requires_grad_(True)
    if len(images) == 0:
        raise ConfigError(f"no training images of class {digit} to attribute with")
    means = means or all_unit_means(model, data.train_images)
    cache: dict[str, torch.Tensor] = {}

    def keep(act, hook):
        act.retain_grad()
        cache[hook.name] = act
        return act

    model.eval()
    with torch.enable_grad():
        logits = model.run_with_hooks(images, fwd_hooks=[(n, keep) for n in model.hidden_hooks])
        others = torch.cat([logits[:, :digit], logits[:, digit + 1:]], dim=1)
        metric = (logits[:, digit] - others.mean(1)).mean()
        metric.backward()
    scores = {}
    for name in model.hidden_hooks:
        act, grad = cache[name], cache[name].grad
        shape = [1, -1] + [1] * (act.dim() - 2)
        delta = (means[name].view(shape) - act) * grad
        estimate = delta.sum(dim=tuple(range(2, act.dim()))) if act.dim() > 2 else delta
        scores[name] = (-estimate.mean(0)).detach().cpu()
    return scores


def selective_units(model: HookedClassifier, data: DigitData, digit: int, budget: int) -> UnitSet:
    """The ``budget`` units most selective for ``digit`` on the training images."""
    return top_units(selectivity_scores(model, data, digit), budget)


def attribution_units(model: HookedClassifier, data: DigitData, digit: int, budget: int,
                      means: dict[str, torch.Tensor] | None = None) -> UnitSet:
    """The ``budget`` units whose mean-ablation most lowers ``digit``'s logit margin (estimated)."""
    return top_units(attribution_scores(model, data, digit, means), budget)
