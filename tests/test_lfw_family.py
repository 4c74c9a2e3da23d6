"""The LFW family, RFW and the fairness/quality analyses end to end.

Every set is written byte for byte in its original format (dialect, header, separators) under a data root,
features are given per image (a seeded vector per relative path, rows in the pair order this test works
out on its own), and `facebench run --features` must give exactly the numbers of a written-out computation.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from facebench.cli import main
from facebench.results import read_results

DIM = 8


def _vec(rel: str, same_as: str | None = None, noise: float = 0.0) -> np.ndarray:
    """A seeded feature per image; ``same_as`` pulls it toward another image (a genuine pair)."""
    seed = int.from_bytes(hashlib.sha256(rel.encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).normal(size=DIM)
    if same_as is not None:
        v = _vec(same_as) + noise * v
    return v.astype(np.float32).astype(np.float64)  # the values the float32 feature file holds


def _kfold_accuracy(cos: np.ndarray, issame: np.ndarray) -> tuple[float, list[float]]:
    """insightface's 10-fold accuracy, written out: contiguous folds, first best threshold of arange(0, 4, 0.01)
    on the 9 other folds (dist < t), accuracy on the held-out fold."""
    dist = 2 - 2 * cos
    n = len(cos)
    size = [n // 10 + (1 if k < n % 10 else 0) for k in range(10)]
    starts = [sum(size[:k]) for k in range(10)]
    accs = []
    for k in range(10):
        test = np.zeros(n, bool)
        test[starts[k]: starts[k] + size[k]] = True
        best, best_acc = None, -1.0
        for t in np.arange(0, 4, 0.01):  # the first threshold with the highest train accuracy
            acc = np.count_nonzero((dist[~test] < t) == issame[~test]) / (n - size[k])
            if acc > best_acc:
                best, best_acc = t, acc
        accs.append(np.count_nonzero((dist[test] < best) == issame[test]) / size[k])
    return float(np.mean(accs)), accs


def _xqlfw_accuracy(cos: np.ndarray, issame: np.ndarray) -> float:
    """The XQLFW authors' rule written out: distance 1 - cos, thresholds arange(0, 2, 0.001), same when below."""
    dist = 1 - cos
    n = len(cos)
    accs = []
    for k in range(10):
        test = np.zeros(n, bool)
        test[k * n // 10: (k + 1) * n // 10] = True
        train_acc = [np.count_nonzero((dist[~test] < t) == issame[~test]) for t in np.arange(0, 2, 0.001)]
        best = np.arange(0, 2, 0.001)[int(np.argmax(train_acc))]
        accs.append(np.count_nonzero((dist[test] < best) == issame[test]) / np.count_nonzero(test))
    return float(np.mean(accs))


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    return float(np.sum(a * b))


def _touch(root: Path, rels) -> None:
    for rel in rels:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"\x89PNG\r\n\x1a\n" if rel.endswith(".png") else b"\xff\xd8\xff")


def _write_features(dirpath: Path, label: str, rels: list, vectors: dict) -> None:
    dirpath.mkdir(parents=True, exist_ok=True)
    np.save(dirpath / f"{label}.npy", np.stack([vectors[r] for r in rels]).astype(np.float32))


def _run(tmp_path: Path, bench: str, data_root: Path, features: Path, *extra: str) -> dict:
    out = tmp_path / f"out_{bench}"
    status = main(["-q", "run", "-b", bench, "--data-root", str(data_root), "--features", str(features),
                   "--out", str(out), "--no-speed", *extra])
    doc = read_results(out)
    assert status == 0, doc.get("failed")
    return doc.benchmarks[bench]


