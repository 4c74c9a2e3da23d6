"""Published reference tables: the shipped data validates, converts exactly and is selectable by name."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from facebench.benchmarks import load_benchmarks
from facebench.errors import FacebenchError
from facebench.report.published import RULE_KEYS, as_document, load_sources, published_dir, select
from facebench.results import MetricValue

BENCHMARKS = load_benchmarks()


@pytest.fixture(scope="module")
def sources():
    return load_sources(benchmarks=BENCHMARKS)


def test_every_shipped_source_is_complete(sources) -> None:
    assert set(sources) == {p.stem for p in published_dir().glob("*.toml")}
    assert {"facexzoo", "insightface_model_zoo", "arcface_torch", "arcface_torch_2021", "arcface_paper",
            "mv_softmax_paper"} <= set(sources)
    for source in sources.values():
        assert source.citation and source.verified and source.rows
        if source.commit:
            assert len(source.commit) == 40 and source.commit in source.url
        for row in source.rows:
            for bench in row.values:
                kind = BENCHMARKS[bench].kind
                rules = source.rules_for(bench, kind)
                # every number says which rule produced it (so a table can mark a different one)
                assert rules and set(rules) <= RULE_KEYS[kind], (source.name, row.id, bench)


def test_values_become_the_exact_printed_fractions(sources) -> None:
    for source in sources.values():
        for row in source.rows:
            for bench, metrics in row.values.items():
                for metric, fraction in metrics.items():
                    assert fraction == float(Decimal(row.printed[bench][metric]) / 100)
    mv = next(r for r in sources["facexzoo"].rows if r.id == "mv-softmax")
    assert mv.values["lfw"]["accuracy"] == 0.9957  # the same double as Python's "0.9957"
    # FaceX-Zoo table 3.2, MV-Softmax row: LFW, CPLFW, CALFW, AgeDB, MegaFace rank-1
    assert [
        mv.printed[b][m]
        for b, m in (
            ("lfw", "accuracy"),
            ("cplfw", "accuracy"),
            ("calfw", "accuracy"),
            ("agedb_30", "accuracy"),
            ("megaface", "rank1.1000000"),
        )
    ] == ["99.57", "83.33", "93.82", "95.97", "90.39"]
    mv_paper = next(r for r in sources["mv_softmax_paper"].rows if r.id == "mv-am-softmax-a")
    assert mv_paper.printed == {"megaface": {"rank1.1000000": "98.0", "tar_at_far.1e-06": "98.31"}}
    assert mv_paper.values["megaface"]["rank1.1000000"] == 0.98
    r100 = next(r for r in sources["arcface_torch"].rows if r.id == "ms1mv3-r100")
    assert r100.printed["ijbc"] == {"tar_at_far.1e-04": "96.85", "tar_at_far.1e-05": "95.02"}


def test_rules_of_each_source(sources) -> None:
    assert sources["facexzoo"].rules_for("lfw", "pairs") == {"kfold": "facexzoo"}
    assert sources["facexzoo"].rules_for("megaface", "megaface")["noise"] == "facexzoo"
    assert sources["arcface_torch"].rules_for("ijbc", "ijb_1to1") == {"tar_at_far": "nearest"}
    assert sources["arcface_paper"].rules_for("megaface", "megaface")["tar_at_far"] == "devkit"


def test_selection_by_source_and_row(sources) -> None:
    rows = select(["facexzoo/mv-softmax", "arcface_paper", "facexzoo/mv-softmax"], sources)
    assert [r.key for _, r in rows] == ["facexzoo/mv-softmax", "arcface_paper/r100-ms1mv2"]
    assert len(select(["facexzoo"], sources)) == len(sources["facexzoo"].rows)
    with pytest.raises(FacebenchError, match="unknown published source 'facexoo'; did you mean 'facexzoo'"):
        select(["facexoo"], sources)
    with pytest.raises(FacebenchError, match="has no row 'mv_softmax'; did you mean 'mv-softmax'"):
        select(["facexzoo/mv_softmax"], sources)


def test_as_document_feeds_the_tables(sources) -> None:
    source = sources["arcface_paper"]
    doc = as_document(source, source.rows[0], BENCHMARKS)
    assert doc.label == "ArcFace R100 (MS1MV2), paper" and set(doc.benchmarks) == {"lfw", "megaface"}
    mega = doc.benchmarks["megaface"]
    # the typed entry a run's MegaFace entry is: each value with the rules of the kind's rule keys
    assert mega.metrics == {
        "rank1.1000000": MetricValue(0.9835, rules={"noise": "insightface"}),
        "tar_at_far.1e-06": MetricValue(0.9848, rules={"tar_at_far": "devkit", "noise": "insightface"}),
    }
    assert mega.columns == {"rank1.1000000": "MegaFace Id", "tar_at_far.1e-06": "MegaFace Ver"}


GOOD = """
name = "mine"
title = "t"
citation = "c"
verified = "v"
[rules.pairs]
kfold = "insightface"
[[row]]
id = "r"
values = { lfw = { accuracy = 99.5 } }
"""


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('title = "t"', 'title = "t"\ncolour = 1'), "unknown key(s) ['colour']"),
        (('verified = "v"\n', ""), "missing required key 'verified'"),
        (("lfw = {", "lfx = {"), "unknown benchmark 'lfx'; did you mean 'lfw'"),
        (("accuracy = 99.5", "accuracy = 100.5"), "100.5 is not a percentage in (0, 100]"),
        (("accuracy = 99.5", '"tar_at_far.1e-4" = 99.5'), "needs a rate key written like 1e-04"),
        (("accuracy = 99.5", "rank1 = 99.5"), "metric 'rank1' is not one of"),
        (('kfold = "insightface"', 'tar = "x"'), "rules.pairs: unknown rule key(s) ['tar']"),
        (("[rules.pairs]", "[rules.pears]"), "rules.pears: not a benchmark kind"),
        (("accuracy = 99.5", 'accuracy = "99.5"'), "expected a percentage number"),
    ],
)
def test_malformed_sources_are_clear_errors(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    (tmp_path / "mine.toml").write_text(GOOD.replace(*edit), encoding="utf-8")
    with pytest.raises(FacebenchError) as info:
        load_sources(tmp_path, BENCHMARKS)
    assert str(tmp_path / "mine.toml") in str(info.value) and message in str(info.value)


def test_file_name_must_match_and_ids_be_unique(tmp_path: Path) -> None:
    (tmp_path / "other.toml").write_text(GOOD, encoding="utf-8")
    with pytest.raises(FacebenchError, match="differs from the file name"):
        load_sources(tmp_path, BENCHMARKS)
    (tmp_path / "other.toml").unlink()
    (tmp_path / "mine.toml").write_text(GOOD + '[[row]]\nid = "r"\nvalues = { lfw = { accuracy = 99.0 } }\n')
    with pytest.raises(FacebenchError, match="row 2: id 'r' is repeated"):
        load_sources(tmp_path, BENCHMARKS)
