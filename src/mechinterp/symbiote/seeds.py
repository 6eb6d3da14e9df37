"""SymbioteNet over seeds: every number of a condition for five seeds of A and B.

:func:`seed_row` is one seed's full comparison on one condition: the primary A trained from
that seed, the fixed and the conditional symbiote B trained from it, every baseline at B's
budget (:func:`~mechinterp.symbiote.experiment.compare_all_digits`), the ablation chosen on
the training images, A's accuracy and polysemanticity. :func:`seed_rows` collects
:data:`SEEDS` of them and :func:`seed_summary` reduces them to a mean and a standard deviation
(over seeds, ``ddof=1``) of each method's mean over the digits.

One seed of one condition costs two to nine minutes of one CPU core (most of it evaluation, not
training), so twenty seed-conditions do not fit in a CPU site build. The quick profile's rows
for the MNIST subset are therefore stored with the package (``studies/``), written by
``make symbiote-seeds`` (about 105 minutes of one core, 55 with its two processes), and every
build recomputes seed 0 and checks it against the stored row before it uses the others: a
stored study that no longer matches the code fails the build with a message to rerun it. The
normal condition is checked in full; the polysemantic and narrow ones at
``depth="training"`` (A and both symbiotes retrained and evaluated on the stored units, a few
seconds instead of minutes), as the baselines' code is the same for every condition; the mixed
one is the normal primary read through :func:`~mechinterp.models.mix_basis`, whose exactness
the tests check. Without a stored study (the full
profile, another data source, a changed config, or ``MECHINTERP_SEEDS_LIVE=1``) every seed is
computed in the build. Rows computed in a build are kept in the cache, keyed by the library's
source, so two pages that need the same seed compute it once.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from mechinterp.checkpoints import atomic_write_text, cache_lock, first_differences, rounded_floats
from mechinterp.config import cache_dir, get_profile
from mechinterp.data import DigitData, load_digits
from mechinterp.errors import ConfigError, StaleStudyError
from mechinterp.reporting import mean_and_std
from mechinterp.symbiote.experiment import (
    CONDITIONS,
    choose_ablation,
    compare_all_digits,
    evaluate_symbiote,
    polysemanticity,
    symbiote_for,
    units_touched,
)
from mechinterp.symbiote.metrics import summarise
from mechinterp.symbiote.network import SymbioteConfig

__all__ = ["SEEDS", "STUDIES", "StaleStudyError", "seed_row", "seed_rows", "seed_summary",
           "training_row",
           "per_digit_over_seeds", "stored_study_path", "store_study", "write_study",
           "refresh_primary"]

SEEDS = (0, 1, 2, 3, 4)
"""The seeds of A and B behind every SymbioteNet number (seed ``s`` trains both)."""
STUDIES = Path(__file__).resolve().parent / "studies"
"""Where the stored seed rows ship (one JSON file per profile, data source and condition)."""
LIVE_ENV = "MECHINTERP_SEEDS_LIVE"
TOLERANCE = {"share": 0.005, "units": 2.0, "classes": 0.05}
"""How far a recomputed seed may sit from its stored row and still count as the same result:
half a point on every rate, accuracy and entropy, two units on every budget (each a method's
mean over the digits), a twentieth of a class on A's mean digits per unit. On one machine a seed reproduces exactly; these margins leave room
for another CPU's rounding, which can move a trained network by an image or a unit, and
still catch a change of method."""


def _jsonable(value: Any) -> Any:
    """``value`` as it reads back from JSON (dict keys become strings), so a row computed now
    and a row loaded from disk compare equal."""
    return json.loads(json.dumps(value))


@torch.no_grad()
def _accuracy(model, data: DigitData) -> float:
    return (model(data.test_images).argmax(-1) == data.test_labels).float().mean().item()


def seed_row(condition: str, data: DigitData, seed: int,
             config: SymbioteConfig | None = None) -> dict[str, Any]:
    """One seed of one condition: A and both symbiotes trained from ``seed`` (all cached), and
    every method's per-digit rows at B's budget.

    Returns:
        ``{"condition", "seed", "primary_arch", "primary_test_accuracy", "polysemanticity",
        "class_entropy", "best_ablation_at_budget", "parameters": {kind: n}, "units": {kind: {digit: {hook:
        indices}}}, "rows": {method: [row per digit]}}``, JSON-friendly; the methods are those
        of :func:`~mechinterp.symbiote.experiment.compare_all_digits` plus
        ``conditional_symbiote``.
    """
    fixed = symbiote_for(condition, data, seed=seed, config=config, primary_seed=seed)
    conditional = symbiote_for(condition, data, seed=seed, config=config, kind="conditional",
                               primary_seed=seed)
    touched = {d: units_touched(fixed, data, d) for d in data.classes}
    rows = compare_all_digits(fixed, data, touched=touched)
    touched_conditional = {d: units_touched(conditional, data, d) for d in data.classes}
    rows["conditional_symbiote"] = [evaluate_symbiote(conditional, data, d,
                                                      touched_conditional[d])
                                    for d in data.classes]
    model = fixed.primary.model
    return _jsonable({
        "condition": condition, "seed": seed, "primary_arch": fixed.primary.arch,
        "primary_test_accuracy": _accuracy(model, data), **polysemanticity(model, data),
        "best_ablation_at_budget": choose_ablation(fixed, data, touched),
        "parameters": {"symbiote": fixed.symbiote.n_parameters,
                       "conditional_symbiote": conditional.symbiote.n_parameters},
        "units": {kind: {d: {name: idx.tolist() for name, idx in units.items()}
                         for d, (units, _) in found.items()}
                  for kind, found in (("symbiote", touched),
                                      ("conditional_symbiote", touched_conditional))},
        "rows": rows,
    })


def training_row(condition: str, data: DigitData, seed: int, stored: dict[str, Any],
                 config: SymbioteConfig | None = None) -> dict[str, Any]:
    """A cheaper check of a stored row: A and both symbiotes trained from ``seed`` (or loaded
    from the cache), A's accuracy and polysemanticity, and the two symbiotes evaluated on the
    units the stored row counted for them (so no search for the budget and no baseline).

    Returns ``stored`` with those numbers recomputed and ``rows`` holding only the two
    symbiotes, ready for :func:`_check_agrees`. It catches a change in how A or B is trained
    or evaluated; a change in a baseline is caught where the same seed of another condition
    is checked in full (the baselines' code does not depend on the condition)."""
    fixed = symbiote_for(condition, data, seed=seed, config=config, primary_seed=seed)
    conditional = symbiote_for(condition, data, seed=seed, config=config, kind="conditional",
                               primary_seed=seed)
    rows = {}
    for kind, trained in (("symbiote", fixed), ("conditional_symbiote", conditional)):
        units = stored["units"][kind]
        rows[kind] = [evaluate_symbiote(
            trained, data, d, ({name: torch.tensor(idx, dtype=torch.long)
                                for name, idx in units[str(d)].items()}, math.nan))
            for d in data.classes]
    model = fixed.primary.model
    return _jsonable({
        **stored, "primary_arch": fixed.primary.arch,
        "primary_test_accuracy": _accuracy(model, data), **polysemanticity(model, data),
        "parameters": {"symbiote": fixed.symbiote.n_parameters,
                       "conditional_symbiote": conditional.symbiote.n_parameters},
        "rows": rows,
    })


def _library_digest() -> str:
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parents[1]
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def stored_study_path(condition: str, data_source: str, profile: str | None = None) -> Path:
    """The stored study file of a condition for a profile (default: the active one) and data
    source (it may not exist)."""
    return STUDIES / f"{profile or get_profile().name}-{data_source}-{condition}.json"


def _stored(condition: str, data: DigitData, config: SymbioteConfig) -> dict[str, Any]:
    """The stored rows ``{seed: row}`` that apply here (empty when none do)."""
    if os.environ.get(LIVE_ENV, "").strip() not in ("", "0"):
        return {}
    path = stored_study_path(condition, data.source)
    if not path.exists():
        return {}
    study = json.loads(path.read_text())
    if study.get("config") != config.as_dict() or study.get("classes") != list(data.classes):
        return {}
    return {int(seed): row for seed, row in study["seeds"].items()}


def _summaries(row: dict[str, Any]) -> dict[str, float]:
    """A row's comparable numbers: each method's mean over digits, A's accuracy and
    polysemanticity."""
    out = {f"{method}.{key}": value for method, rows in row["rows"].items()
           for key, value in summarise(rows).items()}
    out.update(primary_test_accuracy=row["primary_test_accuracy"],
               polysemanticity=row["polysemanticity"], class_entropy=row["class_entropy"])
    return out


_COUNTS = ("units", "units_touched", "units_changed", "symbiote_parameters")
_DERIVED = ("units_fraction", "units_touched_fraction", "touch_threshold")
"""Left out of the comparison: the fractions follow from the unit counts (which are compared),
and the smallest kept modulation jumps whenever one unit enters or leaves B's set."""


def _check_agrees(live: dict[str, Any], stored: dict[str, Any]) -> dict[str, float]:
    """How far a recomputed seed sits from its stored row: ``{"share", "units", "classes"}``,
    the largest difference of each kind. Raises :class:`StaleStudyError` beyond :data:`TOLERANCE`."""
    a, b = _summaries(live), _summaries(stored)
    largest = {"share": 0.0, "units": 0.0, "classes": 0.0}
    differ = [f"{k}: stored {stored[k]!r}, now {live[k]!r}"
              for k in ("best_ablation_at_budget", "parameters", "primary_arch")
              if live.get(k) != stored.get(k)]
    for k in sorted(set(a) | set(b)):
        name = k.rsplit(".", 1)[-1]
        if name in _DERIVED:
            continue
        kind = ("units" if name in _COUNTS else "classes" if name == "polysemanticity"
                else "share")
        gap = abs(a[k] - b[k]) if k in a and k in b else float("inf")
        largest[kind] = max(largest[kind], gap)
        if gap > TOLERANCE[kind]:
            differ.append(f"{k}: stored {b.get(k)!r}, now {a.get(k)!r}")
    if differ:
        shown = first_differences(differ)
        raise StaleStudyError(
            f"the stored SymbioteNet seed study for condition {live['condition']!r} does not "
            f"reproduce seed {live['seed']} with this code: {shown}. Rerun it with "
            f"'make symbiote-seeds' (about 105 minutes of one CPU core, 55 with its two "
            f"processes), or set "
            f"{LIVE_ENV}=1 to compute every seed in the build")
    return largest


def _cached_row(condition: str, data: DigitData, seed: int, config: SymbioteConfig,
                library: str) -> dict[str, Any]:
    """:func:`seed_row`, kept in the cache under a key of everything it depends on."""
    spec = json.dumps({"condition": condition, "source": data.source, "seed": seed,
                       "classes": list(data.classes), "config": config.as_dict(),
                       "profile": get_profile().name, "library": library}, sort_keys=True)
    key = hashlib.sha256(spec.encode()).hexdigest()[:20]
    path = cache_dir() / "symbiote-seeds" / f"{key}.json"
    with cache_lock("symbiote-seeds", key):
        if path.exists():
            return json.loads(path.read_text())
        row = seed_row(condition, data, seed, config)
        atomic_write_text(path, json.dumps(row))
        return row


def seed_rows(condition: str, data: DigitData, seeds: Sequence[int] = SEEDS, *,
              verify: Iterable[int] = (0,), depth: str = "full",
              config: SymbioteConfig | None = None,
              log: bool = True) -> dict[int, dict[str, Any]]:
    """:func:`seed_row` for every seed, from the stored study where one applies.

    Args:
        condition: a key of :data:`~mechinterp.symbiote.experiment.CONDITIONS`.
        data: the digits (the stored study applies only to the profile's default source).
        seeds: the seeds (default :data:`SEEDS`).
        verify: seeds computed now even when stored, and checked against the stored row
            (the verified row carries ``stored_gap``, the largest differences found); pass
            ``()`` on a page whose seeds another page of the same build verifies. Stored rows
            of seeds outside ``seeds`` are never checked, so leave 0 in both.
        depth: how a verified seed that is stored is checked: ``"full"`` recomputes its whole
            row (:func:`seed_row`); ``"training"`` retrains A and both symbiotes and
            re-evaluates the symbiotes on the stored units (:func:`training_row`, a few
            seconds once they are trained) and keeps the stored baselines. Use
            ``"training"`` only where another page checks one condition in full.
        config: the symbiote settings (a stored study applies only to its own).
        log: print one line per seed (where it came from and how long it took).

    Raises:
        ConfigError: unknown condition.
        StaleStudyError: a verified seed does not match its stored row.
    """
    if condition not in CONDITIONS:
        raise ConfigError(f"unknown condition {condition!r}; choose one of {sorted(CONDITIONS)}")
    if depth not in ("full", "training"):
        raise ConfigError(f"depth must be 'full' or 'training', got {depth!r}")
    config = config or SymbioteConfig()
    stored = _stored(condition, data, config)
    verify = set(verify)
    library = _library_digest()
    out = {}
    for seed in seeds:
        started = time.perf_counter()
        if seed in stored and seed not in verify:
            out[seed], origin = stored[seed], "stored study"
        elif seed in stored and depth == "training":
            gaps = _check_agrees(training_row(condition, data, seed, stored[seed], config),
                                 {**stored[seed], "rows": {
                                     k: stored[seed]["rows"][k]
                                     for k in ("symbiote", "conditional_symbiote")}})
            out[seed] = {**stored[seed], "stored_gap": gaps}
            origin = (f"stored study, training and symbiotes recomputed and matching "
                      f"(largest difference {gaps['share']:.2%}, {gaps['units']:.1f} units)")
        else:
            out[seed] = _cached_row(condition, data, seed, config, library)
            origin = "computed"
            if seed in stored:
                gaps = _check_agrees(out[seed], stored[seed])
                out[seed] = {**out[seed], "stored_gap": gaps}
                origin = (f"computed, matches the stored study (largest difference "
                          f"{gaps['share']:.2%}, {gaps['units']:.1f} units)")
        if log:
            print(f"{condition} seed {seed}: {origin} ({time.perf_counter() - started:.0f} s)",
                  flush=True)
    return out


def seed_summary(rows: dict[int, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean and standard deviation over seeds (``ddof=1``; 0 for one seed) of each method's
    mean over the digits.

    Returns:
        ``{method: {metric: mean, metric + "_std": std}}`` with ``units`` (the budget: B's
        units touched, or a baseline's units), plus two pseudo-methods: ``best_ablation``
        (in each seed, the ablation that seed chose on its training images) and ``primary``
        (``test_accuracy``, ``polysemanticity`` and ``class_entropy``).
    """
    per_seed = []
    for row in rows.values():
        methods = {m: summarise(r) for m, r in row["rows"].items()}
        for s in methods.values():
            s["units"] = s.get("units", s.get("units_touched", 0.0))
        methods["best_ablation"] = methods[row["best_ablation_at_budget"]]
        methods["primary"] = {"test_accuracy": row["primary_test_accuracy"],
                              "polysemanticity": row["polysemanticity"],
                              "class_entropy": row["class_entropy"]}
        per_seed.append(methods)
    out: dict[str, dict[str, float]] = {}
    for method in per_seed[0]:
        for key in per_seed[0][method]:
            mean, std = mean_and_std([float(s[method][key]) for s in per_seed])
            out.setdefault(method, {})[key] = mean
            out[method][f"{key}_std"] = std
    return out


def per_digit_over_seeds(rows: dict[int, dict[str, Any]], method: str, key: str
              ) -> tuple[list[float], list[float]]:
    """``(mean, worst)`` over seeds of one metric of one method, per digit (``worst``: the
    largest value any seed gives that digit)."""
    table = [[float(r[key]) for r in row["rows"][method]] for row in rows.values()]
    return ([sum(col) / len(col) for col in zip(*table, strict=True)],
            [max(col) for col in zip(*table, strict=True)])


def store_study(condition: str, seeds: Sequence[int] = SEEDS, source: str | None = None
                ) -> Path:
    """Compute every seed of ``condition`` on the active profile and write the stored study
    that builds read (see the module docstring); returns its path."""
    data = load_digits(source)
    rows = {}
    for seed in seeds:
        begun = time.perf_counter()
        rows[seed] = seed_row(condition, data, seed)
        rows[seed]["seconds"] = round(time.perf_counter() - begun, 1)
        print(f"{condition} seed {seed}: {rows[seed]['seconds']:.0f} s", flush=True)
    return write_study(condition, data, rows)


def write_study(condition: str, data: DigitData, rows: dict[int, dict[str, Any]]) -> Path:
    """Write computed :func:`seed_row` results (default config) as the stored study of
    ``condition`` for the active profile and ``data``'s source; returns its path."""
    study = {"condition": condition, "profile": get_profile().name, "data_source": data.source,
             "classes": list(data.classes), "config": SymbioteConfig().as_dict(),
             "library": _library_digest(), "torch": torch.__version__,
             "seeds": {str(seed): rounded_floats(row) for seed, row in sorted(rows.items())}}
    path = stored_study_path(condition, data.source)
    atomic_write_text(path, json.dumps(study, separators=(",", ":")) + "\n")
    return path


def refresh_primary(condition: str, source: str | None = None) -> Path:
    """Recompute the primary's measures (``polysemanticity``, ``class_entropy``) in the
    stored study of ``condition`` without rerunning its symbiotes: each seed's A is retrained
    (or loaded) and must reproduce its stored test accuracy exactly, so the measures describe
    the very primary the stored rows were computed on. For a new measure of A; anything about
    B or the baselines needs :func:`store_study`.

    Raises:
        ConfigError: no stored study for ``condition``.
        StaleStudyError: a seed's A no longer reproduces its stored accuracy.
    """
    from mechinterp.symbiote.experiment import primary_for

    data = load_digits(source)
    path = stored_study_path(condition, data.source)
    if not path.exists():
        raise ConfigError(f"no stored study at {path}; write one with 'make symbiote-seeds'")
    study = json.loads(path.read_text())
    for seed, row in study["seeds"].items():
        primary = primary_for(condition, data, seed=int(seed))
        accuracy = rounded_floats(_accuracy(primary.model, data))
        if accuracy != row["primary_test_accuracy"]:
            raise StaleStudyError(
                f"{condition} seed {seed}: the primary's test accuracy is {accuracy} now, "
                f"{row['primary_test_accuracy']} in {path}; rerun 'make symbiote-seeds'")
        row.update(rounded_floats(polysemanticity(primary.model, data)))
    atomic_write_text(path, json.dumps(study, separators=(",", ":")) + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m mechinterp.symbiote.seeds [--condition C ...] [--refresh-primary]``: write
    the stored studies (or only refresh their primaries' measures)."""
    parser = argparse.ArgumentParser(description=store_study.__doc__)
    parser.add_argument("--condition", action="append", choices=sorted(CONDITIONS),
                        help="a condition to run (repeatable; default: all)")
    parser.add_argument("--refresh-primary", action="store_true",
                        help="only recompute each stored seed's primary measures "
                             "(refresh_primary)")
    args = parser.parse_args(argv)
    for condition in args.condition or sorted(CONDITIONS):
        run = refresh_primary if args.refresh_primary else store_study
        print(run(condition), flush=True)


if __name__ == "__main__":
    main()
