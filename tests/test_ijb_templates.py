"""Template pooling and pair scoring against straightforward loops (PROTOCOLS 2)."""

from __future__ import annotations

import numpy as np
import pytest

from facebench.metrics.pooling import lookup_rows, pool_templates, score_pairs


def loop_templates(feats, templates, medias, scores, per_image_l2):
    """Template features by the rule, one template and one media at a time (float64)."""
    out = {}
    for t in sorted(set(templates.tolist())):
        total = np.zeros(feats.shape[1])
        media_of_t = [m for m, tt in zip(medias.tolist(), templates.tolist()) if tt == t]
        for m in sorted(set(media_of_t)):
            rows = [i for i in range(len(templates)) if templates[i] == t and medias[i] == m]
            acc = np.zeros(feats.shape[1])
            for i in rows:
                x = feats[i].astype(np.float64)
                if per_image_l2:
                    x = x / np.sqrt(np.sum(x * x))
                if scores is not None:
                    x = x * scores[i]
                acc += x
            total += acc / len(rows)
        out[t] = total / np.sqrt(np.sum(total * total))
    return out


def make_images(n=400, dim=24, seed=0):
    rng = np.random.default_rng(seed)
    feats = (rng.standard_normal((n, dim)) * rng.uniform(0.5, 20, (n, 1))).astype(np.float32)
    templates = rng.choice([3, 17, 40, 41, 1000, 77777, 5, 6, 9, 123], n)  # interleaved, not grouped
    medias = rng.integers(0, 12, n) + 500  # media ids are shared across templates: (template, media) groups
    scores = rng.uniform(0.1, 1.0, n)
    return feats, templates, medias, scores


@pytest.mark.parametrize("per_image_l2", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("block_rows", [7, 100000])
def test_pool_templates_matches_loops(per_image_l2, weighted, block_rows):
    feats, templates, medias, scores = make_images()
    scores = scores if weighted else None
    pooled = pool_templates(feats, templates, medias, scores, per_image_l2=per_image_l2, block_rows=block_rows)
    expected = loop_templates(feats, templates, medias, scores, per_image_l2)
    assert pooled.ids.tolist() == sorted(expected)
    got = np.stack([pooled.features[i] for i in range(pooled.ids.size)])
    want = np.stack([expected[t] for t in pooled.ids.tolist()])
    assert np.max(np.abs(got - want)) <= 1e-12
    assert pooled.n_images.tolist() == [int(np.sum(templates == t)) for t in pooled.ids]
    assert pooled.n_media.tolist() == [len(set(medias[templates == t].tolist())) for t in pooled.ids]


@pytest.mark.parametrize("per_image_l2", [False, True])
def test_pooling_does_not_depend_on_the_number_of_threads(per_image_l2):
    # blocks of 7 rows: templates span block borders, and the threads finish blocks out of order; the
    # block sums are added in block order, so every bit is the same whatever the number of threads
    feats, templates, medias, scores = make_images(seed=2)
    one = pool_templates(feats, templates, medias, scores, per_image_l2=per_image_l2, block_rows=7, workers=1)
    for workers in (2, 5):
        many = pool_templates(feats, templates, medias, scores, per_image_l2=per_image_l2, block_rows=7,
                              workers=workers)
        assert np.array_equal(many.features, one.features) and np.array_equal(many.ids, one.ids)


def test_options_change_the_result():
    feats, templates, medias, scores = make_images(seed=1)
    plain = pool_templates(feats, templates, medias).features
    assert np.max(np.abs(pool_templates(feats, templates, medias, per_image_l2=True).features - plain)) > 1e-3
    assert np.max(np.abs(pool_templates(feats, templates, medias, scores).features - plain)) > 1e-3


def test_media_mean_not_image_sum():
    # template 1: media 10 holds three copies of a, media 11 one b -> (a + b) / |a + b|, not (3a + b)
    a, b = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    feats = np.stack([a, a, a, b])
    pooled = pool_templates(feats, np.array([1, 1, 1, 1]), np.array([10, 10, 10, 11]))
    assert np.allclose(pooled.features[0], [np.sqrt(0.5), np.sqrt(0.5)], atol=1e-15)


def test_zero_rows_stay_zero():
    feats = np.array([[0.0, 0.0], [3.0, 4.0]])
    pooled = pool_templates(feats, np.array([1, 2]), np.array([1, 1]), per_image_l2=True)
    assert pooled.features[0].tolist() == [0.0, 0.0]
    assert np.allclose(pooled.features[1], [0.6, 0.8], rtol=0, atol=1e-15)


def test_pool_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="one entry per feature row"):
        pool_templates(np.zeros((3, 2)), np.array([1, 2]), np.array([1, 2, 3]))
    with pytest.raises(ValueError, match="detector_scores"):
        pool_templates(np.zeros((2, 2)), np.array([1, 2]), np.array([1, 2]), np.array([1.0]))


