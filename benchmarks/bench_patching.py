"""Attribution patching against activation patching on the same components, in one run.

Activation patching runs the model once per component (every residual position of every
layer, every head, every MLP); attribution patching estimates all the same scores from two
forward passes and one backward pass (Nanda, 2023). On a trained toy-world model and each
task with a planted circuit, both score the same components with the same prompts; the runs
are interleaved over rounds and the ratio of median times is printed, with the Spearman rank
correlation of the two methods' scores per component type (how far the cheap estimate can
stand in for the exact one).

    python benchmarks/bench_patching.py [--rounds 3] [--n-prompts 64] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

import mechinterp as mi
from mechinterp.circuits import activation_patching, attribution_patching
from mechinterp.circuits.discovery import TASK_MODELS
from mechinterp.toyworld import get_task, load_toy_model


def _ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks with ties given their average rank (many residual positions score exactly 0)."""
    x = x.flatten().double()
    order = x.argsort()
    ranks = torch.empty_like(x)
    ranks[order] = torch.arange(len(x), dtype=torch.double)
    for value in x.unique():
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation of two score tensors of the same shape."""
    ra, rb = (r - r.mean() for r in (_ranks(a), _ranks(b)))
    return float((ra * rb).sum() / (ra.norm() * rb.norm()))


def _components(scores: dict[str, torch.Tensor]) -> torch.Tensor:
    """Heads and MLPs in one vector (a two-layer model has only two MLPs to rank)."""
    return torch.cat([scores["heads"].flatten()] + ([scores["mlp"]] if "mlp" in scores else []))


def bench(task: str, rounds: int, n_prompts: int) -> dict:
    """Timings and rank correlations for one task on its default model."""
    toy = load_toy_model(TASK_MODELS[task])
    prompts = get_task(task).prompts(n_prompts, seed=1)
    times: dict[str, list[float]] = {"activation": [], "attribution": []}
    runs = {}
    for _ in range(rounds):
        for name, fn in (("activation", activation_patching), ("attribution", attribution_patching)):
            started = time.perf_counter()
            runs[name] = fn(toy.model, prompts)
            times[name].append(time.perf_counter() - started)
    act, attr = statistics.median(times["activation"]), statistics.median(times["attribution"])
    return {
        "task": task, "model": toy.spec.name, "n_prompts": n_prompts,
        "activation_seconds": act, "attribution_seconds": attr, "speedup": act / attr,
        "activation_forward_passes": runs["activation"].forward_passes,
        "spearman_resid": spearman(runs["activation"].scores["resid"],
                                   runs["attribution"].scores["resid"]),
        "spearman_components": spearman(_components(runs["activation"].scores),
                                        _components(runs["attribution"].scores)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="attribution vs activation patching")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n-prompts", type=int, default=64)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    mi.apply_thread_policy()
    results = [bench(task, args.rounds, args.n_prompts) for task in ("induction", "ioi")]
    if args.json:
        print(json.dumps({"benchmark": "patching", "results": results}))
    else:
        for result in results:
            for key, value in result.items():
                print(f"{key:28s} {value:.4g}" if isinstance(value, float)
                      else f"{key:28s} {value}")
            print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
