"""The typed results document (facebench.results/2): exact JSON round trip, the one mapping from the
evaluators' nested metrics and from version-1 documents (every kind's entry), validation errors naming the
file and the member, and an unknown schema refused."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from facebench.errors import FacebenchError
from facebench.results import (
    SCHEMA,
    SCHEMA_V1,
    BenchmarkEntry,
    FewEvents,
    MetricValue,
    RunResults,
    entry_from_nested,
    read_results,
    upgrade_v1,
    write_results,
)

CI_TAR = [0.9, 0.97]
FEW = {"negatives_accepted": 3, "n_negatives": 600, "negative_rate_ci95": [0.001, 0.014],
       "positive_rate_ci95": [0.91, 0.98]}
UNRESOLVED = "600 impostor pairs resolve rates down to 1.7e-03 only (one in 600)"

#: One version-1 entry per kind, its metrics as the kind's evaluator nests them, and the typed entry it must
#: become (values, rules, intervals and details written out by hand).
PAIRS_V1 = {
    "title": "LFW", "kind": "pairs", "protocol_version": 2,
    "metrics": {
        "accuracy": 0.99, "accuracy_std": 0.005, "auc": 0.998, "eer": 0.01,
        "tar_at_far": {"1e-03": None, "1e-02": 0.95},
        "operating_points": {"1e-02": {"tar": 0.95, "far": 0.01, "threshold": 0.3, "tar_ci95": CI_TAR}},
        "unmeasurable": {"tar_at_far.1e-03": UNRESOLVED},
        "few_events": {"tar_at_far.1e-02": FEW},
        "val_at_far_1e-03": {"val": 0.9, "val_std": 0.02, "far": 0.001},
        "fold_accuracies": [0.98, 1.0], "threshold_unit": "cosine",
        "at_model_threshold": {"metric": "euclidean", "threshold": 0.6, "accuracy": 1.0},
    },
    "rules": {"kfold": "insightface", "tar_at_far": "nearest", "flip": "add"},
    "inputs": {"lfw.bin": "ab" * 32}, "n_pairs": 6000, "n_images": 12000,
    "columns": {"accuracy": "LFW"}, "warnings": ["w"], "feature_sources": {"lfw": {"source": "file"}},
    "artifacts": {"arrays": "lfw.npz"}, "extra": {"reader": "binpack"}, "thresholds": {"in_sample": True},
}
KFOLD = {"kfold": "insightface"}
TAR = {"tar_at_far": "nearest"}
PAIRS_METRICS = {
    "accuracy": MetricValue(0.99, KFOLD, std=0.005),
    "accuracy_std": MetricValue(0.005, KFOLD),
    "auc": MetricValue(0.998),
    "eer": MetricValue(0.01),
    "tar_at_far.1e-03": MetricValue(None, TAR, unmeasurable=UNRESOLVED),
    "tar_at_far.1e-02": MetricValue(0.95, TAR, interval=(0.91, 0.98),
                                    few_events=FewEvents(3, 600, (0.001, 0.014), (0.91, 0.98))),
    "val_at_far_1e-03.val": MetricValue(0.9, std=0.02),
    "val_at_far_1e-03.val_std": MetricValue(0.02),
    "val_at_far_1e-03.far": MetricValue(0.001),
    "at_model_threshold.threshold": MetricValue(0.6),
    "at_model_threshold.accuracy": MetricValue(1.0),
}
PAIRS_TYPED = BenchmarkEntry(
    title="LFW", kind="pairs", protocol_version=2, metrics=PAIRS_METRICS,
    details={"operating_points": PAIRS_V1["metrics"]["operating_points"], "fold_accuracies": [0.98, 1.0],
             "threshold_unit": "cosine", "at_model_threshold": {"metric": "euclidean"}},
    rules=PAIRS_V1["rules"], counts={"n_pairs": 6000, "n_images": 12000}, inputs={"lfw.bin": "ab" * 32},
    columns={"accuracy": "LFW"}, warnings=["w"], artifacts={"arrays": "lfw.npz"},
    feature_sources={"lfw": {"source": "file"}}, extra={"reader": "binpack"}, thresholds={"in_sample": True},
)

IJB_1N_RULE = "insightface: t = k-th largest non-mated best score"
IJB_1N_V1 = {
    "title": "IJB-C 1:N", "kind": "ijb_1n",
    "metrics": {
        "rank1": 0.94, "rank5": 0.98,
        "tpir_at_fpir": {"1e-02": None, "1e-01": 0.89}, "fnir_at_fpir": {"1e-02": None, "1e-01": 0.11},
        "per_gallery": {"G1": {"rank1": 0.96, "tpir_at_fpir": {"1e-01": 0.88}, "n_nonmated": 50}},
        "unmeasurable": {"per_gallery.G1.tpir_at_fpir.1e-02": "50 searches", "tpir_at_fpir.1e-02": "mean: 50"},
        "few_events": {"per_gallery.G1.tpir_at_fpir.1e-01": FEW, "tpir_at_fpir.1e-01": FEW},
    },
    "rules": {"ijb_1n": "standard", "tpir_rule": IJB_1N_RULE, "flip": "add"},
    "n_probe_templates": 100, "column_rules": {"rank1": "ijb_1n"},
}
STANDARD = {"ijb_1n": "standard"}
TPIR = {"ijb_1n": "standard", "tpir_rule": IJB_1N_RULE}
IJB_1N_TYPED = BenchmarkEntry(
    title="IJB-C 1:N", kind="ijb_1n",
    metrics={
        "rank1": MetricValue(0.94, STANDARD), "rank5": MetricValue(0.98, STANDARD),
        "tpir_at_fpir.1e-02": MetricValue(None, TPIR, unmeasurable="mean: 50"),
        "tpir_at_fpir.1e-01": MetricValue(0.89, TPIR, interval=(0.91, 0.98),
                                          few_events=FewEvents(3, 600, (0.001, 0.014), (0.91, 0.98))),
        "fnir_at_fpir.1e-02": MetricValue(None, TPIR), "fnir_at_fpir.1e-01": MetricValue(0.11, TPIR),
    },
    details={"per_gallery": IJB_1N_V1["metrics"]["per_gallery"],
             "unmeasurable": {"per_gallery.G1.tpir_at_fpir.1e-02": "50 searches"},
             "few_events": {"per_gallery.G1.tpir_at_fpir.1e-01": FEW}},
    rules=IJB_1N_V1["rules"], column_rules={"rank1": "ijb_1n"}, counts={"n_probe_templates": 100},
)

MEGAFACE_RULES = {"noise": "insightface", "tie_rule": ">=", "tar_at_far": "conventional"}
MEGAFACE_V1 = {
    "title": "MegaFace", "kind": "megaface",
    "metrics": {
        "rank1": {"10": 0.99, "1000000": 0.98}, "cmc": {"10": [0.99, 1.0], "1000000": [0.98, 0.99]},
        "tar_at_far": {"1e-06": 0.97}, "tar_at_far_by_size": {"10": {"1e-06": None}},
        "unmeasurable": {"tar_at_far_by_size.10.1e-06": "1,200 impostor pairs"}, "few_events": {},
    },
    "rules": MEGAFACE_RULES, "n_probes": 3530, "n_distractors_used": {"10": 10, "1000000": 1000000},
}
IDENT = {"noise": "insightface", "tie_rule": ">="}
MEGAFACE_TYPED = BenchmarkEntry(
    title="MegaFace", kind="megaface",
    metrics={"rank1.10": MetricValue(0.99, IDENT), "rank1.1000000": MetricValue(0.98, IDENT),
             "tar_at_far.1e-06": MetricValue(0.97, {"tar_at_far": "conventional", "noise": "insightface"})},
    details={"cmc": MEGAFACE_V1["metrics"]["cmc"], "tar_at_far_by_size": {"10": {"1e-06": None}},
             "unmeasurable": {"tar_at_far_by_size.10.1e-06": "1,200 impostor pairs"}, "few_events": {}},
    rules=MEGAFACE_RULES, counts={"n_probes": 3530, "n_distractors_used": {"10": 10, "1000000": 1000000}},
)


def _simple(kind: str, metrics: dict, rules: dict, counts: dict) -> dict:
    return {"title": kind, "kind": kind, "metrics": metrics, "rules": rules, **counts}


#: The other kinds: (version-1 entry, typed metrics, details, counts).
OTHERS = {
    "ijb_1to1": (
        _simple("ijb_1to1", {"tar_at_far": {"1e-04": 0.96}, "auc": 0.99,
                             "operating_points": {"1e-04": {"tar": 0.96, "tar_ci95": CI_TAR}}},
                {"tar_at_far": "nearest", "template": "mean"}, {"n_pairs": 100, "n_impostor": 90}),
        {"tar_at_far.1e-04": MetricValue(0.96, TAR, interval=(0.9, 0.97)), "auc": MetricValue(0.99)},
        {"operating_points": {"1e-04": {"tar": 0.96, "tar_ci95": CI_TAR}}}, {"n_pairs": 100, "n_impostor": 90},
    ),
    "folder": (
        _simple("folder", {"accuracy": 0.9, "rank": {"1": 0.8, "5": 0.95}, "tpir_at_fpir": {"1e-01": 0.7}},
                {"kfold": "insightface", "fold_identities": "disjoint"}, {"n_identities": 24, "ignored_files": 1}),
        {"accuracy": MetricValue(0.9, KFOLD), "rank.1": MetricValue(0.8), "rank.5": MetricValue(0.95),
         "tpir_at_fpir.1e-01": MetricValue(0.7)},
        {}, {"n_identities": 24, "ignored_files": 1},
    ),
    "alltoall": (
        _simple("alltoall", {"tar_at_far": {"1e-03": None, "1e-02": 0.5}, "unmeasurable": {"tar_at_far.1e-03": "113"},
                             "few_events": {"tar_at_far.1e-02": FEW}},
                {"tar_at_far": "le (accept > t)"}, {"n_genuine": 40, "n_impostor": 113}),
        {"tar_at_far.1e-03": MetricValue(None, {"tar_at_far": "le (accept > t)"}, unmeasurable="113"),
         "tar_at_far.1e-02": MetricValue(0.5, {"tar_at_far": "le (accept > t)"}, interval=(0.91, 0.98),
                                         few_events=FewEvents(3, 600, (0.001, 0.014), (0.91, 0.98)))},
        {}, {"n_genuine": 40, "n_impostor": 113},
    ),
    "tinyface": (
        _simple("tinyface", {"rank": {"1": 0.6, "20": 0.8}, "map": 0.5}, {"cmc_ties": ">="}, {"n_probes": 8}),
        {"rank.1": MetricValue(0.6), "rank.20": MetricValue(0.8), "map": MetricValue(0.5)}, {}, {"n_probes": 8},
    ),
    "survface": (
        _simple("survface", {"rank": {"1": 0.4}, "tpir_at_fpir": {"1e-01": 0.3}, "fnir_at_fpir": {"1e-01": 0.7}},
                {"tpir_rule": "ge: mate >= t", "cmc_ties": ">="}, {"n_mated": 7}),
        {"rank.1": MetricValue(0.4), "tpir_at_fpir.1e-01": MetricValue(0.3, {"tpir_rule": "ge: mate >= t"}),
         "fnir_at_fpir.1e-01": MetricValue(0.7, {"tpir_rule": "ge: mate >= t"})}, {}, {"n_mated": 7},
    ),
    "identify": (
        _simple("identify", {"rank": {"1": 0.9}, "map": 0.8, "tpir_at_fpir": {"1e-02": None}},
                {"split": "seeded split"}, {"n_nonmated": 14}),
        {"rank.1": MetricValue(0.9), "map": MetricValue(0.8), "tpir_at_fpir.1e-02": MetricValue(None)},
        {}, {"n_nonmated": 14},
    ),
    "rfw": (
        _simple("rfw", {"accuracy": 0.9, "accuracy_std": 0.02, "ser_kfold": 1.5,
                        "subset_accuracy": {"African": 0.88, "Indian": 0.92}},
                {"kfold": "insightface", "subset_std": "ddof=1"}, {"n_pairs": 24000, "subsets": {"African": 6000}}),
        {"accuracy": MetricValue(0.9, KFOLD, std=0.02), "accuracy_std": MetricValue(0.02, KFOLD),
         "ser_kfold": MetricValue(1.5), "subset_accuracy.African": MetricValue(0.88),
         "subset_accuracy.Indian": MetricValue(0.92)},
        {}, {"n_pairs": 24000, "subsets": {"African": 6000}},
    ),
    "scores": (
        _simple("scores", {"tar_at_far": {"1e-04": 0.5}, "rank": {"1": 1.0}, "eer": 0.1},
                {"tar_at_far": "le", "score_file": "4col"}, {"n_genuine": 50}),
        {"tar_at_far.1e-04": MetricValue(0.5, {"tar_at_far": "le"}), "rank.1": MetricValue(1.0),
         "eer": MetricValue(0.1)},
        {}, {"n_genuine": 50},
    ),
}


def _v1(**entries: dict) -> dict:
    return {"schema": SCHEMA_V1, "facebench_version": "0.9", "created": "2026-01-01T00:00:00+0000",
            "checkpoint": {"path": "m.onnx"}, "features": None, "settings": {"tar_rule": "nearest"},
            "environment": {"python": "3.11"}, "benchmarks": entries, "failed": {"cplfw": "missing"}}


def test_every_kind_of_v1_entry_becomes_its_typed_entry() -> None:
    assert entry_from_nested(PAIRS_V1, "t") == PAIRS_TYPED
    assert entry_from_nested(IJB_1N_V1, "t") == IJB_1N_TYPED
    assert entry_from_nested(MEGAFACE_V1, "t") == MEGAFACE_TYPED
    for kind, (v1, metrics, details, counts) in OTHERS.items():
        entry = entry_from_nested(v1, kind)
        assert (entry.kind, entry.title, entry.metrics, entry.details, entry.counts) == (
            kind, kind, metrics, details, counts), kind
        assert entry.rules == v1["rules"]


def test_a_v1_document_upgrades_whole(tmp_path: Path) -> None:
    doc = _v1(lfw=PAIRS_V1, megaface=MEGAFACE_V1)
    (tmp_path / "results.json").write_text(json.dumps(doc))
    run = read_results(tmp_path)
    assert run == upgrade_v1(doc)
    assert run == RunResults(
        facebench_version="0.9", created="2026-01-01T00:00:00+0000", settings={"tar_rule": "nearest"},
        environment={"python": "3.11"}, checkpoint={"path": "m.onnx"},
        benchmarks={"lfw": PAIRS_TYPED, "megaface": MEGAFACE_TYPED}, failed={"cplfw": "missing"},
    )
    assert run.entry("lfw").value("tar_at_far.1e-02") == 0.95 and run.entry("lfw").value("tar_at_far.1e-03") is None
    assert run.entry("lfw").value("no_such_metric") is None and run.entry("cplfw") is None


def test_json_round_trip_is_exact(tmp_path: Path) -> None:
    run = upgrade_v1(_v1(lfw=PAIRS_V1, ijbc_1n=IJB_1N_V1, megaface=MEGAFACE_V1,
                         **{k: v[0] for k, v in OTHERS.items()}))
    run.label, run.model, run.extraction = "mine", {"parameters": 10}, {"lfw": {"seconds": 1.0}}
    assert RunResults.from_json(run.to_json()) == run
    assert RunResults.from_json(json.loads(json.dumps(run.to_json()))) == run
    write_results(tmp_path, run, {})
    text = (tmp_path / "results.json").read_text()
    assert json.loads(text)["schema"] == SCHEMA == "facebench.results/2"
    assert read_results(tmp_path) == run
    # a metric value is written without its empty members
    metrics = json.loads(text)["benchmarks"]["lfw"]["metrics"]
    assert metrics["auc"] == {"value": 0.998}
    assert metrics["accuracy"] == {"value": 0.99, "rules": {"kfold": "insightface"}, "std": 0.005}
    assert metrics["tar_at_far.1e-02"]["interval"] == [0.91, 0.98]


def test_non_finite_numbers_are_written_null(tmp_path: Path) -> None:
    entry = entry_from_nested({"title": "t", "kind": "pairs", "metrics": {"eer": np.float32("nan"),
                               "auc": np.float64(0.5), "tar_at_far": {"1e-02": math.inf}}, "n_pairs": np.int64(4)}, "t")
    assert entry.metrics == {"eer": MetricValue(None), "auc": MetricValue(0.5),
                             "tar_at_far.1e-02": MetricValue(None, {})}
    assert entry.counts == {"n_pairs": 4} and type(entry.counts["n_pairs"]) is int


@pytest.mark.parametrize("change, message", [
    (lambda d: d["benchmarks"]["lfw"]["metrics"]["auc"].update(value="high"),
     "benchmarks.lfw metrics.auc value: expected a number, got 'high'"),
    (lambda d: d["benchmarks"]["lfw"]["metrics"]["auc"].update(interval=[0.1]),
     "benchmarks.lfw metrics.auc interval: expected a list of 2 values, got [0.1]"),
    (lambda d: d["benchmarks"]["lfw"].update(counts=[1]), "benchmarks.lfw counts: expected a table, got [1]"),
    (lambda d: d["benchmarks"]["lfw"].update(colums={}), "benchmarks.lfw unknown key 'colums'; did you mean 'columns'"),
    (lambda d: d["benchmarks"]["lfw"].pop("title"), "benchmarks.lfw missing required key 'title'"),
    (lambda d: d["benchmarks"]["lfw"]["metrics"]["auc"].pop("value"), "metrics.auc missing required key 'value'"),
    (lambda d: d.update(failed=[]), "member 'failed' must be an object, got list"),
    (lambda d: d["benchmarks"].update(lfw=3), "benchmarks.lfw must be an object with a 'metrics' object"),
    (lambda d: d.update(label=3), "label: expected a string, got 3"),
])
def test_a_malformed_v2_document_names_the_file_and_the_member(tmp_path: Path, change, message) -> None:
    run = RunResults("1", "now", benchmarks={"lfw": BenchmarkEntry("LFW", "pairs", metrics={"auc": MetricValue(0.9)})})
    doc = json.loads(json.dumps(run.to_json()))
    change(doc)
    (tmp_path / "results.json").write_text(json.dumps(doc))
    with pytest.raises(FacebenchError) as caught:
        read_results(tmp_path)
    assert str(caught.value).startswith(str(tmp_path / "results.json")) and message in str(caught.value)


def test_a_malformed_v1_document_names_the_member(tmp_path: Path) -> None:
    doc = _v1(lfw={**PAIRS_V1, "warnings": "one"})
    (tmp_path / "results.json").write_text(json.dumps(doc))
    with pytest.raises(FacebenchError, match=r"results\.json: benchmarks\.lfw warnings: expected a list, got 'one'"):
        read_results(tmp_path)


@pytest.mark.parametrize("schema", ["facebench.results/3", "other/1", None])
def test_an_unknown_schema_is_refused(tmp_path: Path, schema) -> None:
    (tmp_path / "results.json").write_text(json.dumps({"schema": schema, "benchmarks": {}, "failed": {}}))
    with pytest.raises(FacebenchError, match=rf"not a facebench results file \(schema {re.escape(repr(schema))}, "
                                             r"expected 'facebench.results/2' or 'facebench.results/1'"):
        read_results(tmp_path)
