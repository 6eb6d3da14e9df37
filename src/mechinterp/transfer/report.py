"""Tables and figures shared by the transfer tutorials."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from mechinterp.reporting import markdown_table
from mechinterp.train import predict
from mechinterp.transfer.protocol import SEED_RESULTS

__all__ = [
    "prediction_profile",
    "plot_prediction_profile",
    "summary_table",
    "plot_import_frontier",
    "injection_effect",
    "show_injection_effect",
    "plot_tradeoff",
    "plot_budget_curve",
    "MethodStudy",
    "method_study",
]


@torch.no_grad()
def prediction_profile(model: torch.nn.Module, data) -> np.ndarray:
    """``(10, 10)``: share of each true digit's test images given each answer."""
    preds = predict(model, data.test_images).cpu()
    labels = data.test_labels.cpu()
    out = np.zeros((10, 10))
    for digit in labels.unique().tolist():
        row = preds[labels == digit]
        out[digit] = np.bincount(row.numpy(), minlength=10)[:10] / len(row)
    return out


def plot_prediction_profile(before: np.ndarray, after: np.ndarray, concept: int,
                            title: str) -> Figure:
    """Two heatmaps side by side: the recipient's answers before and after the edit."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    for ax, matrix, name in ((axes[0], before, "recipient A"), (axes[1], after, "edited A")):
        im = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(10))
        ax.set_yticks(range(10))
        ax.set_xlabel("answer")
        ax.set_ylabel("true digit")
        ax.set_title(name)
        ax.axvline(concept, color="crimson", lw=0.8, ls="--")
        ax.axhline(concept, color="crimson", lw=0.8, ls="--")
    fig.colorbar(im, ax=axes, fraction=0.025, label="share of the digit's test images")
    fig.suptitle(title)
    return fig


def _seed_cell(seed: dict[str, Any]) -> str:
    """``transfer / preservation [/ specificity] (pair kind)`` as the seed project reported."""
    if "transfer" not in seed:
        return "n/a"
    parts = [f"{seed[k]:.1%}" for k in ("transfer", "preservation", "specificity") if k in seed]
    return " / ".join(parts) + f" ({seed['pair']})"


def summary_table(summary: Sequence[dict[str, Any]],
                  zero_budget: Sequence[dict[str, Any]] | None = None) -> str:
    """Markdown: mean (std) of the metrics per method and pair, what each edit imports
    (entries added, entries of A changed, entries of B taking part in the output, whether B
    runs: :mod:`mechinterp.transfer.imports`), with the seed's numbers. With ``zero_budget``
    (the same summary for runs at a concept budget of 0), a column gives each method's
    transfer without a single concept image ("-" where the method used none anyway)."""
    zero = {(z["method"], z["pair"]): z for z in zero_budget or []}
    rows = []
    for s in summary:
        seed = SEED_RESULTS.get(s["method"], {})
        z = zero.get((s["method"], s["pair"]))
        changes = s["changes"] + (" (teaches the specificity digit)"
                                  if s.get("teaches_specificity") else "")
        rows.append({
            "method": s["method"], "pair": s["pair"],
            "transfer": f"{s['transfer_mean']:.1%} ({s['transfer_std']:.1%})",
            "at 0 images": f"{z['transfer_mean']:.1%} ({z['transfer_std']:.1%})" if z else "-",
            "preservation": f"{s['preservation_mean']:.1%} ({s['preservation_std']:.1%})",
            "specificity": f"{s['specificity_mean']:.1%} ({s['specificity_std']:.1%})",
            "images": s["concept_images_used"], "changes": changes,
            "added": f"{s['params_added']:,}", "A changed": f"{s['params_changed']:,}",
            "from B": f"{s['donor_params_executed']:,}",
            "B runs": "yes" if s["donor_at_inference"] else "no",
            "seed project": _seed_cell(seed),
        })
    columns = ["method", "pair", "transfer"] + (["at 0 images"] if zero_budget else []) + [
        "preservation", "specificity", "images", "changes", "added", "A changed", "from B",
        "B runs", "seed project"]
    return markdown_table(rows, columns)


def plot_budget_curve(curve: dict[str, Sequence[Sequence[float]]], title: str) -> Figure:
    """Transfer against the number of concept images used, one line per method.

    Args:
        curve: ``{method: [(images used, mean transfer, std over seeds), ...]}``.
        title: the figure's title.
    """
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for method, points in curve.items():
        ax.errorbar([p[0] for p in points], [p[1] for p in points],
                    yerr=[p[2] for p in points], marker="o", capsize=3, label=method)
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("concept images used (symmetric log scale, from 0)")
    ax.set_ylabel("transfer")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_tradeoff(summary: Sequence[dict[str, Any]], title: str) -> Figure:
    """Transfer against preservation, one point per (method, pair), seed numbers as crosses.

    Circles are same-architecture pairs, squares cross-architecture pairs; error bars are one
    standard deviation over seeds. Grey crosses mark the seed project's reports, labelled with
    the method's number.
    """
    from mechinterp.transfer.registry import get_method

    fig, ax = plt.subplots(figsize=(10, 5.5))
    methods = list(dict.fromkeys(s["method"] for s in summary))
    colours = plt.get_cmap("tab20")(np.linspace(0, 1, max(len(methods), 2)))
    markers = {"same": "o", "cross": "s"}
    for s in summary:
        colour = colours[methods.index(s["method"])]
        first = s is next(r for r in summary if r["method"] == s["method"])
        ax.errorbar(s["preservation_mean"], s["transfer_mean"], xerr=s["preservation_std"],
                    yerr=s["transfer_std"], fmt=markers[s["pair_kind"]], ms=6, capsize=2,
                    color=colour, label=s["method"] if first else None)
    for name, seed in SEED_RESULTS.items():
        if "transfer" in seed:
            ax.plot(seed["preservation"], seed["transfer"], "x", color="gray", ms=7)
            ax.annotate(str(get_method(name).number), (seed["preservation"], seed["transfer"]),
                        fontsize=7, color="gray", textcoords="offset points", xytext=(4, 2))
    ax.set_xlabel("preservation (accuracy on the recipient's digits)")
    ax.set_ylabel("transfer (concept images recognised)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
              title="circle: same pair, square: cross", title_fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_import_frontier(summary: Sequence[dict[str, Any]], title: str) -> Figure:
    """Transfer (left) and preservation (right) against the entries of the donor B that take
    part in the edited model's output (symmetric log scale: 0 is no import at inference).

    One point per (method, pair): circles same-architecture pairs, squares cross-architecture
    pairs; filled where B runs inside the edited model. Error bars: one standard deviation
    over seeds.
    """
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharex=True)
    kinds = sorted({s["kind"] for s in summary})
    colours = dict(zip(kinds, plt.get_cmap("tab10")(np.arange(len(kinds))), strict=True))
    markers = {"same": "o", "cross": "s"}
    for ax, metric in zip(axes, ("transfer", "preservation"), strict=True):
        for s in summary:
            colour = colours[s["kind"]]
            ax.errorbar(s["donor_params_executed"], s[f"{metric}_mean"],
                        yerr=s[f"{metric}_std"], fmt=markers[s["pair_kind"]], ms=6, capsize=2,
                        color=colour, mfc=colour if s["donor_at_inference"] else "white")
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlabel("entries of B taking part in the output (0: none)")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    for kind, colour in colours.items():
        axes[0].plot([], [], "o", color=colour, label=kind)
    axes[0].legend(fontsize=8, title="filled: B runs at inference", title_fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_config_sweep(rows: Sequence[dict[str, Any]], field: str, chosen: int, xlabel: str,
                      title: str) -> Figure:
    """Validation score (which chooses), test transfer and test preservation against one SAE
    setting (``field`` of each row), with the chosen value marked."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    xs = [r[field] for r in rows]
    for key, style, label in [("validation score", "o-", "validation score (chooses)"),
                              ("transfer", "s--", "test transfer"),
                              ("preservation", "^--", "test preservation")]:
        ax.plot(xs, [r[key] for r in rows], style, label=label)
    ax.axvline(chosen, color="gray", ls=":", label="chosen")
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


