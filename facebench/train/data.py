"""Training data: sources (RecordIO pack, image folders, list file), identity remapping, batches.

Sources, each giving images and a class label per image:

- ``recordio``: an insightface pack (``train.rec`` + ``train.idx`` + ``property``), read through
  ``facebench.io.recordio`` (no mxnet). Identity of an image = its class number in the pack.
- ``folder``: ``root/<identity>/<image>`` (``.jpg .jpeg .png .bmp .webp``, any case); identities are the
  sub-folders holding at least one image, labelled by their names in code-point order.
- ``list``: a text file of ``<path> <label>`` lines (the overlap tool's ``train_list.txt``, FaceX-Zoo and
  insightface lists) or ``<path> <label> x1 y1 ... x5 y5`` lines (DeepGlint ``msra_lmk``: raw images aligned
  with their 5 landmarks); paths relative to ``root`` (default: the list file's folder). Identity of an
  image = the folder holding it (``identity_key = "dir"``) or its label (``"label"``).

Remapping (``identities`` file, one identity per line, e.g. v1c-R's ``identities.txt`` or the unsorted
``deepglint_unoverlap_list.txt``): images of unlisted identities are dropped, and the label of an image is
the rank of its identity in the code-point-sorted list (the overlap tool's ``new_label`` rule); a listed
identity with no image is an error.

Images become 112x112 ArcFace chips (aligned with landmarks when the list gives them; otherwise a crop
that is not 112x112 is resized on its short side and centre-cropped) and are normalised by the training
profile. Augmentation: a horizontal flip decided per sample by the sampler.

Sampler (:class:`StepSampler`): the global batch of step ``k`` is a pure function of ``(seed, k)``: epoch
``e = k // steps_per_epoch`` visits the images in the order of a permutation drawn from
``numpy.random.Generator(PCG64([seed, e]))`` (then one flip bit per position from the same generator),
``steps_per_epoch = floor(N / global_batch)`` (the last partial batch is dropped), and rank ``r`` of ``W``
takes positions ``[r B, (r + 1) B)`` of the global batch (``B = global_batch / W``). Resuming at step ``k`` is
exact, and the global batch does not depend on the number of ranks or of loader workers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import torch

from facebench.errors import FacebenchError, where
from facebench.registry import Registry
from facebench.io.textlines import iter_lines, open_text
from facebench.extraction.images import (
    align,
    arcface_chip,
    decode_image,
    read_image,
    to_arcface_crop,
)
from facebench.extraction.preprocess import Profile

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
IDENTITY_KEYS: Registry[str] = Registry("identity key", [
    ("dir", "the folder of the image's path"),
    ("label", "the list's label column"),
])
"""``[data] identity_key`` of a list source -> what names an image's identity."""
CHIP_SIZE = 112


class _StringTable:
    """Many strings in one bytes buffer plus offsets: compact, and cheap to share with forked workers."""

    def __init__(self, items: Sequence[str]) -> None:
        encoded = [s.encode("utf-8", "surrogateescape") for s in items]
        self._offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(b) for b in encoded], out=self._offsets[1:])
        self._blob = b"".join(encoded)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, i: int) -> str:
        return self._blob[self._offsets[i] : self._offsets[i + 1]].decode("utf-8", "surrogateescape")

    def take(self, keep: np.ndarray) -> _StringTable:
        return _StringTable([self[int(i)] for i in keep])


class TrainingSource(Protocol):
    """Images with labels: ``labels`` (int64, one per image), ``identity(i)``, ``load(i)`` -> uint8 RGB chip."""

    origin: str
    labels: np.ndarray

    def __len__(self) -> int: ...

    def identity_keys(self) -> list[str]: ...

    def load(self, i: int) -> np.ndarray: ...

    def describe(self, i: int) -> str: ...

    def subset(self, keep: np.ndarray, labels: np.ndarray) -> TrainingSource: ...


