"""Attribution patching against activation patching on the same components, in one run.

Activation patching runs the model once per component (every residual position of every
layer, every head, every MLP); attribution patching estimates all the same scores from two
forward passes and one backward pass (Nanda, 2023). Three settings, each timed in the same
run with the two methods interleaved over rounds (ratio of median times):

* the trained toy-world models on their tasks (every residual position, head and MLP), with
  the Spearman rank correlation of the two methods' scores per component type (how far the
  cheap estimate can stand in for the exact one);
* the shipped SIIT benchmark models (four layers of four heads and MLPs), every head at every
  position, with the rank correlation over those scores;
* a model of GPT-2 small's shape (12 layers, 12 heads, d_model 768, GPT-2's vocabulary; random
  weights, built offline), every head at every position, and the same shape cut to 1, 2 and
  4 layers, to show how the ratio grows with the number of components
  (``tools/performance_page.py`` draws it).

    python benchmarks/bench_patching.py [--rounds 3] [--n-prompts 64] [--json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

import torch

import mechinterp as mi
from mechinterp.circuits import activation_patching, attribution_patching
from mechinterp.circuits.discovery import TASK_MODELS
from mechinterp.reporting import print_results
from mechinterp.siit import SIIT_TASKS, get_siit_task, load_siit_models
from mechinterp.toyworld import PromptSet, get_task, load_toy_model


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
    n_components = sum(int(v.numel()) for v in runs["activation"].scores.values())
    return {
        "task": task, "model": toy.spec.name, "n_prompts": n_prompts,
        "n_components": n_components,
        "activation_seconds": act, "attribution_seconds": attr, "speedup": act / attr,
        "activation_forward_passes": runs["activation"].forward_passes,
        "spearman_resid": spearman(runs["activation"].scores["resid"],
                                   runs["attribution"].scores["resid"]),
        "spearman_components": spearman(_components(runs["activation"].scores),
                                        _components(runs["attribution"].scores)),
    }


def _timed(model, prompts, rounds: int, components: tuple[str, ...]) -> tuple[dict, dict]:
    """Median seconds and the last run of each method, interleaved over ``rounds``."""
    times: dict[str, list[float]] = {"activation": [], "attribution": []}
    runs = {}
    for _ in range(rounds):
        started = time.perf_counter()
        runs["activation"] = activation_patching(model, prompts, components=components)
        times["activation"].append(time.perf_counter() - started)
        started = time.perf_counter()
        runs["attribution"] = attribution_patching(model, prompts)
        times["attribution"].append(time.perf_counter() - started)
    return {k: statistics.median(v) for k, v in times.items()}, runs


def bench_head_positions(name: str, model, prompts, rounds: int) -> dict:
    """Every head at every position: activation against attribution patching."""
    seconds, runs = _timed(model, prompts, rounds, ("head_positions",))
    cfg = model.cfg
    return {
        "model": name, "n_layers": cfg.n_layers, "n_heads": cfg.n_heads,
        "d_model": cfg.d_model, "positions": int(prompts.clean.shape[1]),
        "n_prompts": len(prompts),
        "n_components": cfg.n_layers * cfg.n_heads * int(prompts.clean.shape[1]),
        "activation_seconds": seconds["activation"],
        "attribution_seconds": seconds["attribution"],
        "speedup": seconds["activation"] / seconds["attribution"],
        "activation_forward_passes": runs["activation"].forward_passes,
        "spearman_head_positions": spearman(runs["activation"].scores["head_positions"],
                                            runs["attribution"].scores["head_positions"]),
    }


def gpt2_shaped(n_layers: int = 12, seed: int = 0):
    """A ``TransformerBridge`` with GPT-2 small's shape cut to ``n_layers`` (random weights,
    built offline through a saved Hugging Face GPT-2, as a downloaded one would load)."""
    from transformer_lens import TransformerBridge
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as folder:
        GPT2LMHeadModel(GPT2Config(n_layer=n_layers)).eval().save_pretrained(folder)
        return TransformerBridge.boot_transformers(folder, device="cpu").eval()


def random_prompts(vocab: int, n: int, pos: int, seed: int = 0) -> PromptSet:
    """Clean/corrupted pairs of random tokens that differ at one position, with random answer
    and wrong tokens (timing does not care what the prompts mean)."""
    g = torch.Generator().manual_seed(seed)
    clean = torch.randint(vocab, (n, pos), generator=g)
    corrupted = clean.clone()
    corrupted[:, pos // 2] = torch.randint(vocab, (n,), generator=g)
    answer, wrong = torch.randint(vocab, (2, n), generator=g)
    return PromptSet("random", clean, corrupted, answer, wrong, {"end": pos - 1})


def bench_gpt2_shape(layers: list[int], n_prompts: int, positions: int, rounds: int
                     ) -> list[dict]:
    """:func:`bench_head_positions` on GPT-2 small's shape cut to each of ``layers``."""
    out = []
    for n in layers:
        model = gpt2_shaped(n)
        prompts = random_prompts(model.cfg.d_vocab, n_prompts, positions)
        row = bench_head_positions("gpt2-small-shape" if n == 12 else f"gpt2-shape-{n}l",
                                   model, prompts, rounds)
        out.append(row)
        print(f"  {row['model']}: {row['n_components']} head positions, "
              f"{row['speedup']:.0f}x", file=sys.stderr, flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="attribution vs activation patching")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n-prompts", type=int, default=64)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--gpt2-layers", type=int, nargs="*", default=[1, 2, 4, 12],
                        help="depths of the GPT-2-shaped models (12 is GPT-2 small)")
    parser.add_argument("--gpt2-prompts", type=int, default=2)
    parser.add_argument("--gpt2-positions", type=int, default=8)
    parser.add_argument("--gpt2-rounds", type=int, default=1,
                        help="rounds on the GPT-2-shaped models (each takes minutes)")
    args = parser.parse_args(argv)
    mi.apply_thread_policy()
    results = [{"family": "toy", **bench(task, args.rounds, args.n_prompts)}
               for task in ("induction", "ioi")]
    for task in sorted(SIIT_TASKS):
        siit = load_siit_models(task, [0])[0]
        prompts = get_siit_task(task).prompts(args.n_prompts, seed=0)
        results.append({"family": "siit", "task": task, **bench_head_positions(
            task, siit.model, prompts, args.rounds)})
    results += [{"family": "gpt2", **row} for row in bench_gpt2_shape(
        args.gpt2_layers, args.gpt2_prompts, args.gpt2_positions, args.gpt2_rounds)]
    print_results(results, args.json, tag={"benchmark": "patching"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
