"""The results page: a leaderboard per system, figures, and every record, from the records.

:func:`render_results_page` writes the page's Markdown. For each system whose records exist
it shows one leaderboard table (methods against their baselines, on the same data) with the
provenance of the records behind it; then every record in full, each in a collapsed block
with its metrics and provenance. :func:`plot_results_figures` draws the page's figures. Nothing
on the page is typed by hand: a system whose record is missing is left out.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from typing import Any

from mechinterp.reporting import mean_std

__all__ = ["render_results_page", "plot_results_figures", "LEADERBOARDS"]

Record = dict[str, Any]


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        text = json.dumps(value)
        return text if len(text) <= 80 else text[:77] + "..."
    return str(value)


def _pct(value: Any, signed: bool = False, digits: int = 1) -> str:
    if not isinstance(value, (int, float)):
        return "n/a"
    return f"{value:+.{digits}%}" if signed else f"{value:.{digits}%}"


def _num(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "n/a"


def provenance_line(record: Record) -> str:
    """Profile, seeds, data source, device, commit, torch version, wall time and date."""
    wall = record.get("wall_seconds")
    return (f"*Provenance:* profile `{record.get('profile')}`, seeds {record.get('seeds')}, data "
            f"`{record.get('data_source')}`, device "
            f"`{record.get('device_name', record.get('device'))}`, commit "
            f"`{record.get('git_commit')}`, torch {record.get('versions', {}).get('torch')}"
            + (f", {wall:.1f} s" if isinstance(wall, (int, float)) else "")
            + f", written {record.get('created')}.")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return (["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
            + ["| " + " | ".join(row) + " |" for row in rows])


TRAINED_ON_ATTRIBUTION = "trained_gates_attribution_units"
TRAINED_ON_OWN = "trained_gates_symbiote_units"


def _symbiote(found: dict[str, Record]) -> list[str] | None:
    normal = found.get("symbiote-normal", {}).get("metrics")
    poly = found.get("symbiote-polysemantic", {}).get("metrics", {})
    if not normal:
        return None

    def keys(method: str, condition: str) -> str | None:
        """The record prefix of ``method`` on ``condition`` (``None`` when not recorded)."""
        if condition == "normal":
            if method == "best" and "best_ablation.target_output_rate" in normal:
                return "best_ablation."  # each seed's own choice
            name = normal.get("best_ablation_at_budget") if method == "best" else method
            return f"{name}." if name else None
        if method == "symbiote":
            return f"{condition}."
        if method == "conditional_symbiote":
            return f"conditional.{condition}."
        if method == "best" and f"baseline.{condition}.best_ablation.target_output_rate" in poly:
            return f"baseline.{condition}.best_ablation."
        name = poly.get(f"best_ablation_at_budget.{condition}") if method == "best" else method
        return f"baseline.{condition}.{name}." if name else None

    def value(metrics: dict[str, Any], key: str, signed: bool = False, digits: int = 1) -> str:
        return mean_std(metrics, key, f"{'+' if signed else ''}.{digits}%")

    rows = []
    # each condition names its own best ablation at the symbiote's budget (chosen, per seed,
    # on the training images)
    for label, method in (("**symbiote**", "symbiote"),
                          ("conditional symbiote (reads A)", "conditional_symbiote"),
                          ("logit mask (trivial)", "logit_mask"),
                          ("best ablation at the symbiote's budget", "best"),
                          ("gates trained on attribution units (strong)",
                           TRAINED_ON_ATTRIBUTION),
                          ("gates trained on the symbiote's units", TRAINED_ON_OWN)):
        row = [label]
        for condition, metrics in (("normal", normal), ("polysemantic", poly),
                                   ("mixed", poly), ("narrow", poly)):
            prefix = keys(method, condition)
            if prefix is None:
                row.append("n/a")
                continue
            row.append(f"{value(metrics, prefix + 'target_output_rate', digits=2)} / "
                       f"{value(metrics, prefix + 'nontarget_accuracy_drop', True)}")
        rows.append(row)
    seeds = found["symbiote-normal"].get("seeds", [])
    over = f"; mean ± std over {len(seeds)} seeds" if len(seeds) > 1 else ""
    return _table([f"method (mean over the ten digits{over}): target rate / accuracy lost",
                   "normal CNN", "same CNN, unselective units (polysemantic)",
                   "same CNN, mixed basis", "narrow CNN"], rows)


def _transfer(found: dict[str, Record]) -> list[str] | None:
    board = found.get("transfer-leaderboard", {}).get("metrics")
    if not board:
        return None
    from mechinterp.transfer.registry import get_method, list_methods

    pairs = sorted({k.split("|")[1] for k in board if k.count("|") == 2})

    def cell(method: str, pair: str) -> str:
        key = f"{method}|{pair}|"
        if f"{key}transfer_mean" not in board:
            return "refuses the pair"
        zero = board.get(key + "budget0_transfer_mean")
        return (f"{board[key + 'transfer_mean']:.1%} / {board[key + 'preservation_mean']:.1%} / "
                f"{board[key + 'specificity_mean']:.1%}"
                + (f" (0 images: {zero:.1%})" if zero is not None else ""))

    rows = [[f"{get_method(m).kind} {get_method(m).number}: `{m}`"
             + (" (best)" if m == board.get("best_method") else ""),
             *[cell(m, p) for p in pairs]]
            for m in list_methods() if any(f"{m}|{p}|transfer_mean" in board for p in pairs)]
    return _table(["method", *[f"{p}: transfer / preservation / specificity error"
                               for p in pairs]], rows)


def _circuits(found: dict[str, Record]) -> list[str] | None:
    board = found.get("circuits-siit-benchmark", {}).get("metrics")
    if not board:
        return None
    rows = []
    for key in sorted(k for k, v in board.items()
                      if k.count("/") == 1 and isinstance(v, dict) and "node_auc" in v):
        task, method = key.split("/", 1)
        v = board[key]
        rows.append([task, method.replace("_", " "), mean_std(v, "node_auc"),
                     mean_std(v, "edge_auc"), mean_std(v, "edge_precision"),
                     mean_std(v, "edge_recall"), mean_std(v, "faithfulness")])
    return _table(["task", "method", "node ROC AUC", "edge ROC AUC", "edge precision",
                   "edge recall", "faithfulness (held out)"], rows)


def _interventions(found: dict[str, Record]) -> list[str] | None:
    bench = found.get("interventions-benchmark", {}).get("metrics")
    if not bench:
        return None
    rows = []
    entries = {n: v for n, v in bench.items()  # a record from an older build may lack a field
               if isinstance(v, dict) and {"kind", "before", "after"} <= set(v)}
    for name, v in sorted(entries.items(), key=lambda item: (item[1]["kind"], item[0])):
        before, after = v["before"], v["after"]
        loss = (_pct(after["loss"] / before["loss"] - 1, True)
                if isinstance(after.get("loss"), (int, float)) else "undefined")
        rows.append([f"`{name}`", v["kind"],
                     f"{_num(before['toxicity'])} -> {_num(after['toxicity'])}",
                     f"{_num(before['bias_gap'])} -> {_num(after['bias_gap'])}",
                     f"{_num(before['factual_recall'])} -> {_num(after['factual_recall'])}", loss])
    table = _table(["intervention", "kind", "toxicity", "bias gap", "factual recall",
                    "held-out loss"], rows)
    goals = found.get("interventions-goals", {}).get("metrics", {})
    seeds, targets = goals.get("seeds", {}), goals.get("targets", {})
    if len(seeds) > 1:
        table += ["", f"The goals on {len(seeds)} toy models trained from different seeds "
                  "(held-out cells; mean ± std):", ""]
        rows = []
        for goal, t in targets.items():
            values = [v[goal] for v in seeds.values()]
            rise, mean = t["at_most"], statistics.mean(values)
            rows.append([f"{goal} {'<=' if rise else '>='} {t['target']:.0%}",
                         *[_pct(v, rise) for v in values],
                         f"{_pct(mean, rise)} ± {_pct(statistics.stdev(values))}",
                         "yes" if (mean <= t["target"] if rise else mean >= t["target"])
                         else "no"])
        table += _table(["goal", *[f"seed {s}" for s in seeds], "mean ± std",
                         "met on the mean"], rows)
    return table


def _selfreport(found: dict[str, Record]) -> list[str] | None:
    report = found.get("selfreport-pipeline", {}).get("metrics")
    if not report:
        return None
    rows = [[f"**self-report, {h} head**", _num(v["pearson_r"]), _num(v.get("r2")),
             _num(v.get("pearson_r_live")), _num(v.get("drift"))]
            for h, v in report["heads"].items()]
    rows += [[name.replace("/", ", ").replace("_", " "), _num(r), "", "", ""]
             for name, r in report.get("baselines", {}).items()]
    read = report.get("read_hook", "not recorded")
    leak = " (after the neurons wrote: leaking)" if report.get("leak") else ""
    out = [f"Heads and probe read `{read}`{leak}; the neurons live at "
           f"`{report.get('neuron_hook', 'not recorded')}`.", ""] + _table(
        ["method", "Pearson r (held-out)", "R2", "r against live neurons", "drift"], rows)
    seeds = report.get("over_seeds")
    if seeds:
        out += ["", f"The `{report['best_head']}` head against its controls over seeds "
                f"{seeds['seeds']} (split and initialisation; mean ± std of Pearson r):", ""]
        out += _table(["method", "Pearson r (mean ± std)"],
                      [[m, f"{v['mean']:.4f} ± {v['std']:.4f}"]
                       for m, v in seeds["by_method"].items()])
    return out


LEADERBOARDS: list[tuple[str, tuple[str, ...], Callable[[dict[str, Record]], list[str] | None],
                         str]] = [
    ("SymbioteNet: silencing one digit", ("symbiote-normal", "symbiote-polysemantic"),
     _symbiote, "tutorials/symbiosis_normal.ipynb"),
    ("Concept transfer: moving the digit 4", ("transfer-leaderboard",), _transfer,
     "tutorials/transfer_leaderboard.ipynb"),
    ("Circuit discovery against circuits known by construction (SIIT)",
     ("circuits-siit-benchmark",), _circuits, "tutorials/circuits_5_discovery_leaderboard.ipynb"),
    ("Interventions: the before/after suite", ("interventions-benchmark", "interventions-goals"),
     _interventions,
     "tutorials/interventions_5_benchmark_suite.ipynb"),
    ("Neuron self-report", ("selfreport-pipeline",), _selfreport,
     "tutorials/selfreport_4_unfreezing_and_drift.ipynb"),
]
"""``(heading, record names, table builder, page that computed it)`` per system."""


def render_results_page(records: list[Record], *, figures: dict[str, str] | None = None) -> str:
    """Markdown for the results page.

    Args:
        records: the result records (see :func:`~mechinterp.results.load_results`).
        figures: ``{caption: image path}`` drawn by :func:`plot_results_figures`, shown first.
    """
    lines = ["# Results", "",
             "Every number on this page was written by an executed tutorial during the site "
             "build and read back from its JSON record; each table says which profile, seeds, "
             "data source and commit produced it.", ""]
    if not records:
        lines.append("No result records were found for this build.")
        return "\n".join(lines) + "\n"
    for caption, path in (figures or {}).items():
        lines += [f"![{caption}]({path})", "", f"*{caption}.*", ""]
    found = {r.get("name", ""): r for r in records}
    for heading, names, build, page in LEADERBOARDS:
        table = build(found)
        if table is None:
            continue
        lines += [f"## {heading}", "", *table, "",
                  f"Computed by [this tutorial]({page}).", ""]
        for name in names:
            if name in found:
                lines += [provenance_line(found[name]), ""]
    lines += ["## Every record", "",
              "Each record in full: its metrics, then what produced them.", ""]
    for rec in records:
        lines += [f'??? note "{rec.get("title", rec.get("name"))} (`{rec.get("name")}`)"', ""]
        lines += ["    | metric | value |", "    | --- | --- |"]
        for key, value in sorted(rec.get("metrics", {}).items()):
            lines.append(f"    | `{key}` | {_format(value)} |")
        lines += ["", "    " + provenance_line(rec), ""]
    return "\n".join(lines) + "\n"


def plot_results_figures(records: list[Record]) -> dict[str, bytes]:
    """``{file name: PNG}`` of the results page's figures that the records allow: the
    transfer trade-off (transfer against preservation, every registered method on each
    pair)."""
    board = next((r["metrics"] for r in records if r.get("name") == "transfer-leaderboard"),
                 None)
    if not board:
        return {}
    import io
    from itertools import cycle

    from mechinterp.plotting import plt
    from mechinterp.transfer.registry import get_method, list_methods

    colours = {"surgery": "tab:blue", "sae-free": "tab:green", "baseline": "tab:red"}
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    pairs = sorted({k.split("|")[1] for k in board if k.count("|") == 2})
    for marker, pair in zip(cycle("so^Dv"), pairs):
        for method in list_methods():  # a method no longer registered is left out
            key = f"{method}|{pair}|"
            if f"{key}transfer_mean" in board:
                ax.scatter(board[f"{key}preservation_mean"], board[f"{key}transfer_mean"],
                           marker=marker, color=colours.get(get_method(method).kind, "gray"),
                           s=30, alpha=0.8)
        ax.scatter([], [], marker=marker, color="black", label=pair)
    for kind, colour in colours.items():
        ax.scatter([], [], color=colour, label=kind)
    ax.set_xlabel("preservation")
    ax.set_ylabel("transfer")
    ax.set_title("Concept transfer: every method on each pair (mean over seeds)")
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return {"transfer-tradeoff.png": buffer.getvalue()}
