"""A content-addressed checkpoint cache: safetensors weights plus a JSON sidecar.

An entry is keyed by a hash of everything that produced it (architecture, classes, data
source, profile, seed, training config, code version). Both files are written to temporary
names and moved into place, the sidecar last, so an interrupted write never leaves an entry that
looks complete. An entry that fails to load (missing file, bad JSON, wrong key, tensors that do
not fit the model) is reported with a warning and treated as a miss, never loaded. No pickle
is involved anywhere, so loading a checkpoint cannot run code.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from mechinterp.config import cache_dir

__all__ = [
    "cache_lock",
    "checkpoint_key",
    "source_digest",
    "checkpoint_paths",
    "save_checkpoint",
    "load_checkpoint",
    "atomic_write_text",
    "rounded_floats",
    "first_differences",
    "CACHE_FORMAT",
]

CACHE_FORMAT = 1


def checkpoint_key(spec: dict[str, Any]) -> str:
    """A short stable hash of a JSON-serialisable description of a training run."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


def source_digest(*modules: str) -> str:
    """A hash of the source files of some ``mechinterp`` modules (e.g. ``"models", "train"``).

    Put in a cache key, it makes a code change that could alter the trained weights retrain
    instead of silently loading weights produced by the old code.
    """
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for module in sorted(modules):
        path = root / (module.replace(".", "/") + ".py")
        digest.update(module.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def cache_lock(kind: str, key: str, root: Path | None = None) -> Iterator[None]:
    """Hold an exclusive lock on one cache entry while it is looked up or built.

    Two processes that need the same entry (two tutorials running side by side) then build it
    once: the second waits and finds the finished entry. Where ``fcntl`` is missing (Windows)
    the lock is a no-op and both build it, which atomic writes keep safe.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    folder = (root or cache_dir()) / "locks" / kind
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{key}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def checkpoint_paths(kind: str, key: str, root: Path | None = None) -> tuple[Path, Path]:
    """``(weights, sidecar)`` paths of a cache entry under ``root/checkpoints/kind``."""
    folder = (root or cache_dir()) / "checkpoints" / kind
    return folder / f"{key}.safetensors", folder / f"{key}.json"


def atomic_write_text(path: Path, text: str) -> None:
    """Write a text file so that readers see either the old or the complete new content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(
    tensors: dict[str, torch.Tensor], meta: dict[str, Any], weights: Path, sidecar: Path
) -> None:
    """Atomically store tensors and their metadata (the sidecar is written last)."""
    weights.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=weights.parent, prefix=f".{weights.name}.", suffix=".tmp")
    os.close(fd)
    try:
        contiguous = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
        save_file(contiguous, tmp)
        os.replace(tmp, weights)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    record = {"format": CACHE_FORMAT, **meta}
    atomic_write_text(sidecar, json.dumps(record, indent=2, sort_keys=True, default=str))


def load_checkpoint(
    weights: Path,
    sidecar: Path,
    expected_key: str,
    expected_shapes: dict[str, tuple[int, ...]] | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """Load a cache entry, or return ``None`` (with a warning if it exists but is bad).

    Args:
        weights: the safetensors file.
        sidecar: the JSON metadata file.
        expected_key: the key the sidecar must carry.
        expected_shapes: when given, the tensors must have exactly these names and shapes.
    """
    if not sidecar.exists() and not weights.exists():
        return None
    problem = None
    try:
        meta = json.loads(sidecar.read_text())
        if meta.get("key") != expected_key or meta.get("format") != CACHE_FORMAT:
            problem = "its key or format does not match"
        else:
            tensors = load_file(str(weights))
            if expected_shapes is not None:
                got = {k: tuple(v.shape) for k, v in tensors.items()}
                if got != {k: tuple(v) for k, v in expected_shapes.items()}:
                    problem = "its tensors do not fit the model"
    except Exception as exc:  # safetensors, json and the OS raise different types
        problem = f"it cannot be read ({type(exc).__name__}: {exc})"
    if problem:
        warnings.warn(
            f"ignoring checkpoint {weights.name} because {problem}; it will be rebuilt",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return tensors, meta


def rounded_floats(value: Any, digits: int = 7) -> Any:
    """``value`` with every float in it (through dicts and lists) rounded to ``digits``
    decimals: stored results stay small, and 7 decimals lie far below one image in 60,000."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: rounded_floats(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded_floats(v, digits) for v in value]
    return value


def first_differences(differ: list[str], shown: int = 5) -> str:
    """The first ``shown`` of a list of differences, and how many more there are."""
    more = len(differ) - shown
    return "; ".join(differ[:shown]) + (f" (and {more} more)" if more > 0 else "")
