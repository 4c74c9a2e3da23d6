"""A synthetic IJB-C-format world (meta files, features, galleries and probes) for tests that run the IJB
protocols end to end, and the `facebench run --features` call they make."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facebench.cli import main as cli_main
from facebench.extraction.images import ARCFACE_TEMPLATE
from facebench.io import ijb
from facebench.results import read_results


@dataclass
class World:
    root: Path
    features: Path
    names: list[str]
    templates: np.ndarray
    medias: np.ndarray
    scores: np.ndarray
    t1: np.ndarray
    t2: np.ndarray
    label: np.ndarray
    galleries: dict[str, list[tuple[int, int]]]  # name -> [(template, subject)]
    probes: list[tuple[int, int]]
    feats: np.ndarray = field(repr=False, default=None)


def build_world(root: Path, seed: int = 0, n_subjects: int = 30, n_unknown: int = 5, dim: int = 32) -> World:
    """~350 images: one gallery template per subject (G1 = first half), two probes per subject plus probes
    of ``n_unknown`` subjects in neither gallery; all gallery x probe pairs except ~30% of impostors."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_subjects + n_unknown, dim))
    ids = iter(rng.choice(np.arange(1, 100000), 400, replace=False).tolist())
    names, templates, medias, subjects_of_image = [], [], [], []
    media_counter = 50000

    def add_template(subject: int) -> int:
        nonlocal media_counter
        t = next(ids)
        for _ in range(int(rng.integers(1, 4))):
            media_counter += int(rng.integers(1, 5))
            for _ in range(int(rng.integers(1, 3))):
                names.append(f"{len(names) + 1}.jpg")
                templates.append(t)
                medias.append(media_counter)
                subjects_of_image.append(subject)
        return t

    gallery = [(add_template(s), s) for s in range(n_subjects)]
    probes = [(add_template(s), s) for s in range(n_subjects) for _ in range(2)]
    probes += [(add_template(s), s) for s in range(n_subjects, n_subjects + n_unknown)]
    n = len(names)
    sub = np.array(subjects_of_image)
    feats = (centres[sub] + rng.uniform(0.6, 2.0, (n, 1)) * rng.standard_normal((n, dim))) * rng.uniform(1, 25, (n, 1))
    feats = feats.astype(np.float32)
    scores = rng.integers(100000, 1000000, n) / 1e6  # six decimals: written and read back exactly
    landmarks = ARCFACE_TEMPLATE[None] + rng.normal(0, 1, (n, 5, 2))
    t1, t2, label = [], [], []
    for g, gs in gallery:
        for p, ps in probes:
            if gs == ps or rng.random() < 0.7:
                t1.append(g)
                t2.append(p)
                label.append(gs == ps)
    order = rng.permutation(len(t1))
    t1, t2, label = np.array(t1)[order], np.array(t2)[order], np.array(label)[order]
    half = n_subjects // 2
    galleries = {"G1": gallery[:half], "G2": gallery[half:]}
    meta = ijb.MetaImages(np.array(names, dtype=object), np.array(templates), np.array(medias), landmarks, scores)

    def search(members):
        rows_t = [t for t, _ in members for _ in range(templates.count(t))]
        rows_s = [s for t, s in members for _ in range(templates.count(t))]
        return ijb.SearchSet(np.array(rows_t), np.array(rows_s))

    searches = {"gallery1": search(galleries["G1"]), "gallery2": search(galleries["G2"]), "probes": search(probes)}
    ijb.write_ijb(root, "ijbc", meta, ijb.TemplatePairs(t1, t2, label), searches)
    features = root / "feats.npy"
    np.save(features, feats)
    return World(root, features, names, np.array(templates), np.array(medias), scores, t1, t2, label, galleries,
                 probes, feats)


def run_cli(world: World, benchmarks: str, out: Path, *extra: str, features: Path | None = None) -> tuple[int, dict]:
    args = ["run", "--features", str(features or world.features), "-b", benchmarks, "--data-root", str(world.root),
            "--out", str(out), "--no-progress", *extra]
    status = cli_main(args)
    return status, read_results(out)
