"""The discovery benchmark: every method and baseline on every SIIT task and model seed.

For each task of :data:`mechinterp.siit.SIIT_TASKS` and each model seed, the SIIT model is
loaded (trained once, cached) and verified; only a verified model scores methods (a model
that fails its checks is reported and skipped, never scored). Every method in
:data:`~mechinterp.circuits.discovery.ALL_METHODS` then sees the same ``n_prompts``
clean/corrupted pairs; faithfulness is measured on as many other pairs. Thresholds are each
method's defaults, fixed before any run; nothing is tuned on the ground truth.

The ``random`` baseline's ROC AUCs are averaged over :data:`RANDOM_DRAWS` draws per model (its
expected value is 0.5; one draw per seed would mostly measure luck).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from mechinterp.circuits.baselines import baseline_scores
from mechinterp.circuits.computation import ComputationGraph
from mechinterp.circuits.discovery import ALL_METHODS, Discovery, discover_circuit
from mechinterp.circuits.scoring import roc_auc
from mechinterp.errors import ConfigError
from mechinterp.reporting import mean_and_std

__all__ = ["BenchmarkRun", "run_discovery_benchmark", "RANDOM_DRAWS", "METRIC_KEYS"]

RANDOM_DRAWS = 100
METRIC_KEYS = ("node_auc", "edge_auc", "faithfulness", "node_precision", "node_recall",
               "edge_precision", "edge_recall", "seconds", "n_edges")


@dataclass
class BenchmarkRun:
    """Everything one benchmark run measured.

    Attributes:
        rows: one dict per (task, seed, method) with :data:`METRIC_KEYS`.
        verification: ``{(task, seed): Verification.summary()}``.
        graphs: ``{task: {"nodes": n, "edges": n, "component_edges": n}}`` (what methods see).
        found: ``{(task, seed, method): Discovery}``.
        alignments: ``{(task, seed): alignment}``.
        seconds: wall time of the whole run.
    """

    rows: list[dict[str, Any]] = field(default_factory=list)
    verification: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    graphs: dict[str, dict[str, int]] = field(default_factory=dict)
    found: dict[tuple[str, int, str], Discovery] = field(default_factory=dict)
    alignments: dict[tuple[str, int], dict[str, str]] = field(default_factory=dict)
    seconds: float = 0.0

    def aggregate(self) -> dict[tuple[str, str], dict[str, float | None]]:
        """``{(task, method): {key: mean, key_std: std}}`` over seeds (``None`` where the
        method has no such number)."""
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for row in self.rows:
            groups.setdefault((row["task"], row["method"]), []).append(row)
        out = {}
        for key, rows in groups.items():
            stats: dict[str, float | None] = {"n_seeds": float(len(rows))}
            for metric in METRIC_KEYS:
                values = [r[metric] for r in rows if r[metric] is not None]
                stats[metric], stats[f"{metric}_std"] = (mean_and_std(values) if values
                                                         else (None, None))
            out[key] = stats
        return out


def _row(task: str, seed: int, method: str, d: Discovery) -> dict[str, Any]:
    return {"task": task, "seed": seed, "method": method, "node_auc": d.roc_auc,
            "edge_auc": d.edge_roc_auc, "faithfulness": d.faithfulness,
            "node_precision": d.precision.get("nodes"), "node_recall": d.recall.get("nodes"),
            "edge_precision": d.precision.get("edges"), "edge_recall": d.recall.get("edges"),
            "seconds": d.seconds, "n_edges": d.circuit.n_edges}


def run_discovery_benchmark(tasks: list[str] | None = None, seeds: list[int] | None = None,
                            methods: tuple[str, ...] = ALL_METHODS, *, n_prompts: int = 64,
                            prompt_seed: int = 1, config=None,
                            require_verified: bool = True) -> BenchmarkRun:
    """Score ``methods`` on every (task, seed) SIIT model.

    Args:
        tasks: SIIT task names (default: all).
        seeds: model seeds (default :data:`mechinterp.siit.SIIT_SEEDS`).
        methods: methods and baselines to run.
        n_prompts: pairs each method sees (and, separately, faithfulness uses).
        prompt_seed: seed of the pairs methods see; faithfulness uses ``prompt_seed + 1000``.
        config: the models' :class:`~mechinterp.siit.SIITConfig` (default: each task's).
        require_verified: skip models that fail verification (turning it off scores them
            anyway, for studying what a failed benchmark model does to the scores).

    Raises:
        ConfigError: an unknown task or method.
    """
    from mechinterp.siit import SIIT_SEEDS, SIIT_TASKS, get_siit_task, load_siit_models, verify

    tasks = list(SIIT_TASKS) if tasks is None else list(tasks)
    seeds = list(SIIT_SEEDS if seeds is None else seeds)
    unknown = sorted(set(methods) - set(ALL_METHODS))
    if unknown:
        raise ConfigError(f"unknown methods {unknown}; choose from {list(ALL_METHODS)}")
    started = time.perf_counter()
    run = BenchmarkRun()
    for task in tasks:
        spec = get_siit_task(task)
        for siit in load_siit_models(task, seeds, config=config):
            check = verify(siit)
            run.verification[task, siit.seed] = check.summary()
            run.alignments[task, siit.seed] = dict(siit.alignment)
            if require_verified and not check.passed:
                continue
            device = next(siit.model.parameters()).device
            prompts = spec.prompts(n_prompts, seed=prompt_seed).to(device)
            heldout = spec.prompts(n_prompts, seed=prompt_seed + 1000).to(device)
            graph = ComputationGraph(siit.model)
            truth = siit.truth()
            for method in methods:
                d = discover_circuit(siit.model, prompts, method, graph=graph, truth=truth,
                                     heldout=heldout, seed=siit.seed,
                                     model_name=f"{task} (SIIT)")
                row = _row(task, siit.seed, method, d)
                if method == "random":
                    draws = [baseline_scores("random", siit.model, graph, prompts,
                                             seed=1000 * siit.seed + k)
                             for k in range(RANDOM_DRAWS)]
                    row["node_auc"] = statistics.fmean(roc_auc(n, set(truth.nodes))
                                                       for n, _ in draws)
                    row["edge_auc"] = statistics.fmean(roc_auc(e, set(truth.edges))
                                                       for _, e in draws)
                run.rows.append(row)
                run.found[task, siit.seed, method] = d
            n_component_edges = len({(e.writer, graph.node_of(e.reader)) for e in graph.edges})
            run.graphs[task] = {"nodes": len(graph.writers) + 1, "edges": len(graph.edges),
                                "component_edges": n_component_edges}
    run.seconds = time.perf_counter() - started
    return run
