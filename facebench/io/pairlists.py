"""Readers of the original pair-verification distributions: LFW, CALFW, CPLFW, CFP (FP and FF), AgeDB-30.

Every reader returns a `PairList`: the distinct image paths, the pairs as index pairs into them, ``issame`` and a
fold id per pair. Pairs come out in the order of the insightface ``.bin`` pack of the same set and fold by
fold, so that ``KFold(10, shuffle=False)`` over the stored order reproduces the official folds
(`PairList.is_kfold_layout` checks it):

- LFW ``pairs.txt``: file order; set k = fold k (300 matched then 300 mismatched).
- CALFW/CPLFW: fold k = positives [300k, 300k+300) then negatives [3000+300k, 3000+300k+300).
- CFP: split k = fold k, its ``same.txt`` lines then its ``diff.txt`` lines.
- AgeDB-30: split k = fold k, its pairs in column order (as insightface's ``agedb2pack`` walks the ``.mat``).
- Any other list (`read_pair_list`, dialect detected: `PAIR_DIALECTS`): XQLFW/TALFW (``lfw``), MFR2 and RFW
  (``lfw_noheader``), SLLFW (``consecutive``), MLFW (``path_path_label``), ``label path path``; folds by
  `layout_folds` (`FOLD_RULES`).

Image paths are absolute (``os.path.abspath``, symlinks kept). A referenced image that is missing is reported
with the list line that names it (``check_images``, on by default: one ``stat`` per distinct image).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from facebench.errors import FacebenchError, where
from facebench.atomic import sha256_file
from facebench.extraction.images import ImageList
from facebench.io.landmarks import landmark_array
from facebench.io.textlines import expect_columns, iter_fields, parse_int
from facebench.registry import Registry

N_FOLDS = 10
"""The number of folds of every pair-verification benchmark."""


def contiguous_folds(n_pairs: int, n_folds: int = N_FOLDS) -> np.ndarray:
    """Fold id per pair under ``KFold(n_folds, shuffle=False)``: contiguous blocks in stored order, the first
    ``n_pairs % n_folds`` folds one pair larger (scikit-learn's rule)."""
    if n_folds < 1 or n_pairs < n_folds:
        raise FacebenchError(f"cannot split {n_pairs} pairs into {n_folds} folds")
    sizes = np.full(n_folds, n_pairs // n_folds, dtype=np.int64)
    sizes[: n_pairs % n_folds] += 1
    return np.repeat(np.arange(n_folds, dtype=np.int64), sizes)


@dataclass(frozen=True)
class PairList:
    """A verification set read from an original distribution.

    Attributes:
        origin: the list file (or protocol folder) it was read from, for messages.
        paths: the distinct image paths, in order of first use.
        pairs: ``(N, 2)`` int64 indices into ``paths``; pair i compares ``paths[pairs[i, 0]]`` with
            ``paths[pairs[i, 1]]``.
        issame: ``(N,)`` bool, True for a same-identity pair.
        folds: ``(N,)`` int64 fold id, non-decreasing (folds are contiguous blocks).
        inputs: protocol file name (relative to the dataset root where there is one) -> sha256.
        dialect: the list dialect it was read in (`PAIR_DIALECTS`; empty for CFP and AgeDB).
        fold_rule: how pairs were put into folds (``sets``, `FOLD_RULES`, or the reader's own rule).
        identities: the identity of each of ``paths`` (empty when the format does not say), for the
            identity-leak-across-folds check.
    """

    origin: str
    paths: tuple[str, ...]
    pairs: np.ndarray
    issame: np.ndarray
    folds: np.ndarray
    inputs: dict[str, str] = field(default_factory=dict)
    dialect: str = ""
    fold_rule: str = ""
    identities: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.issame)
        if self.pairs.shape != (n, 2) or self.folds.shape != (n,):
            raise ValueError(f"pairs {self.pairs.shape}, issame ({n},), folds {self.folds.shape} do not agree")
        if n and (np.diff(self.folds) < 0).any():
            raise ValueError("folds must be contiguous blocks in stored order")

    @property
    def n_pairs(self) -> int:
        """Number of pairs."""
        return len(self.issame)

    @property
    def n_folds(self) -> int:
        """Number of folds."""
        return int(self.folds.max()) + 1 if self.n_pairs else 0

    def is_kfold_layout(self) -> bool:
        """True when ``KFold(n_folds, shuffle=False)`` over the stored order gives exactly these folds."""
        return self.n_pairs >= self.n_folds > 0 and bool(
            np.array_equal(self.folds, contiguous_folds(self.n_pairs, self.n_folds))
        )

    def image_paths(self) -> list[str]:
        """The 2N image paths in pair order ``[a0, b0, a1, b1, ...]`` (the layout of a ``.bin`` pack)."""
        return [self.paths[i] for i in self.pairs.reshape(-1)]

    def to_image_list(self, landmarks: Mapping[str, np.ndarray] | None = None) -> ImageList:
        """The 2N images in pair order as raw files (``crops=False``); ``landmarks`` (from
        `facebench.io.landmarks.read_landmarks`) fills the 5 points of the images it lists."""
        paths = self.image_paths()
        lmk = landmark_array(paths, landmarks, self.origin) if landmarks is not None else None
        return ImageList(origin=self.origin, paths=paths, landmarks=lmk, crops=False)


class _Collector:
    """Accumulates pairs in output order, interning image paths and remembering where each was first named."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.paths: list[str] = []
        self.first_named: list[str] = []
        self.pairs: list[tuple[int, int]] = []
        self.issame: list[bool] = []
        self.folds: list[int] = []
        self.identities: list[str] = []

    def image(self, path: str, location: str, identity: str = "") -> int:
        path = os.path.abspath(path)
        i = self.index.get(path)
        if i is None:
            i = self.index[path] = len(self.paths)
            self.paths.append(path)
            self.first_named.append(location)
            self.identities.append(identity)
        return i

    def add(self, a: int, b: int, same: bool, fold: int) -> None:
        self.pairs.append((a, b))
        self.issame.append(same)
        self.folds.append(fold)

    def build(
        self, origin: str | Path, inputs: dict[str, str], check_images: bool, dialect: str = "", fold_rule: str = ""
    ) -> PairList:
        if not self.pairs:
            raise FacebenchError(f"{origin}: no pairs found")
        if check_images:
            missing = [i for i, p in enumerate(self.paths) if not os.path.isfile(p)]
            if missing:
                first = missing[0]
                more = ""
                if len(missing) > 1:
                    more = f" ({len(missing) - 1} more images named by this list are missing too)"
                raise FacebenchError(f"{self.first_named[first]}: image not found: {self.paths[first]}{more}")
        return PairList(
            origin=str(origin),
            paths=tuple(self.paths),
            pairs=np.asarray(self.pairs, dtype=np.int64).reshape(-1, 2),
            issame=np.asarray(self.issame, dtype=bool),
            folds=np.asarray(self.folds, dtype=np.int64),
            inputs=inputs,
            dialect=dialect,
            fold_rule=fold_rule,
            identities=tuple(self.identities) if all(self.identities) else (),
        )


def _lfw_image_path(image_root: str | Path, name: str, number: int, ext: str) -> str:
    return os.path.join(image_root, name, f"{name}_{number:04d}.{ext}")


def _lfw_pair_fields(path: Path, line: int, fields: list[str], same: bool | None, what: str) -> tuple[str, int, str, int]:
    """``(name_a, i, name_b, j)`` of an LFW pair line; ``same`` None = decide by the column count (3 matched,
    4 mismatched), else require that kind (``what`` says where in the file)."""
    if same is None:
        if len(fields) not in (3, 4):
            raise FacebenchError(
                f"{where(path, line)}: expected 'name i j' (3 columns) or 'name1 i name2 j' (4 columns), "
                f"got {len(fields)}: {' '.join(fields)!r}"
            )
        same = len(fields) == 3
    if same:
        expect_columns(path, line, fields, 3, f"name i j of a matched pair{what}")
        name_b, j_text = fields[0], fields[2]
    else:
        expect_columns(path, line, fields, 4, f"name1 i name2 j of a mismatched pair{what}")
        name_b, j_text = fields[2], fields[3]
    i = parse_int(path, line, fields[1], "image number", minimum=1)
    j = parse_int(path, line, j_text, "image number", minimum=1)
    return fields[0], i, name_b, j


def read_lfw_pairs(
    pairs_file: str | Path, image_root: str | Path, *, ext: str = "jpg", check_images: bool = True
) -> PairList:
    """Read LFW's ``pairs.txt`` (dialect ``lfw``).

    Format: a header ``n_sets<TAB>n`` (``10\\t300`` for View 2; a single ``n`` is one set, as in View 1's
    ``pairsDevTest.txt``), then per set ``n`` matched lines ``name i j`` and ``n`` mismatched lines
    ``name1 i name2 j``. Image ``<image_root>/<name>/<name>_<i:04d>.<ext>``. Fold k = set k, pairs in file order.
    """
    pairs_file = Path(pairs_file)
    lines = iter_fields(pairs_file)
    header = next(lines, None)
    if header is None:
        raise FacebenchError(f"{pairs_file}: empty file, expected LFW pairs (header '10\\t300')")
    line, fields = header
    if len(fields) not in (1, 2):
        raise FacebenchError(
            f"{where(pairs_file, line)}: expected a header 'n_sets<TAB>n_pairs' (e.g. '10\\t300'), "
            f"got {' '.join(fields)!r}"
        )
    numbers = [parse_int(pairs_file, line, f, "header count", minimum=1) for f in fields]
    n_sets, n = (1, numbers[0]) if len(numbers) == 1 else (numbers[0], numbers[1])
    out = _Collector()
    expected_lines = n_sets * 2 * n
    done = 0
    for s in range(n_sets):
        for same in (True, False):
            for _ in range(n):
                item = next(lines, None)
                if item is None:
                    raise FacebenchError(
                        f"{pairs_file}: ends after {done} pair lines: the header promises {n_sets} sets of "
                        f"{n} matched + {n} mismatched pairs ({expected_lines} lines)"
                    )
                line, fields = item
                name_a, i, name_b, j = _lfw_pair_fields(pairs_file, line, fields, same, f" in set {s + 1}")
                loc = where(pairs_file, line)
                a = out.image(_lfw_image_path(image_root, name_a, i, ext), loc, name_a)
                b = out.image(_lfw_image_path(image_root, name_b, j, ext), loc, name_b)
                out.add(a, b, same, s)
                done += 1
    extra = next(lines, None)
    if extra is not None:
        raise FacebenchError(
            f"{where(pairs_file, extra[0])}: expected the end of the file after {n_sets} sets of {n} + {n} "
            f"pairs, got {' '.join(extra[1])!r}"
        )
    return out.build(pairs_file, {pairs_file.name: sha256_file(pairs_file)}, check_images, "lfw", "sets")


PAIR_DIALECTS: Registry[str] = Registry("pair-list dialect", [
    ("lfw", "LFW pairs.txt with a header 'n_sets n': per set n lines 'name i j' then n lines "
     "'name1 i name2 j'"),
    ("lfw_noheader", "LFW pair lines without a header, matched 'name i j' and mismatched "
     "'name1 i name2 j' in any order (MFR2, RFW)"),
    ("consecutive", "two consecutive lines per pair, 'image [label]' (CALFW, CPLFW, SLLFW): label "
     "non-zero = same; without a label, same = same identity"),
    ("path_path_label", "'path_a path_b label' (label 1 same, 0 different; MLFW tab-separated, "
     "insightface pairs_label.txt)"),
    ("label_path_path", "'label path_a path_b' (label 1 same, 0 different)"),
])
"""The pair-list dialects `read_pair_list` reads (name -> format)."""

FOLD_RULES: Registry[str] = Registry("fold rule", [
    ("sets", "fold k = set k of the header (LFW)"),
    ("kfold_stored_order", "KFold(10, shuffle=False): contiguous blocks of the file order"),
    ("halves", "first half positive, second half negative: fold k = positives [h k/10, h (k+1)/10) "
     "then the same block of negatives (CALFW's rule; h = half the pairs)"),
])
"""How `read_pair_list` puts pairs into folds (name -> rule); see `layout_folds`."""

_LABELS = {"1": True, "0": False}


def image_identity(relative_path: str) -> str:
    """The identity of an image from its path relative to the image root: the first folder when there is one
    (``Name/Name_0001.jpg`` -> ``Name``), else the file stem without a trailing ``_<digits>``
    (``Name_0001.jpg`` -> ``Name``, CALFW's flat folder)."""
    parts = relative_path.replace("\\", "/").split("/")
    if len(parts) > 1:
        return parts[0]
    stem = os.path.splitext(parts[0])[0]
    head, sep, tail = stem.rpartition("_")
    return head if sep and tail.isdigit() and head else stem


def layout_folds(issame: np.ndarray, n_folds: int = N_FOLDS) -> tuple[np.ndarray, np.ndarray, str]:
    """``(order, folds, rule)`` for a list without explicit folds (`FOLD_RULES`): ``halves`` when the first half
    of the pairs is positive and the second negative and each half splits into ``n_folds`` equal blocks (pairs
    are reordered fold by fold, positives first); otherwise ``kfold_stored_order`` (file order kept)."""
    issame = np.asarray(issame, dtype=bool)
    n = issame.size
    half = n // 2
    if n and n % 2 == 0 and half % n_folds == 0 and issame[:half].all() and not issame[half:].any():
        per = half // n_folds
        order = np.concatenate(
            [np.r_[k * per : (k + 1) * per, half + k * per : half + (k + 1) * per] for k in range(n_folds)]
        )
        return order.astype(np.int64), contiguous_folds(n, n_folds), "halves"
    return np.arange(n, dtype=np.int64), contiguous_folds(n, n_folds), "kfold_stored_order"


def _is_int(text: str) -> bool:
    return text.lstrip("+-").isdigit()


def detect_dialect(list_file: str | Path) -> str:
    """The dialect (`PAIR_DIALECTS`) of a pair list, from its first non-blank line: only integers (1 or 2) =
    ``lfw`` header; ``name int int`` or ``name int name int`` = ``lfw_noheader``; ``image`` or ``image int`` =
    ``consecutive``; ``path path 0|1`` = ``path_path_label``; ``0|1 path path`` = ``label_path_path``."""
    list_file = Path(list_file)
    first = next(iter_fields(list_file), None)
    if first is None:
        raise FacebenchError(f"{list_file}: empty pair list")
    line, f = first
    if all(_is_int(x) for x in f):
        return "lfw"
    if len(f) == 3 and _is_int(f[1]) and _is_int(f[2]) or len(f) == 4 and _is_int(f[1]) and _is_int(f[3]):
        return "lfw_noheader"
    if len(f) == 1 or len(f) == 2 and _is_int(f[1]):
        return "consecutive"
    if len(f) == 3 and f[2] in _LABELS:
        return "path_path_label"
    if len(f) == 3 and f[0] in _LABELS:
        return "label_path_path"
    raise FacebenchError(
        f"{where(list_file, line)}: cannot tell the pair-list dialect from {' '.join(f)!r}; known: "
        + "; ".join(f"{k} ({v})" for k, v in PAIR_DIALECTS.items())
    )


def _resolve_ext(image_root: str | Path, name: str, number: int, ext: str | None) -> str:
    """``ext`` when given; else the first of jpg, png, jpeg whose file exists for this image (jpg if none)."""
    if ext:
        return ext
    for candidate in ("jpg", "png", "jpeg"):
        if os.path.isfile(_lfw_image_path(image_root, name, number, candidate)):
            return candidate
    return "jpg"


def read_pair_list(
    list_file: str | Path,
    image_root: str | Path,
    *,
    dialect: str = "auto",
    ext: str | None = None,
    n_folds: int = N_FOLDS,
    check_images: bool = True,
) -> PairList:
    """Read a pair list in any dialect of `PAIR_DIALECTS` (``auto``: `detect_dialect`); the dialect is named in
    ``PairList.dialect`` and the fold rule (`FOLD_RULES`) in ``fold_rule``.

    Paths are relative to ``image_root``; the LFW dialects name images ``<root>/<name>/<name>_<i:04d>.<ext>``
    (``ext`` None: jpg, png or jpeg, whichever exists for the first pair). ``lfw`` keeps its sets as folds;
    every other dialect gets `layout_folds`. Identities (for the leak check): the LFW name, else
    `image_identity`.
    """
    list_file = Path(list_file)
    if dialect == "auto":
        dialect = detect_dialect(list_file)
    PAIR_DIALECTS.check(dialect)
    rows: list[tuple[int, str, str, str, str, bool]] = []  # (line, path a, path b, identity a, identity b, same)
    if dialect == "lfw":
        names = _first_lfw_name(list_file, skip_header=True)
        return read_lfw_pairs(
            list_file, image_root, ext=_resolve_ext(image_root, *names, ext), check_images=check_images
        )
    if dialect == "lfw_noheader":
        names = _first_lfw_name(list_file, skip_header=False)
        suffix = _resolve_ext(image_root, *names, ext)
        for line, fields in iter_fields(list_file):
            name_a, i, name_b, j = _lfw_pair_fields(list_file, line, fields, None, "")
            rows.append((
                line, _lfw_image_path(image_root, name_a, i, suffix), _lfw_image_path(image_root, name_b, j, suffix),
                name_a, name_b, len(fields) == 3,
            ))
    elif dialect == "consecutive":
        rows = _consecutive_rows(list_file, image_root)
    else:
        label_at, a_at, b_at = (2, 0, 1) if dialect == "path_path_label" else (0, 1, 2)
        what = "path_a path_b label" if dialect == "path_path_label" else "label path_a path_b"
        for line, fields in iter_fields(list_file):
            expect_columns(list_file, line, fields, 3, what)
            if fields[label_at] not in _LABELS:
                raise FacebenchError(
                    f"{where(list_file, line)}: expected label 1 (same) or 0 (different), got {fields[label_at]!r}"
                )
            a, b = fields[a_at], fields[b_at]
            rows.append((line, os.path.join(image_root, a), os.path.join(image_root, b),
                         image_identity(a), image_identity(b), _LABELS[fields[label_at]]))
    if not rows:
        raise FacebenchError(f"{list_file}: no pairs found")
    if len(rows) < n_folds:
        raise FacebenchError(f"{list_file}: {len(rows)} pairs cannot be split into {n_folds} folds")
    order, folds, rule = layout_folds(np.array([r[5] for r in rows], dtype=bool), n_folds)
    out = _Collector()
    for k, fold in zip(order.tolist(), folds.tolist()):
        line, pa, pb, ia, ib, same = rows[k]
        loc = where(list_file, line)
        out.add(out.image(pa, loc, ia), out.image(pb, loc, ib), same, fold)
    return out.build(list_file, {list_file.name: sha256_file(list_file)}, check_images, dialect, rule)


def _first_lfw_name(list_file: Path, skip_header: bool) -> tuple[str, int]:
    """``(name, i)`` of the first pair line of an LFW-dialect list (for the image suffix probe)."""
    lines = iter_fields(list_file)
    if skip_header:
        next(lines, None)
    item = next(lines, None)
    if item is None or len(item[1]) < 2 or not _is_int(item[1][1]):
        return "", 1
    return item[1][0], int(item[1][1])


def _consecutive_rows(list_file: Path, image_root: str | Path) -> list[tuple[int, str, str, str, str, bool]]:
    """Rows of a two-lines-per-pair list: ``image label`` (non-zero = positive; both lines must agree) or
    ``image`` alone (positive = same `image_identity`)."""
    entries = []
    for line, fields in iter_fields(list_file):
        if len(fields) not in (1, 2):
            raise FacebenchError(
                f"{where(list_file, line)}: expected 'image_name [label]' (1 or 2 columns), got {len(fields)}: "
                f"{' '.join(fields)!r}"
            )
        label = parse_int(list_file, line, fields[1], "label", minimum=0) if len(fields) == 2 else None
        entries.append((line, fields[0], label))
    if len(entries) % 2:
        raise FacebenchError(f"{list_file}: expected two lines per pair, got an odd number of lines ({len(entries)})")
    rows = []
    for k in range(0, len(entries), 2):
        (line_a, a, la), (line_b, b, lb) = entries[k], entries[k + 1]
        if (la is None) != (lb is None):
            raise FacebenchError(f"{where(list_file, line_b)}: one line of pair {k // 2 + 1} has a label, the other not")
        ia, ib = image_identity(a), image_identity(b)
        if la is None:
            same = ia == ib
        else:
            if (la != 0) != (lb != 0):
                raise FacebenchError(
                    f"{where(list_file, line_b)}: the two lines of pair {k // 2 + 1} disagree (non-zero label = "
                    f"positive, 0 = negative): line {line_a} says {la}, this line {lb}"
                )
            same = la != 0
        rows.append((line_a, os.path.join(image_root, a), os.path.join(image_root, b), ia, ib, same))
    return rows


def read_pair_label_list(
    list_file: str | Path, image_root: str | Path, *, n_folds: int = N_FOLDS, check_images: bool = True
) -> PairList:
    """Read a ``path_a path_b label`` list (label 1 = same, 0 = different; paths relative to ``image_root``),
    such as insightface's LFW ``pairs_label.txt`` (`read_pair_list`, dialect ``path_path_label``; folds by
    `layout_folds`)."""
    return read_pair_list(list_file, image_root, dialect="path_path_label", n_folds=n_folds, check_images=check_images)


def _read_two_line_pairs(
    list_file: Path,
    image_root: str | Path,
    *,
    positive: Callable[[int, int], bool],
    label_rule: str,
    n_folds: int,
    check_images: bool,
) -> PairList:
    entries = []
    for line, fields in iter_fields(list_file):
        expect_columns(list_file, line, fields, 2, "image_name label")
        label = parse_int(list_file, line, fields[1], "label", minimum=0)
        entries.append((line, fields[0], positive(line, label)))
    if len(entries) % 2:
        raise FacebenchError(
            f"{list_file}: expected two lines per pair, got an odd number of lines ({len(entries)})"
        )
    n = len(entries) // 2
    same = []
    for k in range(n):
        (line_a, _, pos_a), (line_b, _, pos_b) = entries[2 * k], entries[2 * k + 1]
        if pos_a != pos_b:
            raise FacebenchError(
                f"{where(list_file, line_b)}: the two lines of pair {k + 1} disagree ({label_rule}): line "
                f"{line_a} says {'positive' if pos_a else 'negative'}, this line {'positive' if pos_b else 'negative'}"
            )
        same.append(pos_a)
    half = n // 2
    if n % 2 or half % n_folds:
        raise FacebenchError(
            f"{list_file}: {n} pairs cannot be the CALFW/CPLFW layout (first half positive, second half "
            f"negative, each half in {n_folds} equal folds)"
        )
    for k in range(n):
        if same[k] != (k < half):
            raise FacebenchError(
                f"{where(list_file, entries[2 * k][0])}: pair {k + 1} is {'positive' if same[k] else 'negative'}, "
                f"but the layout has pairs 1-{half} positive and {half + 1}-{n} negative"
            )
    out = _Collector()
    order, folds, rule = layout_folds(np.asarray(same, dtype=bool), n_folds)
    for k, fold in zip(order.tolist(), folds.tolist()):
        (line_a, name_a, _), (line_b, name_b, _) = entries[2 * k], entries[2 * k + 1]
        a = out.image(os.path.join(image_root, name_a), where(list_file, line_a), image_identity(name_a))
        b = out.image(os.path.join(image_root, name_b), where(list_file, line_b), image_identity(name_b))
        out.add(a, b, same[k], fold)
    return out.build(list_file, {list_file.name: sha256_file(list_file)}, check_images, "consecutive", rule)


def read_calfw_pairs(
    pairs_file: str | Path, image_root: str | Path, *, n_folds: int = N_FOLDS, check_images: bool = True
) -> PairList:
    """Read ``pairs_CALFW.txt``: two lines ``image_name label`` per pair; label = an identity number (non-zero)
    for a positive pair, 0 for a negative one. Pairs 1-3000 positive, 3001-6000 negative; fold k = positives
    [300k, 300k+300) then negatives [3000+300k, 3000+300k+300). Images ``<image_root>/<image_name>``."""
    return _read_two_line_pairs(
        Path(pairs_file), image_root, positive=lambda line, label: label != 0,
        label_rule="CALFW: non-zero identity = positive, 0 = negative", n_folds=n_folds, check_images=check_images,
    )


def read_cplfw_pairs(
    pairs_file: str | Path, image_root: str | Path, *, n_folds: int = N_FOLDS, check_images: bool = True
) -> PairList:
    """Read ``pairs_CPLFW.txt``: two lines ``image_name label`` per pair, label 1 = positive, 0 = negative;
    layout and folds as `read_calfw_pairs`."""
    pairs_file = Path(pairs_file)

    def positive(line: int, label: int) -> bool:
        if label not in (0, 1):
            raise FacebenchError(f"{where(pairs_file, line)}: expected label 1 (positive) or 0 (negative), got {label}")
        return label == 1

    return _read_two_line_pairs(
        pairs_file, image_root, positive=positive, label_rule="CPLFW: 1 = positive, 0 = negative",
        n_folds=n_folds, check_images=check_images,
    )


CFP_PROTOCOLS: Registry[str] = Registry("CFP protocol", [
    ("FP", "frontal-profile"),
    ("FF", "frontal-frontal"),
])
"""CFP protocol -> its pairs."""
_CFP_LIST_NAMES = {"F": ("Pair_list_F.txt", "image_list_F.txt"), "P": ("Pair_list_P.txt", "image_list_P.txt")}


def _cfp_protocol_dir(cfp_root: Path) -> Path:
    if (cfp_root / "Protocol").is_dir():
        return cfp_root / "Protocol"
    if cfp_root.name == "Protocol" and (cfp_root / "Split").is_dir():
        return cfp_root
    raise FacebenchError(f"{cfp_root}: not a CFP folder (expected Protocol/ with Split/ and Pair_list_F.txt inside)")


def _read_cfp_image_list(
    protocol_dir: Path, pose: str, inputs: dict[str, str]
) -> tuple[Path, dict[int, tuple[str, int]]]:
    """Index (1-based) -> (absolute path, line) from ``Pair_list_<pose>.txt`` (or the copy's ``image_list_<pose>.txt``).

    A path starting with ``..`` is relative to ``Protocol/`` (the official ``../Data/Images/...``); any other
    relative path is relative to the CFP root, ``Protocol/..`` (the copy's ``Data/Images/...``).
    """
    candidates = [protocol_dir / name for name in _CFP_LIST_NAMES[pose]]
    list_file = next((c for c in candidates if c.is_file()), None)
    if list_file is None:
        raise FacebenchError(f"{protocol_dir}: missing {' or '.join(c.name for c in candidates)}")
    root = protocol_dir.parent
    images: dict[int, tuple[str, int]] = {}
    for line, fields in iter_fields(list_file):
        expect_columns(list_file, line, fields, 2, "index path")
        index = parse_int(list_file, line, fields[0], "image index", minimum=1)
        if index in images:
            raise FacebenchError(f"{where(list_file, line)}: image index {index} repeats line {images[index][1]}")
        rel = fields[1]
        base = protocol_dir if rel.startswith("..") else root
        images[index] = (os.path.normpath(os.path.join(base, rel)), line)
    if not images:
        raise FacebenchError(f"{list_file}: no images listed")
    inputs[list_file.relative_to(root).as_posix()] = sha256_file(list_file)
    return list_file, images


def read_cfp(cfp_root: str | Path, protocol: str, *, check_images: bool = True) -> PairList:
    """Read a CFP protocol, ``FP`` (frontal-profile) or ``FF`` (frontal-frontal), from the CFP folder.

    Files: ``Protocol/Pair_list_F.txt`` and ``Pair_list_P.txt`` (``<1-based index> <path>``; the names
    ``image_list_F/P.txt`` are accepted too) and ``Protocol/Split/<FP|FF>/<01..10>/{same,diff}.txt`` with lines
    ``a,b`` (1-based indices: FP = frontal, profile; FF = frontal, frontal). Fold k = split k, its same pairs
    then its diff pairs (350 + 350 in the official protocol). The image root, for a landmark file, is the CFP
    folder (entries like ``Data/Images/001/frontal/01.jpg``).
    """
    cfp_root = Path(cfp_root)
    key = protocol.upper()
    CFP_PROTOCOLS.check(key)
    protocol_dir = _cfp_protocol_dir(cfp_root)
    inputs: dict[str, str] = {}
    first_file, first = _read_cfp_image_list(protocol_dir, "F", inputs)
    second_file, second = _read_cfp_image_list(protocol_dir, "P", inputs) if key == "FP" else (first_file, first)
    split_root = protocol_dir / "Split" / key
    if not split_root.is_dir():
        raise FacebenchError(f"{split_root}: missing (expected the {key} splits 01..10)")
    split_dirs = sorted((d for d in split_root.iterdir() if d.is_dir() and d.name.isdigit()), key=lambda d: int(d.name))
    if not split_dirs:
        raise FacebenchError(f"{split_root}: no split folders (expected 01..10)")
    out = _Collector()
    columns = "frontal index, profile index" if key == "FP" else "frontal index, frontal index"
    for fold, split_dir in enumerate(split_dirs):
        for name, same in (("same.txt", True), ("diff.txt", False)):
            split_file = split_dir / name
            if not split_file.is_file():
                raise FacebenchError(f"{split_file}: missing")
            inputs[split_file.relative_to(protocol_dir.parent).as_posix()] = sha256_file(split_file)
            for line, fields in iter_fields(split_file, sep=","):
                expect_columns(split_file, line, fields, 2, columns)
                loc = where(split_file, line)
                ids = []
                for text, table, table_file in ((fields[0], first, first_file), (fields[1], second, second_file)):
                    index = parse_int(split_file, line, text, "image index", minimum=1)
                    if index not in table:
                        raise FacebenchError(f"{loc}: image index {index} is not listed in {table_file}")
                    ids.append(out.image(table[index][0], loc))
                out.add(ids[0], ids[1], same, fold)
    return out.build(split_root, inputs, check_images)


def read_agedb_mat(
    mat_file: str | Path, image_root: str | Path, *, ext: str = ".jpg", check_images: bool = True
) -> PairList:
    """Read AgeDB's ``04_FINAL_protocol_30_years.mat`` (any of its ``*_protocol_*.mat`` siblings alike).

    Structure (as ``scipy.io.loadmat`` returns it): ``splits`` is a cell array of 10 structs; a split's first
    field is a 2 x M cell array of structs whose first field is the image name (the second, the age), and its
    second field holds the M labels, +1 (same) or -1 (different). Fields are read by position, as insightface's
    ``agedb2pack`` does. Image ``<image_root>/<name><ext>``; fold k = split k, pairs in column order.
    """
    from scipy.io import loadmat  # scipy is slow to import; only this reader needs it

    mat_file = Path(mat_file)
    if not mat_file.is_file():
        raise FacebenchError(f"{mat_file}: file not found")
    try:
        mat = loadmat(str(mat_file))
    except Exception as exc:  # scipy raises many types for a corrupt file
        raise FacebenchError(f"{mat_file}: not a readable MATLAB .mat file: {exc}") from None
    splits = mat.get("splits")
    if not isinstance(splits, np.ndarray) or splits.dtype != object:
        names = sorted(k for k in mat if not k.startswith("__"))
        raise FacebenchError(f"{mat_file}: expected a cell array 'splits', found variables {names}")
    out = _Collector()
    for fold, cell in enumerate(splits.reshape(-1)):
        loc = f"{mat_file} split {fold + 1}"
        record = _single_struct(cell, loc, "a struct (pairs, labels)")
        if len(record.dtype.names) < 2:
            raise FacebenchError(f"{loc}: expected a struct with 2 fields (pairs, labels), got {record.dtype.names}")
        pairs, labels = record[0], np.asarray(record[1]).reshape(-1)
        if not isinstance(pairs, np.ndarray) or pairs.ndim != 2 or pairs.shape[0] != 2:
            got = getattr(pairs, "shape", type(pairs).__name__)
            raise FacebenchError(f"{loc}: expected a 2 x M cell array of pairs, got {got}")
        if labels.shape[0] != pairs.shape[1]:
            raise FacebenchError(f"{loc}: {pairs.shape[1]} pairs but {labels.shape[0]} labels")
        for c in range(pairs.shape[1]):
            ploc = f"{loc} pair {c + 1}"
            ids = []
            for r in range(2):
                image = _single_struct(pairs[r, c], ploc, "a struct (name, age)")
                name = np.asarray(image[0]).reshape(-1)
                if name.size != 1 or not isinstance(name[0], str) or not name[0]:
                    raise FacebenchError(f"{ploc}: expected an image name, got {image[0]!r}")
                ids.append(out.image(os.path.join(image_root, name[0] + ext), ploc))
            label = labels[c]
            if not isinstance(label, (int, float, np.number)) or label not in (1, -1):
                raise FacebenchError(f"{ploc}: expected label +1 (same) or -1 (different), got {label}")
            out.add(ids[0], ids[1], bool(label == 1), fold)
    return out.build(mat_file, {mat_file.name: sha256_file(mat_file)}, check_images)


def _single_struct(cell: object, loc: str, what: str) -> np.void:
    """The one record of a 1x1 MATLAB struct as loadmat returns it (a structured array of size 1)."""
    if not isinstance(cell, np.ndarray) or cell.dtype.names is None or cell.size != 1:
        shape = f" of shape {cell.shape}" if isinstance(cell, np.ndarray) else ""
        raise FacebenchError(f"{loc}: expected {what}, got {type(cell).__name__}{shape}")
    return cell.reshape(-1)[0]
