"""Unit ablation on hooked classifiers: knock out channels or hidden units, measure the damage.

A *unit* is one index along dimension 1 of a hook point's activation: a channel of a
convolution (``(batch, channels, h, w)``) or a neuron of a linear layer (``(batch, n_units)``).
Zero ablation sets it to 0; mean ablation sets it to its mean over a reference set of images,
which removes the information it carries while keeping the activation scale downstream.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from transformer_lens.hook_points import HookPoint

from mechinterp.errors import ConfigError, ShapeError
from mechinterp.models import HookedClassifier

__all__ = [
    "per_unit",
    "unit_means",
    "ablation_hook",
    "accuracy_per_class_with_hooks",
    "single_unit_ablation",
]

HookFn = Callable[[torch.Tensor, HookPoint], torch.Tensor]


def per_unit(act: torch.Tensor) -> torch.Tensor:
    """Average a ``(batch, units, ...)`` activation over its spatial axes: ``(batch, units)``."""
    return act.mean(dim=tuple(range(2, act.dim()))) if act.dim() > 2 else act


@torch.no_grad()
def unit_means(model: HookedClassifier, hook_name: str, images: torch.Tensor) -> torch.Tensor:
    """Mean activation of each unit at ``hook_name`` over ``images``: ``(n_units,)``.

    For convolutions the mean runs over the batch and both spatial axes.
    """
    if hook_name not in model.hook_dict:
        raise ConfigError(f"unknown hook {hook_name!r}; available: {model.hidden_hooks}")
    _, cache = model.run_with_cache(images, names_filter=hook_name)
    return per_unit(cache[hook_name]).mean(0)


def ablation_hook(
    units: Sequence[int] | torch.Tensor,
    mode: str = "zero",
    means: torch.Tensor | None = None,
) -> HookFn:
    """A hook function that replaces the chosen units by zero or by their mean.

    Args:
        units: indices along dimension 1 to ablate.
        mode: ``"zero"`` or ``"mean"``.
        means: ``(n_units,)`` reference means, required for ``mode="mean"``.
    """
    if mode not in ("zero", "mean"):
        raise ConfigError(f"ablation mode must be 'zero' or 'mean', got {mode!r}")
    if mode == "mean" and means is None:
        raise ConfigError("mean ablation needs the units' means (see unit_means)")
    index = torch.as_tensor(list(units) if not isinstance(units, torch.Tensor) else units,
                            dtype=torch.long)

    def hook(act: torch.Tensor, hook: HookPoint) -> torch.Tensor:
        if index.numel() and int(index.max()) >= act.shape[1]:
            raise ShapeError(
                f"unit index {int(index.max())} is out of range for hook {hook.name} with "
                f"{act.shape[1]} units"
            )
        act = act.clone()
        idx = index.to(act.device)
        if mode == "zero":
            act[:, idx] = 0.0
        else:
            shape = [1, -1] + [1] * (act.dim() - 2)
            act[:, idx] = means.to(act.device)[idx].view(shape).expand_as(act[:, idx])
        return act

    return hook


@torch.no_grad()
def accuracy_per_class_with_hooks(
    model: HookedClassifier,
    images: torch.Tensor,
    labels: torch.Tensor,
    fwd_hooks: list[tuple[str, HookFn]],
    classes: Sequence[int],
) -> torch.Tensor:
    """Accuracy on each class while the hooks are active: ``(len(classes),)``."""
    model.eval()
    preds = model.run_with_hooks(images, fwd_hooks=fwd_hooks).argmax(-1)
    return torch.stack([(preds[labels == c] == c).float().mean() for c in classes])


@torch.no_grad()
def single_unit_ablation(
    model: HookedClassifier,
    hook_name: str,
    images: torch.Tensor,
    labels: torch.Tensor,
    classes: Sequence[int],
    mode: str = "zero",
    reference: torch.Tensor | None = None,
) -> torch.Tensor:
    """Drop in per-class accuracy when each unit of ``hook_name`` is ablated on its own.

    Args:
        model: the classifier.
        hook_name: a hidden hook, e.g. ``"conv2.hook_post"``.
        images: evaluation images.
        labels: their labels.
        classes: the classes to report.
        mode: ``"zero"`` or ``"mean"``.
        reference: images for the means in mean mode (default: ``images``).

    Returns:
        ``(n_units, len(classes))``: baseline accuracy minus ablated accuracy.
    """
    n_units = model.unit_counts().get(hook_name)
    if n_units is None:
        raise ConfigError(f"unknown hidden hook {hook_name!r}; available: {model.hidden_hooks}")
    means = unit_means(model, hook_name, images if reference is None else reference)
    base = accuracy_per_class_with_hooks(model, images, labels, [], classes)
    drops = []
    for unit in range(n_units):
        hook = ablation_hook([unit], mode, means)
        drops.append(base - accuracy_per_class_with_hooks(model, images, labels,
                                                          [(hook_name, hook)], classes))
    return torch.stack(drops)
