"""One call from a condition and a digit to the full comparison the CLI prints.

:func:`inhibit_digit` trains (or loads) the primary for the condition and the symbiote, then
measures the symbiote and the baselines on the same test images with the same unit budget.
The conditions differ only in the primary:

* ``normal``: the small CNN (``cnn``: 8 and 16 channels, 128 hidden units);
* ``polysemantic``: the same CNN trained with the same data and budget plus a penalty on its
  hidden units' class selectivity (:data:`SELECTIVITY_PENALTY`, chosen on validation data by
  ``tools/choose_selectivity_penalty.py`` to keep validation accuracy within half a point),
  whose hidden units each answer to more digits
  (:func:`~mechinterp.symbiote.metrics.unit_class_count`);
* ``mixed``: the *same trained* normal CNN read in a random orthonormal basis at every hidden
  layer (:func:`mechinterp.models.mix_basis`): the same function and accuracy, but every unit
  the symbiote and the baselines can act on is a mixture of all of the layer's units;
* ``narrow``: a narrow CNN (``cnn-poly``: 4 and 8 channels, 8 hidden units) whose units have to
  serve several digits each, at a lower accuracy (polysemantic by lack of room, but confounded
  with accuracy).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import torch

from mechinterp.config import get_profile
from mechinterp.data import DigitData, load_digits
from mechinterp.errors import ConfigError
from mechinterp.models import mix_basis
from mechinterp.symbiote.baselines import (
    ABLATIONS,
    UNIT_CHOOSERS,
    ReferenceBank,
    ablation_hooks,
    attribution_scores,
    gate_hooks,
    logit_mask_hooks,
    selectivity_scores,
    top_units,
    train_unit_gates,
)
from mechinterp.symbiote.metrics import (
    class_means,
    evaluate_inhibition,
    unit_class_count,
    unit_class_entropy,
)
from mechinterp.symbiote.network import SymbioteConfig
from mechinterp.symbiote.training import TrainedSymbiote, train_symbiote
from mechinterp.train import TrainConfig, TrainedClassifier, predict, train_classifier

__all__ = [
    "CONDITIONS",
    "primary_for",
    "polysemanticity",
    "symbiote_for",
    "inhibit_digit",
    "evaluate_symbiote",
    "compare_methods",
    "compare_all_digits",
    "ablation_budget_sweep",
    "units_touched",
    "symbiote_modulations",
    "gate_variation",
    "trained_gate_tables",
    "choose_ablation",
    "TOUCH_TOLERANCE",
    "SELECTIVITY_PENALTY",
]

CONDITIONS = {"normal": "cnn", "polysemantic": "cnn+unselective", "mixed": "cnn+mixed",
              "narrow": "cnn-poly"}
"""Each condition's primary: a registry architecture, ``+mixed`` meaning read in a random
basis (:func:`~mechinterp.models.mix_basis`), ``+unselective`` trained with
:data:`SELECTIVITY_PENALTY`."""

SELECTIVITY_PENALTY = 0.3
"""The polysemantic primary's selectivity penalty. Chosen on the quick profile by
``tools/choose_selectivity_penalty.py`` before any symbiote was trained on it: the largest of
0, 0.1, 0.3, 1 and 3 whose mean validation accuracy over three seeds (a fifth of the training
split held out) stays within half a point of the unpenalised CNN's (measured: -0.33 point at
0.3, -1.13 at 1; classes per unit 4.61 -> 5.77)."""


def primary_for(condition: str, data: DigitData, seed: int = 0) -> TrainedClassifier:
    """The trained primary A of a condition, on every class of ``data`` (for ``mixed`` the
    normal primary of the same seed, in a basis drawn from that seed).

    Raises:
        ConfigError: unknown condition.
    """
    if condition not in CONDITIONS:
        raise ConfigError(f"unknown condition {condition!r}; choose one of {sorted(CONDITIONS)}")
    arch, _, variant = CONDITIONS[condition].partition("+")
    if variant == "unselective":
        config = TrainConfig.from_profile(selectivity_penalty=SELECTIVITY_PENALTY)
        trained = train_classifier(arch, seed=seed, data=data, config=config)
        trained.model.arch = f"{arch}+{variant}"
        return replace(trained, arch=trained.model.arch)
    trained = train_classifier(arch, seed=seed, data=data)
    if not variant:
        return trained
    model = mix_basis(trained.model, seed=seed)
    meta = {**trained.meta, "key": f"{trained.meta.get('key')}+mixed{seed}"}
    return replace(trained, model=model, arch=model.arch, meta=meta)


def symbiote_for(condition: str, data: DigitData, seed: int = 0,
                 config: SymbioteConfig | None = None, *, kind: str | None = None,
                 primary_seed: int = 0) -> TrainedSymbiote:
    """Primary (from ``primary_seed``) and symbiote (from ``seed``) for a condition, both
    cached; ``kind`` (``fixed`` or ``conditional``) overrides the config's. Symbiotes of
    several seeds on one primary share its units, so their maps can be compared unit by
    unit."""
    config = config or SymbioteConfig()
    if kind is not None and kind != config.kind:
        config = SymbioteConfig(**{**config.as_dict(), "kind": kind})
    return train_symbiote(primary_for(condition, data, seed=primary_seed), data, config,
                          seed=seed)


def polysemanticity(model, data: DigitData) -> dict[str, float]:
    """A primary's two per-unit polysemanticity measures, each a mean over all hidden units:
    ``polysemanticity`` (classes a unit answers to,
    :func:`~mechinterp.symbiote.metrics.unit_class_count`) and ``class_entropy``
    (:func:`~mechinterp.symbiote.metrics.unit_class_entropy`)."""
    means = class_means(model, data)  # one pass over the training images for both
    count = torch.cat(list(unit_class_count(model, data, means=means).values()))
    entropy = torch.cat(list(unit_class_entropy(model, data, means=means).values()))
    return {"polysemanticity": float(count.nanmean()), "class_entropy": float(entropy.nanmean())}


@torch.no_grad()
def gate_variation(trained: TrainedSymbiote, data: DigitData, digit: int
                   ) -> dict[str, dict[str, torch.Tensor]]:
    """How a symbiote's gates for ``digit`` vary over the test images, per hook: ``std`` (over
    every test image), ``mean_target`` and ``mean_other`` (mean gate on the images of the
    digit and of the other classes), each ``(n_units,)``. A fixed B has ``std`` 0."""
    modulations = symbiote_modulations(trained, data, digit)
    of_digit = data.test_labels == digit
    return {name: {"std": gate.std(0).cpu(), "mean_target": gate[of_digit].mean(0).cpu(),
                   "mean_other": gate[~of_digit].mean(0).cpu()}
            for name, (gate, _) in modulations.items()}


TOUCH_TOLERANCE = 0.001
"""A tenth of a point: how far the target rate and the non-target accuracy may move when the
symbiote's smallest modulations are reset to the identity (see :func:`units_touched`)."""


