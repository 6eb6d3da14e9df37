"""Stored transfer runs: the seeds after the first come from a file shipped with the package.

The leaderboard, the variants page and several method pages run every method on two pairs
of architectures for each of the profile's seeds, under three data variants and two gates:
about 500 runs, each of which trains or loads its own A and B. That is most of the transfer
pages' share of a CPU site build. On the quick profile with the shipped MNIST subset the
results of every seed but :data:`VERIFY_SEEDS` are therefore read from a stored study
(``studies/quick-mnist-5k.json``, written by ``make transfer-study``); the runs of seed 0 are
computed in the build as before, and each is checked against its stored result: a stored
study that the code no longer reproduces fails the build (:class:`StaleStudyError`) with a
message to rewrite it. Any other profile, data source or protocol, a run the study does not
hold, or ``MECHINTERP_SEEDS_LIVE=1`` computes every seed in the build.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mechinterp.checkpoints import (
    atomic_write_text,
    checkpoint_key,
    first_differences,
    rounded_floats,
)
from mechinterp.config import cache_dir, get_profile
from mechinterp.errors import StaleStudyError

__all__ = ["VERIFY_SEEDS", "TOLERANCE", "STUDIES", "study_path", "stored_run", "check_run",
           "write_study", "StaleStudyError"]

VERIFY_SEEDS = (0,)
"""Seeds whose runs are computed in every build and checked against the stored study."""
TOLERANCE = 0.005
"""How far a recomputed rate may sit from its stored value (half a point: on one machine a run
reproduces exactly; the margin leaves room for another CPU's rounding)."""
STUDIES = Path(__file__).resolve().parent / "studies"
LIVE_ENV = "MECHINTERP_SEEDS_LIVE"
_IGNORED = ("seconds",)
"""Fields that may differ between two runs of the same code (wall-clock time)."""


def study_path(profile: str, data_source: str) -> Path:
    """The stored study of a profile and data source (it may not exist)."""
    return STUDIES / f"{profile}-{data_source}.json"


def _run_key(spec: dict[str, Any]) -> str:
    """The key of a run in a stored study: its spec without the code digest (a code change
    is caught by the check of the recomputed seeds, not by the key)."""
    return checkpoint_key({k: v for k, v in spec.items() if k != "code"})


_loaded: dict[Path, tuple[float, dict[str, Any]]] = {}


def _study(path: Path) -> dict[str, Any]:
    """The runs of a stored study (read once per file version)."""
    mtime = path.stat().st_mtime
    if path not in _loaded or _loaded[path][0] != mtime:
        _loaded[path] = (mtime, json.loads(path.read_text())["runs"])
    return _loaded[path][1]


def stored_run(spec: dict[str, Any]) -> dict[str, Any] | None:
    """The stored result of the run ``spec`` describes (the spec
    :func:`~mechinterp.transfer.leaderboard.cached_run` builds), or ``None`` when no stored
    study holds it or ``MECHINTERP_SEEDS_LIVE`` is set."""
    if os.environ.get(LIVE_ENV, "").strip() not in ("", "0"):
        return None
    path = study_path(spec["profile"], spec["data"])
    if not path.exists():
        return None
    return _study(path).get(_run_key(spec))


def _differences(live: Any, stored: Any, name: str) -> tuple[float, list[str]]:
    """The largest gap between two rates and the fields that differ beyond the tolerance."""
    if isinstance(stored, dict) and isinstance(live, dict):
        largest, differ = 0.0, []
        for key in sorted(set(live) | set(stored)):
            if key in _IGNORED:
                continue
            gap, bad = _differences(live.get(key), stored.get(key), f"{name}.{key}".lstrip("."))
            largest, differ = max(largest, gap), differ + bad
        return largest, differ
    if isinstance(stored, float) and isinstance(live, float):
        gap = abs(live - stored)
        return gap, ([f"{name}: stored {stored:.4f}, now {live:.4f}"] if gap > TOLERANCE
                     else [])
    return 0.0, ([] if live == stored else [f"{name}: stored {stored!r}, now {live!r}"])


def check_run(live: dict[str, Any], stored: dict[str, Any]) -> float:
    """The largest gap between a recomputed run's rates and its stored ones; counts, names
    and flags must be equal.

    Raises:
        StaleStudyError: a rate moved by more than :data:`TOLERANCE`, or anything else differs.
    """
    largest, differ = _differences(live, stored, "")
    if differ:
        shown = first_differences(differ)
        raise StaleStudyError(
            f"the stored transfer study does not reproduce {live.get('method')!r} on "
            f"{live.get('recipient_arch')} <- {live.get('donor_arch')}, seed "
            f"{live.get('seed')}, with this code: {shown}. Rewrite it with 'make "
            f"transfer-study' (about 20 minutes of one CPU core), or set {LIVE_ENV}=1 to "
            f"compute every seed in the build")
    return largest


def write_study(cache: Path, profile: str = "quick", data_source: str = "mnist-5k") -> Path:
    """Gather the runs in a cache folder's ``transfer-runs`` made by the current code for one
    profile and data source into the stored study; returns its path.

    Raises:
        StaleStudyError: the folder holds no such run (build the transfer pages into it
            with ``MECHINTERP_SEEDS_LIVE=1`` first, as ``make transfer-study`` does).
    """
    from mechinterp.transfer.leaderboard import code_digest  # noqa: PLC0415 (import cycle)

    code = code_digest()
    runs = {}
    for path in sorted((cache / "transfer-runs").glob("*.json")):
        entry = json.loads(path.read_text())
        spec = entry.get("spec") if isinstance(entry, dict) else None
        if (spec and spec.get("code") == code and spec.get("profile") == profile
                and spec.get("data") == data_source):
            runs[_run_key(spec)] = rounded_floats(entry["result"])
    if not runs:
        raise StaleStudyError(
            f"no transfer run of profile {profile!r} on {data_source!r} with this code under "
            f"{cache}; build the transfer pages into it with {LIVE_ENV}=1 first")
    path = study_path(profile, data_source)
    study = {"profile": profile, "data_source": data_source, "code": code,
             "runs": dict(sorted(runs.items()))}
    atomic_write_text(path, json.dumps(study, separators=(",", ":")) + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m mechinterp.transfer.study [--from-cache DIR]``: write the stored study of
    the active profile and data source (``MECHINTERP_PROFILE``, ``MECHINTERP_DATA``)."""
    parser = argparse.ArgumentParser(description=write_study.__doc__)
    parser.add_argument("--from-cache", type=Path, default=None,
                        help="the cache folder the runs were made in (default: the active one)")
    args = parser.parse_args(argv)
    profile = get_profile()
    path = write_study(args.from_cache or cache_dir(), profile.name, profile.data_source)
    print(f"{path}: {len(json.loads(path.read_text())['runs'])} runs", flush=True)


if __name__ == "__main__":
    main()
