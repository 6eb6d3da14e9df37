"""Figures shared by the tutorials. Functions return a matplotlib ``Figure``; they never show it.

The Agg backend is selected when no display is available, so the same code works in a plain
script, in a notebook and during the site build.
"""

from __future__ import annotations

import os

import matplotlib

if not os.environ.get("DISPLAY") and "inline" not in matplotlib.get_backend():
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["heatmap", "image_grid"]


def _as_numpy(values: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().float().numpy()
    return np.asarray(values, dtype=float)


def heatmap(
    values: torch.Tensor | np.ndarray,
    *,
    row_labels: list[str] | None = None,
    col_labels: list[str] | None = None,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    cmap: str = "RdBu_r",
    center: float | None = 0.0,
    colorbar_label: str = "",
    annotate: bool = False,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """A labelled heatmap of a ``(rows, cols)`` array.

    Args:
        values: the matrix to draw.
        row_labels: tick labels for rows; default: indices.
        col_labels: tick labels for columns; default: indices.
        title: figure title.
        xlabel: x-axis label.
        ylabel: y-axis label.
        cmap: matplotlib colour map.
        center: value mapped to the middle of the colour map (``None`` for min-max scaling).
        colorbar_label: label of the colour bar.
        annotate: write each value in its cell.
        figsize: figure size in inches.
    """
    data = _as_numpy(values)
    if data.ndim != 2:
        raise ValueError(f"heatmap needs a 2-D array, got shape {data.shape}")
    rows, cols = data.shape
    fig, ax = plt.subplots(figsize=figsize or (min(1.0 + 0.45 * cols, 14), 1.2 + 0.4 * rows))
    kwargs = {}
    if center is not None:
        span = float(np.nanmax(np.abs(data - center))) or 1.0
        kwargs = {"vmin": center - span, "vmax": center + span}
    im = ax.imshow(data, cmap=cmap, aspect="auto", **kwargs)
    ax.set_xticks(range(cols), col_labels or [str(i) for i in range(cols)])
    ax.set_yticks(range(rows), row_labels or [str(i) for i in range(rows)])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if annotate:
        for r in range(rows):
            for c in range(cols):
                ax.text(c, r, f"{data[r, c]:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, label=colorbar_label, fraction=0.046, pad=0.02)
    fig.tight_layout()
    return fig


def image_grid(
    images: torch.Tensor | np.ndarray,
    *,
    titles: list[str] | None = None,
    ncols: int = 8,
    cmap: str = "viridis",
    suptitle: str = "",
    size: float = 1.3,
) -> Figure:
    """Draw ``(n, height, width)`` images in a grid (for feature maps or digits)."""
    data = _as_numpy(images)
    if data.ndim == 4 and data.shape[1] == 1:
        data = data[:, 0]
    if data.ndim != 3:
        raise ValueError(f"image_grid needs (n, height, width) images, got shape {data.shape}")
    n = data.shape[0]
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.4),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(data[i], cmap=cmap)
            if titles:
                ax.set_title(titles[i], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig
