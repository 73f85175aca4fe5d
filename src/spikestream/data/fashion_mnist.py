"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 70,000 grey 28x28 images of 10 clothing classes.

The four IDX files come from the Debian package ``dataset-fashion-mnist``, which puts them in
``/usr/share/datasets/fashion-mnist/`` (gzip-compressed); ``$SPIKESTREAM_FASHION_MNIST`` points to
another folder holding the same four files, compressed or not. Nothing is downloaded here.

IDX format (LeCun's MNIST page): a big-endian header ``0x00 0x00 <type> <rank>``, then ``rank``
big-endian uint32 sizes, then the values in C order; type ``0x08`` is unsigned bytes.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from spikestream.data import sources
from spikestream.errors import InputError

FASHION_MNIST_VARIABLE = "SPIKESTREAM_FASHION_MNIST"  # environment variable: a folder with the four IDX files
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot")  # label i is FASHION_MNIST_CLASSES[i]
FASHION_MNIST_SPLITS = {"train": 60_000, "test": 10_000}  # images per split
_PREFIX = {"train": "train", "test": "t10k"}
_IDX_UBYTE = 0x08


class FashionMNISTError(InputError):
    """Fashion-MNIST is missing or its files are damaged; the message says how to get it."""


def fashion_mnist_dir() -> Path:
    """The folder the IDX files are read from: ``$SPIKESTREAM_FASHION_MNIST`` if set, else the Debian one."""
    configured = os.environ.get(FASHION_MNIST_VARIABLE)
    return Path(configured).expanduser() if configured else sources.FASHION_MNIST_DIR  # read late: tests move it


def find_fashion_mnist() -> Path | None:
    """The folder holding all four IDX files (each ``.gz`` or plain), or None when any is missing."""
    folder = fashion_mnist_dir()
    if all(_idx_path(folder, name) is not None for name in sources.FASHION_MNIST_FILES):
        return folder
    return None


def load_fashion_mnist(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """One split of Fashion-MNIST: ``(images, labels)``.

    ``images``: uint8 (N, 28, 28), 0 = black background; ``labels``: int64 (N,) in 0..9 (names in
    ``FASHION_MNIST_CLASSES``). N is 60,000 for "train" and 10,000 for "test". Raises
    ``FashionMNISTError`` saying how to install the data when it is missing, or naming the file
    when one is damaged.
    """
    if split not in _PREFIX:
        raise FashionMNISTError(f"Fashion-MNIST split must be 'train' or 'test', not {split!r}")
    folder = fashion_mnist_dir()
    image_file = _require(folder, f"{_PREFIX[split]}-images-idx3-ubyte.gz")
    label_file = _require(folder, f"{_PREFIX[split]}-labels-idx1-ubyte.gz")
    images = read_idx(image_file)
    labels = read_idx(label_file)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.ndim != 1 or len(labels) != len(images):
        raise FashionMNISTError(f"Fashion-MNIST files in {str(folder)!r} do not match: images {images.shape}, "
                                f"labels {labels.shape}; expected (N, 28, 28) and (N,)")
    if labels.size and labels.max() > 9:
        raise FashionMNISTError(f"Fashion-MNIST labels in {str(label_file)!r} exceed 9: the file is damaged")
    return images, labels.astype(np.int64)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An unsigned-byte IDX array from a file, gzip-compressed (``.gz``) or not."""
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as stream:
                data = stream.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError) as error:  # gzip raises BadGzipFile (an OSError) or EOFError when truncated
        raise FashionMNISTError(f"cannot read {str(path)!r}: {error}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != _IDX_UBYTE:
        raise FashionMNISTError(f"cannot read {str(path)!r}: not an unsigned-byte IDX file")
    rank = data[3]
    header = 4 + 4 * rank
    if rank == 0 or len(data) < header:
        raise FashionMNISTError(f"cannot read {str(path)!r}: IDX header of rank {rank} is truncated")
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=rank, offset=4))
    size = int(np.prod(shape))
    if len(data) != header + size:
        raise FashionMNISTError(f"cannot read {str(path)!r}: IDX shape {shape} needs {size} bytes of values, "
                                f"the file has {len(data) - header}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()  # writable, owned


def _idx_path(folder: Path, name: str) -> Path | None:
    """``name`` (a ``.gz`` file name) in ``folder``, or its uncompressed form."""
    for candidate in (folder / name, folder / name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _require(folder: Path, name: str) -> Path:
    path = _idx_path(folder, name)
    if path is None:
        where = (f"${FASHION_MNIST_VARIABLE}={folder}" if os.environ.get(FASHION_MNIST_VARIABLE)
                 else str(folder))
        package = sources.FASHION_MNIST_PACKAGE
        raise FashionMNISTError(f"Fashion-MNIST is not available: {name} (or {name.removesuffix('.gz')}) is "
                                f"missing in {where}. Install it with 'apt-get install {package}', "
                                f"or set {FASHION_MNIST_VARIABLE} to a folder holding the four IDX files")
    return path
