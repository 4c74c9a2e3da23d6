"""`--benchmark identify:PATH`: gallery/probe lists (open set, unmated probes) and an identity folder's seeded
split, against open_set_identification on the full matrix and the written-out AP."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facebench.cli import main
from facebench.evaluate.folder import identification_split, list_folder
from facebench.metrics.identification import open_set_identification
from facebench.metrics.megaface import l2_normalise
from tests.test_folder import make_folder
from tests.test_tinyface import brute_force


def _run(source: Path, feats: Path, out: Path) -> dict:
    status = main(["-q", "run", "-b", f"identify:{source}", "--features", str(feats), "--out", str(out), "--no-speed"])
    assert status == 0
    doc = json.loads((out / "results.json").read_text())
    return doc["benchmarks"][f"identify_{source.name}"]


def test_lists_open_set(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "people", [3, 3, 3, 3, 3, 2, 2], size=112)
    paths = sorted(str(p.relative_to(root)) for p in root.glob("id_*/*.png"))
    gallery = [p for p in paths if p.endswith("img_0.png") and not p.startswith(("id_05", "id_06"))]
    probes = [p for p in paths if p not in gallery]
    (root / "gallery.txt").write_text("".join(f"{p} {p.split('/')[0]}\n" for p in gallery))
    (root / "probes.txt").write_text(
        "".join(f"{p} {'-' if p.startswith('id_06') else p.split('/')[0]}\n" for p in probes)
    )
    rng = np.random.default_rng(0)
    feats = tmp_path / "feats"
    feats.mkdir()
    g, p = rng.standard_normal((len(gallery), 8)).astype(np.float32), rng.standard_normal((len(probes), 8)).astype(np.float32)
    np.save(feats / "identify_people_gallery.npy", g)
    np.save(feats / "identify_people_probes.npy", p)
    entry = _run(root, feats, tmp_path / "out")
    g_lab = np.array([x.split("/")[0] for x in gallery])
    p_lab = np.array([x.split("/")[0] if not x.startswith("id_06") else "none" for x in probes])
    ge, pe = l2_normalise(g), l2_normalise(p)
    ref = open_set_identification(pe @ ge.T, p_lab, g_lab, ranks=(1, 5), fpirs=(1e-2, 1e-1))
    assert entry["n_mated"] == ref["n_mated"] == 10 and entry["n_nonmated"] == ref["n_nonmated"] == 4
    assert entry["metrics"]["rank"]["1"] == ref["rank_rates"][1] and entry["metrics"]["rank"]["5"] == ref["rank_rates"][5]
    assert entry["metrics"]["tpir_at_fpir"]["1e-01"] == ref["tpir"][0.1]
    mated = ref["mated"]
    codes = {name: k for k, name in enumerate(sorted(set(g_lab)))}
    _, mean_ap, _ = brute_force(pe[mated], np.array([codes[x] for x in p_lab[mated]]), ge,
                                np.array([codes[x] for x in g_lab]), ge[:0])
    assert entry["metrics"]["map"] == pytest.approx(mean_ap, abs=1e-12)


def test_identity_folder_split(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "faces", [4, 3, 5, 4, 3, 3], size=112)
    listing = list_folder(root)
    rng = np.random.default_rng(1)
    n = len(listing.paths)
    x = rng.standard_normal((n, 8)).astype(np.float32)
    split = identification_split(listing.groups, 0)
    feats = tmp_path / "feats"
    feats.mkdir()
    np.save(feats / "identify_faces_gallery.npy", x[split.gallery])
    np.save(feats / "identify_faces_probes.npy", x[split.probes])
    entry = _run(root, feats, tmp_path / "out")
    e = l2_normalise(x)
    ref = open_set_identification(e[split.probes] @ e[split.gallery].T, split.probe_subjects, split.gallery_subjects,
                                  ranks=(1,), fpirs=(1e-1,))
    assert entry["metrics"]["rank"]["1"] == ref["rank_rates"][1]
    assert entry["metrics"]["tpir_at_fpir"]["1e-01"] == ref["tpir"][0.1]
    assert entry["rules"]["split"].startswith("seeded split")
