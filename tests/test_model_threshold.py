"""A model's own decision threshold (dlib's 0.6 Euclidean; a sidecar's): accuracy, FAR and FRR at it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facebench.errors import FacebenchError
from facebench.evaluate.pairs import at_decision_threshold
from facebench.extraction.preprocess import read_sidecar, read_sidecar_threshold


def _brute(features, issame, metric, value):
    acc = fa = fr = 0
    n_gen = sum(issame)
    n_imp = len(issame) - n_gen
    for i, same in enumerate(issame):
        a, b = features[2 * i], features[2 * i + 1]
        if metric == "euclidean":
            accept = sum((x - y) ** 2 for x, y in zip(a, b)) ** 0.5 < value
        else:
            accept = sum(x * y for x, y in zip(a, b)) / (sum(x * x for x in a) ** 0.5 * sum(y * y for y in b) ** 0.5) >= value
        acc += accept == same
        fa += accept and not same
        fr += (not accept) and same
    return acc / len(issame), fa / n_imp, fr / n_gen


@pytest.mark.parametrize(("metric", "value"), [("euclidean", 0.6), ("euclidean", 1.1), ("cosine", 0.3)])
def test_accuracy_far_frr_at_a_threshold(metric: str, value: float) -> None:
    rng = np.random.default_rng(7)
    issame = rng.random(60) < 0.4
    feats = rng.normal(scale=0.4, size=(120, 6))
    feats[1::2][issame] = feats[0::2][issame] + rng.normal(scale=0.15, size=(int(issame.sum()), 6))
    got = at_decision_threshold(feats, issame, {"metric": metric, "value": value})
    acc, far, frr = _brute(feats.tolist(), issame.tolist(), metric, value)
    assert (got["accuracy"], got["far"], got["frr"]) == pytest.approx((acc, far, frr), abs=1e-12)
    assert got["metric"] == metric and got["threshold"] == value


def test_sidecar_threshold_is_read_beside_the_profile(tmp_path) -> None:
    ckpt = tmp_path / "m.onnx"
    ckpt.write_bytes(b"x")
    side = tmp_path / "m.onnx.facebench.json"
    side.write_text(json.dumps({"profile": {"name": "insightface"}, "threshold": {"metric": "cosine", "value": 0.28}}))
    assert read_sidecar_threshold(ckpt)["value"] == 0.28
    assert read_sidecar(ckpt).name == "insightface"
    side.write_text(json.dumps({"threshold": {"metric": "manhattan", "value": 1}}))
    with pytest.raises(FacebenchError, match="threshold metric: 'manhattan' is not one of euclidean, cosine"):
        read_sidecar_threshold(ckpt)


def test_writing_a_sidecar_profile_keeps_its_threshold(tmp_path) -> None:
    from facebench.extraction.preprocess import PROFILES, write_sidecar

    ckpt = tmp_path / "m.onnx"
    ckpt.write_bytes(b"x")
    (tmp_path / "m.onnx.facebench.json").write_text(json.dumps({"threshold": {"metric": "cosine", "value": 0.3}}))
    write_sidecar(ckpt, PROFILES["facexzoo"])
    assert read_sidecar(ckpt).name == "facexzoo" and read_sidecar_threshold(ckpt)["value"] == 0.3
