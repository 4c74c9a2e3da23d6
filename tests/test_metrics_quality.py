"""Error-versus-discard curves against a written-out computation under both threshold conventions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facebench.metrics import quality as mq


def _written_out(scores, issame, q, fmr, convention, grid):
    n = len(scores)
    order = sorted(range(n), key=lambda i: (q[i], i))

    def thr(imp):
        imp = sorted(imp)
        ok = [v for v in imp if sum(1 for x in imp if x >= v) / len(imp) <= fmr]
        return min(ok) if ok else math.nextafter(imp[-1], math.inf)

    all_imp = [s for s, y in zip(scores, issame) if not y]
    fixed = thr(all_imp) if len(all_imp) * fmr >= 1 else math.nan
    out = []
    for f in grid:
        kept = order[int(math.floor(f * n + 1e-9)):]
        gen = [scores[i] for i in kept if issame[i]]
        imp = [scores[i] for i in kept if not issame[i]]
        t = fixed if convention == "fixed" else (thr(imp) if len(imp) * fmr >= 1 else math.nan)
        fnmr = sum(1 for s in gen if s < t) / len(gen) if gen and not math.isnan(t) else math.nan
        out.append((fnmr, len(gen), len(imp)))
    return out


@pytest.mark.parametrize("convention", ["fixed", "refit"])
@pytest.mark.parametrize("fmr", [1e-2, 1e-3])
def test_discard_curve_equals_written_out(convention, fmr):
    rng = np.random.default_rng(7)
    n_gen, n_imp = 300, 1500
    qa, qb = rng.random(n_gen + n_imp).round(2), rng.random(n_gen + n_imp).round(2)
    issame = np.r_[np.ones(n_gen, bool), np.zeros(n_imp, bool)]
    q = mq.pair_quality(qa, qb)
    # low quality degrades genuine scores
    scores = np.where(issame, 0.3 + 0.5 * q + rng.normal(0, 0.1, q.size), rng.normal(0, 0.1, q.size)).round(4)
    curve = mq.discard_curve(scores, issame, q, fmr, convention)
    expected = _written_out(scores.tolist(), issame.tolist(), np.minimum(qa, qb).tolist(), fmr, convention,
                            [k * 0.05 for k in range(20)])
    assert curve.fractions.tolist() == [round(k * 0.05, 2) for k in range(20)]
    for k, (fnmr, g, i) in enumerate(expected):
        assert (curve.n_genuine[k], curve.n_impostor[k]) == (g, i)
        if math.isnan(fnmr):
            assert math.isnan(curve.fnmr[k])
        else:
            assert curve.fnmr[k] == fnmr
    if fmr == 1e-3 and convention == "refit":
        # 1,500 impostors: resolvable only while >= 1,000 impostors are kept
        assert all(math.isnan(v) == (i < 1000) for v, i in zip(curve.fnmr, curve.n_impostor))
    finite = [v for v in curve.fnmr if not math.isnan(v)]
    if len(finite) == 20:
        auc = sum(0.05 * (curve.fnmr[k] + curve.fnmr[k + 1]) / 2 for k in range(19))
        assert mq.area_under(curve.fractions, curve.fnmr) == pytest.approx(auc, rel=1e-12)
        pauc = sum(0.05 * (curve.fnmr[k] + curve.fnmr[k + 1]) / 2 for k in range(4))
        assert mq.area_under(curve.fractions, curve.fnmr, limit=0.2) == pytest.approx(pauc, rel=1e-12)


def test_conventions_differ_and_errors():
    rng = np.random.default_rng(1)
    issame = np.r_[np.ones(100, bool), np.zeros(400, bool)]
    q = rng.random(500)
    scores = np.where(issame, 0.5 + 0.3 * q, 0.4 * (1 - q)) + rng.normal(0, 0.05, 500)
    fixed = mq.discard_curve(scores, issame, q, 0.01, "fixed")
    refit = mq.discard_curve(scores, issame, q, 0.01, "refit")
    assert fixed.fnmr[0] == refit.fnmr[0]  # nothing discarded: the same threshold
    assert len(set(refit.thresholds[:10].tolist())) > 1 and len(set(fixed.thresholds.tolist())) == 1
    with pytest.raises(ValueError, match="convention"):
        mq.discard_curve(scores, issame, q, 0.01, "both")
    with pytest.raises(ValueError, match="not a point of the grid"):
        mq.area_under(fixed.fractions, fixed.fnmr, limit=0.33)
