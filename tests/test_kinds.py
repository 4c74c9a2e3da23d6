"""Protocol kinds: every shipped kind is complete, and a kind of your own is one module plus one TOML.

The acceptance test writes a throwaway kind (closed-set identification: each probe's nearest gallery
image by cosine, rank-1 = the share whose nearest image has the probe's label) as one module, registers
it as a ``facebench.kinds`` entry point (the two metadata files ``pip install`` would write), adds one
protocol file with ``--protocols``, and runs ``facebench run --features``, ``report`` and ``compare``;
nothing else changes. The rank-1 values are checked against written-out loops.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facebench import kinds
from facebench.benchmarks import load_benchmarks
from facebench.errors import FacebenchError
from facebench.io.pairlists import PAIR_DIALECTS
from facebench.io.pairsets import READERS
from facebench.kinds.pairs import DIALECTS
from facebench.kinds.base import COMMON, Kind, Metric
from facebench.report.comparison import FIGURES
from facebench.report.statistics import METHODS
from facebench.report.tables import rule_of
from facebench.results import BenchmarkEntry, read_results

TOY_MODULE = '''
"""A toy closed-set identification kind: rank-1 of the nearest gallery image by cosine."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facebench.kinds.base import Kind, Metric

RULE = "nearest gallery image by cosine, first on ties"


def run_toy(spec, ctx):
    from facebench.evaluate.common import BenchmarkResult
    from facebench.extraction.images import ImageList
    from facebench.io.textlines import read_path_labels

    _, files = ctx.files(spec)
    root = Path(files["images"])
    gallery, gallery_labels = read_path_labels(files["gallery"], root)
    probes, probe_labels = read_path_labels(files["probes"], root)
    g = ctx.features_for(spec, ImageList(str(root), gallery), part="gallery").astype(np.float64)
    p = ctx.features_for(spec, ImageList(str(root), probes), part="probes").astype(np.float64)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    nearest = np.argmax(p @ g.T, axis=1)
    hits = np.array([gallery_labels[j] == label for j, label in zip(nearest, probe_labels)])
    warnings = []
    inputs = ctx.hash_inputs(spec, {k: v for k, v in files.items() if k != "images"}, warnings)
    return BenchmarkResult({"rank1": float(hits.mean())}, {"ranking": RULE}, inputs,
                           {"n_probes": len(probes)}, warnings, {"hits": hits})


def rank1_interval(run, benchmark, entry, metrics, settings, designs):
    from facebench.metrics.stats import bootstrap_ci
    from facebench.report.statistics import Interval

    hits = np.asarray(run.arrays(benchmark)["hits"], dtype=float)
    r = bootstrap_ci(lambda idx: hits[idx].mean(), np.arange(hits.size), n_boot=settings.n_boot,
                     seed=settings.seed, alpha=settings.alpha)
    return {m: Interval(run.label, benchmark, m, float(hits.mean()), r.low, r.high, 1 - settings.alpha,
                        "probe bootstrap", settings.n_boot, settings.seed) for m in metrics}