@dataclass
class MethodStudy:
    """One method's runs on the leaderboard pairs, summarised, for its tutorial page.

    Attributes:
        method: registry name.
        title: the method's title.
        summary: ``{"A <- B": summary row}`` for every pair the method handles.
        data: the data set the runs used.
    """

    method: str
    title: str
    summary: dict[str, dict[str, Any]]
    data: Any

    @property
    def same(self) -> dict[str, Any] | None:
        """The same-architecture pair's row (MegaNN <- MegaNN), if run."""
        return next((s for s in self.summary.values() if s["pair_kind"] == "same"), None)

    @property
    def cross(self) -> dict[str, Any] | None:
        """The cross-architecture pair's row, if the method handles it."""
        return next((s for s in self.summary.values() if s["pair_kind"] == "cross"), None)

    def prediction_figure(self, seed: int = 0) -> Figure:
        """What the recipient answers before and after the edit, on the first pair, one seed."""
        from mechinterp.transfer.context import model_pair
        from mechinterp.transfer.registry import apply_method

        first = next(iter(self.summary.values()))
        a, b = first["pair"].split(" <- ")
        pair = model_pair(a, b, seed=seed, data=self.data)
        edited, _ = apply_method(self.method, pair)
        return plot_prediction_profile(prediction_profile(pair.recipient.model, self.data),
                                       prediction_profile(edited, self.data),
                                       pair.protocol.concept,
                                       f"{self.title}: {a} receives from {b}, seed {seed}")

    def write_record(self, started: float) -> Path:
        """Write the result record of the method's page."""
        from mechinterp.config import get_profile
        from mechinterp.results import write_result

        return write_result(
            f"transfer-{self.method}",
            {f"{name}.{key}": value for name, s in self.summary.items()
             for key, value in s.items() if isinstance(value, float)},
            seeds=list(get_profile().seeds), data_source=self.data.source,
            title=f"Concept transfer: {self.title}", started=started)