def _images(data: DigitData, split: str) -> torch.Tensor:
    return data.test_images if split == "test" else data.train_images


@torch.no_grad()
def symbiote_modulations(trained: TrainedSymbiote, data: DigitData, digit: int,
                         split: str = "test") -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """B's modulations for inhibiting ``digit`` on every image of ``split``: ``{hook: (gate,
    shift)}``, each ``(n_images, n_units)`` (the same row repeated for a fixed B)."""
    images = _images(data, split)
    n = images.shape[0]
    if trained.config.kind == "fixed":
        return {name: (g.expand(n, -1), s.expand(n, -1))
                for name, (g, s) in trained.symbiote.table([digit]).items()}
    targets = torch.full((n,), digit, dtype=torch.long, device=images.device)
    return trained.symbiote.modulations(trained.primary.model, targets, images)


def _restricted_hooks(trained: TrainedSymbiote, modulations: dict, keep: torch.Tensor) -> list:
    """Hooks applying ``modulations`` (:func:`symbiote_modulations`) with every unit outside
    ``keep`` (a bool mask over all units, hooks in order) reset to the identity."""
    out, start = {}, 0
    for name, (gate, shift) in modulations.items():
        kept = keep[start : start + gate.shape[1]].to(gate.device)
        start += gate.shape[1]
        out[name] = (torch.where(kept, gate, 1.0), torch.where(kept, shift, 0.0))
    return trained.symbiote.hooks_from(out)


def _deviation(modulations: dict) -> torch.Tensor:
    """How far B moves each unit from the identity, averaged over the images."""
    return torch.cat([((g - 1).abs() + s.abs()).mean(0).cpu() for g, s in modulations.values()])


def _as_units(trained: TrainedSymbiote, keep: torch.Tensor) -> dict[str, torch.Tensor]:
    out, start = {}, 0
    for name, size in trained.symbiote.layer_sizes.items():
        out[name] = torch.nonzero(keep[start : start + size]).flatten()
        start += size
    return out


