"""Shared fixtures: an isolated cache, tiny idx folders, small data sets."""

from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

# Set before any fixture runs (module- and session-scoped fixtures are created before
# function-scoped ones): every test run trains into its own empty cache, on the CPU, with
# the default profile, whatever the calling shell has set. The workers of one `pytest -n`
# run share that cache (its file locks make a model train once, not once per worker).
_run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
if _run:
    _shared = Path(tempfile.gettempdir()) / f"mechinterp-tests-{_run}"
    _shared.mkdir(exist_ok=True)
    os.environ["MECHINTERP_CACHE"] = str(_shared)
else:
    os.environ["MECHINTERP_CACHE"] = tempfile.mkdtemp(prefix="mechinterp-tests-")
os.environ["MECHINTERP_DEVICE"] = "cpu"
os.environ["MECHINTERP_PROGRESS"] = "0"
os.environ["OMP_NUM_THREADS"] = "1"
for _name in ("MECHINTERP_DATA", "MECHINTERP_PROFILE", "MECHINTERP_RESULTS", "MECHINTERP_OFFLINE"):
    os.environ.pop(_name, None)


def write_idx(path: Path, array: np.ndarray, gz: bool = True) -> Path:
    """Write ``array`` (uint8) as an idx file, gzipped when ``gz``."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)
    return path


def make_idx_folder(folder: Path, n_train: int = 60, n_test: int = 20, n_classes: int = 3,
                    gz: bool = True, seed: int = 0) -> Path:
    """A tiny MNIST-format folder with an official train/test split."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8) % n_classes
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images, gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, gz)
    return folder


@pytest.fixture
def idx_folder(tmp_path) -> Path:
    """A gzipped idx folder with classes 0-2."""
    return make_idx_folder(tmp_path / "idx")


@pytest.fixture(scope="session")
def digits_5k():
    """The real mnist-5k data (quick profile split), loaded once per session."""
    from mechinterp.data import load_digits

    return load_digits("mnist-5k", device="cpu")
