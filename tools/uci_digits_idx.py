"""Write the UCI handwritten digits that scikit-learn ships as an MNIST-format idx folder.

A second, independent digit data set that any offline machine has, for checking that a result
holds on "any MNIST-format idx folder given as ``--source``" and not only on MNIST: 1,797
scans of 8x8 pixels with 17 grey levels (other writers, other scanner, other preprocessing
than MNIST). Each image is scaled to 20x20 (bilinear) and centred in a 28x28 frame, as MNIST's
digits are, and its grey levels are stretched to 0-255; a stratified fifth of every class
(seeded) is the test split (``t10k-*``), the rest the training split.

    python tools/uci_digits_idx.py OUT_FOLDER
    mechinterp symbiote --digit 3 --source OUT_FOLDER --json

Needs scikit-learn (``pip install scikit-learn``).
"""

from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

TEST_SHARE = 0.2
SEED = 0


def _write_idx(path: Path, array: np.ndarray) -> None:
    """An idx file of unsigned bytes: images ``(n, 28, 28)`` or labels ``(n,)``."""
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def uci_digits() -> tuple[np.ndarray, np.ndarray]:
    """The images ``(1797, 28, 28)`` uint8 and labels ``(1797,)``."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        sys.exit("this tool needs scikit-learn: pip install scikit-learn")
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    x = F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False)
    x = F.pad(x, (4, 4, 4, 4)).clamp(0, 1)[:, 0]
    return (x * 255).round().to(torch.uint8).numpy(), digits.target.astype(np.uint8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write the four idx files into")
    args = parser.parse_args(argv)
    images, labels = uci_digits()
    rng = np.random.default_rng(SEED)
    test = np.zeros(len(labels), dtype=bool)
    for digit in range(10):
        members = np.flatnonzero(labels == digit)
        test[rng.choice(members, int(len(members) * TEST_SHARE), replace=False)] = True
    args.out.mkdir(parents=True, exist_ok=True)
    for prefix, chosen in (("train", ~test), ("t10k", test)):
        _write_idx(args.out / f"{prefix}-images-idx3-ubyte", images[chosen])
        _write_idx(args.out / f"{prefix}-labels-idx1-ubyte", labels[chosen])
    print(f"{args.out}: {int((~test).sum())} training and {int(test.sum())} test images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
