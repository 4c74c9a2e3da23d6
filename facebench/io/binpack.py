"""insightface ``.bin`` verification packs: read (never executing the pickle) and write.

A pack is a pickle of the 2-tuple ``(bins, issame)``: ``bins`` holds 2N encoded images (JPEG/PNG), as ``bytes``
(old packs, often Python-2 pickles) or 1-D ``uint8`` numpy arrays (newer packs; ``cv2.imencode``'s ``(L, 1)``
arrays are accepted too), and ``issame`` N booleans; pair i is ``bins[2i]``, ``bins[2i+1]``. Folds are the
contiguous blocks of ``KFold(10, shuffle=False)``.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from facebench.io import safe_pickle
from facebench.errors import FacebenchError
from facebench.atomic import atomic_open, sha256_file
from facebench.extraction.images import ImageList
from facebench.io.pairlists import N_FOLDS, contiguous_folds

BIN_PICKLE_PROTOCOL = 4
"""Default pickle protocol of written packs: readable by Python >= 3.4 and by insightface's loaders."""


@dataclass(frozen=True)
class BinPack:
    """A read ``.bin`` pack: ``blobs`` (2N encoded images, ``bytes`` or 1-D ``uint8`` arrays), ``issame`` (N bool),
    the sha256 of the file and its path."""

    path: Path
    blobs: list[bytes | np.ndarray]
    issame: np.ndarray
    sha256: str

    @property
    def n_pairs(self) -> int:
        """Number of pairs."""
        return len(self.issame)

    @property
    def folds(self) -> np.ndarray:
        """Fold id per pair: 10 contiguous blocks (``KFold(10, shuffle=False)``)."""
        return contiguous_folds(self.n_pairs, N_FOLDS)

    @property
    def inputs(self) -> dict[str, str]:
        """File name -> sha256, for result provenance."""
        return {self.path.name: self.sha256}

    def to_image_list(self) -> ImageList:
        """The 2N images in pack order as aligned crops (``crops=True``); errors name ``<pack> item <i>``."""
        return ImageList(origin=str(self.path), blobs=self.blobs, crops=True)


def _blob(item: object, origin: str, i: int) -> bytes | np.ndarray:
    if isinstance(item, bytes):
        blob: bytes | np.ndarray = item
    elif isinstance(item, (bytearray, memoryview)):
        blob = bytes(item)
    elif isinstance(item, np.ndarray) and item.dtype == np.uint8 and (
        item.ndim == 1 or (item.ndim == 2 and item.shape[1] == 1)
    ):
        blob = item.reshape(-1)
    else:
        got = f"{item.dtype} array of shape {item.shape}" if isinstance(item, np.ndarray) else type(item).__name__
        raise FacebenchError(f"{origin} item {i}: expected an encoded image (bytes or a 1-D uint8 array), got {got}")
    if len(blob) == 0:
        raise FacebenchError(f"{origin} item {i}: empty image")
    return blob


def _issame(value: object, origin: str) -> np.ndarray:
    items = value.tolist() if isinstance(value, np.ndarray) and value.ndim == 1 else value
    if not isinstance(items, (list, tuple)):
        got = f"{value.dtype} array of shape {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
        raise FacebenchError(f"{origin}: expected issame to be a list of booleans, got {got}")
    out = np.empty(len(items), dtype=bool)
    for i, flag in enumerate(items):
        if isinstance(flag, (bool, np.bool_)) or (isinstance(flag, (int, np.integer)) and flag in (0, 1)):
            out[i] = bool(flag)
        else:
            raise FacebenchError(f"{origin}: issame[{i}] is {flag!r}, expected a boolean")
    return out


def validate_pack(obj: object, origin: str) -> tuple[list[bytes | np.ndarray], np.ndarray]:
    """Check the structure of an unpickled pack and return ``(blobs, issame)``; errors name file and item."""
    if not isinstance(obj, (tuple, list)) or len(obj) != 2:
        got = f"{type(obj).__name__} of length {len(obj)}" if isinstance(obj, (tuple, list)) else type(obj).__name__
        raise FacebenchError(f"{origin}: expected a pack (bins, issame), a 2-tuple, got a {got}")
    bins, issame_raw = obj
    if not isinstance(bins, (list, tuple)):
        raise FacebenchError(f"{origin}: expected bins to be a list of encoded images, got {type(bins).__name__}")
    issame = _issame(issame_raw, origin)
    if len(bins) != 2 * len(issame):
        raise FacebenchError(
            f"{origin}: {len(bins)} images for {len(issame)} pairs: a pack holds exactly 2 images per pair"
        )
    if not len(issame):
        raise FacebenchError(f"{origin}: the pack holds no pairs")
    return [_blob(item, origin, i) for i, item in enumerate(bins)], issame


def read_bin(path: str | Path) -> BinPack:
    """Read an insightface ``.bin`` pack with the restricted unpickler (`facebench.io.safe_pickle`).

    Python-2 and Python-3 pickles, ``bytes`` and ``uint8``-array items are accepted. A refused global, a
    truncated file or a wrong structure is a `FacebenchError` naming the file (and the item).
    """
    path = Path(path)
    if not path.is_file():
        raise FacebenchError(f"{path}: file not found" if not path.exists() else f"{path}: not a file")
    digest = sha256_file(path)
    blobs, issame = validate_pack(safe_pickle.load(path), str(path))
    return BinPack(path=path, blobs=blobs, issame=issame, sha256=digest)


def write_bin(
    path: str | Path,
    blobs: Sequence[bytes | bytearray | np.ndarray],
    issame: Sequence[bool] | np.ndarray,
    protocol: int = BIN_PICKLE_PROTOCOL,
) -> str:
    """Write a pack ``(bins, issame)`` atomically: items as ``bytes``, ``issame`` as a list of ``bool`` (the
    layout insightface's loaders read). Return the sha256 of the written file."""
    origin = f"{path} (writing)"
    checked, flags = validate_pack((list(blobs), issame if isinstance(issame, np.ndarray) else list(issame)), origin)
    items = [b.tobytes() if isinstance(b, np.ndarray) else b for b in checked]
    with atomic_open(path, "wb") as handle:
        pickle.dump((items, flags.tolist()), handle, protocol=protocol)
    return sha256_file(path)
