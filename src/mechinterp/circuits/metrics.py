"""Metrics of a model's answer on clean/corrupted prompt pairs.

A metric maps ``(logits (batch, pos, d_vocab), prompts)`` to a scalar tensor (so it can be
differentiated for attribution patching). Both read the last position.

* ``logit_diff``: mean of ``logit(answer) - logit(wrong)`` (Wang et al., 2023).
* ``kl``: mean KL divergence from the clean run's next-token distribution; it needs the clean
  logits, so it is built with :func:`kl_metric`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mechinterp.errors import ConfigError
from mechinterp.toyworld.tasks import PromptSet

__all__ = ["Metric", "logit_diff", "kl_metric", "get_metric", "METRICS"]

Metric = Callable[[torch.Tensor, PromptSet], torch.Tensor]


def logit_diff(logits: torch.Tensor, prompts: PromptSet) -> torch.Tensor:
    """Mean ``logit(answer) - logit(wrong)`` at the last position."""
    last = logits[:, -1]
    rows = torch.arange(last.shape[0], device=last.device)
    return (last[rows, prompts.answer] - last[rows, prompts.wrong]).mean()


def kl_metric(clean_logits: torch.Tensor) -> Metric:
    """Negative mean KL(clean || run) at the last position: 0 for the clean run, lower when
    the run's distribution moves away (negated so that, like the logit difference, higher
    means closer to the clean behaviour)."""
    reference = clean_logits[:, -1].detach().log_softmax(-1)

    def metric(logits: torch.Tensor, prompts: PromptSet) -> torch.Tensor:
        log_probs = logits[:, -1].log_softmax(-1)
        return -(reference.exp() * (reference - log_probs)).sum(-1).mean()

    return metric


METRICS = ("logit_diff", "kl")


def get_metric(name: str, clean_logits: torch.Tensor | None = None) -> Metric:
    """A metric by name (``kl`` needs the clean run's logits).

    Raises:
        ConfigError: unknown name, or ``kl`` without clean logits.
    """
    if name == "logit_diff":
        return logit_diff
    if name == "kl":
        if clean_logits is None:
            raise ConfigError("the kl metric needs the clean run's logits")
        return kl_metric(clean_logits)
    raise ConfigError(f"unknown metric {name!r}; metrics: {list(METRICS)}")
