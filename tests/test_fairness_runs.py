"""--groups on your own photos (folder:PATH): pair and open-set identification fairness against brute force."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from facebench.cli import main
from facebench.evaluate.folder import identification_split, list_folder
from facebench.results import read_results


def _folder(root: Path, n_ids: int = 24, per_id: int = 3) -> Path:
    rng = np.random.default_rng(0)
    for k in range(n_ids):
        (root / f"id_{k:02d}").mkdir(parents=True)
        for j in range(per_id):
            cv2.imwrite(str(root / f"id_{k:02d}" / f"img_{j}.png"), rng.integers(0, 256, (112, 112, 3)).astype(np.uint8))
    return root


def test_folder_groups_pairs_and_searches(tmp_path):
    root = _folder(tmp_path / "faces")
    listing = list_folder(root)
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((len(listing.identities), 16))
    noise = np.where(np.arange(len(listing.identities)) % 2 == 0, 0.6, 1.2)  # group "odd" is noisier
    feats = (centres[listing.labels] + noise[listing.labels, None] * rng.standard_normal((len(listing.paths), 16)))
    np.save(tmp_path / "f.npy", feats.astype(np.float32))
    group = {name: ("even" if k % 2 == 0 else "odd") for k, name in enumerate(listing.identities)}
    (tmp_path / "g.csv").write_text("key,parity\n" + "".join(f"{n},{g}\n" for n, g in group.items()))
    out = tmp_path / "out"
    status = main(["-q", "run", "-b", f"folder:{root}", "--features", str(tmp_path / "f.npy"), "--out", str(out),
                   "--no-speed", "--groups", str(tmp_path / "g.csv"), "--fairness-fmr", "0.1", "--fairness-boot", "0"])
    assert status == 0
    entry = read_results(out).benchmarks["folder_faces"]
    # open-set searches by probe group, brute force
    emb = feats.astype(np.float32).astype(np.float64)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    split = identification_split(listing.groups, 0)
    gallery_subjects = split.gallery_subjects.tolist()
    mated, nonmated = [], []
    for probe, subject in zip(split.probes.tolist(), split.probe_subjects.tolist()):
        sims = {s: float(emb[probe] @ emb[g]) for g, s in zip(split.gallery.tolist(), gallery_subjects)}
        g = group[listing.identities[subject]]
        if subject in sims:
            rank = 1 + sum(1 for s, v in sims.items() if s != subject and v >= sims[subject])
            mated.append((g, rank, sims[subject]))
        else:
            nonmated.append((g, max(sims.values())))
    best = sorted(v for _, v in nonmated)
    t = min(v for v in best if sum(1 for x in best if x >= v) / len(best) <= 0.1)
    fair = entry.extra["search_fairness"]["parity"]
    assert fair["threshold"] == pytest.approx(t, abs=1e-6)
    t = fair["threshold"] - 1e-12  # BLAS and a dot product differ in the last bits; the threshold is a score
    for g in ("even", "odd"):
        m = [(r, s) for gg, r, s in mated if gg == g]
        n = [s for gg, s in nonmated if gg == g]
        row = fair["groups"][g]
        assert (row["n_mated"], row["n_nonmated"]) == (len(m), len(n))
        assert row["rank1"] == pytest.approx(sum(1 for r, _ in m if r == 1) / len(m), abs=1e-12)
        assert row["fnir"] == pytest.approx(sum(1 for r, s in m if not (r == 1 and s >= t)) / len(m), abs=1e-12)
        if n:
            assert row["fpir"] == pytest.approx(sum(1 for s in n if s >= t) / len(n), abs=1e-12)
    # the pair analysis ran on the same groups, cross-parity impostors apart
    pairs = entry.extra["fairness"]["parity"]["groups"]
    assert pairs["even|odd"]["cross"] and pairs["even|odd"]["n_genuine"] == 0
    assert pairs["odd"]["fnmr"] > pairs["even"]["fnmr"]
    assert "folder_faces 1:N FDR(parity)" in entry.columns.values()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--discard-limit", "0.33"], "--discard-limit 0.33: expected a point of the discard grid"),
        (["--fairness-fmr", "2"], "--fairness-fmr 2.0: expected a rate between 0 and 1"),
        (["--fairness-boot", "-1"], "--fairness-boot -1: expected 0"),
    ],
)
def test_bad_analysis_options_are_refused_before_running(tmp_path, capsys, flags, message):
    status = main(["-q", "run", "-b", "lfw", "--features", str(tmp_path), "--out", str(tmp_path / "o"), *flags])
    assert status == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
