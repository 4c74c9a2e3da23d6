"""`facebench score FILE`: bob.bio 4/5-column and CSV score files, checked against bob.measure's own test
expectations (its Iris "nonsep" set and its CMC example, rebuilt here as score files) and written-out
computations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facebench.cli import main
from facebench.errors import FacebenchError
from facebench.evaluate.scores import evaluate_scores
from facebench.io.scorefiles import read_score_file
from tests import _openset_loops as loops
from facebench.results import read_results

# bob.measure's "nonsep" example (bob/measure/data/make-examples.py): Iris sepal length, setosa = negatives,
# versicolor = positives (Fisher's Iris data, rows 1-50 and 51-100).
SETOSA = [5.1, 4.9, 4.7, 4.6, 5.0, 5.4, 4.6, 5.0, 4.4, 4.9, 5.4, 4.8, 4.8, 4.3, 5.8, 5.7, 5.4, 5.1, 5.7, 5.1, 5.4, 5.1,
          4.6, 5.1, 4.8, 5.0, 5.0, 5.2, 5.2, 4.7, 4.8, 5.4, 5.2, 5.5, 4.9, 5.0, 5.5, 4.9, 4.4, 5.1, 5.0, 4.5, 4.4, 5.0,
          5.1, 4.8, 5.1, 4.6, 5.3, 5.0]
VERSICOLOR = [7.0, 6.4, 6.9, 5.5, 6.5, 5.7, 6.3, 4.9, 6.6, 5.2, 5.0, 5.9, 6.0, 6.1, 5.6, 6.7, 5.6, 5.8, 6.2, 5.6, 5.9,
              6.1, 6.3, 6.1, 6.4, 6.6, 6.8, 6.7, 6.0, 5.7, 5.5, 5.5, 5.8, 6.0, 5.4, 6.0, 6.7, 6.3, 5.6, 5.5, 5.5, 6.1,
              5.8, 5.0, 5.6, 5.7, 5.7, 6.2, 5.1, 5.7]


def nonsep_4col(path: Path) -> Path:
    """Each positive: a probe of subject s<i> against the model of s<i>; each negative: against another's."""
    lines = [f"s{i} s{i} probe{i} {v}" for i, v in enumerate(VERSICOLOR)]
    lines += [f"s{i % 50} x{i} other{i} {v}" for i, v in enumerate(SETOSA)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bob_measure_nonsep_rates(tmp_path: Path) -> None:
    sl = read_score_file(nonsep_4col(tmp_path / "nonsep.txt"))
    assert sl.format == "4col" and sl.genuine.sum() == 50 and (~sl.genuine).sum() == 50
    result = evaluate_scores(sl, tar_rule="le")
    # bob.measure tests/test_error.py: roc_auc_score = 0.9326; roc_for_far at FAR 0.01, 0.1, 1 gives
    # FAR [0.0, 0.1, 1] and FRR [0.48, 0.12, 0] (its rule is facebench's "le"). 50 impostors resolve FAR
    # 1/50 only: bob's FAR 0.01 point (FAR 0 reached) is reported as null, with the reason
    assert result.metrics["auc"] == pytest.approx(0.9326, abs=1e-12)
    ops = result.metrics["operating_points"]
    assert "1e-02" not in ops and result.metrics["tar_at_far"]["1e-02"] is None
    assert any("tar_at_far.1e-02" in w and "50 impostor pairs" in w for w in result.warnings)
    assert (ops["1e-01"]["far"], 1 - ops["1e-01"]["tar"]) == pytest.approx((0.1, 0.12), abs=1e-12)


def test_bob_measure_cmc_example(tmp_path: Path) -> None:
    # bob.measure tests/test_error.py test_cmc: (negatives, positives) per probe; recognition rate 0.5,
    # CMC [0.5, 0.75, 1.0, 1.0, 1.0]
    data = [((0.3, 1.1, 0.5), (0.7,)), ((1.4, -1.3, 0.6), (0.2,)), ((0.8, 0.0, 1.5), (-0.8, 1.8)),
            ((2.0, 1.3, 1.6, 0.9), (2.4,))]
    lines = []
    for k, (negatives, positives) in enumerate(data):
        lines += [f"t{k} t{k}_{j} t{k} probe{k} {v}" for j, v in enumerate(positives)]
        lines += [f"n{k}_{j} n{k}_{j} t{k} probe{k} {v}" for j, v in enumerate(negatives)]
    (tmp_path / "cmc.txt").write_text("\n".join(lines) + "\n")
    sl = read_score_file(tmp_path / "cmc.txt")
    assert sl.format == "5col"
    result = evaluate_scores(sl)
    assert result.metrics["rank"]["1"] == 0.5
    assert result.arrays["mate_ranks"].tolist() == [2, 3, 1, 1]
    assert result.arrays["cmc"][:5].tolist() == [0.5, 0.75, 1.0, 1.0, 1.0]
    assert "tpir_at_fpir" not in result.metrics  # every probe is mated: closed set


@pytest.mark.parametrize(("rule", "ties"), [("insightface", ">="), ("ge", ">="), ("best", ">")])
def test_open_set_from_a_csv_equals_a_written_out_search(tmp_path: Path, rule: str, ties: str) -> None:
    rng = np.random.default_rng(0)
    gallery = {f"g{j}": f"s{j % 6}" for j in range(8)}  # 8 references of 6 subjects
    rows, probes = [], {}
    for p in range(60):
        subject = f"s{rng.integers(0, 9)}"  # s6..s8 are not enrolled
        probes[f"p{p}"] = subject
        for ref, ref_subject in gallery.items():
            rows.append((f"p{p}", ref, subject, ref_subject, round(float(rng.normal(1.0 if subject == ref_subject else 0)), 1)))
    csv_path = tmp_path / "vendor.csv"
    csv_path.write_text(
        "reference_subject,probe,reference,probe_subject,score,extra\n"
        + "".join(f"{rs},{p},{r},{ps},{s},x\n" for p, r, ps, rs, s in rows)
    )
    result = evaluate_scores(read_score_file(csv_path), tar_rule="le", tpir_rule=rule, cmc_ties=ties)
    # written out (tests/_openset_loops.py): one row per probe, one column per reference, in file order
    references = list(gallery)
    matrix = [[next(s for pp, r, _, _, s in rows if pp == p and r == ref) for ref in references] for p in probes]
    mates, ranks, strict, nonmated = loops.searches(matrix, list(probes.values()), list(gallery.values()), ties)
    assert result.arrays["mate_ranks"].tolist() == ranks and result.arrays["tpir_hits"].tolist() == strict
    assert result.metrics["rank"]["1"] == sum(r == 1 for r in ranks) / len(ranks)
    assert len(nonmated) == result.counts["n_nonmated"] >= 10
    assert result.metrics["tpir_at_fpir"]["1e-01"] == loops.tpir(mates, strict, nonmated, rule, 0.1)
    assert result.metrics["tpir_at_fpir"]["1e-02"] is None and "tpir_at_fpir.1e-02" in result.metrics["unmeasurable"]
    assert result.rules["tpir_rule"].startswith(f"{rule}: ") and result.rules["cmc_ties"] == ties
    if rule == "ge":  # bob.measure's threshold: the lowest non-mated value whose share >= it is <= 0.1
        t = min(v for v in nonmated if sum(x >= v for x in nonmated) / len(nonmated) <= 0.1)
        assert result.extra["identification"]["thresholds"]["1e-01"] == t
    if ties == ">":  # tied subject scores (1 decimal) decide some ranks
        assert ranks != loops.searches(matrix, list(probes.values()), list(gallery.values()))[1]
    # the same comparisons as a bob 5-column file give the same numbers
    (tmp_path / "vendor.txt").write_text("".join(f"{rs} {r} {ps} {p} {s}\n" for p, r, ps, rs, s in rows))
    again = evaluate_scores(read_score_file(tmp_path / "vendor.txt"), tar_rule="le", tpir_rule=rule, cmc_ties=ties)
    assert again.metrics == result.metrics


def test_label_csv_nan_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text("probe,reference,label,score\na,b,1,0.9\nc,d,0,0.1\ne,f,true,nan\ng,h,false,0.5\ni,j,1,0.4\n")
    sl = read_score_file(path)
    assert sl.probe_subject is None and sl.genuine.tolist() == [True, False, True, False, True]
    result = evaluate_scores(sl, tar_rule="le")
    assert result.counts["n_failed"] == 1 and result.counts["n_genuine"] == 2 and "rank" not in result.metrics
    assert any("nan" in w for w in result.warnings)
    assert result.metrics["auc"] == 0.75  # genuine {0.9, 0.4} vs impostor {0.1, 0.5}: 3 of 4 orderings right
    bad = {
        "x.txt": ("a a p1 0.5\na a p2\n", "x.txt line 2: expected 4 columns"),
        "y.txt": ("a a p1 high\n", "y.txt line 1: score 'high' is not a number"),
        "z.csv": ("probe,reference,score\n", "z.csv line 1: CSV header lacks probe_subject, reference_subject"),
        "w.csv": ("probe,reference,label,score\na,b,maybe,1\n", "w.csv line 2: label 'maybe'"),
        "v.txt": ("a b c\n", "v.txt line 1: expected 4 fields"),
    }
    for name, (text, message) in bad.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(FacebenchError, match=message):
            read_score_file(tmp_path / name)


def test_cli_writes_a_run_that_reports_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = nonsep_4col(tmp_path / "nonsep.txt")
    assert main(["score", str(path), "--out", str(tmp_path / "out"), "--tar-rule", "le", "--tpir-rule", "best",
                 "--cmc-ties", ">"]) == 0
    printed = capsys.readouterr().out
    assert "nonsep TAR@1e-4 [le]" in printed and "nonsep TPIR@1e-2 [TPIR best]" in printed
    doc = read_results(tmp_path / "out")
    entry = doc.benchmarks["nonsep"]
    assert entry.kind == "scores" and entry.counts["n_genuine"] == 50 and entry.rules["score_file"] == "4col"
    assert entry.rules["tpir_rule"].startswith("best: ") and entry.rules["cmc_ties"] == ">"
    assert doc.settings["tpir_rule"] == "best" and entry.value("tpir_at_fpir.1e-02") is None
    assert (tmp_path / "out" / "roc_nonsep.png").is_file() and (tmp_path / "out" / "table.md").is_file()
    assert main(["report", str(tmp_path / "out"), "--no-html", "--n-boot", "20"]) == 0
    (tmp_path / "bad.txt").write_text("1 2 3\n")
    assert main(["score", str(tmp_path / "bad.txt"), "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()
