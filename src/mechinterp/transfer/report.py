"""Tables and figures shared by the transfer tutorials."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from mechinterp.reporting import markdown_table
from mechinterp.train import predict
from mechinterp.transfer.protocol import SEED_RESULTS

__all__ = ["prediction_profile", "plot_prediction_profile", "summary_table", "plot_tradeoff"]


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


def summary_table(summary: Sequence[dict[str, Any]]) -> str:
    """Markdown: mean (std) of the metrics per method and pair, with the seed's numbers."""
    rows = []
    for s in summary:
        seed = SEED_RESULTS.get(s["method"], {})
        rows.append({
            "method": s["method"], "pair": s["pair"],
            "transfer": f"{s['transfer_mean']:.1%} ({s['transfer_std']:.1%})",
            "preservation": f"{s['preservation_mean']:.1%} ({s['preservation_std']:.1%})",
            "specificity": f"{s['specificity_mean']:.1%} ({s['specificity_std']:.1%})",
            "images": s["concept_images_used"], "changes": s["changes"],
            "seed project": (f"{seed['transfer']:.1%} / {seed['preservation']:.1%}"
                             if "transfer" in seed else "n/a"),
        })
    return markdown_table(rows, ["method", "pair", "transfer", "preservation",
                                 "specificity", "images", "changes", "seed project"])


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
