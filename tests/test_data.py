import gzip
import time

import numpy as np
import pytest
import torch
from conftest import make_idx_folder, write_idx

from mechinterp.data import load_digits, parse_classes, read_idx, stratified_split
from mechinterp.errors import DataError, DataUnavailableError


def test_mnist_5k_shapes_and_stratified_split(digits_5k):
    data = digits_5k
    assert data.classes == tuple(range(10))
    assert data.train_images.shape == (4000, 1, 28, 28)
    assert data.test_images.shape == (1000, 1, 28, 28)
    assert data.train_images.dtype == torch.float32
    assert 0.0 <= data.train_images.min() and data.train_images.max() <= 1.0
    # 500 images per digit, 20% held out per class
    assert torch.bincount(data.test_labels).tolist() == [100] * 10
    assert torch.bincount(data.train_labels).tolist() == [400] * 10


def test_split_is_deterministic_and_disjoint():
    labels = np.repeat(np.arange(4), 25)
    a = stratified_split(labels, 0.2, seed=3)
    b = stratified_split(labels, 0.2, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not set(a[0]) & set(a[1])
    assert len(a[0]) + len(a[1]) == 100
    c = stratified_split(labels, 0.2, seed=4)
    assert not np.array_equal(a[1], c[1])


def test_subset_keeps_original_labels(digits_5k):
    sub = digits_5k.subset("2-5")
    assert sub.classes == (2, 3, 4, 5)
    assert set(sub.train_labels.unique().tolist()) == {2, 3, 4, 5}
    assert sub.n_test == 400


def test_validation_split_is_carved_from_training_only(digits_5k):
    val = digits_5k.validation_split()
    assert val.n_test == round(0.2 * digits_5k.n_train)
    assert val.n_train + val.n_test == digits_5k.n_train
    assert val.source != digits_5k.source  # its checkpoints are cached apart
    def rows(images):
        return {row.numpy().tobytes() for row in images.flatten(1)}

    validation = rows(val.test_images)
    assert validation <= rows(digits_5k.train_images)  # carved from the training images
    assert not validation & rows(val.train_images)  # and taken out of them
    assert not validation & rows(digits_5k.test_images)  # never a test image
    again = digits_5k.validation_split()
    assert torch.equal(again.test_labels, val.test_labels)  # one fixed carve
    with pytest.raises(DataError, match="share"):
        digits_5k.validation_split(share=1.0)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("0-3", (0, 1, 2, 3)), ("0,2,5", (0, 2, 5)), ("0-2,7", (0, 1, 2, 7)), (4, (4,)),
     ([3, 1], (1, 3))],
)
def test_parse_classes(spec, expected):
    assert parse_classes(spec, available=tuple(range(10))) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [("0-12", r"\[10, 11, 12\] are not in this data set"), ("a-b", "cannot read class list"),
     ("5-2", "runs backwards"), ("", "names no classes")],
)
def test_parse_classes_errors(spec, message):
    with pytest.raises(DataError, match=message):
        parse_classes(spec, available=tuple(range(10)))


def test_idx_folder_gz_and_plain(tmp_path):
    for gz in (True, False):
        folder = make_idx_folder(tmp_path / f"idx-{gz}", gz=gz)
        data = load_digits(str(folder), device="cpu")
        assert data.n_train == 60 and data.n_test == 20
        assert data.classes == (0, 1, 2)


def test_idx_folder_with_single_pair_gets_a_split(tmp_path):
    folder = tmp_path / "single"
    folder.mkdir()
    rng = np.random.default_rng(0)
    write_idx(folder / "images-idx3-ubyte", rng.integers(0, 255, (50, 28, 28), dtype=np.uint8))
    write_idx(folder / "labels-idx1-ubyte", (np.arange(50) % 5).astype(np.uint8))
    data = load_digits(str(folder), device="cpu", test_fraction=0.2)
    assert data.n_test == 10 and data.n_train == 40


def test_unknown_source_names_the_choices():
    with pytest.raises(DataError, match=r"unknown data source 'mnist-6k'.*mnist-5k"):
        load_digits("mnist-6k")


def test_folder_without_idx_files(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(DataError, match="holds no MNIST-format idx files"):
        load_digits(str(tmp_path))


def test_corrupt_idx_file_is_named(tmp_path):
    folder = make_idx_folder(tmp_path / "idx", gz=False)
    target = folder / "train-images-idx3-ubyte"
    target.write_bytes(target.read_bytes()[:-100])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.*corrupt or truncated"):
        load_digits(str(folder))


def test_bad_magic_and_bad_gzip(tmp_path):
    bad = tmp_path / "x-idx3-ubyte"
    bad.write_bytes(b"PK\x03\x04whatever")
    with pytest.raises(DataError, match="not an idx file"):
        read_idx(bad)
    broken = tmp_path / "y-idx3-ubyte.gz"
    broken.write_bytes(gzip.compress(b"\x00\x00\x08\x03" + b"\x00" * 20)[:-8])
    with pytest.raises(DataError, match="cannot read idx file"):
        read_idx(broken)


def test_classes_missing_from_idx_folder(idx_folder):
    with pytest.raises(DataError, match=r"\[3, 4\] are not in this data set"):
        load_digits(str(idx_folder), classes="0-4")


def test_offline_full_mnist_fails_fast_with_advice(monkeypatch):
    monkeypatch.setenv("MECHINTERP_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(DataUnavailableError, match="mnist-5k"):
        load_digits("mnist")
    assert time.perf_counter() - started < 10


def test_the_uci_digits_tool_writes_an_idx_folder_that_loads_as_a_source(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    tool = Path(__file__).resolve().parents[1] / "tools" / "uci_digits_idx.py"
    subprocess.run([sys.executable, str(tool), str(tmp_path / "uci")], check=True,
                   capture_output=True)
    data = load_digits(str(tmp_path / "uci"), device="cpu")
    assert data.classes == tuple(range(10)) and (data.n_train, data.n_test) == (1442, 355)
    assert data.train_images.shape[1:] == data.test_images.shape[1:]
    assert data.test_labels.bincount().min() >= 34  # a fifth of every class is held out
