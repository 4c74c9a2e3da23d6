"""EXIF orientation: pixels decode upright and landmarks measured on stored pixels follow them (all 8 cases)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from facebench.extraction.enrol import EnrolOptions, enrol
from facebench.extraction.images import (
    ImageList,
    align,
    arcface_chip,
    decode_image,
    read_header,
    stored_to_upright,
)

W, H = 48, 32
ORIENTATIONS = range(1, 9)


def _jpeg(stored: np.ndarray, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.fromarray(stored).save(buf, "JPEG", quality=100, subsampling=0, exif=exif.tobytes())
    return buf.getvalue()


def _blocks() -> np.ndarray:
    """A stored 48x32 image of 8x8 blocks, each a distinct colour (no symmetry)."""
    rng = np.random.default_rng(3)
    colours = rng.integers(0, 256, size=(H // 8, W // 8, 3), dtype=np.uint8)
    return np.kron(colours, np.ones((8, 8, 1), dtype=np.uint8))


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_pixels_decode_upright_as_pillow_exif_transpose(orientation: int) -> None:
    data = _jpeg(_blocks(), orientation)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    got = decode_image(data, "test")
    assert got.shape == expected.shape
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 2


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_stored_points_map_where_pillow_moves_their_pixels(orientation: int) -> None:
    # oracle: an index image (value = y * W + x of the stored pixel) transposed by Pillow's exif_transpose
    index = Image.fromarray(np.arange(W * H, dtype=np.int32).reshape(H, W), mode="I")
    exif = index.getexif()
    exif[0x0112] = orientation
    index.info["exif"] = exif.tobytes()
    upright = np.asarray(ImageOps.exif_transpose(index))
    stored = np.array([[5, 7], [40, 3], [21, 16], [0, 31], [47, 0]], dtype=np.float64)
    mapped = stored_to_upright(stored, orientation, W, H)
    found = []
    for x, y in stored:
        yy, xx = np.argwhere(upright == int(y) * W + int(x))[0]
        found.append([xx, yy])
    found = np.asarray(found, dtype=np.float64)
    if orientation in (2, 4, 5, 7):  # mirrored: left and right points trade places
        found = found[[1, 0, 2, 4, 3]]
    assert np.array_equal(mapped, found)


def test_header_reports_stored_size_and_orientation(tmp_path) -> None:
    path = tmp_path / "rot.jpg"
    path.write_bytes(_jpeg(_blocks(), 6))
    header = read_header(str(path))
    assert (header.width, header.height, header.orientation) == (W, H, 6)
    assert header.upright_size == (H, W)
    plain = tmp_path / "plain.png"
    Image.fromarray(_blocks()).save(plain)
    assert read_header(str(plain)).orientation == 1


def _face_photo() -> tuple[np.ndarray, np.ndarray]:
    """A 200x160 stored photo with a textured 'face' and its 5 points (upright = stored here)."""
    rng = np.random.default_rng(5)
    image = np.kron(rng.integers(0, 256, size=(20, 25, 3), dtype=np.uint8), np.ones((8, 8, 1), dtype=np.uint8))
    points = np.array([[80, 70], [120, 70], [100, 92], [84, 112], [116, 112]], dtype=np.float64)
    return image, points


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_landmarks_on_stored_pixels_align_a_rotated_photo_like_the_unrotated_one(tmp_path, orientation: int) -> None:
    image, points = _face_photo()
    # the stored pixels of a photo whose upright view is `image`: undo the orientation with Pillow's inverse
    inverse = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
               4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90,
               7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}[orientation]
    pil = Image.fromarray(image)
    stored = np.asarray(pil.transpose(inverse) if inverse is not None else pil)
    path = tmp_path / f"o{orientation}.jpg"
    path.write_bytes(_jpeg(stored, orientation))
    # where the 5 points lie on the stored pixels: invert the mapping by brute force over the stored grid
    sh, sw = stored.shape[:2]
    grid = np.stack(np.meshgrid(np.arange(sw), np.arange(sh)), axis=-1).reshape(-1, 2).astype(np.float64)
    up = stored_to_upright(np.repeat(grid[:, None], 5, axis=1), orientation, sw, sh)[:, 0]
    on_stored = np.array([grid[np.flatnonzero((up == p).all(axis=1))[0]] for p in points])
    if orientation in (2, 4, 5, 7):
        on_stored = on_stored[[1, 0, 2, 4, 3]]
    lm = on_stored[None]
    chip = arcface_chip()
    reference = align(decode_image(path.read_bytes(), "t"), points, chip)
    blind = ImageList("t", paths=[str(path)], landmarks=lm, crops=False)
    done = enrol(blind, EnrolOptions(landmark_frame="stored"))
    assert done.report.reoriented == (orientation != 1)
    assert np.allclose(done.images.landmarks[0], points)
    assert np.array_equal(done.images.load_chip(0, chip), reference)
    if orientation in (5, 6, 7, 8):  # the stored-frame points read as upright ones: a different crop
        naive = ImageList("t", paths=[str(path)], landmarks=lm, crops=False).load_chip(0, chip)
        assert np.abs(naive.astype(int) - reference.astype(int)).mean() > 20
