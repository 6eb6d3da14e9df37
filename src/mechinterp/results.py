"""Result records: metrics with their provenance, as JSON, and the site page built from them.

A tutorial ends by calling :func:`write_result`. The record carries the metrics and what is
needed to trust or reproduce them: seeds, profile, data source, package versions, the git
commit, the device and the wall time. The site's results page is generated from these files at
build time by :func:`render_results_page`; nothing on it is typed by hand.

Records live in ``$MECHINTERP_RESULTS`` when set, else in ``results/`` under the cache folder,
one file per (profile, name), so a newer run of the same experiment replaces the older record.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import subprocess
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from mechinterp.checkpoints import atomic_write_text
from mechinterp.config import cache_dir, get_device, get_profile
from mechinterp.errors import ConfigError

__all__ = ["results_dir", "write_result", "load_results", "render_results_page", "provenance",
           "key_results", "render_key_results", "plot_key_results"]

_PACKAGES = ("mechinterp", "torch", "transformer-lens", "numpy")


def results_dir() -> Path:
    """Folder holding result records (created if missing)."""
    env = os.environ.get("MECHINTERP_RESULTS")
    path = Path(env).expanduser() if env else cache_dir() / "results"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _git_commit() -> str:
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        return out + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance() -> dict[str, Any]:
    """Versions, commit, device and host facts for a record."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "versions": versions,
        "python": platform.python_version(),
        "git_commit": _git_commit(),
        "device": str(get_device()),
        "device_name": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _clean(value: Any) -> Any:
    """Make metrics JSON-safe: tensors and NumPy scalars to numbers, NaN to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, torch.Tensor):
        return _clean(value.tolist())
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_result(
    name: str,
    metrics: dict[str, Any],
    *,
    seeds: list[int] | tuple[int, ...],
    data_source: str,
    title: str | None = None,
    config: dict[str, Any] | None = None,
    started: float | None = None,
) -> Path:
    """Write a result record and return its path.

    Args:
        name: short identifier, e.g. ``"cnn-inspection"`` (letters, digits, ``-``, ``_``).
        metrics: numbers (or nested dicts/lists of numbers) to record.
        seeds: seeds the metrics were computed over.
        data_source: the data source used.
        title: a human-readable heading for the results page.
        config: settings that shaped the result.
        started: ``time.perf_counter()`` at the start of the experiment, for the wall time.
    """
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
        raise ConfigError(f"record name {name!r} may use only letters, digits, '-' and '_'")
    profile = get_profile()
    record = {
        "name": name,
        "title": title or name,
        "metrics": _clean(metrics),
        "seeds": list(seeds),
        "profile": profile.name,
        "data_source": data_source,
        "config": _clean(config or {}),
        "wall_seconds": None if started is None else round(time.perf_counter() - started, 3),
        **provenance(),
    }
    path = results_dir() / profile.name / f"{name}.json"
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True))
    return path


def load_results(folder: Path | None = None) -> list[dict[str, Any]]:
    """Every record under ``folder`` (default :func:`results_dir`), sorted by profile and name.

    Unreadable files are skipped, so a half-written foreign file cannot break the site.
    """
    folder = folder or results_dir()
    records = []
    for path in sorted(folder.glob("*/*.json")):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return sorted(records, key=lambda r: (r.get("profile", ""), r.get("name", "")))


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, dict)):
        text = json.dumps(value)
        return text if len(text) <= 80 else text[:77] + "..."
    return str(value)


def render_results_page(records: list[dict[str, Any]]) -> str:
    """Markdown for the results page: one section per record, metrics then provenance."""
    lines = [
        "# Results",
        "",
        "Every number on this page was written by an executed tutorial during the site build "
        "and read back from its JSON record. Each section says which profile, seeds, data "
        "source and commit produced it.",
        "",
    ]
    if not records:
        lines.append("No result records were found for this build.")
        return "\n".join(lines) + "\n"
    for rec in records:
        lines += [f"## {rec.get('title', rec.get('name'))}", ""]
        lines += ["| metric | value |", "| --- | --- |"]
        for key, value in sorted(rec.get("metrics", {}).items()):
            lines.append(f"| `{key}` | {_format(value)} |")
        wall = rec.get("wall_seconds")
        lines += [
            "",
            f"*Provenance:* profile `{rec.get('profile')}`, seeds {rec.get('seeds')}, data "
            f"`{rec.get('data_source')}`, device `{rec.get('device_name', rec.get('device'))}`, "
            f"commit `{rec.get('git_commit')}`, torch {rec.get('versions', {}).get('torch')}"
            + (f", {wall:.1f} s" if isinstance(wall, (int, float)) else "")
            + f", written {rec.get('created')}.",
            "",
        ]
    return "\n".join(lines) + "\n"


def _by_name(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r.get("name", ""): r.get("metrics", {}) for r in records}


def key_results(records: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The headline number of each system, read from the records that exist (rows for missing
    records are left out): ``[{"system", "result", "numbers", "page"}]``."""
    found = _by_name(records)
    rows = []
    for name, label in (("symbiote-normal", "normal"), ("symbiote-polysemantic", "polysemantic")):
        m = found.get(name, {})
        prefix = "symbiote." if name == "symbiote-normal" else "polysemantic."
        if f"{prefix}target_output_rate" in m:
            rows.append({
                "system": "SymbioteNet",
                "result": f"inhibiting one digit of a {label} CNN",
                "numbers": f"target digit predicted {m[prefix + 'target_output_rate_before']:.1%}"
                           f" -> {m[prefix + 'target_output_rate']:.2%} of the time; other digits"
                           f" lose {m[prefix + 'nontarget_accuracy_drop']:.1%} accuracy",
                "page": f"tutorials/symbiosis_{label}.ipynb"})
    board = found.get("transfer-leaderboard", {})
    for pair in ("megann <- megann", "widenn <- deepnn"):
        scored = {k.split("|")[0]: v for k, v in board.items()
                  if k.endswith(f"|{pair}|transfer_mean")
                  and k.split("|")[0] not in ("oracle_retrain", "finetune_with_budget")}
        if scored:
            best = max(scored, key=scored.get)
            key = f"{best}|{pair}|"
            rows.append({
                "system": "Concept transfer",
                "result": f"best method for {pair}: `{best}`",
                "numbers": f"transfer {board[key + 'transfer_mean']:.1%}, preservation "
                           f"{board[key + 'preservation_mean']:.1%}, specificity error "
                           f"{board[key + 'specificity_mean']:.1%} (lower is better)",
                "page": "tutorials/transfer_leaderboard.ipynb"})
    circuits = found.get("circuits-discovery", {})
    for task in ("induction", "ioi"):
        aucs = {k.split("/")[1]: v["node_auc"] for k, v in circuits.items()
                if k.startswith(task + "/") and isinstance(v, dict) and "node_auc" in v
                and not k.endswith("weight_norm")}
        if aucs:
            rows.append({
                "system": "Circuits",
                "result": f"finding the planted {task} circuit",
                "numbers": "ROC AUC " + ", ".join(f"{m} {a:.2f}" for m, a in aucs.items()),
                "page": "tutorials/circuits_4_discovery_and_export.ipynb"})
    report = found.get("selfreport-pipeline", {})
    if "pearson_r" in report:
        base = report.get("baselines", {})
        others = ", ".join(f"{label} {base[key]:.3f}" for key, label in (
            ("linear_probe", "linear probe"), (f"cross/{report['best_head']}", "another model"),
            ("token_lookup", "token lookup")) if key in base)
        rows.append({
            "system": "Neuron self-report",
            "result": f"a model reports four of its neurons (`{report['best_head']}` head)",
            "numbers": f"Pearson r {report['pearson_r']:.3f} on held-out text; {others}",
            "page": "tutorials/selfreport_4_unfreezing_and_drift.ipynb"})
    bench = found.get("interventions-benchmark", {})
    for name, metric, label in (("toxicity-steer", "toxicity", "toxic continuations"),
                                ("bias-ablate", "bias_gap", "pronoun bias gap"),
                                ("fact-edit", "efficacy", "edit efficacy")):
        if name in bench:
            before, after = bench[name]["before"], bench[name]["after"]
            rows.append({
                "system": "Interventions",
                "result": f"`{name}`: {label}",
                "numbers": f"{before[metric]:.3f} -> {after[metric]:.3f}; held-out loss "
                           f"{before['loss']:.3f} -> {after['loss']:.3f}",
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


def plot_key_results(records: list[dict[str, Any]]) -> bytes | None:
    """A PNG with circuit-discovery AUC per method and task, each benchmark metric before and
    after its best intervention and, when its record exists, the self-report's Pearson r
    against its baselines; ``None`` without the first two records."""
    found = _by_name(records)
    circuits, bench = found.get("circuits-discovery", {}), found.get("interventions-benchmark", {})
    if not circuits or not bench:
        return None
    import io

    from mechinterp.plotting import plt

    report = found.get("selfreport-pipeline", {})
    panels = 3 if "heads" in report else 2
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 3.4))
    methods = ["activation", "attribution", "eap", "acdc", "weight_norm"]
    for i, task in enumerate(("induction", "ioi")):
        values = [circuits.get(f"{task}/{m}", {}).get("node_auc", float("nan")) for m in methods]
        axes[0].bar([j + 0.4 * i for j in range(len(methods))], values, 0.4, label=task)
    axes[0].set_xticks([j + 0.2 for j in range(len(methods))],
                       [m.replace("_", " ") for m in methods])
    axes[0].axhline(0.5, color="grey", lw=0.8, ls="--")
    axes[0].set_ylim(0, 1.05)
    axes[0].set_ylabel("ROC AUC vs planted circuit")
    axes[0].set_title("Circuit discovery (toy world)")
    axes[0].legend(loc="lower left")
    shown = [("toxicity-steer", "toxicity"), ("bias-ablate", "bias_gap"),
             ("fact-edit", "efficacy")]
    shown = [(n, m) for n, m in shown if n in bench]
    for i, when in enumerate(("before", "after")):
        axes[1].bar([j + 0.4 * i for j in range(len(shown))],
                    [bench[n][when][m] for n, m in shown], 0.4, label=when)
    axes[1].set_xticks([j + 0.2 for j in range(len(shown))],
                       [f"{m.replace('_', ' ')}\n({n})" for n, m in shown])
    axes[1].set_title("Interventions: before and after")
    axes[1].legend()
    if panels == 3:
        base = report.get("baselines", {})
        bars = [(f"self\n{h}", v["pearson_r"], "tab:blue") for h, v in report["heads"].items()]
        bars += [(label, base[key], "tab:gray") for key, label in (
            (f"cross/{report['best_head']}", "another\nmodel"), ("linear_probe", "linear\nprobe"),
            ("token_lookup", "token\nlookup"), ("mean", "mean")) if key in base]
        axes[2].bar(range(len(bars)), [b[1] for b in bars], color=[b[2] for b in bars])
        axes[2].set_xticks(range(len(bars)), [b[0] for b in bars], fontsize=8)
        axes[2].set_ylim(0, 1.05)
        axes[2].set_ylabel("Pearson r, held-out text")
        axes[2].set_title("Neuron self-report (toy world)")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()
