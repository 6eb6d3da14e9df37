"""The home page's key results: one headline per system, read from the result records.

:func:`key_results` picks each system's headline number from the record that holds it
(rows for records that do not exist are left out), :func:`render_key_results` turns them into
the home page's table, and :func:`plot_key_results` draws them. The results page itself,
with a leaderboard per system, is :mod:`mechinterp.leaderboards`.
"""

from __future__ import annotations

import statistics
from typing import Any

from mechinterp.reporting import mean_std

__all__ = ["key_results", "render_key_results", "plot_key_results", "best_transfer_method"]


def _by_name(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r.get("name", ""): r.get("metrics", {}) for r in records}


def _seeds_note(metrics: dict[str, Any], prefix: str) -> str:
    return " (mean ± std over seeds)" if f"{prefix}target_output_rate_std" in metrics else ""


def best_transfer_method(board: dict[str, Any], pair: str) -> str | None:
    """The method the leaderboard named best (by
    :func:`mechinterp.transfer.leaderboard.pick_best`, on the validation split), if the
    record holds its numbers for ``pair``."""
    best = board.get("best_method")
    return best if f"{best}|{pair}|transfer_mean" in board else None


def key_results(records: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The headline number of each system, read from the records that exist (rows for missing
    records are left out): ``[{"system", "result", "numbers", "page"}]``."""
    found = _by_name(records)
    rows = []
    for name, prefix, label, page in (
            ("symbiote-normal", "symbiote.", "normal CNN", "normal"),
            ("symbiote-polysemantic", "polysemantic.",
             "polysemantic CNN (same accuracy, units answer to more digits)", "polysemantic"),
            ("symbiote-polysemantic", "narrow.", "narrow CNN (few units, less accurate)",
             "polysemantic"),
            ("symbiote-polysemantic", "conditional.narrow.",
             "narrow CNN with a symbiote that reads A", "polysemantic")):
        m = found.get(name, {})
        if f"{prefix}target_output_rate" in m:
            rows.append({
                "system": "SymbioteNet",
                "result": f"inhibiting one digit of a {label}",
                "numbers": f"target digit predicted {m[prefix + 'target_output_rate_before']:.1%}"
                           f" -> {mean_std(m, prefix + 'target_output_rate', '.2%')} of the time; "
                           f"other digits lose {mean_std(m, prefix + 'nontarget_accuracy_drop', '.1%')}"
                           " accuracy" + _seeds_note(m, prefix),
                "page": f"tutorials/symbiosis_{page}.ipynb"})
    board = found.get("transfer-leaderboard", {})
    for pair in sorted({k.split("|")[1] for k in board if k.count("|") == 2}):
        best = best_transfer_method(board, pair)
        if best is not None:
            key = f"{best}|{pair}|"
            rows.append({
                "system": "Concept transfer",
                "result": f"best method for {pair}: `{best}`",
                "numbers": f"transfer {board[key + 'transfer_mean']:.1%}, preservation "
                           f"{board[key + 'preservation_mean']:.1%}, specificity error "
                           f"{board[key + 'specificity_mean']:.1%} (lower is better)",
                "page": "tutorials/transfer_leaderboard.ipynb"})
    circuits = found.get("circuits-siit-benchmark", {})
    for task in sorted({k.split("/")[0] for k in circuits if k.count("/") == 1}):
        edge = {k.split("/")[1]: v["edge_auc"] for k, v in circuits.items()
                if k.startswith(task + "/") and k.count("/") == 1 and isinstance(v, dict)
                and v.get("edge_auc") is not None}
        if edge:
            methods = {m: a for m, a in edge.items() if m not in ("random", "weight_norm",
                                                                   "attention")}
            best = max(methods, key=methods.get)
            rows.append({
                "system": "Circuits",
                "result": f"finding the SIIT-built `{task}` circuit",
                "numbers": f"edge ROC AUC: best `{best}` {methods[best]:.2f}; baselines "
                           + ", ".join(f"{m.replace('_', ' ')} {edge[m]:.2f}"
                                       for m in ("random", "weight_norm") if m in edge)
                           + " (mean over model seeds)",
                "page": "tutorials/circuits_5_discovery_leaderboard.ipynb"})
    report = found.get("selfreport-pipeline", {})
    if "pearson_r" in report:
        read = _read_point(report)
        head = report["heads"].get(report["best_head"], {})
        cost = (f"; drift {head['drift']:.3f}, next-token loss {head['lm_loss_before']:.3f} -> "
                f"{head['lm_loss']:.3f}" if {"drift", "lm_loss", "lm_loss_before"} <= set(head)
                else "")
        seeds = report.get("over_seeds", {}).get("by_method", {})
        if seeds:  # mean and std over seeds, the headline head against its controls
            stat = {m: f"{v['mean']:.3f} ± {v['std']:.3f}" for m, v in seeds.items()}
            others = ", ".join(f"{m} {v}" for m, v in stat.items() if m != "self-report")
            numbers = (f"Pearson r {stat['self-report']} on held-out text (mean ± std, "
                       f"{len(report['over_seeds']['seeds'])} seeds); {others}{cost}")
        else:
            base = report.get("baselines", {})
            others = ", ".join(f"{label} {base[key]:.3f}" for key, label in (
                ("linear_probe", "linear probe"), ("mlp_probe", "nonlinear probe"),
                (f"cross/{report['best_head']}", "another model"),
                ("token_lookup", "token lookup")) if key in base)
            numbers = f"Pearson r {report['pearson_r']:.3f} on held-out text; {others}{cost}"
        rows.append({
            "system": "Neuron self-report",
            "result": f"a model reports four of its neurons (`{report['best_head']}` head, {read})",
            "numbers": numbers,
            "page": "tutorials/selfreport_4_unfreezing_and_drift.ipynb"})
    bench = found.get("interventions-benchmark", {})
    seeds = found.get("interventions-goals", {}).get("seeds", {})
    for name, metric, label, goal in (
            ("toxicity-steer", "toxicity", "toxic continuations", "toxic share down"),
            ("bias-ablate", "bias_gap", "pronoun bias gap", "bias gap down"),
            ("fact-edit", "efficacy", "edit efficacy", "efficacy")):
        if name in bench:
            before, after = bench[name]["before"], bench[name]["after"]
            numbers = (f"{before[metric]:.3f} -> {after[metric]:.3f}; held-out loss "
                       f"{before['loss']:.3f} -> {after['loss']:.3f}")
            values = [g[goal] for g in seeds.values() if goal in g]
            if len(values) > 1:
                numbers += (f" (seed 0; {goal} over {len(values)} trained models "
                            f"{statistics.mean(values):.1%} ± {statistics.stdev(values):.1%})")
            rows.append({
                "system": "Interventions",
                "result": f"`{name}`: {label}",
                "numbers": numbers,
                "page": "tutorials/interventions_5_benchmark_suite.ipynb"})
    return rows


def render_key_results(records: list[dict[str, Any]], *, image: str | None = None) -> str:
    """Markdown for the home page: a table of :func:`key_results` (and ``image``, a figure of
    them, when given)."""
    rows = key_results(records)
    if not rows:
        return "*No result records were found for this build.*\n"
    lines = ["| system | result | numbers |", "| --- | --- | --- |"]
    lines += [f"| {r['system']} | [{r['result']}]({r['page']}) | {r['numbers']} |" for r in rows]
    if image:
        lines += ["", f"![Key results of this build]({image})"]
    return "\n".join(lines) + "\n"


def _draw_circuits(ax, circuits: dict[str, Any]) -> None:
    methods = ["activation", "attribution", "eap", "eap-ig", "acdc", "random", "weight_norm"]
    tasks = sorted({k.split("/")[0] for k in circuits if k.count("/") == 1})
    width = 0.8 / max(1, len(tasks))
    for i, task in enumerate(tasks):
        values = [(circuits.get(f"{task}/{m}", {}).get("edge_auc")
                   or circuits.get(f"{task}/{m}", {}).get("node_auc") or float("nan"))
                  for m in methods]
        ax.bar([j + width * i for j in range(len(methods))], values, width,
               label=task.replace("siit-", ""))
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(methods))],
                  [m.replace("_", " ") for m in methods], rotation=25, ha="right")
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("ROC AUC (edges; nodes for node methods)")
    ax.set_title("Circuit discovery vs SIIT-built circuits")
    ax.legend(loc="lower left", fontsize=8)


def _draw_interventions(ax, bench: dict[str, Any]) -> None:
    shown = [(n, m) for n, m in (("toxicity-steer", "toxicity"), ("bias-ablate", "bias_gap"),
                                 ("fact-edit", "efficacy")) if n in bench]
    for i, when in enumerate(("before", "after")):
        ax.bar([j + 0.4 * i for j in range(len(shown))], [bench[n][when][m] for n, m in shown],
               0.4, label=when)
    ax.set_xticks([j + 0.2 for j in range(len(shown))],
                  [f"{m.replace('_', ' ')}\n({n})" for n, m in shown])
    ax.set_title("Interventions: before and after")
    ax.legend()


def _read_point(report: dict[str, Any]) -> str:
    """Where the heads and probe of a self-report record read, labelled when it leaks."""
    hook = report.get("read_hook")
    if hook is None:
        return "read point not recorded"
    return f"reading `{hook}`" + (", after the neurons wrote: leaking" if report.get("leak")
                                  else ", before the neurons")


def _draw_selfreport(ax, report: dict[str, Any]) -> None:
    base = report.get("baselines", {})
    short = {"classification": "classif."}
    bars = [(f"self\n{short.get(h, h)}", v["pearson_r"], "tab:blue")
            for h, v in report["heads"].items()]
    bars += [(label, base[key], "tab:gray") for key, label in (
        (f"cross/{report['best_head']}", "another\nmodel"), ("linear_probe", "linear\nprobe"),
        ("mlp_probe", "nonlinear\nprobe"),
        ("token_lookup", "token\nlookup"), ("mean", "mean")) if key in base]
    ax.bar(range(len(bars)), [b[1] for b in bars], color=[b[2] for b in bars])
    ax.set_xticks(range(len(bars)), [b[0] for b in bars], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("Pearson r, held-out text")
    hook = report.get("read_hook", "")
    ax.set_title("Neuron self-report (toy world)" + (f"\nread at {hook}" if hook else ""),
                 fontsize=9)


def _draw_symbiote(ax, normal: dict[str, Any], poly: dict[str, Any]) -> None:
    groups = [("normal CNN", normal, "symbiote."), ("polysemantic", poly, "polysemantic."),
              ("mixed basis", poly, "mixed."), ("narrow CNN", poly, "narrow."),
              ("narrow CNN,\nconditional B", poly, "conditional.narrow.")]
    groups = [g for g in groups if f"{g[2]}target_output_rate" in g[1]]
    for i, (key, label) in enumerate((("target_output_rate_before", "target rate, A alone"),
                                      ("target_output_rate", "target rate, A with B"),
                                      ("nontarget_accuracy_drop", "other digits' loss"))):
        ax.bar([j + 0.27 * i for j in range(len(groups))],
               [m[prefix + key] for _, m, prefix in groups], 0.27, label=label,
               yerr=[m.get(f"{prefix}{key}_std", 0.0) for _, m, prefix in groups], capsize=2)
    ax.set_xticks([j + 0.27 for j in range(len(groups))], [g[0] for g in groups])
    ax.set_ylabel("share of test images")
    ax.set_title("SymbioteNet: silencing one digit (mean over digits; bars: std over seeds)")
    ax.legend(fontsize=8, loc="upper center")


def plot_key_results(records: list[dict[str, Any]]) -> bytes | None:
    """A PNG of the headline numbers, one panel per system whose record exists, two panels a
    row: circuit-discovery AUC per method and task, three benchmark metrics before and after
    the intervention aimed at each (steering for toxicity, ablation for the bias gap, the
    rank-one edit for efficacy), the self-report's Pearson r against its baselines and the
    symbiote's inhibition; ``None`` without the circuits and benchmark records."""
    found = _by_name(records)
    circuits = found.get("circuits-siit-benchmark", {})
    bench = found.get("interventions-benchmark", {})
    if not circuits or not bench:
        return None
    import io

    from mechinterp.plotting import plt

    report = found.get("selfreport-pipeline", {})
    normal = found.get("symbiote-normal", {})
    poly = found.get("symbiote-polysemantic", {})
    panels = [lambda ax: _draw_circuits(ax, circuits), lambda ax: _draw_interventions(ax, bench)]
    if "heads" in report:
        panels.append(lambda ax: _draw_selfreport(ax, report))
    if "symbiote.target_output_rate" in normal:
        panels.append(lambda ax: _draw_symbiote(ax, normal, poly))
    rows = (len(panels) + 1) // 2
    fig, axes = plt.subplots(rows, 2, figsize=(11, 3.6 * rows), squeeze=False)
    for ax, draw in zip(axes.flat, panels, strict=False):
        draw(ax)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()