KIND = Kind(
    name="toy_closed",
    title="toy closed-set identification",
    evaluator="toy_closed_kind:run_toy",
    readers=("toy_lists",),
    metrics=(Metric("rank1", "rank-1 identification rate", rule_keys=("ranking",),
                    interval="toy_closed_kind:rank1_interval"),),
    figures=(),
)
'''

TOY_SPEC = """
name = "toyset"
version = 1
kind = "toy_closed"
title = "Toy"
citation = "a test"

[[source]]
reader = "toy_lists"
files = { gallery = "toy/gallery.txt", probes = "toy/probes.txt", images = "toy" }

[columns]
rank1 = "Toy rank-1"
"""

N_IDENTITIES, N_PROBES, DIM = 7, 40, 16


def _write_plugin(root: Path) -> Path:
    """The kind module and the entry-point metadata an installed package would carry."""
    plugin = root / "plugin"
    plugin.mkdir()
    (plugin / "toy_closed_kind.py").write_text(TOY_MODULE, encoding="utf-8")
    info = plugin / "toy_closed_kind-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-closed-kind\nVersion: 1.0\n", encoding="utf-8")
    (info / "entry_points.txt").write_text("[facebench.kinds]\ntoy_closed = toy_closed_kind:KIND\n", encoding="utf-8")
    return plugin


def _write_data(root: Path) -> tuple[list[str], list[str]]:
    (root / "protocols").mkdir()
    (root / "protocols" / "toyset.toml").write_text(TOY_SPEC, encoding="utf-8")
    toy = root / "data" / "toy"
    toy.mkdir(parents=True)
    gallery_labels = [f"id{k}" for k in range(N_IDENTITIES)]
    probe_labels = [f"id{(3 * i) % N_IDENTITIES}" for i in range(N_PROBES)]
    (toy / "gallery.txt").write_text("".join(f"g{k}.jpg {x}\n" for k, x in enumerate(gallery_labels)))
    (toy / "probes.txt").write_text("".join(f"p{i}.jpg {x}\n" for i, x in enumerate(probe_labels)))
    return gallery_labels, probe_labels


def _features(root: Path, name: str, noise: float, seed: int, probe_labels: list[str]) -> tuple[Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gallery = rng.standard_normal((N_IDENTITIES, DIM)).astype(np.float32)
    owner = [int(x[2:]) for x in probe_labels]
    probes = (gallery[owner] + noise * rng.standard_normal((N_PROBES, DIM))).astype(np.float32)
    folder = root / name
    folder.mkdir()
    np.save(folder / "toyset_gallery.npy", gallery)
    np.save(folder / "toyset_probes.npy", probes)
    return folder, gallery, probes


def _rank1_by_loops(gallery: np.ndarray, probes: np.ndarray, gallery_labels: list[str], probe_labels: list[str]) -> float:
    hits = 0
    for i in range(len(probes)):
        best, best_score = -1, -math.inf
        for j in range(len(gallery)):
            a, b = probes[i].astype(float), gallery[j].astype(float)
            score = sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
            if score > best_score:
                best, best_score = j, score
        hits += gallery_labels[best] == probe_labels[i]
    return hits / len(probes)


def _cli(args: list[str], plugin: Path | None, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if plugin is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(plugin), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "facebench", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_a_kind_of_your_own_is_one_module_and_one_protocol_file(tmp_path: Path) -> None:
    plugin = _write_plugin(tmp_path)
    gallery_labels, probe_labels = _write_data(tmp_path)
    expected = {}
    for name, noise, seed in (("feats_a", 0.9, 1), ("feats_b", 1.6, 2)):
        folder, gallery, probes = _features(tmp_path, name, noise, seed, probe_labels)
        expected[name] = _rank1_by_loops(gallery, probes, gallery_labels, probe_labels)
        done = _cli(["run", "--features", str(folder), "-b", "toyset", "--data-root", "data", "--protocols",
                     "protocols", "--out", f"run_{name}"], plugin, tmp_path)
        assert done.returncode == 0, done.stderr
        entry = read_results(tmp_path / f"run_{name}").benchmarks["toyset"]
        assert entry.kind == "toy_closed"
        assert entry.value("rank1") == expected[name]
        assert entry.rules["ranking"] == "nearest gallery image by cosine, first on ties"
    assert 0 < expected["feats_b"] < expected["feats_a"] < 1  # two different, non-trivial runs

    report = _cli(["report", "run_feats_a", "--protocols", "protocols", "--n-boot", "200"], plugin, tmp_path)
    assert report.returncode == 0, report.stderr
    header = "Toy rank-1 [nearest gallery image by cosine, first on ties]"
    assert header in report.stdout and f"{100 * expected['feats_a']:.2f}" in report.stdout
    with open(tmp_path / "run_feats_a" / "intervals.csv", newline="") as handle:
        (row,) = [r for r in csv.DictReader(handle) if r["benchmark"] == "toyset"]
    assert float(row["estimate"]) == expected["feats_a"] and row["method"] == "probe bootstrap"
    assert float(row["low"]) <= expected["feats_a"] <= float(row["high"])

    compared = _cli(["compare", "run_feats_a", "run_feats_b", "--protocols", "protocols", "--out", "cmp",
                     "--n-boot", "200"], plugin, tmp_path)
    assert compared.returncode == 0, compared.stderr
    table = (tmp_path / "cmp" / "table.md").read_text()
    assert header in table
    assert f"**{100 * expected['feats_a']:.2f}**" in table and f"{100 * expected['feats_b']:.2f}" in table

    # without the module's registration the protocol file names an unknown kind: a clear error
    refused = _cli(["benchmarks", "--protocols", "protocols"], None, tmp_path)
    assert refused.returncode != 0 and "unknown protocol kind 'toy_closed'" in refused.stderr


# ------------------------------------------------------------------------------------------- shipped kinds


@pytest.mark.parametrize("kind", kinds.BUILT_IN, ids=lambda k: k.name)
def test_every_shipped_kind_resolves_what_it_names(kind: Kind) -> None:
    if kind.runnable:
        assert callable(kind.load_evaluator())
    if kind.pair_verification:
        assert callable(kind.load_pair_data())
    assert set(kind.figures) <= set(FIGURES)
    for metric in kind.metrics:
        for method, what in ((metric.interval, "interval"), (metric.paired_test, "paired test")):
            assert not method or method in METHODS[what], (kind.name, metric.head, method)


def test_every_shipped_protocol_reader_is_its_kinds_and_pair_readers_exist() -> None:
    for spec in load_benchmarks().values():
        assert {s.reader for s in spec.sources} <= set(kinds.get(spec.kind).readers), spec.name
    assert set(kinds.get("pairs").readers) == set(READERS.names())
    assert set(DIALECTS) == set(PAIR_DIALECTS)


def test_loading_the_specs_stays_light() -> None:
    """Declaring the kinds imports no reader, evaluator or numpy, and scans no installed package."""
    code = (
        "import sys; from facebench.benchmarks import load_benchmarks; load_benchmarks(); "
        "print(sorted(m for m in ('numpy', 'importlib.metadata', 'facebench.io.pairlists', 'facebench.evaluate') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


def test_unknown_kind_reader_and_option_are_refused_when_specs_load(tmp_path: Path) -> None:
    base = 'name = "mine"\nversion = 1\ntitle = "t"\ncitation = "c"\n'
    source = '[[source]]\nreader = "{reader}"\nfiles = {{ pack = "mine.bin" }}\n'
    cases = [
        (f'{base}kind = "pair"\n{source.format(reader="binpack")}', "unknown protocol kind 'pair'; did you mean 'pairs'?"),
        (f'{base}kind = "pairs"\n{source.format(reader="binpak")}',
         "source 1: reader 'binpak' cannot feed a pairs benchmark; did you mean 'binpack'?"),
        (f'{base}kind = "pairs"\n{source.format(reader="binpack")}[options]\ndialekt = "lfw"\n',
         "[options] unknown key 'dialekt'; did you mean 'dialect'?"),
        (f'{base}kind = "pairs"\n{source.format(reader="binpack")}[options]\ndialect = "lfv"\n',
         "'lfv' is not one of auto"),
        (f'{base}kind = "megaface"\n{source.format(reader="devkit")}[options]\nmax_rank = 0\n',
         "need max_rank >= 1"),
        (f'{base}kind = "megaface"\n{source.format(reader="devkit")}[options]\nmax_rank = "ten"\n',
         "max_rank: expected an integer"),
        (f'{base}kind = "scores"\n{source.format(reader="scores")}', "kind 'scores' is not evaluated from a protocol"),
        (f'{base}kind = "pairs"\n{source.format(reader="binpack")}[columns]\naccuracyy = "A"\n',
         "[columns]: 'accuracyy': 'accuracyy' is not a metric of a pairs benchmark; did you mean 'accuracy'"),
        (f'{base}kind = "ijb_1to1"\n{source.format(reader="ijb_meta")}[columns]\n"tar_at_far.1e-4" = "T"\n',
         "[columns]: 'tar_at_far.1e-4' needs a rate key written like 1e-04"),
        (f'{base}kind = "megaface"\n{source.format(reader="devkit")}[columns]\n"rank1.1000001" = "R"\n',
         "rank1 needs a distractor size key (10, 100, 1000, 10000, 100000, 1000000)"),
    ]
    for i, (text, message) in enumerate(cases):
        folder = tmp_path / str(i)
        folder.mkdir()
        (folder / "mine.toml").write_text(text, encoding="utf-8")
        with pytest.raises(FacebenchError) as info:
            load_benchmarks(folder)
        assert str(folder / "mine.toml") in str(info.value) and message in str(info.value), str(info.value)


def test_rule_text_is_the_kinds_rule_keys() -> None:
    """The rule texts the tables have always shown, now from each kind's rule keys."""
    ijb = {"ijb_1n": "standard", "tpir_rule": "insightface: t = the max(int(N f), 1)-th"}
    cases = [
        ("pairs", {"kfold": "insightface", "tar_at_far": "nearest"}, "accuracy", "insightface"),
        ("pairs", {"kfold": "insightface", "tar_at_far": "nearest"}, "accuracy_std", "insightface"),
        ("pairs", {"kfold": "insightface", "tar_at_far": "nearest"}, "tar_at_far.1e-03", "nearest"),
        ("pairs", {"kfold": "insightface"}, "auc", ""),
        ("folder", {"tpir_rule": "ge: bob"}, "tpir_at_fpir.1e-02", "TPIR ge"),
        ("ijb_1to1", {"tar_at_far": "le"}, "tar_at_far.1e-04", "le"),
        ("ijb_1n", ijb, "rank1", "standard"),
        ("ijb_1n", ijb, "tpir_at_fpir.1e-01", "standard, TPIR insightface"),
        ("ijb_1n", ijb, "eer", "standard"),
        ("megaface", {"noise": "insightface", "tie_rule": ">=", "tar_at_far": "conventional"}, "rank1.1000",
         "noise insightface"),
        ("megaface", {"noise": "insightface", "tie_rule": ">"}, "rank1.1000", "noise insightface, ties >"),
        ("megaface", {"noise": "none", "tar_at_far": "conventional"}, "tar_at_far.1e-06", "conventional, noise none"),
        ("survface", {"tpir_rule": "best: sup"}, "fnir_at_fpir.1e-01", "TPIR best"),
        ("no_such_kind", {"kfold": "facexzoo"}, "accuracy", "facexzoo"),
    ]
    for kind, rules, metric, text in cases:
        assert rule_of(BenchmarkEntry(kind, kind, rules=rules), metric) == text, (kind, metric)
    entry = BenchmarkEntry("IJB-C", "ijb_1n", rules=ijb, column_rules={"rank1": "tpir_rule"})
    assert rule_of(entry, "rank1") == ijb["tpir_rule"]


def test_lower_is_better_metrics() -> None:
    lower = {h for h, m in COMMON.items() if not m.higher_is_better}
    assert lower == {
        "accuracy_std", "eer", "eer_rocch", "fnir_at_fpir", "ser", "ser_kfold", "ir", "garbe", "group_std",
        "group_fmr", "group_fnmr", "erc_auc_fixed", "erc_auc_refit", "erc_pauc_fixed", "erc_pauc_refit",
    }
    assert kinds.get("pairs").metric("accuracy").higher_is_better
    assert not kinds.get("pairs").metric("eer").higher_is_better


def test_metric_key_grammar() -> None:
    rate = Metric("tar_at_far", key="rate")
    rate.check_key("tar_at_far.1e-04", "here")
    with pytest.raises(FacebenchError, match="needs a rate key written like 1e-04"):
        rate.check_key("tar_at_far.1e-4", "here")
    with pytest.raises(FacebenchError, match="needs a distractor size key"):
        kinds.get("megaface").metric("rank1").check_key("rank1.7", "here")
    with pytest.raises(FacebenchError, match="takes no key"):
        kinds.get("pairs").metric("accuracy").check_key("accuracy.x", "here")