@pytest.mark.parametrize(
    "case", ["bipartite_probe_major", "bipartite_gallery_major", "sparse", "blocked", "shuffled_blocked"]
)
def test_score_pairs_matches_loops(case):
    rng = np.random.default_rng(4)
    f = rng.standard_normal((300, 16))
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    if case == "sparse":  # few pairs over many templates: the gather path
        left, right = rng.integers(0, 300, 50), rng.integers(0, 300, 50)
    else:
        gallery, probes = np.arange(20), np.arange(20, 300)
        grid = np.array([(g, p) for p in probes for g in gallery if rng.random() < 0.3])
        if case == "bipartite_gallery_major":
            grid = grid[np.argsort(grid[:, 0], kind="stable")]
        if case == "shuffled_blocked":  # neither side grouped: each block picks its pairs out of the list
            grid = grid[rng.permutation(len(grid))]
        left, right = grid[:, 0], grid[:, 1]
    kwargs = {"block_bytes": 1000} if case.endswith("blocked") else {}
    got = score_pairs(f, left, right, **kwargs)
    want = np.array([sum(f[a, k] * f[b, k] for k in range(16)) for a, b in zip(left, right)])
    assert np.max(np.abs(got - want)) <= 1e-12
    # both paths agree on the same input
    gathered, dense = score_pairs(f, left, right, dense_ratio=0.0), score_pairs(f, left, right, dense_ratio=1e9)
    assert np.max(np.abs(gathered - dense)) <= 1e-14


def test_score_pairs_checks_indices():
    with pytest.raises(ValueError, match="outside"):
        score_pairs(np.eye(3), np.array([0, 3]), np.array([1, 1]))
    assert score_pairs(np.eye(3), np.array([], dtype=int), np.array([], dtype=int)).shape == (0,)


@pytest.mark.parametrize("ids", [np.array([3, 5, 9, 40]), np.array([2, 10**12, 10**15])])
def test_lookup_rows(ids):
    query = np.array([ids[2], ids[0], 4, ids[-1], -7, 10**16])
    pos, known = lookup_rows(ids, query)
    assert known.tolist() == [True, True, False, True, False, False]
    assert pos[known].tolist() == [2, 0, ids.size - 1]


@pytest.mark.parametrize("grouped", [True, False])
def test_score_pairs_do_not_depend_on_the_thread_count(grouped):
    # every block is one single-threaded product: 1 worker or 3 give the same bits, on either gather path
    rng = np.random.default_rng(11)
    f = rng.standard_normal((500, 64))
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    grid = np.array([(g, p) for g in range(37) for p in range(37, 500) if rng.random() < 0.4])
    if not grouped:
        grid = grid[rng.permutation(len(grid))]
    left, right = grid[:, 0], grid[:, 1]
    one = score_pairs(f, left, right, block_bytes=5000, workers=1, progress=False)
    three = score_pairs(f, left, right, block_bytes=5000, workers=3, progress=False)
    np.testing.assert_array_equal(one, three)
    want = np.einsum("ij,ij->i", f[left], f[right])
    assert np.max(np.abs(one - want)) <= 1e-14
