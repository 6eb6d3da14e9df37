"""The before/after benchmark suite: every behaviour metric, run on a model, then on the same
model with an intervention applied, then rolled back.

An intervention is any object with ``name``, ``kind``, an optional ``fact`` (``(subject, old,
new)`` for fact edits) and a context manager ``applied(model)`` that applies it on entry and
removes it on exit, as :mod:`mechinterp.interventions` writes them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from mechinterp.benchmarks import pretrained as pretrained_benchmarks
from mechinterp.benchmarks.core import EVAL_SEED
from mechinterp.benchmarks.toy import (
    bias_gap,
    capability,
    check_fact,
    edit_metrics,
    factual_recall,
    toxicity_rate,
)
from mechinterp.errors import ConfigError
from mechinterp.reporting import markdown_table
from mechinterp.toyworld.models import TOY_MODELS, ToyModel, ToyModelSpec
from mechinterp.toyworld.tasks import sample_training_batch
from mechinterp.toyworld.vocab import WordTokenizer

__all__ = ["HEADLINE", "run_suite", "summary", "before_after", "results_table",
           "plot_before_after"]

HEADLINE: dict[str, tuple[str, ...]] = {
    "toxicity": ("toxicity", "trigger"),
    "calm_toxicity": ("toxicity", "calm"),
    "factual_recall": ("factual_recall", "accuracy"),
    "bias_gap": ("bias_gap", "gap"),
    "loss": ("loss",),
    "efficacy": ("edit", "efficacy"),
    "paraphrase": ("edit", "paraphrase"),
    "neighbourhood": ("edit", "neighbourhood"),
}
"""Headline number -> where it sits in a suite's results (the edit scores only with a fact)."""


def run_suite(model: Any, tokenizer: WordTokenizer, spec: ToyModelSpec | None = None, *,
              fact: tuple[str, str, str] | None = None, n: int = 600,
              seed: int = EVAL_SEED) -> dict[str, Any]:
    """Every toy-world behaviour metric of :mod:`mechinterp.benchmarks.toy` on ``model``.

    Args:
        model: a toy-world model.
        tokenizer: the toy world's tokenizer.
        spec: the model's spec, for the held-out loss (default: ``toyworld-2l``).
        fact: a fact edit ``(subject, old colour, new colour)`` to score as well.
        n: toxicity samples per kind of prompt.
        seed: the toxicity sampling seed (default: the evaluation seed).

    Returns:
        ``toxicity``, ``factual_recall``, ``bias_gap`` (dictionaries), ``loss`` (a float) and,
        with a fact, ``edit``.

    Raises:
        ConfigError: ``n`` is not a positive integer, or ``fact`` is invalid.
    """
    if fact is not None:
        check_fact(fact)
    results: dict[str, Any] = {
        "toxicity": toxicity_rate(model, tokenizer, n=n, seed=seed),
        "factual_recall": factual_recall(model, tokenizer),
        "bias_gap": bias_gap(model, tokenizer),
        "loss": capability(model, spec),
    }
    if fact is not None:
        results["edit"] = edit_metrics(model, tokenizer, fact)
    return results


def summary(results: Mapping[str, Any]) -> dict[str, float]:
    """The :data:`HEADLINE` numbers present in one suite's results."""
    out = {}
    for name, path in HEADLINE.items():
        value: Any = results
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        if isinstance(value, (int, float)):
            out[name] = float(value)
    return out


def _probe(model: Any, tokenizer: WordTokenizer | None, spec: ToyModelSpec | None
           ) -> torch.Tensor:
    if tokenizer is None:
        return pretrained_benchmarks.probe_tokens(model)
    spec = spec or TOY_MODELS["toyworld-2l"]
    tokens = sample_training_batch(tokenizer, 8, spec.n_ctx, torch.Generator().manual_seed(
        EVAL_SEED), spec.mixture)
    return tokens.to(next(model.parameters()).device)