def _lfw_style(per_fold: int, names: str = "P", ext: str = "jpg", noise: float = 0.9):
    """LFW-dialect pairs: per fold ``per_fold`` matched then mismatched lines; returns lines (no header),
    the pairs as (rel_a, rel_b, same) in file order and the vectors."""
    lines, pairs, vectors = [], [], {}
    for s in range(10):
        for m in range(per_fold):
            name = f"{names}{s}_{m}"
            a, b = f"{name}/{name}_0001.{ext}", f"{name}/{name}_0002.{ext}"
            vectors.setdefault(a, _vec(a))
            vectors.setdefault(b, _vec(b, a, noise))
            lines.append(f"{name}\t1\t2")
            pairs.append((a, b, True))
        for m in range(per_fold):
            n1, n2 = f"{names}{s}_{m}", f"{names}{s}_{(m + 1) % per_fold}"
            a, b = f"{n1}/{n1}_0001.{ext}", f"{n2}/{n2}_0002.{ext}"
            lines.append(f"{n1}\t1\t{n2}\t2")
            pairs.append((a, b, False))
    return lines, pairs, vectors


def _expected_verification(pairs, vectors):
    cos = np.array([_cos(vectors[a], vectors[b]) for a, b, _ in pairs])
    issame = np.array([s for _, _, s in pairs])
    return cos, issame


def test_xqlfw_header_dialect_and_quality_curves(tmp_path):
    root = tmp_path / "data"
    lines, pairs, vectors = _lfw_style(per_fold=100)
    images = root / "xqlfw" / "xqlfw_aligned_112"
    _touch(images, vectors)
    (root / "xqlfw" / "xqlfw_pairs.txt").write_text("10\t100\n" + "\n".join(lines) + "\n")
    rng = np.random.default_rng(5)
    quality = {rel: round(float(rng.random()), 3) for rel in vectors}
    # the release's per-image quality file, 'path score'
    (root / "xqlfw" / "xqlfw_scores.txt").write_text("".join(f"{rel} {q}\n" for rel, q in quality.items()))
    rels = [p for a, b, _ in pairs for p in (a, b)]
    _write_features(tmp_path / "f", "xqlfw", rels, vectors)
    entry = _run(tmp_path, "xqlfw", root, tmp_path / "f")
    cos, issame = _expected_verification(pairs, vectors)
    acc, _ = _kfold_accuracy(cos, issame)
    assert entry.value("accuracy") == pytest.approx(acc, abs=1e-12)
    assert entry.rules["pair_list_dialect"] == "lfw" and entry.rules["folds"] == "sets"
    assert not any("more than one fold" in w for w in entry.warnings)  # LFW-style folds are identity-disjoint
    # error-versus-discard at FMR 1e-3 (1,000 impostors: resolvable on all pairs), both conventions
    q = np.array([min(quality[a], quality[b]) for a, b, _ in pairs])
    order = sorted(range(len(q)), key=lambda i: (q[i], i))

    def thr(imp):
        imp = sorted(imp)
        ok = [v for v in imp if sum(1 for x in imp if x >= v) / len(imp) <= 1e-3]
        return min(ok) if ok else math.nextafter(imp[-1], math.inf)

    fixed_t = thr([c for c, s in zip(cos, issame) if not s])
    curves = entry.extra["quality"]["curves"]
    for k in range(20):
        kept = order[int(math.floor(k * 0.05 * len(q) + 1e-9)):]
        gen = [cos[i] for i in kept if issame[i]]
        imp = [cos[i] for i in kept if not issame[i]]
        assert curves["fixed_1e-03"]["n_genuine"][k] == len(gen) and curves["fixed_1e-03"]["n_impostor"][k] == len(imp)
        assert curves["fixed_1e-03"]["fnmr"][k] == pytest.approx(sum(1 for c in gen if c < fixed_t) / len(gen), abs=1e-12)
        if len(imp) >= 1000:
            t = thr(imp)
            assert curves["refit_1e-03"]["fnmr"][k] == pytest.approx(sum(1 for c in gen if c < t) / len(gen), abs=1e-12)
        else:
            assert curves["refit_1e-03"]["fnmr"][k] is None  # not resolvable: NaN, written as null
    assert all(v is None for v in curves["fixed_1e-04"]["fnmr"])  # 1,000 impostors cannot resolve 1e-4
    assert "xqlfw_scores.txt" in entry.rules["quality"]
    assert (tmp_path / "out_xqlfw" / "erc_xqlfw_1e-03.png").is_file()
    fixed = curves["fixed_1e-03"]["fnmr"]
    assert entry.value("erc_pauc_fixed.1e-03") == pytest.approx(
        sum(0.05 * (fixed[k] + fixed[k + 1]) / 2 for k in range(4)), rel=1e-12)
    # a second checkpoint with --quality norm, compared with the first: one ERC figure, both runs
    feats = np.load(tmp_path / "f" / "xqlfw.npy")
    scale = 1.0 + np.arange(len(feats)) % 7
    _write_features(tmp_path / "g", "xqlfw", list(range(len(feats))), dict(enumerate(feats * scale[:, None])))
    second = _run(tmp_path / "second", "xqlfw", root, tmp_path / "g", "--quality", "norm")
    assert second.rules["quality"].startswith("norm")
    with np.load(tmp_path / "second" / "out_xqlfw" / "xqlfw.npz") as arrays:
        norms = np.linalg.norm((feats * scale[:, None]).astype(np.float32).astype(np.float64), axis=1)
        np.testing.assert_allclose(arrays["pair_quality"], np.minimum(norms[0::2], norms[1::2]), rtol=1e-12)
    assert main(["-q", "compare", str(tmp_path / "out_xqlfw"), str(tmp_path / "second" / "out_xqlfw"),
                 "--out", str(tmp_path / "cmp"), "--no-stats", "--no-html"]) == 0
    assert (tmp_path / "cmp" / "erc_xqlfw_1e-03.png").is_file()
    assert "xqlfw EDC pAUC@0.2" in (tmp_path / "cmp" / "table.md").read_text()
    # the authors' own 10-fold rule, comparable with their published rows
    third = _run(tmp_path / "third", "xqlfw", root, tmp_path / "f", "--kfold-rule", "xqlfw")
    assert third.rules["kfold"] == "xqlfw" and third.details["threshold_unit"] == "cosine_distance"
    assert third.value("accuracy") == pytest.approx(_xqlfw_accuracy(cos, issame), abs=1e-12)
    assert main(["-q", "compare", str(tmp_path / "third" / "out_xqlfw"), "--published", "xqlfw_authors",
                 "--out", str(tmp_path / "cmp3"), "--no-stats", "--no-html"]) == 0
    assert "74.22 |" in (tmp_path / "cmp3" / "table.md").read_text()  # same rule: no mark