def method_study(method: str, *, show: bool = True) -> MethodStudy:
    """Run (or load) a method on the leaderboard pairs over the profile's seeds.

    With ``show``, prints what the method changes and displays the summary table.
    """
    from mechinterp.data import load_digits
    from mechinterp.reporting import show_markdown
    from mechinterp.transfer.leaderboard import run_grid, summarise_runs
    from mechinterp.transfer.registry import get_method

    spec = get_method(method)
    summary = {s["pair"]: s for s in summarise_runs(run_grid([method]))}
    study = MethodStudy(method, spec.title, summary, load_digits())
    if show:
        print(f"{spec.title}: changes {spec.changes}, handles {spec.requires} pairs")
        show_markdown(summary_table(list(summary.values())))
        for name, s in summary.items():
            print(f"{name}: recipient alone preserves {s['baseline_preservation_mean']:.1%}, "
                  f"donor alone recognises {s['donor_transfer_mean']:.1%} of the concept images")
    return study


def injection_effect(method: str, reference: str = "procrustes_probe",
                     pairs: Sequence[tuple[str, str]] | None = None,
                     seeds: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Measure what a feature injection (methods 9 and 10) adds to the method it is built on.

    For every pair and seed, both methods are applied to the same trained models and their
    test-split decisions compared. Returns one row per (pair, seed): ``changed`` (share of
    test images whose answer differs), ``changed_concept`` (the same on concept images) and
    ``relative_size`` (norm of ``strength * vector`` over the mean norm of A's features at the
    injected layer, on the test images).
    """
    from mechinterp.config import get_profile
    from mechinterp.data import load_digits
    from mechinterp.transfer.common import features
    from mechinterp.transfer.context import model_pair
    from mechinterp.transfer.leaderboard import DEFAULT_PAIRS
    from mechinterp.transfer.registry import ArchitectureMismatchError, apply_method

    data = load_digits()
    rows = []
    for a, b in pairs or DEFAULT_PAIRS:
        for seed in seeds if seeds is not None else get_profile().seeds:
            pair = model_pair(a, b, seed=seed, data=data)
            try:
                edited, _ = apply_method(method, pair)
            except ArchitectureMismatchError:
                continue
            base, _ = apply_method(reference, pair)
            ours, theirs = predict(edited, data.test_images), predict(base, data.test_images)
            concept = data.test_labels == pair.protocol.concept
            feats = features(edited.recipient, data.test_images, edited.hook)
            size = float(edited.strength * edited.vector.norm() / feats.norm(dim=1).mean())
            rows.append({"pair": f"{a} <- {b}", "seed": seed,
                         "changed": float((ours != theirs).float().mean()),
                         "changed_concept": float((ours != theirs)[concept].float().mean()),
                         "relative_size": size})
    return rows


INERT = 0.01
"""An injection that changes fewer than this share of test decisions is called inert."""


def show_injection_effect(method: str, why_inert: str) -> tuple[list[dict[str, Any]], bool]:
    """Display :func:`injection_effect` of ``method`` as a table and a verdict.

    Args:
        method: a feature-injection method (9 or 10).
        why_inert: the reason, shown when the injection changes fewer than :data:`INERT` of
            the decisions.

    Returns:
        The rows and whether the injection is inert.
    """
    from mechinterp.reporting import show_markdown

    effect = injection_effect(method)
    show_markdown(markdown_table(
        [{"pair": r["pair"], "seed": r["seed"], "decisions changed": f"{r['changed']:.2%}",
          "on concept images": f"{r['changed_concept']:.2%}",
          "injection / feature norm": f"{r['relative_size']:.3f}"} for r in effect],
        ["pair", "seed", "decisions changed", "on concept images", "injection / feature norm"]))
    changed = float(np.mean([r["changed"] for r in effect]))
    inert = changed < INERT
    show_markdown(
        f"Over pairs and seeds the injection changes {changed:.2%} of the test decisions. "
        + (f"It is inert: {why_inert}, so the edited model answers as method 2 does, and the "
           "transfer measured above is method 2's." if inert else
           "It changes decisions, so the difference from method 2 above is the injection's."))
    return effect, inert


def sweep_verdict(study: MethodStudy, rows: Sequence[dict[str, Any]], field: str,
                  chosen: int, unit: str, choice: str) -> str:
    """Markdown for a configuration-sweep method (SAE-free methods 3 and 4): what the
    held-out score picked on seed 0 against the best candidate on test images, and the method
    over every seed and pair against method 1 (fixed config) and fine-tuning.

    Args:
        study: the sweep method's :func:`method_study`.
        rows: :func:`~mechinterp.transfer.methods.sae_free.config_sweep`'s rows (seed 0).
        field: the swept config field (``"n_latents"``, ``"k"``).
        chosen: the value the held-out score picked.
        unit: how a value reads in prose (``"latents"``, ``"active latents"``).
        choice: what was chosen, in prose (``"the dictionary size"``).
    """
    from mechinterp.transfer.methods.sae_free import BASE_SAE

    summary = study.summary
    method1 = method_study("precomputed_vector_alignment", show=False).summary
    finetune = method_study("finetune_with_budget", show=False).summary

    def pct(key: str, source: dict[str, dict[str, Any]] = summary) -> str:
        return " and ".join(f"{source[name][key]:.1%}" for name in summary)

    picked = next(r for r in rows if r[field] == chosen)
    top = max(rows, key=lambda r: r["transfer"])
    lost = max(s["baseline_preservation_mean"] - s["preservation_mean"] for s in summary.values())
    diffs = [s["transfer_mean"] - method1[name]["transfer_mean"] for name, s in summary.items()]
    if max(diffs) <= 0.01:
        gain = "gains nothing here."
    else:
        gain = "helps on both pairs." if min(diffs) > 0.01 else "helps on one pair only."
    return (
        f"On seed 0 the held-out score picks {chosen} {unit}; on the test images that choice "
        f"transfers {picked['transfer']:.1%}"
        + (", the best of the candidates." if picked is top else
           f", where {top[field]} {unit} would have given {top['transfer']:.1%}: the held-out "
           "score and the test split rank the candidates differently.")
        + f" Over all seeds and both pairs ({' and '.join(summary)}) the method recognises "
        f"{pct('transfer_mean')} of the 4s, against {pct('transfer_mean', method1)} for method "
        f"1 with its fixed {getattr(BASE_SAE, field)} {unit}"
        f" ({' and '.join(f'{100 * d:+.1f}' for d in diffs)} points): choosing {choice} on "
        f"held-out training images {gain} It loses at most {100 * lost:.1f} points of accuracy "
        f"on A's own digits and calls {pct('specificity_mean')} of the 5s 4s (fine-tuning, "
        f"which never saw a 5 either: {pct('specificity_mean', finetune)}).")
