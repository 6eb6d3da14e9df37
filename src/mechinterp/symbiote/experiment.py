"""One call from a condition and a digit to the full comparison the CLI prints.

:func:`inhibit_digit` trains (or loads) the primary for the condition and the symbiote, then
measures the symbiote and the three baselines on the same test images with the same unit
budget. The two conditions differ only in the primary:

* ``normal``: the small CNN (``cnn``: 8 and 16 channels, 128 hidden units);
* ``polysemantic``: a narrow CNN (``cnn-poly``: 4 and 8 channels, 8 hidden units) whose units
  have to serve several digits each.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from mechinterp.config import get_profile
from mechinterp.data import DigitData, load_digits
from mechinterp.errors import ConfigError
from mechinterp.symbiote.baselines import (
    all_unit_means,
    attribution_scores,
    attribution_units,
    logit_mask_hooks,
    mean_ablation_hooks,
    selective_units,
    selectivity_scores,
    top_units,
)
from mechinterp.symbiote.metrics import changed_units, evaluate_inhibition
from mechinterp.symbiote.network import SymbioteConfig
from mechinterp.symbiote.training import TrainedSymbiote, train_symbiote
from mechinterp.train import TrainedClassifier, train_classifier

__all__ = [
    "CONDITIONS",
    "primary_for",
    "symbiote_for",
    "inhibit_digit",
    "evaluate_symbiote",
    "compare_methods",
    "compare_all_digits",
    "ablation_budget_sweep",
]

CONDITIONS = {"normal": "cnn", "polysemantic": "cnn-poly"}


def primary_for(condition: str, data: DigitData, seed: int = 0) -> TrainedClassifier:
    """The trained primary A of a condition, on every class of ``data``.

    Raises:
        ConfigError: unknown condition.
    """
    if condition not in CONDITIONS:
        raise ConfigError(f"unknown condition {condition!r}; choose one of {sorted(CONDITIONS)}")
    return train_classifier(CONDITIONS[condition], seed=seed, data=data)


def symbiote_for(condition: str, data: DigitData, seed: int = 0,
                 config: SymbioteConfig | None = None) -> TrainedSymbiote:
    """Primary and symbiote for a condition (both cached)."""
    return train_symbiote(primary_for(condition, data, seed=0), data, config, seed=seed)


def evaluate_symbiote(trained: TrainedSymbiote, data: DigitData, digit: int) -> dict[str, Any]:
    """The symbiote's inhibition metrics for one digit, with the units it changes."""
    symbiote = trained.symbiote
    units = changed_units(symbiote, digit)
    budget = int(sum(len(v) for v in units.values()))
    with torch.no_grad():
        hooks = symbiote.hooks(torch.full((data.n_test,), digit, device=data.device))
    row = evaluate_inhibition(trained.primary.model, data, digit, hooks)
    row.update(units_changed=budget, units_changed_fraction=budget / symbiote.n_units,
               units_changed_per_layer={k: len(v) for k, v in units.items()})
    return row


def compare_methods(trained: TrainedSymbiote, data: DigitData, digit: int,
                    means: dict[str, torch.Tensor] | None = None) -> dict[str, dict[str, Any]]:
    """The symbiote and the three baselines on one digit, with the symbiote's unit budget."""
    model = trained.primary.model
    n_total = trained.symbiote.n_units
    means = means or all_unit_means(model, data.train_images)
    rows = {"symbiote": evaluate_symbiote(trained, data, digit)}
    budget = rows["symbiote"]["units_changed"]
    rows["logit_mask"] = evaluate_inhibition(model, data, digit, logit_mask_hooks(digit))
    rows["logit_mask"].update(units_changed=0, units_changed_fraction=0.0)
    for name, chooser in (("selective_ablation", selective_units),
                          ("attribution_ablation", attribution_units)):
        chosen = (chooser(model, data, digit, budget, means) if chooser is attribution_units
                  else chooser(model, data, digit, budget))
        rows[name] = evaluate_inhibition(model, data, digit, mean_ablation_hooks(chosen, means))
        rows[name].update(units_changed=budget, units_changed_fraction=budget / n_total)
    return rows


def compare_all_digits(trained: TrainedSymbiote, data: DigitData) -> dict[str, list[dict]]:
    """:func:`compare_methods` for every class of ``data``: ``{method: [row per class]}``."""
    means = all_unit_means(trained.primary.model, data.train_images)
    out: dict[str, list[dict]] = {}
    for digit in data.classes:
        for method, row in compare_methods(trained, data, digit, means).items():
            out.setdefault(method, []).append(row)
    return out


def ablation_budget_sweep(
    trained: TrainedSymbiote, data: DigitData, budgets: list[int]
) -> dict[str, list[dict[str, float]]]:
    """Both ablation baselines at several unit budgets, averaged over every class.

    Returns ``{method: [{"budget", "target_output_rate", "nontarget_accuracy_drop"}]}``, so a
    baseline can be judged at its best budget rather than only at the symbiote's.
    """
    model = trained.primary.model
    means = all_unit_means(model, data.train_images)
    out: dict[str, list[dict[str, float]]] = {}
    scorers = {"selective_ablation": lambda d: selectivity_scores(model, data, d),
               "attribution_ablation": lambda d: attribution_scores(model, data, d, means)}
    for method, scorer in scorers.items():
        scores = {digit: scorer(digit) for digit in data.classes}
        for budget in budgets:
            rows = [evaluate_inhibition(model, data, digit,
                                        mean_ablation_hooks(top_units(scores[digit], budget),
                                                            means))
                    for digit in data.classes]
            out.setdefault(method, []).append({
                "budget": budget,
                "target_output_rate": sum(r["target_output_rate"] for r in rows) / len(rows),
                "nontarget_accuracy_drop": sum(r["nontarget_accuracy_drop"] for r in rows)
                / len(rows),
            })
    return out


def inhibit_digit(
    digit: int,
    condition: str = "normal",
    *,
    source: str | None = None,
    seed: int = 0,
    config: SymbioteConfig | None = None,
) -> dict[str, Any]:
    """Train (or load) A and B for ``condition`` and evaluate inhibiting ``digit``.

    Returns one JSON-friendly dict: the symbiote's metrics at the top level (the keys of
    :func:`mechinterp.symbiote.metrics.evaluate_inhibition` plus ``units_changed`` and
    ``units_changed_fraction``), and ``baselines`` with the same metrics for each baseline.

    Raises:
        ConfigError: unknown condition.
        DataError: ``digit`` is not a class of the data.
    """
    started = time.perf_counter()
    data = load_digits(source)
    if digit not in data.classes:
        raise ConfigError(
            f"digit {digit} is not a class of data source {data.source!r}; its classes are "
            f"{list(data.classes)}"
        )
    trained = symbiote_for(condition, data, seed=seed, config=config)
    rows = compare_methods(trained, data, digit)
    result: dict[str, Any] = {"condition": condition, "data_source": data.source,
                              "profile": get_profile().name, "seed": seed,
                              "primary_arch": trained.primary.arch,
                              "primary_test_accuracy": trained.primary.test_accuracy}
    result.update(rows.pop("symbiote"))
    result["baselines"] = rows
    result["seconds"] = time.perf_counter() - started
    return result
