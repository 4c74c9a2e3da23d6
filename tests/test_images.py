"""Alignment: the least-squares similarity and the warp onto the ArcFace template."""

from __future__ import annotations

import numpy as np
import pytest

from facebench.errors import FacebenchError
from facebench.extraction.images import (
    ARCFACE_TEMPLATE,
    ImageList,
    align,
    arcface_chip,
    decode_image,
    to_arcface_crop,
    umeyama_similarity,
)
from tests.fakes import png_bytes, random_images


def _similarity(scale: float, angle: float, tx: float, ty: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[scale * c, -scale * s, tx], [scale * s, scale * c, ty]])


def test_umeyama_recovers_an_exact_similarity() -> None:
    m = _similarity(1.37, 0.41, -12.5, 30.25)
    src = ARCFACE_TEMPLATE * 2.1 + 7
    dst = src @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(umeyama_similarity(src, dst), m, atol=1e-10)


def test_umeyama_is_the_least_squares_optimum() -> None:
    rng = np.random.default_rng(3)
    src = rng.normal(size=(5, 2)) * 20
    dst = src @ _similarity(0.8, -0.2, 3, 4)[:, :2].T + rng.normal(size=(5, 2))
    best = umeyama_similarity(src, dst)

    def cost(m: np.ndarray) -> float:
        return float(np.sum((src @ m[:, :2].T + m[:, 2] - dst) ** 2))

    # the similarity family is (a, b, tx, ty) with [[a, -b], [b, a]]; solve the linear least squares directly
    rows = []
    rhs = []
    for (x, y), (u, v) in zip(src, dst):
        rows += [[x, -y, 1, 0], [y, x, 0, 1]]
        rhs += [u, v]
    a, b, tx, ty = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)[0]
    direct = np.array([[a, -b, tx], [b, a, ty]])
    np.testing.assert_allclose(best, direct, atol=1e-9)
    assert cost(best) <= cost(direct) + 1e-9


def test_align_puts_landmarks_on_the_template() -> None:
    # draw 5 bright dots at known positions in a 250x250 image, then align
    image = np.zeros((250, 250, 3), np.uint8)
    m = _similarity(1.9, 0.3, 40, 10)
    points = ARCFACE_TEMPLATE @ m[:, :2].T + m[:, 2]
    for x, y in points:
        image[int(round(y)) - 1 : int(round(y)) + 2, int(round(x)) - 1 : int(round(x)) + 2] = 255
    chip = align(image, points, arcface_chip())
    assert chip.shape == (112, 112, 3)
    for x, y in ARCFACE_TEMPLATE:
        assert chip[int(round(y)), int(round(x))].max() > 100


def test_pack_crops_other_than_112_are_resized_on_the_short_side() -> None:
    img = np.zeros((128, 160, 3), np.uint8)
    img[:, 80:] = 200
    out = to_arcface_crop(img)
    assert out.shape == (112, 112, 3)
    # centre crop of a 112x140 resize: the boundary stays at the centre
    assert out[:, :50].max() == 0 and out[:, 62:].min() > 150


def test_corrupt_image_names_the_item() -> None:
    with pytest.raises(FacebenchError, match=r"pack.bin item 3.*cannot decode"):
        decode_image(b"\xff\xd8\xff garbage", "pack.bin item 3")


def test_raw_image_without_landmarks_is_refused(tmp_path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(png_bytes(np.zeros((250, 250, 3), np.uint8)))
    images = ImageList("list.txt", paths=[str(path)])
    with pytest.raises(FacebenchError, match="without landmarks"):
        images.load_chip(0, arcface_chip())


def test_missing_image_file_is_named(tmp_path) -> None:
    images = ImageList("pairs.txt", paths=[str(tmp_path / "nope.jpg")])
    with pytest.raises(FacebenchError, match="nope.jpg"):
        images.load_chip(0, arcface_chip())


def test_blob_crops_pass_through_unchanged() -> None:
    img = random_images(1)[0]
    images = ImageList("x.bin", blobs=[png_bytes(img)])
    np.testing.assert_array_equal(images.load_chip(0, arcface_chip()), img)


def test_fingerprint_changes_with_content() -> None:
    a = ImageList("x", paths=["a.jpg", "b.jpg"])
    b = ImageList("x", paths=["a.jpg", "c.jpg"])
    assert a.fingerprint() != b.fingerprint()
    assert a.fingerprint() == ImageList("y", paths=["a.jpg", "b.jpg"]).fingerprint()