class RecordSource:
    """An insightface RecordIO pack (``facebench.io.recordio.RecordPack``)."""

    def __init__(self, path: str | Path) -> None:
        from facebench.io.recordio import RecordPack

        self.origin = str(path)
        self.pack = RecordPack(path)
        self.rows = np.arange(len(self.pack), dtype=np.int64)
        self.labels = self.pack.labels()
        self.declared_classes = self.pack.num_classes

    def __len__(self) -> int:
        return len(self.rows)

    def identity_keys(self) -> list[str]:
        return [str(v) for v in self.labels.tolist()]

    def load(self, i: int) -> np.ndarray:
        _, payload = self.pack.image(int(self.rows[i]))
        return to_arcface_crop(decode_image(payload, self.describe(i)))

    def describe(self, i: int) -> str:
        return f"{self.pack.rec_path} image {int(self.rows[i])}"

    def subset(self, keep: np.ndarray, labels: np.ndarray) -> RecordSource:
        out = object.__new__(RecordSource)
        out.origin, out.pack, out.declared_classes = self.origin, self.pack, None
        out.rows, out.labels = self.rows[keep], labels
        return out


class PathSource:
    """Image files with labels (from a folder tree or a list file), optionally with 5 landmarks each."""

    def __init__(self, origin: str, paths: Sequence[str], labels: np.ndarray, identities: Sequence[str],
                 landmarks: np.ndarray | None = None) -> None:
        self.origin = origin
        self.paths = paths if isinstance(paths, _StringTable) else _StringTable(paths)
        self.labels = np.asarray(labels, dtype=np.int64)
        self._identities = identities if isinstance(identities, _StringTable) else _StringTable(identities)
        self.landmarks = landmarks
        self.declared_classes: int | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def identity_keys(self) -> list[str]:
        return [self._identities[i] for i in range(len(self._identities))]

    def load(self, i: int) -> np.ndarray:
        image = read_image(self.paths[i], self.describe(i))
        if self.landmarks is not None:
            return align(image, self.landmarks[i], arcface_chip(CHIP_SIZE))
        return to_arcface_crop(image)

    def describe(self, i: int) -> str:
        return f"{self.origin}: {self.paths[i]}"

    def subset(self, keep: np.ndarray, labels: np.ndarray) -> PathSource:
        return PathSource(self.origin, self.paths.take(keep), labels, self._identities.take(keep),
                          None if self.landmarks is None else self.landmarks[keep])


def scan_folder(root: str | Path) -> PathSource:
    """``root/<identity>/<image>``: identities with at least one image, in code-point order -> labels 0..K-1."""
    root = Path(root)
    if not root.is_dir():
        raise FacebenchError(f"{root}: training folder not found (expected root/<identity>/<image>)")
    paths: list[str] = []
    labels: list[int] = []
    names: list[str] = []
    with os.scandir(root) as entries:
        folders = sorted(e.name for e in entries if e.is_dir())
    for name in folders:
        with os.scandir(root / name) as entries:
            files = sorted(e.name for e in entries if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS))
        if not files:
            continue
        label = labels[-1] + 1 if labels else 0
        for f in files:
            paths.append(str(root / name / f))
            labels.append(label)
            names.append(name)
    if not paths:
        raise FacebenchError(f"{root}: no images found in sub-folders (expected root/<identity>/<image> with "
                             f"extensions {', '.join(IMAGE_EXTENSIONS)})")
    return PathSource(str(root), paths, np.asarray(labels, dtype=np.int64), names)


def read_list(list_file: str | Path, root: str | Path | None = None, identity_key: str = "dir") -> PathSource:
    """A ``<path> <label>`` or ``<path> <label> x1 y1 ... x5 y5`` list (the form is taken from the first line)."""
    list_file = Path(list_file)
    IDENTITY_KEYS.check(identity_key, "identity_key")
    base = Path(root) if root is not None else list_file.parent
    base_text = str(base) + os.sep
    handle = open_text(list_file, "training list (path label)")
    paths: list[str] = []
    labels: list[int] = []
    idents: list[str] = []
    marks: list[list[float]] = []
    form: int | None = None
    with handle:
        for number, line in enumerate(handle, start=1):
            text = line.strip()
            if not text:
                continue
            if form is None:
                form = 12 if len(text.split()) == 12 else 2
            fields = text.rsplit(None, form - 1)
            if len(fields) != form:
                raise FacebenchError(
                    f"{where(list_file, number)}: expected {'<path> <label> x1 y1 ... x5 y5' if form == 12 else '<path> <label>'}"
                    f" ({form} columns, as the first line), got {len(fields)}: {text[:80]!r}")
            try:
                label = int(fields[1])
            except ValueError:
                raise FacebenchError(f"{where(list_file, number)}: label {fields[1]!r} is not an integer") from None
            if label < 0:
                raise FacebenchError(f"{where(list_file, number)}: label {label} is negative")
            if form == 12:
                try:
                    marks.append([float(v) for v in fields[2:]])
                except ValueError:
                    raise FacebenchError(f"{where(list_file, number)}: landmarks must be 10 numbers") from None
            path = fields[0]
            if identity_key == "dir":
                folder, sep, _ = path.rpartition("/")
                folder = folder.rpartition("/")[2]
                if not sep or not folder:
                    raise FacebenchError(
                        f"{where(list_file, number)}: path {path!r} has no identity folder; use "
                        "identity_key = \"label\" to take identities from the labels")
                idents.append(folder)
            else:
                idents.append(str(label))
            paths.append(path if path.startswith("/") else base_text + path)
            labels.append(label)
    if not paths:
        raise FacebenchError(f"{list_file}: empty list")
    landmarks = np.asarray(marks, dtype=np.float64).reshape(-1, 5, 2) if form == 12 else None
    return PathSource(str(list_file), paths, np.asarray(labels, dtype=np.int64), idents, landmarks)