def test_sllfw_consecutive_lines_without_labels(tmp_path):
    root = tmp_path / "data"
    _, pairs, vectors = _lfw_style(per_fold=5)
    _touch(root / "lfw", vectors)  # SLLFW ships only its list; the images are LFW's
    (root / "sllfw").mkdir()
    (root / "sllfw" / "pair_SLLFW.txt").write_text("".join(f"{a}\n{b}\n" for a, b, _ in pairs))
    _write_features(tmp_path / "f", "sllfw", [p for a, b, _ in pairs for p in (a, b)], vectors)
    entry = _run(tmp_path, "sllfw", root, tmp_path / "f")
    acc, _ = _kfold_accuracy(*_expected_verification(pairs, vectors))
    assert entry.value("accuracy") == pytest.approx(acc, abs=1e-12)
    assert entry.rules["pair_list_dialect"] == "consecutive" and entry.rules["folds"] == "kfold_stored_order"


def test_mlfw_tab_separated_calfw_folds_and_leak_warning(tmp_path):
    root = tmp_path / "data"
    positives, negatives, vectors = [], [], {}
    for k in range(30):  # CALFW-style flat names; positives first, then negatives
        a, b = f"Id{k}_0001.jpg", f"Id{k}_0002.jpg"
        vectors[a], vectors[b] = _vec(a), _vec(b, a, 1.0)
        positives.append((a, b, True))
    for k in range(30):  # impostors within the fold's identities, except one: Id7 (fold 3) also in fold 1
        other = 7 if k == 0 else 3 * (k // 3) + (k + 1) % 3
        negatives.append((f"Id{k}_0001.jpg", f"Id{other}_0002.jpg", False))
    listed = positives + negatives
    _touch(root / "mlfw" / "aligned", vectors)
    (root / "mlfw" / "pairs.txt").write_text("".join(f"{a}\t{b}\t{int(s)}\n" for a, b, s in listed))
    order = [p for f in range(10) for p in positives[3 * f: 3 * f + 3] + negatives[3 * f: 3 * f + 3]]
    _write_features(tmp_path / "f", "mlfw", [p for a, b, _ in order for p in (a, b)], vectors)
    entry = _run(tmp_path, "mlfw", root, tmp_path / "f")
    acc, _ = _kfold_accuracy(*_expected_verification(order, vectors))
    assert entry.value("accuracy") == pytest.approx(acc, abs=1e-12)
    assert entry.rules["folds"] == "halves" and entry.rules["pair_list_dialect"] == "path_path_label"
    leak = [w for w in entry.warnings if "more than one fold" in w]
    assert len(leak) == 1 and "1 identity appears in more than one fold: Id7 (folds 1, 3);" in leak[0]


def _mfr2(root: Path):
    rng = np.random.default_rng(2)
    names = [f"Person{k}" for k in range(8)]
    masks = {}
    vectors = {}
    for n in names:
        for i in (1, 2, 3):
            rel = f"{n}/{n}_{i:04d}.png"
            vectors[rel] = _vec(rel, f"{n}/{n}_0001.png" if i > 1 else None, 0.8) if i > 1 else _vec(rel)
            masks[(n, i)] = "no-mask" if i == 1 else ("cloth" if i == 2 else "surgical_white")
    lines, pairs = [], []
    for k in range(60):  # genuine and impostor lines mixed, no header
        if k % 2 == 0:
            n = names[k // 2 % 8]
            i, j = (1, 2) if k % 4 == 0 else (2, 3)
            lines.append(f"{n}\t{i}\t{j}")
            pairs.append((f"{n}/{n}_{i:04d}.png", f"{n}/{n}_{j:04d}.png", True))
        else:
            n1, n2 = names[k % 8], names[(k + 3) % 8]
            i, j = int(rng.integers(1, 4)), int(rng.integers(1, 4))
            lines.append(f"{n1}\t{i}\t{n2}\t{j}")
            pairs.append((f"{n1}/{n1}_{i:04d}.png", f"{n2}/{n2}_{j:04d}.png", False))
    _touch(root / "mfr2", vectors)
    (root / "mfr2" / "pairs.txt").write_text("\n".join(lines) + "\n")
    (root / "mfr2" / "mfr2_labels.txt").write_text("".join(f"{n}, {i}, {m}\n" for (n, i), m in masks.items()))
    return pairs, vectors, masks


def test_mfr2_original_layout_and_mask_groups(tmp_path):
    root = tmp_path / "data"
    pairs, vectors, masks = _mfr2(root)
    _write_features(tmp_path / "f", "mfr2", [p for a, b, _ in pairs for p in (a, b)], vectors)
    entry = _run(tmp_path, "mfr2", root, tmp_path / "f", "--fairness-fmr", "0.1", "--fairness-boot", "0")
    cos, issame = _expected_verification(pairs, vectors)
    acc, _ = _kfold_accuracy(cos, issame)
    assert entry.value("accuracy") == pytest.approx(acc, abs=1e-12)
    assert entry.rules["folds"] == "kfold_stored_order" and entry.rules["pair_list_dialect"] == "lfw_noheader"
    # masked vs unmasked at one global threshold (FMR 0.1 over all impostors)
    imp = sorted(c for c, s in zip(cos, issame) if not s)
    t = min(v for v in imp if sum(1 for x in imp if x >= v) / len(imp) <= 0.1)
    fair = entry.extra["fairness"]["masked"]
    assert fair["threshold"] == pytest.approx(t, abs=1e-12)

    def group(rel):
        name, number = rel.split("/")[0], int(rel[-8:-4])
        return "unmasked" if masks[(name, number)] == "no-mask" else "masked"

    labels = ["|".join(sorted((group(a), group(b)))) if group(a) != group(b) else group(a) for a, b, _ in pairs]
    for g in set(labels):
        gen = [c for c, s, lab in zip(cos, issame, labels) if lab == g and s]
        im = [c for c, s, lab in zip(cos, issame, labels) if lab == g and not s]
        row = fair["groups"][g]
        assert (row["n_genuine"], row["n_impostor"]) == (len(gen), len(im))
        assert row["false_non_matches"] == sum(1 for c in gen if c < t)
        assert row["false_matches"] == sum(1 for c in im if c >= t)
        assert row["cross"] == ("|" in g)
    assert set(entry.extra["fairness"]["mask_type"]["groups"]) >= {"cloth", "no-mask|surgical_white"}


RACES = ("African", "Asian", "Caucasian", "Indian")


def test_rfw_four_subsets_papers_and_standards_way(tmp_path):
    root = tmp_path / "data"
    features = tmp_path / "f"
    cos_all, same_all, race_all, accs = [], [], [], {}
    for r, race in enumerate(RACES):
        lines, pairs, vectors = _lfw_style(per_fold=12, names=f"m.{race[:2]}", noise=0.6 + 0.25 * r)
        _touch(root / "rfw" / "test" / "data" / race, vectors)
        txt = root / "rfw" / "test" / "txts" / race / f"{race}_pairs.txt"
        txt.parent.mkdir(parents=True, exist_ok=True)
        txt.write_text("\n".join(lines) + "\n")
        _write_features(features, f"rfw_{race}", [p for a, b, _ in pairs for p in (a, b)], vectors)
        cos, issame = _expected_verification(pairs, vectors)
        accs[race], _ = _kfold_accuracy(cos, issame)
        cos_all += cos.tolist()
        same_all += issame.tolist()
        race_all += [race] * len(cos)
    entry = _run(tmp_path, "rfw", root, features, "--fairness-fmr", "0.05", "--fairness-boot", "20")
    for race in RACES:
        assert entry.value(f"subset_accuracy.{race}") == pytest.approx(accs[race], abs=1e-12)
    values = [accs[r] for r in RACES]
    mean = sum(values) / 4
    assert entry.value("accuracy") == pytest.approx(mean, abs=1e-12)
    assert entry.value("accuracy_std") == pytest.approx(math.sqrt(sum((a - mean) ** 2 for a in values) / 3), abs=1e-12)
    errs = [1 - a for a in values]
    assert entry.value("ser_kfold") == pytest.approx(max(errs) / min(errs), rel=1e-12)
    assert "ddof=1" in entry.rules["subset_std"]
    # standards way: one global threshold at FMR 0.05 over all impostor pairs, per-race FMR / FNMR
    imp = sorted(c for c, s in zip(cos_all, same_all) if not s)
    t = min(v for v in imp if sum(1 for x in imp if x >= v) / len(imp) <= 0.05)
    fair = entry.extra["fairness"]["race"]
    assert fair["threshold"] == pytest.approx(t, abs=1e-12)
    fmr, fnmr, acc = {}, {}, {}
    for race in RACES:
        gen = [c for c, s, r in zip(cos_all, same_all, race_all) if r == race and s]
        im = [c for c, s, r in zip(cos_all, same_all, race_all) if r == race and not s]
        fnmr[race] = sum(1 for c in gen if c < t) / len(gen)
        fmr[race] = sum(1 for c in im if c >= t) / len(im)
        acc[race] = (sum(1 for c in gen if c >= t) + sum(1 for c in im if c < t)) / (len(gen) + len(im))
        assert fair["groups"][race]["fmr"] == pytest.approx(fmr[race], abs=1e-12)
        assert fair["groups"][race]["fnmr"] == pytest.approx(fnmr[race], abs=1e-12)
    assert min(fmr.values()) > 0 and min(fnmr.values()) > 0  # so every summary below is finite
    pairs_of = list(itertools.combinations(RACES, 2))
    fdr = 1 - 0.5 * max(abs(fmr[a] - fmr[b]) for a, b in pairs_of) - 0.5 * max(abs(fnmr[a] - fnmr[b]) for a, b in pairs_of)
    ir = (max(fmr.values()) / min(fmr.values())) ** 0.5 * (max(fnmr.values()) / min(fnmr.values())) ** 0.5

    def gini(x):
        n = len(x)
        return n / (n - 1) * sum(abs(a - b) for a in x for b in x) / (2 * n * n * (sum(x) / n))

    garbe = 0.5 * gini(list(fmr.values())) + 0.5 * gini(list(fnmr.values()))
    errs = [1 - acc[r] for r in RACES]
    assert entry.value("fdr.race") == pytest.approx(fdr, rel=1e-12)
    assert entry.value("ir.race") == pytest.approx(ir, rel=1e-12)
    assert entry.value("garbe.race") == pytest.approx(garbe, rel=1e-12)
    assert entry.value("ser.race") == pytest.approx(max(errs) / min(errs), rel=1e-12)
    assert fair["bootstrap"]["n_boot"] == 20 and "African.fnmr" in fair["intervals"]
    assert entry.columns["fdr.race"] == "rfw FDR(race)"
    assert entry.columns["group_fnmr.race/Indian"] == "RFW FNMR@5e-02 Indian"
    assert entry.value("group_fnmr.race/Indian") == pytest.approx(fnmr["Indian"], abs=1e-12)
    for figure in ("det_rfw_race.png", "groups_rfw_race.png"):  # the run report draws them
        assert (tmp_path / "out_rfw" / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_folder_reads_a_foreign_lfw_pairs_txt_and_saves_row_order(tmp_path):
    # a folder holding LFW's own pairs.txt was rejected with "expected label 1 or 0, got '4'"
    from _iodata import jpeg  # real JPEG signatures: the folder listing checks them

    root = tmp_path / "photos"
    lines, pairs, vectors = _lfw_style(per_fold=2)
    for i, rel in enumerate(sorted(vectors)):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(jpeg(i))
    (root / "pairs.txt").write_text("10\t2\n" + "\n".join(lines) + "\n")
    rows = sorted(str(root / rel) for rel in vectors)  # the listing: identities, then images, in name order
    np.save(tmp_path / "feats.npy", np.stack([vectors[str(Path(r).relative_to(root))] for r in rows]).astype(np.float32))
    out = tmp_path / "out"
    status = main(["-q", "run", "-b", f"folder:{root}", "--features", str(tmp_path / "feats.npy"), "--out", str(out),
                   "--no-speed", "--save-features", str(tmp_path / "saved")])
    assert status == 0
    entry = read_results(out).benchmarks["folder_photos"]
    assert entry.rules["pair_list_dialect"] == "lfw" and entry.rules["folds"] == "sets"
    acc, _ = _kfold_accuracy(*_expected_verification(pairs, vectors))
    assert entry.value("accuracy") == pytest.approx(acc, abs=1e-12)
    # saved features come with their row order
    assert (tmp_path / "saved" / "folder_photos.paths.txt").read_text().splitlines() == rows
    # --pairs generate ignores the list
    status = main(["-q", "run", "-b", f"folder:{root}", "--features", str(tmp_path / "feats.npy"), "--out",
                   str(tmp_path / "gen"), "--no-speed", "--pairs", "generate"])
    generated = read_results(tmp_path / "gen").benchmarks["folder_photos"]
    assert generated.rules["pairs"].startswith("generated")
