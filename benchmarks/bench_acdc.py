"""ACDC with a batch of candidate edges per forward pass against one pass per edge.

ACDC (Conmy et al., 2023) visits the edges one after another and cuts an edge when cutting
it moves the metric by less than a threshold; each visit is a forward pass of the circuit.
:func:`mechinterp.circuits.acdc` evaluates the next ``variants`` edges of a reader in one
pass (variant ``j`` cuts the block's first ``j`` edges) and reads the results in order, as the
sequential visit would, until an edge is kept. On every SIIT benchmark task (its shipped
seed-0 model, four layers of four heads and MLPs) and the toy-world induction task, both
versions run on the same prompts, interleaved over rounds; the ratio of median times is
printed with whether the two circuits are the same edge for edge.

    python benchmarks/bench_acdc.py [--rounds 3] [--n-prompts 64] [--variants 16] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

import mechinterp as mi
from mechinterp.circuits import acdc
from mechinterp.circuits.computation import ComputationGraph
from mechinterp.siit import SIIT_TASKS, get_siit_task, load_siit_models
from mechinterp.toyworld import get_task, load_toy_model


def _setting(task: str, n_prompts: int):
    """``(model name, model, prompts)`` of a task as the discovery leaderboard runs it."""
    if task in SIIT_TASKS:
        model = load_siit_models(task, [0])[0].model
        return f"{task} (SIIT, seed 0)", model, get_siit_task(task).prompts(n_prompts, seed=0)
    toy = load_toy_model("attn-only-2l")
    return toy.spec.name, toy.model, get_task(task).prompts(n_prompts, seed=1)


def bench(task: str, rounds: int, n_prompts: int, variants: int) -> dict:
    """Timings of both versions and whether they return the same circuit."""
    name, model, prompts = _setting(task, n_prompts)
    graph = ComputationGraph(model)
    times: dict[str, list[float]] = {"one_at_a_time": [], "batched": []}
    runs = {}
    for _ in range(rounds):
        for label, k in (("one_at_a_time", 1), ("batched", variants)):
            started = time.perf_counter()
            runs[label] = acdc(graph, prompts, variants=k)
            times[label].append(time.perf_counter() - started)
    one, batched = (statistics.median(times[k]) for k in ("one_at_a_time", "batched"))
    return {
        "task": task, "model": name, "n_prompts": n_prompts, "n_edges": len(graph.edges),
        "variants": variants, "one_at_a_time_seconds": one, "batched_seconds": batched,
        "speedup": one / batched,
        "one_at_a_time_passes": runs["one_at_a_time"].forward_passes,
        "batched_passes": runs["batched"].forward_passes,
        "kept_edges": int(runs["batched"].kept.sum()),
        "same_circuit": bool(torch.equal(runs["one_at_a_time"].kept, runs["batched"].kept)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="batched ACDC against one pass per edge")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n-prompts", type=int, default=64)
    parser.add_argument("--variants", type=int, default=16)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    mi.apply_thread_policy()
    tasks = [*sorted(SIIT_TASKS), "induction"]
    results = [bench(task, args.rounds, args.n_prompts, args.variants) for task in tasks]
    if args.json:
        for result in results:
            print(json.dumps({"benchmark": "acdc", **result}))
    else:
        for result in results:
            for key, value in result.items():
                print(f"{key:24s} {value:.4g}" if isinstance(value, float)
                      else f"{key:24s} {value}")
            print()
    return 0 if all(r["same_circuit"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