@torch.no_grad()
def units_touched(trained: TrainedSymbiote, data: DigitData, digit: int, *,
                  tolerance: float = TOUCH_TOLERANCE) -> tuple[dict[str, torch.Tensor], float]:
    """The units B really uses for ``digit``: the fewest of its largest modulations that
    reproduce its effect.

    Units are ranked by how far B moves them from the identity (averaged over the images
    for a conditional B); the smallest ``k`` such that
    keeping B's top ``k`` modulations (and resetting the rest to the identity) leaves the
    target output rate and the non-target accuracy within ``tolerance`` of full B's is found
    by bisection, on the *training* images, so the count is fixed before any test image is
    seen. Every baseline gets that same ``k``.

    Returns:
        ``({hook: indices}, threshold)``: the units and the smallest deviation kept (the
        threshold at which B is counted; ``inf`` when no unit is needed).
    """
    model = trained.primary.model
    modulations = symbiote_modulations(trained, data, digit, "train")
    deviation = _deviation(modulations)
    order = torch.argsort(deviation, descending=True)
    before = predict(model, data.train_images)

    def metrics(k: int) -> tuple[float, float]:
        keep = torch.zeros(len(deviation), dtype=torch.bool)
        keep[order[:k]] = True
        row = evaluate_inhibition(model, data, digit,
                                  _restricted_hooks(trained, modulations, keep),
                                  split="train", before=before)
        return row["target_output_rate"], row["nontarget_accuracy"]

    full = metrics(len(deviation))
    lo, hi = 0, len(deviation)
    while lo < hi:
        mid = (lo + hi) // 2
        if all(abs(a - b) <= tolerance + 1e-9 for a, b in zip(metrics(mid), full, strict=True)):
            hi = mid
        else:
            lo = mid + 1
    keep = torch.zeros(len(deviation), dtype=torch.bool)
    keep[order[:hi]] = True
    threshold = float(deviation[order[hi - 1]]) if hi else float("inf")
    return _as_units(trained, keep), threshold


def _count(units: dict[str, torch.Tensor]) -> int:
    return int(sum(len(v) for v in units.values()))


def evaluate_symbiote(trained: TrainedSymbiote, data: DigitData, digit: int,
                      touched: tuple[dict[str, torch.Tensor], float] | None = None
                      ) -> dict[str, Any]:
    """The symbiote *as counted* on ``digit``: only the units of :func:`units_touched` keep
    their modulations (the rest are reset to the identity), so the units reported are the
    units used. ``unpruned`` holds full B's metrics, ``units_changed`` the count at the
    config's ``change_threshold`` (of the mean deviation over the test images for a
    conditional B), and ``symbiote_parameters`` what B adds to A."""
    units, threshold = touched or units_touched(trained, data, digit)
    symbiote = trained.symbiote
    keep = torch.cat([torch.isin(torch.arange(size), units[name].cpu())
                      for name, size in symbiote.layer_sizes.items()])
    model = trained.primary.model
    modulations = symbiote_modulations(trained, data, digit)
    before = predict(model, data.test_images)
    row = evaluate_inhibition(model, data, digit, _restricted_hooks(trained, modulations, keep),
                              before=before)
    full = evaluate_inhibition(model, data, digit,
                               _restricted_hooks(trained, modulations, torch.ones_like(keep)),
                               before=before)
    k = _count(units)
    row.update(units_touched=k, units_touched_fraction=k / symbiote.n_units,
               touch_threshold=threshold,
               units_touched_per_layer={name: len(v) for name, v in units.items()},
               units_changed=int((_deviation(modulations) > trained.config.change_threshold)
                                 .sum()),
               symbiote_kind=trained.config.kind, symbiote_parameters=symbiote.n_parameters,
               unpruned={key: full[key] for key in ("target_output_rate", "nontarget_accuracy",
                                                    "nontarget_accuracy_drop")})
    return row


def _gated(model, data: DigitData, digit: int, gates: torch.Tensor) -> list:
    return gate_hooks(model, gates.to(data.device)[None].expand(data.n_test, -1))


