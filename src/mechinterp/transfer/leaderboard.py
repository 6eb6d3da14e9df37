"""Every method over architecture pairs and seeds, with results cached per run.

A run is one (method, recipient architecture, donor architecture, seed, concept budget,
protocol, data source). Its result is stored as JSON under the cache folder, keyed by those
and by a digest of the transfer code, so the method tutorials and the leaderboard share work
and a code change re-runs what it could have changed.
"""

from __future__ import annotations

import functools
import json
import statistics
from collections.abc import Sequence
from typing import Any

from tqdm import tqdm

from mechinterp.checkpoints import atomic_write_text, cache_lock, checkpoint_key, source_digest
from mechinterp.config import cache_dir, get_profile
from mechinterp.data import DigitData, load_digits
from mechinterp.reporting import mean_and_std
from mechinterp.train import progress_enabled
from mechinterp.transfer.context import model_pair
from mechinterp.transfer.protocol import SEED_RESULTS, TransferProtocol
from mechinterp.transfer.registry import (
    ArchitectureMismatchError,
    get_method,
    list_methods,
    run_method,
)
from mechinterp.transfer.study import VERIFY_SEEDS, check_run, stored_run

__all__ = [
    "DEFAULT_PAIRS",
    "cached_run",
    "code_digest",
    "run_grid",
    "summarise_runs",
    "support_matrix",
    "leaderboard_rows",
    "PRESERVATION_SLACK",
    "keeps_preservation",
    "pick_best",
]

PRESERVATION_SLACK = 0.005
"""The preservation a method may lose against the unedited recipient: half a point."""


def keeps_preservation(edited: float, alone: float) -> bool:
    """Whether an edited recipient's preservation is within :data:`PRESERVATION_SLACK` of the
    unedited recipient's on the same images (a small tolerance absorbs float rounding)."""
    return edited >= alone - PRESERVATION_SLACK - 1e-9


def pick_best(summary: Sequence[dict[str, Any]]) -> str | None:
    """The rule that names the best method, fixed before the runs and applied on the
    validation split only: among methods that are not baselines and take no gradient step on
    A, those whose mean validation preservation is within :data:`PRESERVATION_SLACK` of the
    unedited recipient's on every pair they run on come first, then the highest validation
    transfer averaged over those pairs. ``None`` if no row is a candidate."""
    by_method: dict[str, list[dict[str, Any]]] = {}
    for s in summary:
        if s["kind"] != "baseline" and s["changes"] != "gradient":
            by_method.setdefault(s["method"], []).append(s)
    if not by_method:
        return None
    return max(by_method, key=lambda m: (
        all(keeps_preservation(s["validation_preservation_mean"],
                               s["baseline_validation_preservation_mean"])
            for s in by_method[m]),
        statistics.fmean(s["validation_transfer_mean"] for s in by_method[m])))

METRICS = ("transfer", "preservation", "specificity", "false_positive_rate")
IMPORT_COUNTS = ("params_added", "params_changed", "donor_params_executed")
"""What an edited model imports (:mod:`mechinterp.transfer.imports`); the largest over seeds
is reported."""
DEFAULT_PAIRS: tuple[tuple[str, str], ...] = (("megann", "megann"), ("widenn", "deepnn"))
"""A same-architecture pair (the seed's MegaNN) and a cross-architecture pair."""

_TRANSFER_MODULES = ("transfer.protocol", "transfer.context", "transfer.registry",
                     "transfer.common", "transfer.imports", "transfer.methods.aligned",
                     "transfer.methods.baselines", "transfer.methods.direct_weight_copy",
                     "transfer.methods.neuron_copy", "transfer.methods.procrustes_probe",
                     "transfer.methods.sae_free",
                     "transfer.methods.sae_injection", "sae", "models", "train")


def cached_run(method: str, recipient_arch: str, donor_arch: str, *, seed: int = 0,
               protocol: TransferProtocol | None = None, concept_budget: int | None = None,
               data: DigitData | None = None) -> dict[str, Any]:
    """:func:`run_method`, or its result from the cache when the same run was done before,
    or from the stored study (:mod:`mechinterp.transfer.study`) for the seeds it does not
    recompute; a recomputed seed is checked against the study.

    Raises:
        ArchitectureMismatchError: the method cannot handle the pair.
        StaleStudyError: a recomputed run does not match its stored result.
    """
    protocol = protocol or TransferProtocol()
    data = data or load_digits()
    spec = {"method": method, "pair": [recipient_arch, donor_arch], "seed": seed,
            "protocol": protocol.as_dict(), "budget": concept_budget, "data": data.source,
            "profile": get_profile().name, "code": code_digest()}
    _check_supported(method, recipient_arch, donor_arch)  # before training a pair for nothing
    stored = stored_run(spec)
    if stored is not None and seed not in VERIFY_SEEDS:
        return stored
    key = checkpoint_key(spec)
    path = cache_dir() / "transfer-runs" / f"{key}.json"
    with cache_lock("transfer-runs", key):
        result = None
        if path.exists():
            try:
                result = json.loads(path.read_text())["result"]
            except (json.JSONDecodeError, KeyError, TypeError):
                pass  # a damaged or old-format entry is recomputed
        if result is None:
            pair = model_pair(recipient_arch, donor_arch, protocol, seed=seed, data=data)
            result = run_method(method, pair=pair, concept_budget=concept_budget)
            atomic_write_text(path, json.dumps({"spec": spec, "result": result}))
    if stored is not None:
        check_run(result, stored)
    return result


