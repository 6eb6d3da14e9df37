"""ACDC as the library runs it against one full forward pass per edge.

ACDC (Conmy et al., 2023) visits the edges one after another and cuts an edge when cutting
it moves the metric by less than a threshold; each visit is a forward pass of the circuit.
:func:`mechinterp.circuits.acdc` has three ways to do less: it can resume each pass at the
reader's layer from the clean run's outputs (readers are visited from the last layer back,
so nothing before that layer has changed yet); it can keep the current circuit's outputs and
inputs and recompute only the components a cut changes, through the edges still kept
(incremental); and it can evaluate the next ``variants`` edges of a reader in one batched
pass (variant ``j`` cuts the block's first ``j`` edges; the values are read in order, as the
sequential visit would, until an edge is kept).

Four settings are timed on the same prompts, interleaved over rounds: ``one_at_a_time``
(``variants=1, resume=False``: the reference), ``resumed`` (one edge per pass from the
reader's layer), ``incremental`` (the default on a CPU) and ``batched`` (``--variants`` per
pass, resumed: the default on a GPU, where a small pass is launch-bound). ``speedup`` is the
reference's median time over the default setting's on this device; every setting must
return the reference's circuit edge for edge (``same_circuit``). Tasks: every SIIT benchmark
task (its shipped seed-0 model, four layers of four heads and MLPs) and the toy-world
induction task.

    python benchmarks/bench_acdc.py [--rounds 3] [--n-prompts 64] [--variants 16] [--json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

import mechinterp as mi
from mechinterp.circuits import acdc
from mechinterp.circuits.computation import ComputationGraph
from mechinterp.reporting import print_results
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
    """Timings of each setting and whether they return the reference's circuit."""
    name, model, prompts = _setting(task, n_prompts)
    graph = ComputationGraph(model)
    settings = {"one_at_a_time": {"variants": 1, "resume": False, "incremental": False},
                "resumed": {"variants": 1, "incremental": False},
                "incremental": {"variants": 1, "incremental": True},
                "batched": {"variants": variants, "incremental": False}}
    default = "batched" if graph.params["W_E"].device.type == "cuda" else "incremental"
    times: dict[str, list[float]] = {k: [] for k in settings}
    runs = {}
    for _ in range(rounds):
        for label, kwargs in settings.items():
            started = time.perf_counter()
            runs[label] = acdc(graph, prompts, **kwargs)
            times[label].append(time.perf_counter() - started)
    median = {k: statistics.median(v) for k, v in times.items()}
    reference = runs["one_at_a_time"].kept
    return {
        "task": task, "model": name, "device": str(graph.params["W_E"].device),
        "n_prompts": n_prompts, "n_edges": len(graph.edges), "variants": variants,
        "default": default, "speedup": median["one_at_a_time"] / median[default],
        **{f"{k}_seconds": v for k, v in median.items()},
        **{f"{k}_speedup": median["one_at_a_time"] / v for k, v in median.items()
           if k != "one_at_a_time"},
        **{f"{k}_passes": r.forward_passes for k, r in runs.items()},
        "kept_edges": int(reference.sum()),
        "same_circuit": all(bool(torch.equal(r.kept, reference)) for r in runs.values()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="incremental and batched ACDC against one pass per edge")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n-prompts", type=int, default=64)
    parser.add_argument("--variants", type=int, default=16)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    mi.apply_thread_policy()
    tasks = [*sorted(SIIT_TASKS), "induction"]
    results = [bench(task, args.rounds, args.n_prompts, args.variants) for task in tasks]
    print_results(results, args.json, tag={"benchmark": "acdc"}, width=24)
    return 0 if all(r["same_circuit"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