def trained_gate_tables(trained: TrainedSymbiote, data: DigitData,
                        touched: dict[int, tuple[dict[str, torch.Tensor], float]],
                        bank: ReferenceBank | None = None
                        ) -> dict[str, dict[int, torch.Tensor]]:
    """The two trained-gates baselines (:func:`train_unit_gates`, the symbiote's config and
    seed): on the units B touches for each class, and on as many units chosen by attribution
    (against the mean over the other classes)."""
    model = trained.primary.model
    own = {d: units for d, (units, _) in touched.items()}
    bank = bank or ReferenceBank(model, data)
    attributed = {d: top_units(attribution_scores(model, data, d,
                                                  bank.references(d, "mean_nontarget")),
                               _count(units)) for d, units in own.items()}
    return {name: train_unit_gates(model, data, sets, trained.config, seed=trained.seed)
            for name, sets in (("trained_gates_symbiote_units", own),
                               ("trained_gates_attribution_units", attributed))}


def _ablations(model, data: DigitData, digit: int, budget: int, bank: ReferenceBank, *,
               split: str = "test") -> dict[tuple[str, str], tuple[dict, dict]]:
    """``{(chooser, mode): (units, references)}`` for every unit chooser and ablation at
    ``budget`` units, with references sized for ``split``. Attribution estimates the effect of
    the replacement it will make (its expectation for resampling), and each distinct estimate
    is computed once."""
    n = data.n_test if split == "test" else data.n_train
    references = {mode: bank.references(digit, mode, n=n) for mode in ABLATIONS}
    selective = top_units(selectivity_scores(model, data, digit), budget)
    attributed: dict[str, dict] = {}
    out = {}
    for mode in ABLATIONS:
        expected = "mean_nontarget" if mode == "resample" else mode
        if expected not in attributed:
            attributed[expected] = top_units(attribution_scores(
                model, data, digit, references[expected]), budget)
        chosen = {"selective": selective, "attribution": attributed[expected]}
        for chooser in UNIT_CHOOSERS:
            out[chooser, mode] = (chosen[chooser], references[mode])
    return out


def choose_ablation(trained: TrainedSymbiote, data: DigitData,
                    touched: dict[int, tuple[dict[str, torch.Tensor], float]],
                    bank: ReferenceBank | None = None) -> str:
    """The best ablation at the symbiote's budget, chosen on the *training* images: the
    ``{chooser}_{mode}`` with the lowest target output rate plus non-target accuracy drop,
    averaged over the classes of ``touched`` (each class at its own budget). The rule is fixed
    here so that the ablation a page reports as best was not picked on the test images."""
    model = trained.primary.model
    bank = bank or ReferenceBank(model, data)
    before = predict(model, data.train_images)
    cost: dict[str, float] = {}
    for digit, (units, _) in touched.items():
        for (chooser, mode), (chosen, reference) in _ablations(
                model, data, digit, _count(units), bank, split="train").items():
            row = evaluate_inhibition(model, data, digit, ablation_hooks(chosen, reference),
                                      split="train", before=before)
            cost[f"{chooser}_{mode}"] = cost.get(f"{chooser}_{mode}", 0.0) + (
                row["target_output_rate"] + row["nontarget_accuracy_drop"]) / len(touched)
    return min(cost, key=cost.__getitem__)


def compare_methods(trained: TrainedSymbiote, data: DigitData, digit: int, *,
                    touched: tuple[dict[str, torch.Tensor], float] | None = None,
                    gate_tables: dict[str, dict[int, torch.Tensor]] | None = None,
                    bank: ReferenceBank | None = None) -> dict[str, dict[str, Any]]:
    """The symbiote and every baseline on one digit, all at the symbiote's unit budget.

    Rows: ``symbiote`` (as counted, :func:`evaluate_symbiote`), ``logit_mask``, one row per
    unit chooser and ablation (``selective_mean``, ``attribution_zero``...; see
    :mod:`~mechinterp.symbiote.baselines`) and, when ``gate_tables`` is given
    (:func:`trained_gate_tables`), one per trained-gates baseline. Every row but the
    symbiote's carries ``units``.
    """
    model = trained.primary.model
    touched = touched or units_touched(trained, data, digit)
    rows = {"symbiote": evaluate_symbiote(trained, data, digit, touched)}
    budget = rows["symbiote"]["units_touched"]
    before = predict(model, data.test_images)
    rows["logit_mask"] = evaluate_inhibition(model, data, digit, logit_mask_hooks(digit),
                                             before=before)
    rows["logit_mask"].update(units=0, units_fraction=0.0)
    n_units = trained.symbiote.n_units
    bank = bank or ReferenceBank(model, data)
    for (chooser, mode), (units, reference) in _ablations(model, data, digit, budget,
                                                          bank).items():
        row = evaluate_inhibition(model, data, digit, ablation_hooks(units, reference),
                                  before=before)
        rows[f"{chooser}_{mode}"] = {**row, "units": budget, "units_fraction": budget / n_units}
    for name, table in (gate_tables or {}).items():
        row = evaluate_inhibition(model, data, digit, _gated(model, data, digit, table[digit]),
                                  before=before)
        moved = int((table[digit] != 1).sum())
        rows[name] = {**row, "units": moved, "units_fraction": moved / n_units}
    return rows


