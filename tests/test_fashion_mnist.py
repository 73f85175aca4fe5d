"""Fashion-MNIST loader: shapes, labels, plain and gzip IDX files, and clear errors."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from spikestream.data import FashionMNISTError, data_locations, load_fashion_mnist
from spikestream.data.fashion_mnist import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_SPLITS,
    FASHION_MNIST_VARIABLE,
    find_fashion_mnist,
    read_idx,
)
from spikestream.errors import InputError

installed = pytest.mark.skipif(find_fashion_mnist() is None,
                               reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")


def _idx(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file: magic 0x00 0x00 0x08 rank, big-endian sizes, then the values."""
    return bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def _write_split(folder, prefix: str, images: np.ndarray, labels: np.ndarray, compress: bool) -> None:
    for kind, array, rank in (("images", images, 3), ("labels", labels, 1)):
        name = f"{prefix}-{kind}-idx{rank}-ubyte"
        data = _idx(array.astype(np.uint8))
        if compress:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)


@pytest.fixture
def tiny_dataset(tmp_path, monkeypatch):
    """A stand-in data set in $SPIKESTREAM_FASHION_MNIST: plain train files, gzip test files."""
    rng = np.random.default_rng(0)
    splits = {}
    for prefix, count, compress in (("train", 5, False), ("t10k", 3, True)):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, count, dtype=np.uint8)
        _write_split(tmp_path, prefix, images, labels, compress)
        splits[prefix] = (images, labels)
    monkeypatch.setenv(FASHION_MNIST_VARIABLE, str(tmp_path))
    return tmp_path, splits


@installed
@pytest.mark.parametrize("split", ["train", "test"])
def test_installed_splits_have_the_published_shapes(split):
    images, labels = load_fashion_mnist(split)
    assert images.shape == (FASHION_MNIST_SPLITS[split], 28, 28) and images.dtype == np.uint8
    assert labels.shape == (FASHION_MNIST_SPLITS[split],) and labels.dtype == np.int64
    assert np.array_equal(np.bincount(labels), np.full(10, FASHION_MNIST_SPLITS[split] // 10))  # balanced
    assert images.flags.writeable and images.max() == 255 and images.min() == 0
    if split == "train":
        assert labels[:5].tolist() == [9, 0, 0, 3, 0]  # ankle boot, T-shirt, T-shirt, dress, T-shirt
        assert FASHION_MNIST_CLASSES[labels[0]] == "Ankle boot"


def test_plain_and_gzip_files_from_the_environment_folder(tiny_dataset):
    folder, splits = tiny_dataset
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = load_fashion_mnist(split)
        assert np.array_equal(images, splits[prefix][0])
        assert np.array_equal(labels, splits[prefix][1].astype(np.int64))
    assert find_fashion_mnist() == folder
    assert data_locations()["fashion-mnist"] == str(folder)


def test_missing_data_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv(FASHION_MNIST_VARIABLE, str(tmp_path / "nowhere"))
    with pytest.raises(FashionMNISTError) as error:
        load_fashion_mnist("test")
    message = str(error.value)
    assert isinstance(error.value, InputError) and "\n" not in message
    assert "apt-get install dataset-fashion-mnist" in message and FASHION_MNIST_VARIABLE in message
    assert find_fashion_mnist() is None and data_locations()["fashion-mnist"] == "missing"


def test_unknown_split_is_a_clear_error():
    with pytest.raises(FashionMNISTError, match="'train' or 'test', not 'validation'"):
        load_fashion_mnist("validation")


@pytest.mark.parametrize("damage", ["truncated gzip", "truncated values", "wrong magic", "labels too large",
                                    "count mismatch"])
def test_damaged_files_are_named(tiny_dataset, damage):
    folder, splits = tiny_dataset
    images, labels = splits["t10k"]
    image_file, label_file = folder / "t10k-images-idx3-ubyte.gz", folder / "t10k-labels-idx1-ubyte.gz"
    if damage == "truncated gzip":
        image_file.write_bytes(image_file.read_bytes()[:40])
    elif damage == "truncated values":
        image_file.write_bytes(gzip.compress(_idx(images)[:-10]))
    elif damage == "wrong magic":
        image_file.write_bytes(gzip.compress(b"\x00\x00\x0d\x03" + _idx(images)[4:]))
    elif damage == "labels too large":
        label_file.write_bytes(gzip.compress(_idx(labels + 20)))
    else:
        label_file.write_bytes(gzip.compress(_idx(labels[:2])))
    with pytest.raises(FashionMNISTError) as error:
        load_fashion_mnist("test")
    assert "\n" not in str(error.value)
    assert str(folder) in str(error.value)


def test_read_idx_keeps_any_rank(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a.idx").write_bytes(_idx(array))
    assert np.array_equal(read_idx(tmp_path / "a.idx"), array)
