"""Write docs/performance.md from the JSON lines the patching and ACDC benchmarks print.

    python benchmarks/bench_patching.py --json > docs/performance/patching.jsonl
    python benchmarks/bench_acdc.py --json > docs/performance/acdc.jsonl
    python tools/performance_page.py

(``make bench-page`` runs all three.) It also draws ``docs/performance/patching_scaling.png``. The page states the machine and date of the run, so a
reader knows what the numbers are; they are never edited by hand.
"""

from __future__ import annotations

import json
import platform
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "docs" / "performance"
PAGE = ROOT / "docs" / "performance.md"


def _rows(name: str) -> list[dict]:
    path = FOLDER / name
    if not path.exists():
        sys.exit(f"{path} is missing: run the benchmarks first (make bench-page)")
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def _table(rows: list[dict], columns: dict[str, str], formats: dict[str, str]) -> str:
    lines = ["| " + " | ".join(columns.values()) + " |",
             "|" + "---|" * len(columns)]
    for row in rows:
        cells = [format(row[k], formats.get(k, "")) if row.get(k) is not None else "-"
                 for k in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_scaling(rows: list[dict], path: Path) -> None:
    """Speed-up against the number of components, one point per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for family, marker in (("gpt2", "o"), ("siit", "s"), ("toy", "^")):
        chosen = [r for r in rows if r["family"] == family]
        if chosen:
            ax.scatter([r["n_components"] for r in chosen], [r["speedup"] for r in chosen],
                       marker=marker, label={"gpt2": "GPT-2 small's shape, 1-12 layers",
                                             "siit": "SIIT benchmark models",
                                             "toy": "toy-world models"}[family])
            for r in chosen if family == "gpt2" else ():
                ax.annotate(r["model"], (r["n_components"], r["speedup"]), fontsize=6,
                            xytext=(3, -8), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("components patched (activation patching runs)")
    ax.set_ylabel("activation / attribution time")
    ax.set_title("Attribution patching's speed-up grows with the components", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    patching, acdc = _rows("patching.jsonl"), _rows("acdc.jsonl")
    gpt2 = next(r for r in patching if r.get("model") == "gpt2-small-shape")
    plot_scaling([r for r in patching if "n_components" in r], FOLDER / "patching_scaling.png")
    machine = f"{platform.machine()}, {platform.system()}, one CPU thread"
    text = f"""# Performance

Speed claims on this site are ratios of two methods timed in the same run, interleaved over
rounds, never wall-clock times (a shared machine can run the same code several times slower
from one minute to the next). The numbers below were measured with `make bench-page` on
{date.today():%Y-%m-%d} ({machine}); the scripts are in `benchmarks/`.

## Attribution against activation patching

Activation patching runs the model once per component; attribution patching estimates every
component's score from two forward passes and one backward pass (Nanda, 2023). Its advantage
grows with the number of components: at GPT-2 small's shape ({gpt2['n_layers']} layers,
{gpt2['n_heads']} heads, d_model {gpt2['d_model']}, random weights), patching every head at
each of {gpt2['positions']} positions takes {gpt2['activation_forward_passes']:,} forward passes,
and attribution patching is **{gpt2['speedup']:.0f}x** faster.

![Speed-up against the number of components](performance/patching_scaling.png)

{_table([r for r in patching if "n_components" in r],
        {"model": "model", "n_components": "components", "activation_seconds":
         "activation (s)", "attribution_seconds": "attribution (s)", "speedup": "speed-up",
         "spearman_head_positions": "rank agreement (head x position)",
         "spearman_components": "rank agreement (heads, MLPs)"},
        {"activation_seconds": ".3f", "attribution_seconds": ".4f", "speedup": ".0f",
         "spearman_head_positions": ".2f", "spearman_components": ".2f"})}

Rank agreement is the Spearman correlation of the two methods' scores on the trained models
(on the random GPT-2-shaped ones it only says how linear a random network is).

## ACDC

ACDC (Conmy et al., 2023) runs one forward pass per visited edge. The library has three ways
to do less, each returning the plain visit's circuit edge for edge: resume each pass at the
reader's layer from the clean run (readers are visited from the last layer back, so nothing
upstream has changed yet); keep the current circuit's outputs and inputs and recompute only
the components a cut changes, through the edges the circuit still keeps (incremental); or
evaluate a block of candidate edges in one batched pass.

{_table(acdc,
        {"task": "task", "n_edges": "edges", "kept_edges": "kept",
         "one_at_a_time_passes": "passes (plain)", "resumed_speedup": "resumed",
         "incremental_speedup": "incremental",
         "batched_speedup": f"batched ({acdc[0]['variants']} per pass)",
         "same_circuit": "same circuit"},
        {"resumed_speedup": ".1f", "incremental_speedup": ".1f", "batched_speedup": ".1f"})}

Most of a pass recomputes components whose inputs the cut under test cannot reach: by the
time the walk reaches an early reader, most later edges are cut, so a change to one head
reaches the logits through a handful of kept edges, or not at all. The incremental visit is
the default on a CPU (**{min(r['incremental_speedup'] for r in acdc):.1f}-\
{max(r['incremental_speedup'] for r in acdc):.1f}x** faster than the plain visit; the goal is 5x).
Its gain grows with the model and the circuit's sparsity: the two-layer toy model, with 81
edges, gains least. On a CPU a batched pass costs as much per variant as separate passes
(the work is arithmetic, not launch overhead); batching is the default on a GPU, where a
pass of a model this small is launch-bound, and has not been measured on one yet.
"""
    PAGE.write_text(text)
    print(f"wrote {PAGE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