def compare_all_digits(trained: TrainedSymbiote, data: DigitData, *,
                       trained_gates: bool = True,
                       touched: dict[int, tuple[dict[str, torch.Tensor], float]] | None = None
                       ) -> dict[str, list[dict]]:
    """:func:`compare_methods` for every class of ``data``: ``{method: [row per class]}``
    (with the trained-gates baselines unless ``trained_gates`` is false). ``touched``: the
    :func:`units_touched` of every class, when the caller has them."""
    touched = touched or {d: units_touched(trained, data, d) for d in data.classes}
    bank = ReferenceBank(trained.primary.model, data)
    tables = trained_gate_tables(trained, data, touched, bank) if trained_gates else None
    out: dict[str, list[dict]] = {}
    for digit in data.classes:
        rows = compare_methods(trained, data, digit, touched=touched[digit], gate_tables=tables,
                               bank=bank)
        for method, row in rows.items():
            out.setdefault(method, []).append(row)
    return out


def ablation_budget_sweep(
    trained: TrainedSymbiote, data: DigitData, budgets: list[int], mode: str = "mean_nontarget"
) -> dict[str, list[dict[str, float]]]:
    """Both unit choosers at several unit budgets with one ablation, averaged over every class.

    Returns ``{chooser: [{"budget", "target_output_rate", "nontarget_accuracy_drop"}]}``, so a
    baseline can be judged at its best budget rather than only at the symbiote's.
    """
    model = trained.primary.model
    out: dict[str, list[dict[str, float]]] = {}
    bank = ReferenceBank(model, data)
    references = {d: bank.references(d, mode) for d in data.classes}
    expected = {d: bank.references(d, "mean_nontarget" if mode == "resample" else mode)
                for d in data.classes}
    scorers = {"selective": lambda d: selectivity_scores(model, data, d),
               "attribution": lambda d: attribution_scores(model, data, d, expected[d])}
    for chooser in UNIT_CHOOSERS:
        scores = {digit: scorers[chooser](digit) for digit in data.classes}
        for budget in budgets:
            rows = [evaluate_inhibition(model, data, digit,
                                        ablation_hooks(top_units(scores[digit], budget),
                                                       references[digit]))
                    for digit in data.classes]
            out.setdefault(f"{chooser}_{mode}", []).append({
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
    kind: str | None = None,
) -> dict[str, Any]:
    """Train (or load) A and B for ``condition`` and evaluate inhibiting ``digit``; ``kind``
    chooses a ``fixed`` or ``conditional`` symbiote (default: the config's, ``fixed``).

    Returns one JSON-friendly dict: the symbiote's metrics at the top level (the keys of
    :func:`mechinterp.symbiote.metrics.evaluate_inhibition` plus those of
    :func:`evaluate_symbiote`: ``units_touched``, ``touch_threshold``, ``unpruned``...), the
    primary's ``primary_test_accuracy``, ``polysemanticity`` (mean over hidden units of the
    number of classes a unit answers to, :func:`~mechinterp.symbiote.metrics.unit_class_count`)
    and ``class_entropy`` (mean per-unit class entropy,
    :func:`~mechinterp.symbiote.metrics.unit_class_entropy`), and ``baselines``: per
    baseline the same metrics and ``units``, every one at the symbiote's unit budget.

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
    trained = symbiote_for(condition, data, seed=seed, config=config, kind=kind)
    touched = {d: units_touched(trained, data, d) for d in data.classes}
    bank = ReferenceBank(trained.primary.model, data)
    rows = compare_methods(trained, data, digit, touched=touched[digit], bank=bank,
                           gate_tables=trained_gate_tables(trained, data, touched, bank))
    result: dict[str, Any] = {"condition": condition, "data_source": data.source,
                              "profile": get_profile().name, "seed": seed,
                              "primary_arch": trained.primary.arch,
                              "primary_test_accuracy": trained.primary.test_accuracy,
                              **polysemanticity(trained.primary.model, data)}
    result.update(rows.pop("symbiote"))
    result["baselines"] = rows
    result["seconds"] = time.perf_counter() - started
    return result
