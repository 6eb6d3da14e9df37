"""Result records: metrics with their provenance, as JSON files.

A tutorial ends by calling :func:`write_result`. The record carries the metrics and what is
needed to trust or reproduce them: seeds, profile, data source, package versions, the git
commit, the device and the wall time. The home page's key results (:mod:`mechinterp.dashboard`)
and the results page (:mod:`mechinterp.leaderboards`) are generated from these files at build
time; nothing on them is typed by hand.

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

__all__ = ["results_dir", "record_path", "write_result", "load_results", "provenance"]

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
    path = record_path(name)
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True))
    return path


def record_path(name: str, profile: str | None = None) -> Path:
    """Where the record ``name`` of ``profile`` (default: the current one) is kept."""
    return results_dir() / (profile or get_profile().name) / f"{name}.json"


def load_results(folder: Path | None = None, profile: str | None = None
                 ) -> list[dict[str, Any]]:
    """Every record under ``folder`` (default :func:`results_dir`), sorted by profile and name.

    Args:
        folder: where the records are.
        profile: only this profile's records (default: every profile's).

    Unreadable files are skipped, so a half-written foreign file cannot break the site.
    """
    folder = folder or results_dir()
    records = []
    for path in sorted(folder.glob(f"{profile or '*'}/*.json")):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return sorted(records, key=lambda r: (r.get("profile", ""), r.get("name", "")))
