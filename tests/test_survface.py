"""QMUL-SurvFace: the streamed watch-list searches (each CMC tie rule) and their TPIR@FPIR (each --tpir-rule)
equal written-out loops (tests/_openset_loops.py) and open_set_identification on the full matrix; the
official layout end to end, an FPIR its non-mated searches cannot resolve reported as null."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from facebench.cli import main
from facebench.evaluate import rates
from facebench.keys import rate_key
from facebench.evaluate.survface import FPIR_TARGETS, watch_list_searches
from facebench.metrics.identification import TPIR_RULES, open_set_identification
from facebench.metrics.megaface import l2_normalise
from tests import _openset_loops as loops
from facebench.results import read_results


def _exact(rng: np.random.Generator, n: int) -> np.ndarray:
    return (rng.integers(-3, 4, (n, 6)) / 8).astype(np.float32)  # exact products, ties on purpose


@pytest.mark.parametrize("cmc_ties", [">=", ">"])
@pytest.mark.parametrize("block", [1, 5, 1000])
def test_streamed_searches_equal_the_written_out_loop(block: int, cmc_ties: str) -> None:
    rng = np.random.default_rng(3)
    gallery_subjects = rng.integers(0, 12, 40)
    probe_subjects = np.concatenate([rng.integers(0, 12, 50), np.full(30, -1)])
    gallery, probes = _exact(rng, 40), _exact(rng, 80)
    s = watch_list_searches(gallery, gallery_subjects, probes, probe_subjects, block=block, cmc_ties=cmc_ties)
    mates, ranks, strict, nonmated = loops.searches(probes @ gallery.T, probe_subjects, gallery_subjects, cmc_ties)
    assert s.mated.tolist() == np.isin(probe_subjects, gallery_subjects).tolist()
    assert s.mate_ranks.tolist() == ranks and s.rank1_strict.tolist() == strict
    assert s.mate_scores.tolist() == mates and s.nonmated_scores.tolist() == nonmated
    # the same searches as the full-matrix kernel of IJB and folder
    ref = open_set_identification(probes @ gallery.T, probe_subjects, gallery_subjects, ranks=(1,), fpirs=(),
                                  cmc_ties=cmc_ties)
    assert s.mate_ranks.tolist() == ref["mate_ranks"].tolist() and s.rank1_strict.tolist() == ref["rank1_strict"].tolist()
    if cmc_ties == ">":  # ties on purpose: the tie rule matters here
        assert sum(ranks) < sum(loops.searches(probes @ gallery.T, probe_subjects, gallery_subjects)[1])
    for rule in TPIR_RULES:
        values, unmeasurable, _, curve = rates.search_rates(s.mate_scores, s.rank1_strict, s.nonmated_scores, FPIR_TARGETS, rule)
        for f in FPIR_TARGETS:
            assert values["tpir_at_fpir"][rate_key(f)] == loops.tpir(mates, strict, nonmated, rule, f)
        assert list(unmeasurable) == ["tpir_at_fpir.1e-02"]  # 30 non-mated searches resolve 1/30 only
    fpir, dir_ = loops.dir_fpir(mates, strict, nonmated)
    assert curve["dir_fpir_fpir"].tolist() == fpir and curve["dir_fpir_dir"].tolist() == dir_
    if cmc_ties == ">=":
        with pytest.raises(ValueError, match="cannot be streamed"):
            watch_list_searches(gallery, gallery_subjects, probes, probe_subjects, cmc_ties="argsort")


@pytest.mark.parametrize("rule", TPIR_RULES)
def test_official_layout_end_to_end(tmp_path: Path, rule: str) -> None:
    test_set = tmp_path / "data" / "QMUL-SurvFace" / "Face_Identification_Test_Set"
    rng = np.random.default_rng(0)
    names = {
        "gallery": [f"{i}_{k}.jpg" for k, i in enumerate([1, 1, 2, 3, 3, 3, 4, 5])],
        "mated_probe": [f"{i}_{k}.jpg" for k, i in enumerate([1, 2, 2, 3, 4, 5, 5, 9])],
        "unmated_probe": [f"{k}.jpg" for k in range(12)],
    }
    for part, files in names.items():
        (test_set / part).mkdir(parents=True)
        for name in files:
            cv2.imwrite(str(test_set / part / name), rng.integers(0, 255, (24, 20, 3)).astype(np.uint8))
    feats = tmp_path / "feats"
    feats.mkdir()
    arrays = {part: rng.standard_normal((len(files), 8)).astype(np.float32) for part, files in names.items()}
    for part, a in arrays.items():
        np.save(feats / f"survface_{part}.npy", a)
    status = main(["-q", "run", "-b", "survface", "--data-root", str(tmp_path / "data"), "--features", str(feats),
                   "--out", str(tmp_path / "out"), "--no-speed", "--tpir-rule", rule])
    assert status == 0
    entry = read_results(tmp_path / "out").benchmarks["survface"]
    counts = entry.counts
    assert (counts["n_gallery_images"], counts["n_gallery_subjects"], counts["n_mated_probes"],
            counts["n_unmated_probes"]) == (8, 5, 8, 12)
    assert entry.counts["n_mated"] == 7 and entry.counts["n_nonmated"] == 13  # identity 9 is not enrolled
    # independent: the written-out searches (sorted file names give the row order)
    order = {p: sorted(range(len(f)), key=lambda k: f[k]) for p, f in names.items()}
    emb = {p: l2_normalise(arrays[p]) for p in names}
    label = {p: np.array([int(names[p][k].split("_")[0]) for k in order[p]]) for p in ("gallery", "mated_probe")}
    probes = np.concatenate([emb["mated_probe"], emb["unmated_probe"]])
    subjects = np.concatenate([label["mated_probe"], np.full(12, -1)])
    mates, ranks, strict, nonmated = loops.searches(probes @ emb["gallery"].T, subjects, label["gallery"])
    assert entry.value("rank.1") == sum(r <= 1 for r in ranks) / 7
    assert entry.value("rank.5") == sum(r <= 5 for r in ranks) / 7
    for f in FPIR_TARGETS:
        expected = loops.tpir(mates, strict, nonmated, rule, f)
        assert entry.value(f"tpir_at_fpir.{rate_key(f)}") == expected
        assert entry.value(f"fnir_at_fpir.{rate_key(f)}") == (None if expected is None else 1 - expected)
    # 13 non-mated searches cannot resolve FPIR 0.01: null, with the reason in the warnings
    assert entry.value("tpir_at_fpir.1e-02") is None
    assert any("tpir_at_fpir.1e-02 not measurable (13 non-mated searches" in w for w in entry.warnings)
    assert entry.metrics["tpir_at_fpir.1e-01"].few_events is not None  # one non-mated search accepted
    assert entry.rules["tpir_rule"].startswith(f"{rule}: ") and entry.rules["cmc_ties"] == ">="
    assert f"SurvFace TPIR@0.1 [TPIR {rule}]" in (tmp_path / "out" / "table.md").read_text()
    with np.load(tmp_path / "out" / "survface.npz") as saved:
        assert saved["dir_fpir_fpir"].tolist() == loops.dir_fpir(mates, strict, nonmated)[0]
        assert saved["tpir_hits"].tolist() == strict