def read_identity_list(path: str | Path) -> list[str]:
    """Identities, one per line (blank lines skipped); a repeated identity is an error naming both lines."""
    seen: dict[str, int] = {}
    for number, name in iter_lines(path, "identity list"):
        if name in seen:
            raise FacebenchError(f"{where(path, number)}: identity {name!r} repeats line {seen[name]}")
        seen[name] = number
    if not seen:
        raise FacebenchError(f"{path}: empty identity list")
    return list(seen)


def remap_identities(source: TrainingSource, identities: Sequence[str], origin: str) -> TrainingSource:
    """Keep the images of listed identities; label = rank of the identity in code-point order."""
    order = {name: k for k, name in enumerate(sorted(identities))}
    keys = source.identity_keys()
    new = np.fromiter((order.get(k, -1) for k in keys), dtype=np.int64, count=len(keys))
    keep = np.flatnonzero(new >= 0)
    if keep.size == 0:
        raise FacebenchError(f"{origin}: none of the {len(identities)} listed identities has an image in "
                             f"{source.origin} (identities there look like {keys[0]!r})")
    present = np.zeros(len(order), dtype=bool)
    present[new[keep]] = True
    if not present.all():
        missing = [name for name, k in order.items() if not present[k]]
        raise FacebenchError(
            f"{origin}: {len(missing)} listed identities have no image in {source.origin}, e.g. "
            f"{', '.join(map(repr, missing[:5]))}")
    dropped = len(keys) - keep.size
    if dropped:
        log.info("%s: kept %d of %d images (%d identities); dropped %d images of unlisted identities",
                 origin, keep.size, len(keys), len(order), dropped)
    return source.subset(keep, new[keep])


@dataclass(frozen=True)
class DataSpec:
    """What to train on (the ``[data]`` section of a training config, validated there)."""

    source: str
    path: str
    root: str | None = None
    identities: str | None = None
    identity_key: str = "dir"
    num_classes: int | None = None


SOURCES: Registry[Callable[[DataSpec], TrainingSource]] = Registry("data source", [
    ("recordio", lambda spec: RecordSource(spec.path)),
    ("folder", lambda spec: scan_folder(spec.path)),
    ("list", lambda spec: read_list(spec.path, spec.root, spec.identity_key)),
])
"""``[data] source`` -> the reader of ``spec.path``: an InsightFace RecordIO pack, a folder per identity,
or a ``<path> <label>`` list."""


def open_source(spec: DataSpec) -> tuple[TrainingSource, int]:
    """The training images and the number of classes (checked against ``spec.num_classes`` when set)."""
    source = SOURCES.get(spec.source)(spec)
    if spec.identities:
        source = remap_identities(source, read_identity_list(spec.identities), spec.identities)
        classes = int(source.labels.max()) + 1
    else:
        classes = int(source.labels.max()) + 1
        declared = getattr(source, "declared_classes", None)
        if declared is not None:
            if declared < classes:
                raise FacebenchError(f"{source.origin}: property says {declared} classes but label {classes - 1} occurs")
            classes = declared
        used = np.unique(source.labels).size
        if used < classes:
            log.warning("%s: %d of %d labels have no image", source.origin, classes - used, classes)
    if spec.num_classes is not None and spec.num_classes != classes:
        raise FacebenchError(
            f"data.num_classes = {spec.num_classes}, but {spec.path} gives {classes} classes"
            + (f" after remapping through {spec.identities}" if spec.identities else ""))
    return source, classes


