"""The extraction engine: flip views, batch-size invariance, worker order, the chunked cache and resume."""

from __future__ import annotations

import numpy as np
import pytest

from facebench.extraction.cache import FeatureCache, clear_entries, list_entries
from facebench.errors import FacebenchError
from facebench.extraction.extract import ExtractOptions, combine_flip, extract_embeddings, extract_raw
from facebench.extraction.images import ImageList
from facebench.extraction.preprocess import PROFILES, Profile
from tests.fakes import LinearEncoder, png_bytes, random_images


@pytest.fixture(scope="module")
def images() -> ImageList:
    return ImageList("t.bin", blobs=[png_bytes(im) for im in random_images(23, seed=1)])


def _expected(images: ImageList, enc: LinearEncoder, profile: Profile) -> np.ndarray:
    chips = np.stack([images.load_chip(i, __import__("facebench.extraction.images", fromlist=["x"]).arcface_chip())
                      for i in range(len(images))])
    # independent normalisation: (x - 127.5) / 127.5 in RGB, NCHW
    x = (chips.astype(np.float32) - 127.5) / 127.5
    x = x.transpose(0, 3, 1, 2)
    xf = x[:, :, :, ::-1]
    f = enc.embed(np.ascontiguousarray(x))
    g = enc.embed(np.ascontiguousarray(xf))
    return {"add": f + g, "concat": np.concatenate([f, g], 1), "none": f}[profile.flip]


@pytest.mark.slow
@pytest.mark.parametrize("flip", ["add", "concat", "none"])
def test_flip_modes_match_the_definition(images: ImageList, flip: str) -> None:
    enc = LinearEncoder()
    profile = PROFILES["insightface"].with_flip(flip)
    got = extract_embeddings(enc, images, profile, ExtractOptions(batch_size=8, workers=0, progress=False))
    np.testing.assert_allclose(got, _expected(images, LinearEncoder(), profile), rtol=1e-5, atol=1e-6)


def test_results_do_not_depend_on_batch_size_or_workers(images: ImageList) -> None:
    enc = LinearEncoder()
    profile = PROFILES["insightface"]
    runs = [
        extract_raw(enc, images, profile, ExtractOptions(batch_size=b, workers=w, progress=False))
        for b, w in ((1, 0), (7, 0), (64, 2), (5, 2))
    ]
    for other in runs[1:]:
        np.testing.assert_allclose(other, runs[0], rtol=0, atol=1e-6)
    # the last batch is padded: every model call sees the full batch size
    assert set(enc.calls[-4:]) == {5}


def test_bgr_profile_swaps_channels() -> None:
    rgb = np.zeros((1, 4, 4, 3), np.uint8)
    rgb[..., 0] = 255
    out = PROFILES["facexzoo"].normalise(rgb)
    assert out.shape == (1, 3, 4, 4)
    np.testing.assert_allclose(out[0, 2], (255 - 127.5) / 128)  # red now in channel 2
    np.testing.assert_allclose(out[0, 0], -127.5 / 128)


def test_combine_flip_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError):
        combine_flip(np.zeros((2, 2, 3)), "mean")


def test_cache_resumes_only_missing_chunks(tmp_path, images: ImageList) -> None:
    profile = PROFILES["insightface"]
    opts = ExtractOptions(batch_size=4, workers=0, chunk_size=6, progress=False)
    fields = {"checkpoint": "x", "images": images.fingerprint()}
    full = extract_raw(LinearEncoder(), images, profile, opts)
    cache = FeatureCache.open(tmp_path, fields, len(images), 6)
    first = extract_raw(LinearEncoder(), images, profile, opts, cache)
    np.testing.assert_array_equal(first, full)
    # lose two chunks (as if the run had been killed), rerun: only they are computed
    cache.chunk_path(1).unlink()
    cache.chunk_path(3).unlink()
    enc = LinearEncoder()
    again = extract_raw(enc, FeatureCacheImages(images), profile, opts, FeatureCache.open(tmp_path, fields, len(images), 6))
    np.testing.assert_array_equal(again, full)
    # chunk 1 = 6 images, chunk 3 = 5 images: 2 + 2 batches of 4, two views each
    assert len(enc.calls) == (2 + 2) * 2
    entries = list_entries(tmp_path)
    assert len(entries) == 1 and entries[0]["chunks"] == 4 and entries[0]["chunks_total"] == 4
    assert clear_entries(tmp_path) == 1 and list_entries(tmp_path) == []


class FeatureCacheImages(ImageList):
    """The same list (same fingerprint) seen through a fresh object."""

    def __init__(self, other: ImageList) -> None:
        super().__init__(other.origin, blobs=list(other.blobs))


def test_cache_with_other_chunk_size_is_refused(tmp_path) -> None:
    FeatureCache.open(tmp_path, {"a": 1}, 10, 4)
    with pytest.raises(FacebenchError, match="does not match"):
        FeatureCache.open(tmp_path, {"a": 1}, 10, 5)


def test_input_size_mismatch_is_an_error(images: ImageList) -> None:
    with pytest.raises(FacebenchError, match="112x112"):
        extract_raw(LinearEncoder(size=96), images, PROFILES["insightface"], ExtractOptions(workers=0, progress=False))


def test_a_corrupt_image_in_a_worker_is_reported_with_its_item() -> None:
    blobs = [png_bytes(im) for im in random_images(40, seed=2)]
    blobs[29] = b"\xff\xd8\xff\xe0 not a jpeg"
    images = ImageList("bad.bin", blobs=blobs)
    with pytest.raises(FacebenchError, match=r"bad.bin item 29.*cannot decode"):
        extract_raw(LinearEncoder(), images, PROFILES["insightface"], ExtractOptions(batch_size=4, workers=2, progress=False))
