"""`facebench overlap audit`: identity centres and similarity against brute force; planted overlaps found by
names and by features, none on disjoint identities at the default threshold; the checkpoint path against
an independent computation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from facebench.cli import main
from facebench.overlap.audit import AuditRules, find_overlaps
from facebench.overlap.centres import identity_centres, similar_pairs
from facebench.overlap.sources import BenchmarkIdentities

D = 512


def brute_centres(feats: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    out = np.full((n, feats.shape[1]), np.nan)
    for k in range(n):
        rows = [f / np.linalg.norm(f) for f, o in zip(feats.astype(np.float64), owner) if o == k and np.linalg.norm(f) > 0]
        if rows:
            s = np.sum(rows, axis=0)
            out[k] = s / np.linalg.norm(s)
    return out


def test_centres_match_brute_force_in_any_chunking_and_order() -> None:
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(50, 16)).astype(np.float32) * rng.uniform(0.1, 30, size=(50, 1)).astype(np.float32)
    owner = rng.integers(0, 9, size=50)
    owner[owner == 4] = 5  # identity 4 has no rows
    feats[3] = 0.0  # a zero row is left out
    feats[7, 2] = np.nan  # so is a NaN row
    expected = brute_centres(feats, owner, 9)
    for chunk in (1, 7, 1000):
        got = identity_centres(feats, owner, 9, chunk_rows=chunk)
        np.testing.assert_allclose(got.centres, expected, rtol=1e-5, atol=1e-6)
        assert got.skipped_rows == 2 and got.counts[4] == 0
        assert got.counts.sum() == 48


def test_similar_pairs_match_the_full_matrix() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(37, 8)).astype(np.float32)
    b = rng.normal(size=(11, 8)).astype(np.float32)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    a[5] = np.nan
    b[2] = np.nan
    full = a.astype(np.float64) @ b.T.astype(np.float64)
    for chunk in (1, 30, 1 << 20):
        ti, bi, cos = similar_pairs(a, b, 0.3, chunk_elems=chunk)
        expected = sorted((int(i), int(j)) for i, j in zip(*np.nonzero(np.nan_to_num(full, nan=-9) > 0.3)))
        assert sorted(zip(ti.tolist(), bi.tolist())) == expected and 5 not in ti and 2 not in bi
        np.testing.assert_allclose(cos, full[ti, bi], rtol=1e-5)


@pytest.fixture()
def synthetic(tmp_path: Path) -> dict:
    """200 training and 150 benchmark identities (3 images each, D=512); 12 planted shared identities,
    3 shared names (2 of them also planted by features, 1 by name only)."""
    rng = np.random.default_rng(42)
    n_train, n_bench, per = 200, 150, 3
    planted = {int(t): int(b) for t, b in zip(rng.choice(n_train, 12, replace=False), rng.choice(n_bench, 12, replace=False))}
    true_train = rng.normal(size=(n_train, D))
    true_bench = rng.normal(size=(n_bench, D))
    for t, b in planted.items():
        true_bench[b] = true_train[t]

    def images(true: np.ndarray) -> np.ndarray:
        unit = true / np.linalg.norm(true, axis=1, keepdims=True)
        noise = rng.normal(size=(len(true) * per, D)) / math.sqrt(D)
        return (np.repeat(unit, per, axis=0) + noise) * rng.uniform(5, 50, size=(len(true) * per, 1))

    train_feats = images(true_train).astype(np.float32)
    bench_feats = images(true_bench).astype(np.float32)
    mids = [f"m.0t{k:04d}" for k in range(n_train)]
    order = rng.permutation(n_train * per)  # rows in a shuffled order
    owner = np.repeat(np.arange(n_train), per)[order]
    train_feats = train_feats[order]
    listing = tmp_path / "train.txt"
    listing.write_text("".join(f"{mids[o]}/{i}.jpg {o}\n" for i, o in enumerate(owner)))
    np.save(tmp_path / "train.npy", train_feats)
    bench_names = [f"Benchfirst{k}_Benchlast{k}" for k in range(n_bench)]
    train_names = [f"Trainfirst{k} Trainlast{k}" for k in range(n_train)]
    planted_items = sorted(planted.items())
    named = planted_items[:2]
    name_only = (int(next(t for t in range(n_train) if t not in planted)), int(next(b for b in range(n_bench) if b not in planted.values())))
    for t, b in named + [name_only]:
        train_names[t] = bench_names[b].replace("_", " ").upper()
    (tmp_path / "names.tsv").write_text("".join(f"{m}\t\"{n}\"@en\n" for m, n in zip(mids, train_names)))
    (tmp_path / "lfw-names.txt").write_text("".join(f"{n}\t{per}\n" for n in bench_names))
    np.save(tmp_path / "bench.npy", bench_feats)
    tc = brute_centres(train_feats, owner, n_train)
    bc = brute_centres(bench_feats, np.repeat(np.arange(n_bench), per), n_bench)
    return {
        "tmp": tmp_path, "planted": planted, "named": dict(named), "name_only": name_only, "mids": mids,
        "bench_names": bench_names, "train_names": train_names, "cos": tc @ bc.T, "listing": listing,
    }


def audit(s: dict, out: Path, *extra: str) -> int:
    t = s["tmp"]
    return main(["overlap", "audit", "--train", str(s["listing"]), "--benchmark", f"lfw={t / 'lfw-names.txt'}",
                 "--out", str(out), *extra])


def read_tsv(path: Path) -> list[dict[str, str]]:
    lines = path.read_text().splitlines()
    head = lines[0].split("\t")
    return [dict(zip(head, line.split("\t"))) for line in lines[1:]]


def test_planted_overlaps_are_found_and_nothing_else(synthetic: dict) -> None:
    s = synthetic
    t = s["tmp"]
    cos = s["cos"]
    # independent check of the premise: planted pairs are far above 0.4, disjoint ones far below
    planted_mask = np.zeros_like(cos, dtype=bool)
    for a, b in s["planted"].items():
        planted_mask[a, b] = True
    assert cos[planted_mask].min() > 0.6 and cos[~planted_mask].max() < 0.3
    out = t / "out"
    rc = audit(s, out, "--names", str(t / "names.tsv"), "--features", str(t / "train.npy"),
               "--benchmark-features", f"lfw={t / 'bench.npy'}")
    assert rc == 0
    rows = read_tsv(out / "overlaps.tsv")
    got = {(r["train_identity"], r["benchmark_identity"]): r for r in rows}
    mids, names = s["mids"], s["bench_names"]
    expected = {(mids[a], names[b]) for a, b in s["planted"].items()} | {(mids[s["name_only"][0]], names[s["name_only"][1]])}
    assert set(got) == expected
    for (a, b) in s["planted"].items():
        r = got[(mids[a], names[b])]
        assert float(r["cosine"]) == pytest.approx(cos[a, b], abs=6e-5)
        assert r["evidence"] == ("names+similarity" if a in s["named"] else "similarity")
        assert r["name_rule"] == ("exact" if a in s["named"] else "-")
    r = got[(mids[s["name_only"][0]], names[s["name_only"][1]])]
    assert r["evidence"] == "names" and r["name_rule"] == "exact"
    assert float(r["cosine"]) == pytest.approx(cos[s["name_only"]], abs=6e-5)  # shown, below the threshold
    # ranking: both kinds first, then by cosine, names-only last
    assert [r["evidence"] for r in rows] == ["names+similarity"] * 2 + ["similarity"] * 10 + ["names"]
    sims = [float(r["cosine"]) for r in rows[2:12]]
    assert sims == sorted(sims, reverse=True) and [r["rank"] for r in rows] == [str(k) for k in range(1, 14)]
    removed = sorted({mids[a] for a in s["planted"]} | {mids[s["name_only"][0]]})
    assert (out / "removed_identities.txt").read_text().splitlines() == removed
    assert (out / "kept_identities.txt").read_text().splitlines() == sorted(set(mids) - set(removed))
    doc = json.loads((out / "audit.json").read_text())
    assert doc["counts"]["per_benchmark"]["lfw"] == {
        "identities": 150, "name_pairs": 3, "similar_pairs": 12, "both": 2, "train_identities_removed": 13,
    }
    assert doc["rules"]["threshold"] == 0.4 and doc["training"]["identities_with_centre"] == 200
    md = (out / "overlaps.md").read_text()
    assert md.count("\n| ") == 1 + 13 and "names+similarity" in md


@pytest.mark.parametrize("remove_on, n", [("both", 2), ("names", 3), ("similarity", 12), ("any", 13)])
def test_removal_policies(synthetic: dict, remove_on: str, n: int) -> None:
    t = synthetic["tmp"]
    out = t / f"out_{remove_on}"
    assert audit(synthetic, out, "--names", str(t / "names.tsv"), "--features", str(t / "train.npy"),
                 "--benchmark-features", f"lfw={t / 'bench.npy'}", "--remove-on", remove_on) == 0
    assert len((out / "removed_identities.txt").read_text().splitlines()) == n
    assert len(read_tsv(out / "overlaps.tsv")) == 13


def test_names_only_and_threshold(synthetic: dict) -> None:
    t = synthetic["tmp"]
    out = t / "names_only"
    assert audit(synthetic, out, "--names", str(t / "names.tsv"), "--name-langs", "en") == 0
    rows = read_tsv(out / "overlaps.tsv")
    assert len(rows) == 3 and {r["cosine"] for r in rows} == {"-"}
    out = t / "features_only"
    assert audit(synthetic, out, "--features", str(t / "train.npy"), "--benchmark-features",
                 f"lfw={t / 'bench.npy'}", "--threshold", "0.9") == 0
    assert read_tsv(out / "overlaps.tsv") == []
    assert (out / "removed_identities.txt").read_text() == ""


def test_find_overlaps_on_centres_directly() -> None:
    rng = np.random.default_rng(3)
    train = rng.normal(size=(1000, D))
    bench = rng.normal(size=(300, D))
    bench[:5] = train[[10, 20, 30, 40, 50]] + 0.5 * rng.normal(size=(5, D))
    train /= np.linalg.norm(train, axis=1, keepdims=True)
    bench /= np.linalg.norm(bench, axis=1, keepdims=True)
    b = BenchmarkIdentities("megaface", Path("x.json"), "devkit-json", [f"id{k}" for k in range(300)])
    result = find_overlaps([b], AuditRules(), n_train=1000, train_centres=train, bench_centres={"megaface": bench})
    assert [(s.train, s.bench) for s in sorted(result.suspects, key=lambda s: s.bench)] == [(10, 0), (20, 1), (30, 2), (40, 3), (50, 4)]
    assert result.removed.tolist() == [10, 20, 30, 40, 50]


def test_input_errors(synthetic: dict, capsys) -> None:
    t = synthetic["tmp"]
    assert audit(synthetic, t / "o1") == 2
    assert "give --names" in capsys.readouterr().err
    np.save(t / "short.npy", np.zeros((5, 4), np.float32))
    assert audit(synthetic, t / "o2", "--features", str(t / "short.npy")) == 2
    assert "short.npy: has 5 rows but training listing" in capsys.readouterr().err
    assert audit(synthetic, t / "o3", "--features", str(t / "train.npy"), "--benchmark-features", f"cfp={t / 'bench.npy'}") == 2
    assert "unknown benchmark(s) ['cfp']" in capsys.readouterr().err
    np.save(t / "obj.npy", np.array([{"a": 1}], dtype=object))
    assert audit(synthetic, t / "o4", "--features", str(t / "obj.npy")) == 2
    assert "pickled arrays are refused" in capsys.readouterr().err
    assert not any((t / f"o{k}").exists() for k in range(1, 5))


def _onnx_linear(path: Path, weight: np.ndarray) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Flatten", ["input"], ["flat"], axis=1), helper.make_node("MatMul", ["flat", "w"], ["output"])],
        "linear",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 112, 112])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", weight.shape[1]])],
        [numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_checkpoint_path_matches_an_independent_computation(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    weight = rng.normal(size=(3 * 112 * 112, 8)).astype(np.float32) / 100
    _onnx_linear(tmp_path / "m.onnx", weight)
    train_root, lfw = tmp_path / "train", tmp_path / "lfw"
    pictures = {}
    for person in ("m.0aa", "m.0bb", "m.0cc"):
        for k in range(2):
            img = rng.integers(0, 256, size=(112, 112, 3), dtype=np.uint8)
            pictures[f"{person}/{k}.png"] = img
            (train_root / person).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(train_root / f"{person}/{k}.png"), img[..., ::-1])
    for bench, source in (("Bench_A", "m.0bb"), ("Bench_B", None)):
        (lfw / bench).mkdir(parents=True)
        for k in range(2):
            img = pictures[f"{source}/{k}.png"] if source else rng.integers(0, 256, size=(112, 112, 3), dtype=np.uint8)
            pictures[f"{bench}/{k}.png"] = img
            cv2.imwrite(str(lfw / bench / f"{k}.png"), img[..., ::-1])

    def embed(img: np.ndarray) -> np.ndarray:  # insightface profile, flip add
        x = ((img.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1)
        return x.reshape(-1) @ weight + x[:, :, ::-1].reshape(-1) @ weight

    def centre(keys: list[str]) -> np.ndarray:
        s = sum(embed(pictures[k]) / np.linalg.norm(embed(pictures[k])) for k in keys)
        return s / np.linalg.norm(s)

    out = tmp_path / "out"
    rc = main(["overlap", "audit", "--train", str(train_root), "--checkpoint", str(tmp_path / "m.onnx"),
               "--benchmark", f"lfw={lfw}", "--out", str(out), "--threshold", "-1", "--workers", "0",
               "--no-cache", "--no-progress", "--device", "cpu"])
    assert rc == 0
    rows = read_tsv(out / "overlaps.tsv")
    assert len(rows) == 6
    for r in rows:
        t, b = r["train_identity"], r["benchmark_identity"]
        expected = float(centre([f"{t}/0.png", f"{t}/1.png"]) @ centre([f"{b}/0.png", f"{b}/1.png"]))
        assert float(r["cosine"]) == pytest.approx(expected, abs=1e-4)
    assert (rows[0]["train_identity"], rows[0]["benchmark_identity"], rows[0]["cosine"]) == ("m.0bb", "Bench_A", "1.0000")
    doc = json.loads((out / "audit.json").read_text())
    assert doc["checkpoint"]["profile"]["name"] == "insightface" and doc["training"]["images_used"] == 6


def test_identity_rows_and_folder_listings(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    ids = ["0000045", "0000099", "0000100"]
    (tmp_path / "ids.txt").write_text("\n".join(ids) + "\n")
    centres = rng.normal(size=(3, D)).astype(np.float32)
    np.save(tmp_path / "ids.npy", centres * 3.0)  # a mids listing: one row per identity
    (tmp_path / "names.txt").write_text("A_Person\t2\nB_Person\t1\n")
    bench = np.stack([centres[2], centres[2] + 0.01, rng.normal(size=D)]).astype(np.float32)
    np.save(tmp_path / "b.npy", bench)
    out = tmp_path / "out"
    assert main(["overlap", "audit", "--train", str(tmp_path / "ids.txt"), "--features", str(tmp_path / "ids.npy"),
                 "--benchmark", f"lfw={tmp_path / 'names.txt'}", "--benchmark-features", f"lfw={tmp_path / 'b.npy'}",
                 "--out", str(out)]) == 0
    rows = read_tsv(out / "overlaps.tsv")
    assert [(r["train_identity"], r["benchmark_identity"], r["train_label"]) for r in rows] == [("0000100", "A_Person", "-")]
    assert (out / "kept_identities.txt").read_text().split() == ids[:2]


def test_real_lists_end_to_end(protocol_files: Path, tmp_path: Path) -> None:
    """CASIA-WebFace names against LFW and FaceScrub: happynear's final overlap ids are all removed."""
    hn = protocol_files / "happynear-FaceDatasets" / "CASIA"
    names = hn / "webface_id_name_list.txt"
    ids = tmp_path / "webface_ids.txt"
    ids.write_text("".join(line.split(" ", 1)[0] + "\n" for line in names.read_text().splitlines() if line.strip()))
    out = tmp_path / "out"
    facescrub = protocol_files / "megaface" / "devkit_templatelists" / "facescrub_features_list.json"
    assert main(["overlap", "audit", "--train", str(ids), "--names", str(names), "--out", str(out),
                 "--benchmark", f"lfw={protocol_files / 'lfw' / 'lfw-names.txt'}",
                 "--benchmark", f"megaface={facescrub}"]) == 0
    removed = set((out / "removed_identities.txt").read_text().split())
    for truth in ("webface_lfw_overlap.txt", "webface_facescrub_overlap.txt"):
        assert set((hn / truth).read_text().split()) <= removed
    kept = (out / "kept_identities.txt").read_text().split()
    assert len(kept) + len(removed) == 10_575 and not set(kept) & removed
    rows = read_tsv(out / "overlaps.tsv")
    top = [r for r in rows if r["name_rule"] == "exact"]
    assert rows[: len(top)] == top  # strongest rule first when there are no cosines
    assert {"Hillary_Clinton", "Adam_Brody"} <= {r["benchmark_identity"] for r in top}