def epoch_order(n: int, seed: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    """The visiting order of epoch ``epoch`` and one flip bit per position (see the module docstring)."""
    rng = np.random.Generator(np.random.PCG64([seed, epoch]))
    return rng.permutation(n), rng.random(n) < 0.5


@dataclass(frozen=True)
class StepSampler:
    """Batches of ``(image index, flip)`` by step (see the module docstring); ``flip=False`` never flips."""

    n: int
    global_batch: int
    seed: int
    rank: int = 0
    world_size: int = 1
    flip: bool = True

    def __post_init__(self) -> None:
        if self.global_batch % self.world_size:
            raise FacebenchError(f"global batch {self.global_batch} is not divisible by {self.world_size} ranks")
        if self.n < self.global_batch:
            raise FacebenchError(f"{self.n} training images are fewer than one global batch ({self.global_batch})")

    @property
    def steps_per_epoch(self) -> int:
        return self.n // self.global_batch

    def batches(self, start: int, stop: int) -> Iterator[list[tuple[int, bool]]]:
        """This rank's batch of every step in ``[start, stop)``."""
        per = self.global_batch // self.world_size
        cached: tuple[int, np.ndarray, np.ndarray] | None = None
        for step in range(start, stop):
            epoch, k = divmod(step, self.steps_per_epoch)
            if cached is None or cached[0] != epoch:
                cached = (epoch, *epoch_order(self.n, self.seed, epoch))
            lo = k * self.global_batch + self.rank * per
            idx = cached[1][lo : lo + per]
            flips = cached[2][lo : lo + per] if self.flip else np.zeros(per, dtype=bool)
            yield list(zip(idx.tolist(), flips.tolist()))

    def state(self, step: int) -> dict[str, int]:
        """What a checkpoint records of the sampler after ``step`` steps."""
        epoch, k = divmod(step, self.steps_per_epoch)
        return {"images": self.n, "global_batch": self.global_batch, "seed": self.seed, "epoch": epoch,
                "batch_in_epoch": k, "step": step}


class _StepBatches:
    """``batch_sampler`` for a DataLoader: the sampler's batches of steps ``[start, stop)``."""

    def __init__(self, sampler: StepSampler, start: int, stop: int) -> None:
        self.sampler, self.start, self.stop = sampler, start, stop

    def __iter__(self) -> Iterator[list[tuple[int, bool]]]:
        return self.sampler.batches(self.start, self.stop)

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


class ChipDataset(torch.utils.data.Dataset):
    """``dataset[(i, flip)]`` -> (uint8 RGB chip, label); flip = horizontal mirror of the chip."""

    def __init__(self, source: TrainingSource) -> None:
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, item: tuple[int, bool]) -> tuple[np.ndarray, int]:
        i, flip = item
        chip = self.source.load(i)
        if chip.shape != (CHIP_SIZE, CHIP_SIZE, 3):
            raise FacebenchError(f"{self.source.describe(i)}: expected a {CHIP_SIZE}x{CHIP_SIZE} chip, got {chip.shape}")
        if flip:
            chip = chip[:, ::-1]
        return chip, int(self.source.labels[i])


class Collate:
    """Stack chips, normalise them by ``profile`` -> (float32 NCHW tensor, int64 labels)."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile

    def __call__(self, items: list[tuple[np.ndarray, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        chips = np.stack([c for c, _ in items])
        labels = torch.tensor([l for _, l in items], dtype=torch.int64)
        return torch.from_numpy(self.profile.normalise(chips)), labels


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


def make_loader(source: TrainingSource, sampler: StepSampler, profile: Profile, start: int, stop: int,
                workers: int, pin_memory: bool = False) -> torch.utils.data.DataLoader:
    """A DataLoader yielding this rank's (images, labels) for steps ``[start, stop)`` in step order."""
    return torch.utils.data.DataLoader(
        ChipDataset(source),
        batch_sampler=_StepBatches(sampler, start, stop),
        num_workers=workers,
        collate_fn=Collate(profile),
        pin_memory=pin_memory,
        worker_init_fn=_worker_init if workers else None,
        persistent_workers=False,
        prefetch_factor=4 if workers else None,
        generator=torch.Generator().manual_seed(sampler.seed),  # worker seeds; never the global generator
    )


def describe_source(source: TrainingSource, classes: int) -> dict[str, Any]:
    """JSON-ready summary for logs and checkpoints."""
    return {"origin": source.origin, "images": len(source), "classes": classes}
