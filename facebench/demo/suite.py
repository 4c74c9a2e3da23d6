"""The demo suite: mini benchmarks in the official file formats, rendered from the procedural faces.

Everything is a pure function of the seed, so the suite is rebuilt identically anywhere (its manifest
records the sha256 of each file). Layout under the suite root:

- ``demo_verify.bin``: an insightface-style pack, 10 folds x (20 same + 20 different) pairs of aligned
  112x112 JPEG crops; every fold has its own identities (split ``verify``).
- ``demo_val.bin``: the same layout from split ``val`` with 10 folds x (60 same + 60 different) pairs, for the
  trainer's periodic validation (rendered only when asked for: ``parts`` of :func:`build_suite`,
  `facebench demo --training-set`).
- ``demo_ijb/IJBC/...``: the insightface IJB testsuite layout (meta files, 1:1 pair list, 1:N gallery and
  probe CSVs, loose crops) for split ``ijb``: each subject has a gallery template (2 media, 3 images: a
  still and video-like frames sharing a media id) and a probe template (2 stills); every gallery x probe
  template pair is listed;
  galleries G1/G2 hold the first/second half of the subjects.
- ``demo_megaface/...``: the MegaFace devkit layout (FaceScrub-style probe list of split
  ``megaface_probe``, distractor lists of 10, 100 and 1,000 images of split ``megaface_distractor``, noise
  lists, aligned images).
- ``suite.json``: version, seed, settings, the parts rendered and the sha256 of every file; written last (the
  images before it are written in place, without a sync each: a suite without an intact manifest is
  rendered again).
  A part missing from an intact suite is added to it; any other difference renders the asked parts again.

The training images of the demo checkpoint (split ``train``) are written by :func:`write_training_folder`
as one folder per identity.
"""

from __future__ import annotations

import json
import multiprocessing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import cv2
import numpy as np

from facebench.demo.params import FaceIdentity, Nuisance, identity_params, image_nuisance
from facebench.demo.render import render, render_aligned
from facebench.demo.splits import split_identities
from facebench.atomic import sha256_file, write_bytes, write_json
from facebench.io.binpack import write_bin
from facebench.progress import progress

SUITE_VERSION = 1
DEMO_SEED = 20200207  # AAAI 2020, the MV-Softmax paper's conference
JPEG_QUALITY = 95


DEMO_PARTS = ("verify", "ijb", "megaface")
"""The parts `facebench demo` evaluates; ``val`` (the trainer's validation pack) is rendered with the training
set."""

TRAINING_SET = {"n_identities": 1000, "images_per_identity": 12, "difficulty": 0.5}
"""The demo checkpoint's training images (split ``train``), as `facebench demo --training-set` renders them."""


@dataclass(frozen=True)
class SuiteConfig:
    """Sizes and difficulties of the demo benchmarks."""

    seed: int = DEMO_SEED
    verify_pairs_per_fold: int = 40
    val_pairs_per_fold: int = 120
    verify_difficulty: float = 0.6
    ijb_subjects: int = 100
    ijb_gallery_media: tuple[int, ...] = (1, 2)
    ijb_probe_media: tuple[int, ...] = (1, 1)
    ijb_difficulty: float = 1.0
    megaface_identities: int = 20
    megaface_images_per_identity: int = 6
    megaface_sizes: tuple[int, ...] = (10, 100, 1000)
    megaface_difficulty: float = 0.6