def _logits(model: Any, tokens: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(tokens).float().cpu()


def before_after(subject: Any, intervention: Any, *, fact: tuple[str, str, str] | None = None,
                 n: int = 600, seed: int = EVAL_SEED, atol: float = 1e-5) -> dict[str, Any]:
    """Run the suite, apply ``intervention``, run it again, and roll the intervention back.

    The intervention is applied with ``intervention.applied(model)``, whose exit removes it
    whether the second run succeeds or raises. After a successful run the model's logits on a
    fixed probe batch are compared with those from before, so an intervention that does not
    undo itself is caught.

    Args:
        subject: a :class:`~mechinterp.toyworld.ToyModel` (the toy-world suite,
            :func:`run_suite`) or a pretrained ``TransformerBridge`` with its tokenizer (the
            English suite, :func:`~mechinterp.benchmarks.pretrained.run_pretrained_suite`).
        intervention: an object with ``name``, ``kind``, an optional ``fact`` and
            ``applied(model)``.
        fact: the fact edit to score (default: ``intervention.fact`` where it has one).
        n, seed: toxicity sampling of the toy-world suite.
        atol: largest logit difference on the probe batch that still counts as rolled back.

    Returns:
        ``intervention``, ``kind``, ``fact``, ``before`` and ``after`` (each suite's results),
        ``change`` (after minus before of each :data:`HEADLINE` number), ``summary``
        (``{"before": ..., "after": ...}`` headline numbers), ``seconds``.

    Raises:
        ConfigError: the intervention lacks ``applied``, an invalid fact or ``n``, or the
            model's logits differ after the intervention was removed.
    """
    if not callable(getattr(intervention, "applied", None)):
        raise ConfigError(f"{intervention!r} is not an intervention: it needs an applied(model) "
                          f"context manager (see mechinterp.interventions)")
    fact = fact if fact is not None else getattr(intervention, "fact", None)
    if isinstance(subject, ToyModel):
        model, tokenizer, spec = subject.model, subject.tokenizer, subject.spec

        def suite() -> dict[str, Any]:
            return run_suite(model, tokenizer, spec, fact=fact, n=n, seed=seed)
    else:
        model, tokenizer, spec = subject, None, None

        def suite() -> dict[str, Any]:
            return pretrained_benchmarks.run_pretrained_suite(model, fact=fact)
    started = time.perf_counter()
    probe = _probe(model, tokenizer, spec)
    reference = _logits(model, probe)
    before = suite()
    with intervention.applied(model):
        after = suite()
    drift = float((_logits(model, probe) - reference).abs().max())
    name = getattr(intervention, "name", type(intervention).__name__)
    if drift > atol:
        raise ConfigError(f"intervention {name!r} did not restore the model: after removing it "
                          f"the logits differ by up to {drift:.3g} from before; its remove() "
                          f"must undo everything apply() changed")
    head_before, head_after = summary(before), summary(after)
    return {"intervention": name, "kind": getattr(intervention, "kind", ""), "fact": fact,
            "before": before, "after": after,
            "change": {k: head_after[k] - head_before[k] for k in head_before if k in head_after},
            "summary": {"before": head_before, "after": head_after},
            "seconds": time.perf_counter() - started}


def _metrics(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str] | None) -> list[str]:
    if metrics is not None:
        unknown = [m for m in metrics if m not in HEADLINE]
        if unknown:
            raise ConfigError(f"unknown metrics {unknown}; headline metrics: {list(HEADLINE)}")
        return list(metrics)
    present = {k for row in rows for k in row["summary"]["before"]}
    return [m for m in HEADLINE if m in present]


def results_table(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str] | None = None,
                  fmt: str = ".3f") -> str:
    """A Markdown table with one row per :func:`before_after` result and one "before -> after"
    column per headline metric.

    Args:
        rows: results of :func:`before_after`.
        metrics: the :data:`HEADLINE` metrics to show (default: those any row has).
        fmt: the numbers' format spec.

    Raises:
        ConfigError: no rows, or an unknown metric.
    """
    if not rows:
        raise ConfigError("results_table needs at least one before_after result")
    names = _metrics(rows, metrics)
    table = []
    for row in rows:
        before, after = row["summary"]["before"], row["summary"]["after"]
        cells = {"intervention": row["intervention"]}
        for m in names:
            cells[m] = (f"{before[m]:{fmt}} → {after[m]:{fmt}}" if m in before and m in after
                        else None)
        table.append(cells)
    return markdown_table(table, {"intervention": "intervention",
                                  **{m: m.replace("_", " ") for m in names}})


def plot_before_after(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str] | None = None
                      ) -> Any:
    """Grouped bars, one panel per headline metric: each intervention's value before and after.

    Args:
        rows: results of :func:`before_after`.
        metrics: the :data:`HEADLINE` metrics to draw (default: those any row has).

    Returns:
        A matplotlib ``Figure`` (not shown).

    Raises:
        ConfigError: no rows, or an unknown metric.
    """
    if not rows:
        raise ConfigError("plot_before_after needs at least one before_after result")
    import numpy as np

    from mechinterp.plotting import plt  # selects a headless backend when there is no display

    names = _metrics(rows, metrics)
    labels = [row["intervention"] for row in rows]
    x = np.arange(len(rows))
    fig, axes = plt.subplots(1, len(names), figsize=(2.2 + 2.0 * len(names) + 0.3 * len(rows),
                                                      3.5), squeeze=False)
    for ax, metric in zip(axes[0], names, strict=True):
        for offset, when, colour in ((-0.2, "before", "tab:grey"), (0.2, "after", "tab:blue")):
            values = [row["summary"][when].get(metric, np.nan) for row in rows]
            ax.bar(x + offset, values, width=0.4, label=when, color=colour)
        ax.set_xticks(x, labels, rotation=30, ha="right")
        ax.set_title(metric.replace("_", " "))
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="upper center", ncol=2,
               frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    return fig