@functools.cache
def _untrained(arch: str):
    from mechinterp.models import build_model  # noqa: PLC0415

    model = build_model(arch)
    model.arch = arch
    return model


def _check_supported(method: str, recipient_arch: str, donor_arch: str) -> None:
    get_method(method).check_pair(_untrained(recipient_arch), _untrained(donor_arch))


def code_digest() -> str:
    """A digest of the code a transfer run's result depends on (part of its cache key)."""
    return source_digest(*_TRANSFER_MODULES)


def run_grid(methods: Sequence[str] | None = None,
             pairs: Sequence[tuple[str, str]] = DEFAULT_PAIRS,
             seeds: Sequence[int] | None = None, *, concept_budget: int | None = None,
             protocol: TransferProtocol | None = None) -> list[dict[str, Any]]:
    """Every method on every pair it supports, for every seed. Unsupported pairs are skipped."""
    methods = list(methods or list_methods())
    seeds = list(seeds if seeds is not None else get_profile().seeds)
    data = load_digits()
    jobs = [(m, a, b, s) for m in methods for a, b in pairs for s in seeds]
    rows = []
    for method, a, b, seed in tqdm(jobs, desc="transfer runs", disable=not progress_enabled(),
                                   leave=False):
        try:
            rows.append(cached_run(method, a, b, seed=seed, protocol=protocol,
                                   concept_budget=concept_budget, data=data))
        except ArchitectureMismatchError:
            continue
    return rows


def summarise_runs(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and standard deviation over seeds, one row per (method, pair)."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["method"], row["recipient_arch"], row["donor_arch"]), []).append(row)
    out = []
    for (method, a, b), group in groups.items():
        summary = {"method": method, "pair": f"{a} <- {b}",
                   "pair_kind": "same" if a == b else "cross", "seeds": len(group),
                   "concept_images_used": max(r["concept_images_used"] for r in group),
                   **{k: max(r[k] for r in group) for k in IMPORT_COUNTS},
                   "donor_at_inference": any(r["donor_at_inference"] for r in group),
                   "changes": group[0]["changes"], "kind": group[0]["kind"],
                   "teaches_specificity": group[0].get("teaches_specificity", False)}
        for metric in METRICS:
            summary[f"{metric}_mean"], summary[f"{metric}_std"] = mean_and_std(
                [r[metric] for r in group])
        for metric in METRICS:
            summary[f"validation_{metric}_mean"] = statistics.fmean(
                r["validation"][metric] for r in group)
        summary["baseline_preservation_mean"] = statistics.fmean(
            r["baseline_preservation"] for r in group)
        summary["baseline_validation_preservation_mean"] = statistics.fmean(
            r["baseline_validation_preservation"] for r in group)
        summary["donor_transfer_mean"] = statistics.fmean(r["donor_transfer"] for r in group)
        out.append(summary)
    return out


def support_matrix(methods: Sequence[str], archs: Sequence[str]) -> dict[str, dict[str, str]]:
    """Which (recipient, donor) pairs each method handles, without running anything.

    Returns ``{method: {"A <- B": "yes" | reason}}``.
    """
    models = {a: _untrained(a) for a in archs}
    out: dict[str, dict[str, str]] = {}
    for method in methods:
        spec = get_method(method)
        out[method] = {}
        for a in archs:
            for b in archs:
                try:
                    spec.check_pair(models[a], models[b])
                    out[method][f"{a} <- {b}"] = "yes"
                except ArchitectureMismatchError as exc:
                    out[method][f"{a} <- {b}"] = str(exc)
    return out


def leaderboard_rows(summary: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Summary rows with the seed project's reported numbers alongside, where it has them."""
    rows = []
    for row in summary:
        seed = SEED_RESULTS.get(row["method"], {})
        rows.append({**row, "seed_transfer": seed.get("transfer"),
                     "seed_preservation": seed.get("preservation")})
    return rows