def jpeg(image_rgb: np.ndarray) -> bytes:
    """Encode an RGB crop as a JPEG (quality 95, as packs store them)."""
    ok, buffer = cv2.imencode(".jpg", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:  # pragma: no cover
        raise RuntimeError("JPEG encoding failed")
    return buffer.tobytes()


def _aligned(face: FaceIdentity, nuisance: Nuisance) -> bytes:
    return jpeg(render_aligned(face, nuisance))


def _raw(face: FaceIdentity, nuisance: Nuisance) -> tuple[bytes, np.ndarray]:
    img, points = render(face, nuisance)
    return jpeg(img), points


def aligned_jpeg(job: tuple[int, int, int, float]) -> bytes:
    """``(seed, identity, image, difficulty)`` -> the aligned 112x112 crop as JPEG bytes."""
    seed, identity, image, difficulty = job
    return _aligned(identity_params(seed, identity), image_nuisance(seed, identity, image, difficulty))


def raw_jpeg(job: tuple[int, int, int, float]) -> tuple[bytes, np.ndarray]:
    """``(seed, identity, image, difficulty)`` -> a raw 160x160 render as JPEG and its 5 landmarks."""
    seed, identity, image, difficulty = job
    return _raw(identity_params(seed, identity), image_nuisance(seed, identity, image, difficulty))


def _render_identity(task: tuple[Callable[[FaceIdentity, Nuisance], Any], int, int, float, tuple[int, ...]]) -> list[Any]:
    """``(draw, seed, identity, difficulty, images)`` -> ``draw`` of each image, the identity drawn once."""
    draw, seed, identity, difficulty, images = task
    face = identity_params(seed, identity)
    return [draw(face, image_nuisance(seed, identity, k, difficulty)) for k in images]


def render_map(draw: Callable[[FaceIdentity, Nuisance], Any], jobs: list[tuple[int, int, int, float]],
               processes: int = 2, label: str = "render") -> list[Any]:
    """``draw(identity_params(seed, identity), image_nuisance(seed, identity, image, difficulty))`` for each
    job ``(seed, identity, image, difficulty)``, in job order: the jobs of one ``(seed, identity,
    difficulty)`` form one task, so each identity's parameters are drawn once."""
    groups: dict[tuple[int, int, float], list[int]] = {}
    for k, (seed, identity, _, difficulty) in enumerate(jobs):
        groups.setdefault((seed, identity, difficulty), []).append(k)
    tasks = [(draw, seed, identity, difficulty, tuple(jobs[k][2] for k in rows))
             for (seed, identity, difficulty), rows in groups.items()]
    done = parallel_map(_render_identity, tasks, processes, label, sizes=[len(t[4]) for t in tasks])
    out: list[Any] = [None] * len(jobs)
    for rows, results in zip(groups.values(), done):
        for k, result in zip(rows, results):
            out[k] = result
    return out


def parallel_map(fn: Callable[[Any], Any], jobs: list[Any], processes: int = 2, label: str = "render",
                 sizes: list[int] | None = None) -> list[Any]:
    """Map in order over worker processes (inline for small job lists), with progress under ``label``
    counting ``sizes[i]`` items for job ``i`` (default 1)."""
    sizes = sizes if sizes is not None else [1] * len(jobs)
    with progress(sum(sizes), label) as bar:
        if processes <= 1 or sum(sizes) < 200:
            return _counted(map(fn, jobs), sizes, bar)
        chunk = max(1, 64 * len(jobs) // max(1, sum(sizes)))  # about 64 items per chunk
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            return _counted(pool.imap(fn, jobs, chunksize=chunk), sizes, bar)


def _counted(results: Iterable[Any], sizes: list[int], bar: Any) -> list[Any]:
    """``list(results)``, counting ``sizes[i]`` on ``bar`` for result ``i``."""
    out = []
    for result, size in zip(results, sizes):
        out.append(result)
        bar.update(size)
    return out


def verification_pairs(identities: np.ndarray, pairs_per_fold: int, n_folds: int = 10) -> tuple[list[tuple[int, int, int, int]], np.ndarray]:
    """Pairs ``(id_a, image_a, id_b, image_b)`` and labels, fold by fold: each fold uses its own
    ``pairs_per_fold // 2`` identities; same pair j = images 0 and 1 of identity j; different pair j =
    image 2 of identity j and image 3 of identity j+1 (cyclic within the fold)."""
    half = pairs_per_fold // 2
    if len(identities) < n_folds * half:
        raise ValueError(f"need {n_folds * half} identities, got {len(identities)}")
    pairs, labels = [], []
    for k in range(n_folds):
        ids = identities[k * half : (k + 1) * half]
        for j in range(half):
            pairs.append((int(ids[j]), 0, int(ids[j]), 1))
            labels.append(True)
        for j in range(half):
            pairs.append((int(ids[j]), 2, int(ids[(j + 1) % half]), 3))
            labels.append(False)
    return pairs, np.asarray(labels)


def write_verify_pack(path: Path, split: str, pairs_per_fold: int, config: SuiteConfig, processes: int = 2) -> None:
    """Render a 10-fold pair pack of ``pairs_per_fold`` pairs a fold from ``split`` identities into ``path``
    (insightface ``.bin`` format)."""
    pairs, issame = verification_pairs(split_identities(split, 10 * (pairs_per_fold // 2)), pairs_per_fold)
    jobs = []
    for a, ia, b, ib in pairs:
        jobs += [(config.seed, a, ia, config.verify_difficulty), (config.seed, b, ib, config.verify_difficulty)]
    blobs = render_map(_aligned, jobs, processes, f"render {path.stem}")
    write_bin(path, blobs, issame)


def write_ijb_set(root: Path, config: SuiteConfig, processes: int = 2) -> None:
    """Render the IJB-style set into ``root/IJBC`` (prefix ``ijbc``: the reader's file names)."""
    from facebench.io.ijb import MetaImages, SearchSet, TemplatePairs, write_ijb

    subjects = split_identities("ijb", config.ijb_subjects)
    rng = np.random.default_rng([config.seed, 5])
    names, templates, medias, jobs = [], [], [], []
    template_subject: dict[int, int] = {}
    media_id = 0
    for s_index, subject in enumerate(subjects):
        image = 0
        for role, layout in (("gallery", config.ijb_gallery_media), ("probe", config.ijb_probe_media)):
            template = 2 * s_index + (1 if role == "gallery" else 2)
            template_subject[template] = int(subject)
            for frames in layout:
                media_id += 1
                for _ in range(frames):
                    names.append(f"{len(names) + 1}.jpg")
                    templates.append(template)
                    medias.append(media_id)
                    jobs.append((config.seed, int(subject), image, config.ijb_difficulty))
                    image += 1
    rendered = render_map(_raw, jobs, processes, "render demo_ijb")
    landmarks = np.stack([points for _, points in rendered]).astype(np.float64)
    scores = np.round(rng.uniform(0.75, 1.0, len(names)), 6)
    images = MetaImages(np.asarray(names), np.asarray(templates), np.asarray(medias), landmarks, scores)
    gallery = np.array(sorted(t for t in template_subject if t % 2 == 1))
    probe = np.array(sorted(t for t in template_subject if t % 2 == 0))
    t1, t2 = np.repeat(gallery, len(probe)), np.tile(probe, len(gallery))
    label = np.array([template_subject[a] == template_subject[b] for a, b in zip(t1, t2)])
    half = len(gallery) // 2

    def search(ts: np.ndarray) -> SearchSet:
        rows = np.isin(np.asarray(templates), ts)
        t = np.asarray(templates)[rows]
        return SearchSet(t, np.array([template_subject[int(x)] for x in t]), np.asarray(names)[rows])

    written = write_ijb(
        root,
        "ijbc",
        images,
        pairs=TemplatePairs(t1, t2, label),
        searches={"gallery1": search(gallery[:half]), "gallery2": search(gallery[half:]), "probes": search(probe)},
    )
    write_images(written["images"], zip(names, (blob for blob, _ in rendered)))


def write_megaface_set(root: Path, config: SuiteConfig, processes: int = 2) -> None:
    """Render the MegaFace-style set into ``root/megaface`` (devkit lists, noise lists, aligned images)."""
    from facebench.io.megaface import write_distractor_list, write_noise_list, write_probe_list

    mf = root / "megaface"
    lists = mf / "devkit" / "templatelists"
    probe_ids = split_identities("megaface_probe", config.megaface_identities)
    probe_paths, probe_names, jobs = [], [], []
    for identity in probe_ids:
        name = f"Demo_{int(identity):07d}"
        for k in range(config.megaface_images_per_identity):
            probe_paths.append(f"{name}/{name}_{k}.png")
            probe_names.append(name)
            jobs.append((config.seed, int(identity), k, config.megaface_difficulty))
    distractor_ids = split_identities("megaface_distractor", max(config.megaface_sizes))
    distractor_paths = [f"{int(i) % 1000:03d}/{int(i)}@N00/{int(i)}_0.jpg" for i in distractor_ids]
    jobs += [(config.seed, int(i), 0, config.megaface_difficulty) for i in distractor_ids]
    blobs = render_map(_aligned, jobs, processes, "render demo_megaface")
    write_images(mf / "FaceScrub", zip(probe_paths, blobs))
    write_images(mf / "MegaFace", zip(distractor_paths, blobs[len(probe_paths):]))
    write_probe_list(lists / "facescrub_features_list.json", probe_paths, probe_names)
    for size in config.megaface_sizes:
        write_distractor_list(lists / f"megaface_features_list.json_{size}_1", distractor_paths[:size])
    comment = "demo noise lists: no image of the procedural demo is mislabelled"
    write_noise_list(mf / "facescrub_noises.txt", [], comment)
    write_noise_list(mf / "megaface_noises.txt", [], comment)


def write_images(directory: Path, images: Iterable[tuple[str, bytes]]) -> None:
    """Write each ``(relative path, encoded bytes)`` under ``directory``, in place and without a sync: the
    suite's manifest, written last with every file's sha256, is what makes a suite whole."""
    made: set[Path] = set()
    for relative, blob in images:
        target = directory / relative
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)
            made.add(target.parent)
        target.write_bytes(blob)


def _intact_manifest(root: Path, config: SuiteConfig) -> dict[str, Any] | None:
    """``root/suite.json`` when it matches this version and config and every file it lists is intact."""
    manifest = root / "suite.json"
    if not manifest.is_file():
        return None
    try:
        info = json.loads(manifest.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None
    if info.get("version") != SUITE_VERSION or info.get("config") != json.loads(json.dumps(asdict(config))):
        return None
    files = info.get("files", {})
    if not all((root / name).is_file() and sha256_file(root / name) == digest for name, digest in files.items()):
        return None
    return info


def suite_is_current(root: Path, config: SuiteConfig, parts: Iterable[str]) -> bool:
    """True when ``root/suite.json`` matches this version and config, lists every one of ``parts`` and every
    file it lists is intact."""
    info = _intact_manifest(Path(root), config)
    return info is not None and set(parts) <= set(info.get("parts", []))


def build_suite(
    root: str | Path,
    config: SuiteConfig = SuiteConfig(),
    force: bool = False,
    processes: int = 2,
    parts: Iterable[str] = DEMO_PARTS,
) -> Path:
    """Render ``parts`` of the demo suite into ``root``: those an intact suite of the same config already
    holds are kept (all are rendered again with ``force``)."""
    root = Path(root)
    builders = {
        "verify": lambda: write_verify_pack(root / "demo_verify.bin", "verify", config.verify_pairs_per_fold, config,
                                            processes),
        "val": lambda: write_verify_pack(root / "demo_val.bin", "val", config.val_pairs_per_fold, config, processes),
        "ijb": lambda: write_ijb_set(root / "demo_ijb", config, processes),
        "megaface": lambda: write_megaface_set(root / "demo_megaface", config, processes),
    }
    wanted = set(parts)
    if wanted - set(builders):
        raise ValueError(f"unknown demo suite parts {sorted(wanted - set(builders))}; known: {', '.join(builders)}")
    info = None if force else _intact_manifest(root, config)
    have = set(info.get("parts", [])) if info else set()
    missing = [name for name in builders if name in wanted - have]
    if not missing:
        return root
    root.mkdir(parents=True, exist_ok=True)
    (root / "suite.json").unlink(missing_ok=True)
    for name in missing:
        builders[name]()
    files = {
        p.relative_to(root).as_posix(): sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "suite.json"
    }
    write_json(root / "suite.json", {"version": SUITE_VERSION, "config": asdict(config),
                                     "parts": sorted(have | set(missing)), "files": files})
    return root


def write_training_folder(
    out_dir: str | Path,
    n_identities: int,
    images_per_identity: int,
    difficulty: float,
    seed: int = DEMO_SEED,
    processes: int = 2,
) -> Path:
    """Aligned training crops of split ``train`` as ``out_dir/<identity>/<image>.jpg`` (one folder per
    identity, the layout `facebench train` reads); skipped when ``out_dir/done.json`` says it is complete."""
    out_dir = Path(out_dir)
    settings = {"n_identities": n_identities, "images_per_identity": images_per_identity,
                "difficulty": difficulty, "seed": seed, "version": SUITE_VERSION}
    done = out_dir / "done.json"
    if done.is_file() and json.loads(done.read_text(encoding="utf-8")) == settings:
        return out_dir
    ids = split_identities("train", n_identities)
    jobs = [(seed, int(i), k, difficulty) for i in ids for k in range(images_per_identity)]
    blobs = render_map(_aligned, jobs, processes, "render training set")
    for (seed_, identity, k, _), blob in zip(jobs, blobs):
        write_bytes(out_dir / f"{identity:07d}" / f"{k:03d}.jpg", blob)
    write_json(done, settings)
    return out_dir
