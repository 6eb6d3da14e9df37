"""Tables for tutorials: Markdown that renders as a table in a notebook and reads as text in a
plain script run.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["markdown_table", "mean_std", "mean_and_std", "show_markdown", "print_results"]


def _cell(value: Any, fmt: str | None) -> str:
    if value is None:
        return "n/a"
    if fmt is not None:
        return format(value, fmt)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def markdown_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | Mapping[str, str],
    formats: Mapping[str, str] | None = None,
) -> str:
    """A Markdown table of ``rows``.

    Args:
        rows: one mapping per row.
        columns: keys to show, or ``{key: header}`` to rename them.
        formats: ``{key: format spec}``, e.g. ``{"transfer": ".1%"}``.
    """
    headers = dict(columns) if isinstance(columns, Mapping) else {c: c for c in columns}
    formats = formats or {}
    lines = ["| " + " | ".join(headers.values()) + " |",
             "|" + "|".join(" --- " for _ in headers) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(k), formats.get(k)) for k in headers) + " |")
    return "\n".join(lines)


def mean_and_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard deviation over seeds: the sample standard deviation (``ddof=1``, the
    one every page reports), 0 for a single value.

    Raises:
        ValueError: no values.
    """
    if not values:
        raise ValueError("mean_and_std needs at least one value")
    mean = sum(values) / len(values)
    if len(values) == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def mean_std(summary: Mapping[str, Any], key: str, spec: str = ".3f", *,
             missing: str = "n/a") -> str:
    """``"mean ± std"`` of ``summary[key]`` and ``summary[key + "_std"]`` in one format spec
    (the std without a sign); the mean alone when there is no std, ``missing`` when there is
    no number."""
    value = summary.get(key)
    if not isinstance(value, numbers.Real):
        return missing
    std = summary.get(f"{key}_std")
    shown = format(value, spec)
    return shown if std is None else f"{shown} ± {format(std, spec.replace('+', ''))}"


def show_markdown(text: str) -> None:
    """Render Markdown in a notebook; print it in a plain script."""
    try:
        from IPython import get_ipython

        if get_ipython() is not None:
            from IPython.display import Markdown, display

            display(Markdown(text))
            return
    except ImportError:
        pass
    print(text)


def print_results(results: Sequence[Mapping[str, Any]], as_json: bool = False, *,
                  tag: Mapping[str, Any] | None = None, width: int = 28) -> None:
    """Print benchmark results: one JSON object per line (``tag``'s keys first) when
    ``as_json``, else ``key value`` lines with a blank line after each result."""
    import json

    for result in results:
        if as_json:
            print(json.dumps({**(tag or {}), **result}))
            continue
        for key, value in result.items():
            shown = f"{value:.4g}" if isinstance(value, float) else value
            print(f"{key:{width}s} {shown}")
        print()
