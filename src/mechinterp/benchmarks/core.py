"""Pieces shared by the toy-world and the pretrained benchmarks: the evaluation seed, batched
next-token logits for prompts of any length, and the ROME/MEMIT edit scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from mechinterp.errors import ConfigError

__all__ = ["EVAL_SEED", "check_count", "next_token_logits", "edit_scores", "bootstrap_interval"]

EVAL_SEED = 20_251
"""The seed of every random draw the benchmarks make (today: the sampled toxicity continuations).

It belongs to no other stream of the package: toy models train on the stream of their own seed
(0, 1, 2, ...), :func:`mechinterp.toyworld.heldout_loss` draws its held-out text with 10,000 and
the toy tasks' prompt pairs use small seeds. A benchmark number therefore never reuses a draw
that trained or tuned the model it measures."""


def check_count(name: str, value: int) -> None:
    """Raise a :class:`ConfigError` unless ``value`` is an integer of at least 1.

    Raises:
        ConfigError: ``value`` is not a positive integer.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer (the number of samples to draw), "
                          f"got {value!r}")


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def next_token_logits(model: Any, rows: Sequence[Sequence[int]]) -> torch.Tensor:
    """The logits of the token after each prompt, as a ``(len(rows), d_vocab)`` float tensor on
    the CPU.

    Prompts of equal length run as one batch, so no padding enters the computation.

    Args:
        model: a causal language model called as ``model(tokens) -> (batch, pos, d_vocab)``.
        rows: token ids of each prompt (BOS included where the model expects it).

    Raises:
        ConfigError: no prompts, or an empty one.
    """
    if not rows or any(len(r) == 0 for r in rows):
        raise ConfigError("next_token_logits needs at least one prompt, each of at least one "
                          "token")
    device = _device(model)
    by_length: dict[int, list[int]] = {}
    for i, row in enumerate(rows):
        by_length.setdefault(len(row), []).append(i)
    out: torch.Tensor | None = None
    with torch.no_grad():
        for indices in by_length.values():
            tokens = torch.tensor([list(rows[i]) for i in indices], device=device)
            logits = model(tokens)[:, -1].float().cpu()
            if out is None:
                out = torch.empty(len(rows), logits.shape[-1])
            out[indices] = logits
    assert out is not None
    return out


def bootstrap_interval(values: torch.Tensor, statistic=None, *, n: int = 2000,
                       level: float = 0.95, seed: int = EVAL_SEED) -> tuple[float, float]:
    """A percentile bootstrap interval of ``statistic`` (default: the mean) over the rows of
    ``values`` (prompts, sentences...), resampled ``n`` times with a seeded generator.

    Raises:
        ConfigError: fewer than two rows, or ``level`` outside (0, 1).
    """
    if len(values) < 2:
        raise ConfigError("a bootstrap interval needs at least two values")
    if not 0 < level < 1:
        raise ConfigError(f"level must be in (0, 1), got {level}")
    statistic = statistic or (lambda v: v.mean(0))
    g = torch.Generator().manual_seed(seed)
    draws = torch.randint(len(values), (n, len(values)), generator=g)
    stats = torch.stack([torch.as_tensor(statistic(values[d]), dtype=torch.float64)
                         for d in draws])
    low, high = torch.quantile(stats, torch.tensor([(1 - level) / 2, (1 + level) / 2],
                                                   dtype=torch.float64))
    return float(low), float(high)


def edit_scores(rewrite: torch.Tensor, paraphrase: torch.Tensor, neighbours: torch.Tensor,
                neighbour_answers: torch.Tensor, old: int, new: int) -> dict[str, float]:
    """ROME/MEMIT scores of one fact edit (subject: ``old`` -> ``new``) from next-token logits.

    Following Meng et al. (2022, "Locating and Editing Factual Associations in GPT", ROME) and
    Meng et al. (2023, "Mass-Editing Memory in a Transformer", MEMIT):

    * ``efficacy`` / ``paraphrase``: share of the rewrite prompt / of its paraphrases whose
      top-1 next token (over the whole vocabulary) is the new attribute;
    * ``efficacy_score`` / ``paraphrase_score``: share with ``P(new) > P(old)`` (the papers'
      ES and PS);
    * ``neighbourhood``: share of prompts about other subjects whose top-1 next token is still
      their own attribute;
    * ``neighbourhood_score``: share of them with ``P(own) > P(new)`` (the papers' NS);
    * ``p_new`` / ``p_old``: the probabilities on the rewrite prompt.

    Args:
        rewrite: ``(1, d_vocab)`` logits after the rewrite prompt.
        paraphrase: ``(k, d_vocab)`` logits after each paraphrase.
        neighbours: ``(m, d_vocab)`` logits after each neighbourhood prompt.
        neighbour_answers: ``(m,)`` each neighbourhood prompt's own attribute id.
        old, new: the edited attribute's ids.
    """
    def top(logits: torch.Tensor, ids: torch.Tensor) -> float:
        return float((logits.argmax(-1) == ids).float().mean())

    def beats(logits: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> float:
        rows = torch.arange(len(logits))
        return float((logits[rows, a] > logits[rows, b]).float().mean())

    def ids(value: int | torch.Tensor, n: int) -> torch.Tensor:
        return torch.as_tensor(value).expand(n)

    probs = rewrite.softmax(-1)[0]
    k, m = len(paraphrase), len(neighbours)
    return {
        "efficacy": top(rewrite, ids(new, 1)),
        "efficacy_score": beats(rewrite, ids(new, 1), ids(old, 1)),
        "paraphrase": top(paraphrase, ids(new, k)),
        "paraphrase_score": beats(paraphrase, ids(new, k), ids(old, k)),
        "neighbourhood": top(neighbours, neighbour_answers),
        "neighbourhood_score": beats(neighbours, neighbour_answers, ids(new, m)),
        "p_new": float(probs[new]),
        "p_old": float(probs[old]),
    }
