"""Pair sets as read from their distributions: 2N images in pair order and N labels, by reader name.

The reader names are those of ``[[source]] reader`` in ``protocols/*.toml`` (the ``pairs`` kind lists which
it accepts, `facebench.kinds.pairs`). Each reader takes the benchmark's files (role -> path) and its
``[options]`` (``dialect``, ``ext`` for ``pair_list``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from facebench.errors import FacebenchError
from facebench.extraction.images import ImageList
from facebench.io.attributes import masked, match_images, read_mfr2_labels
from facebench.io.binpack import read_bin
from facebench.io.landmarks import read_landmarks
from facebench.io.pairlists import (
    PairList,
    read_agedb_mat,
    read_calfw_pairs,
    read_cfp,
    read_cplfw_pairs,
    read_lfw_pairs,
    read_pair_list,
)
from facebench.registry import Registry


@dataclass
class PairData:
    """A pair set as read: 2N images in pair order, N labels, the sha256 of each input file; where the list
    says so, the identity of each image, the fold of each pair, the list's dialect and fold rule, and
    built-in group attributes (attribute -> value per image, e.g. MFR2's mask type)."""

    images: ImageList
    issame: np.ndarray
    inputs: dict[str, str]
    reader: str
    identities: list[str] | None = None
    folds: np.ndarray | None = None
    dialect: str = ""
    fold_rule: str = ""
    attributes: dict[str, list[str | None]] = field(default_factory=dict)


Files = Mapping[str, Path]
Options = Mapping[str, Any]


def pack_data(pack_file: Path) -> PairData:
    """A pair set from an insightface ``.bin`` pack (no identities, paths or folds: the pack has none)."""
    pack = read_bin(pack_file)
    return PairData(pack.to_image_list(), pack.issame, pack.inputs, "binpack")


def list_data(pairs: PairList, files: Files, image_root: Path, reader_name: str) -> PairData:
    """A pair set from a read pair list (landmarks from ``files["landmarks"]`` when given); the pairs must be
    in contiguous fold order."""
    landmarks = read_landmarks(files["landmarks"], image_root) if "landmarks" in files else None
    if not pairs.is_kfold_layout():
        raise FacebenchError(f"{pairs.origin}: pairs are not in contiguous fold order; cannot apply the 10-fold rule")
    identities = [pairs.identities[i] for i in pairs.pairs.reshape(-1)] if pairs.identities else None
    return PairData(
        pairs.to_image_list(landmarks), pairs.issame, dict(pairs.inputs), reader_name, identities, pairs.folds,
        pairs.dialect, pairs.fold_rule,
    )


READERS: Registry[Callable[[Files, Options], PairData]] = Registry("pair-set reader")
"""Pair-set readers by the name used in ``protocols/*.toml``; each takes (files: role -> Path, options)."""


@READERS.register("binpack")
def _from_pack(files: Files, options: Options) -> PairData:
    return pack_data(files["pack"])


@READERS.register("lfw_pairs")
def _lfw(files: Files, options: Options) -> PairData:
    return list_data(read_lfw_pairs(files["pairs"], files["images"]), files, files["images"], "lfw_pairs")


@READERS.register("pair_list")
def _pair_list(files: Files, options: Options) -> PairData:
    """Any pair-list dialect (`facebench.io.pairlists.PAIR_DIALECTS`): ``options.dialect``, else detected;
    image suffix ``options.ext`` (else probed)."""
    pairs = read_pair_list(
        files["pairs"], files["images"], dialect=str(options.get("dialect", "auto")), ext=options.get("ext")
    )
    return list_data(pairs, files, files["images"], "pair_list")


@READERS.register("mfr2")
def _mfr2(files: Files, options: Options) -> PairData:
    """MFR2: ``pairs.txt`` in the LFW dialect without header (``name i j`` / ``n1 i n2 j`` mixed, no folds:
    KFold(10) over the stored order), images ``<Name>/<Name>_%04d.png``; ``mfr2_labels.txt`` (optional) gives
    the built-in attributes ``mask_type`` and ``masked`` (`facebench.io.attributes.masked`)."""
    pairs = read_pair_list(files["pairs"], files["images"], dialect="lfw_noheader", ext="png")
    data = list_data(pairs, files, files["images"], "mfr2")
    if "labels" in files:
        labels = read_mfr2_labels(files["labels"])
        values, _ = match_images(labels, data.images.paths or [], None, str(files["labels"]))
        data.attributes["mask_type"] = values
        data.attributes["masked"] = [masked(v) if v is not None else None for v in values]
    return data


@READERS.register("calfw_pairs")
def _calfw(files: Files, options: Options) -> PairData:
    return list_data(read_calfw_pairs(files["pairs"], files["images"]), files, files["images"], "calfw_pairs")


@READERS.register("cplfw_pairs")
def _cplfw(files: Files, options: Options) -> PairData:
    return list_data(read_cplfw_pairs(files["pairs"], files["images"]), files, files["images"], "cplfw_pairs")


@READERS.register("cfp_fp")
def _cfp_fp(files: Files, options: Options) -> PairData:
    return list_data(read_cfp(files["root"], "FP"), files, files["root"], "cfp_fp")


@READERS.register("cfp_ff")
def _cfp_ff(files: Files, options: Options) -> PairData:
    return list_data(read_cfp(files["root"], "FF"), files, files["root"], "cfp_ff")


@READERS.register("agedb_mat")
def _agedb(files: Files, options: Options) -> PairData:
    return list_data(read_agedb_mat(files["protocol"], files["images"]), files, files["images"], "agedb_mat")


def read_pair_set(reader: str, files: Files, options: Options, seed: int = 0, max_pairs: int = 0) -> PairData:
    """The pair set of reader ``reader`` (``seed`` and ``max_pairs`` are for generated pairs; a listed pair
    set has its own)."""
    return READERS.get(reader)(files, options)
