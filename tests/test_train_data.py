"""Training data: the three sources, identity remapping, the step sampler, batches."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from facebench.errors import FacebenchError
from facebench.extraction.images import ARCFACE_TEMPLATE
from facebench.extraction.preprocess import get_profile
from facebench.train.data import (
    DataSpec,
    StepSampler,
    epoch_order,
    make_loader,
    open_source,
    read_list,
    scan_folder,
)


def _chip(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)


def _png(image_rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return buf.tobytes()


def _write_folder(root: Path, counts: dict[str, int]) -> dict[str, list[np.ndarray]]:
    chips = {}
    for k, (name, n) in enumerate(counts.items()):
        (root / name).mkdir(parents=True)
        chips[name] = []
        for j in range(n):
            chip = _chip(100 * k + j)
            (root / name / f"{j:03d}.png").write_bytes(_png(chip))
            chips[name].append(chip)
    return chips


def test_folder_source_labels_in_code_point_order(tmp_path: Path):
    chips = _write_folder(tmp_path / "faces", {"m.0b": 2, "M.9": 1, "m.0a": 3})
    (tmp_path / "faces" / "empty").mkdir()
    (tmp_path / "faces" / "m.0a" / "notes.txt").write_text("not an image")
    source, classes = open_source(DataSpec("folder", str(tmp_path / "faces")))
    assert classes == 3 and len(source) == 6
    # code-point order: "M.9" < "m.0a" < "m.0b"; the empty folder is no identity
    assert source.labels.tolist() == [0, 1, 1, 1, 2, 2]
    assert np.array_equal(source.load(0), chips["M.9"][0])
    assert np.array_equal(source.load(3), chips["m.0a"][2])


def test_list_source_with_and_without_landmarks(tmp_path: Path):
    chips = _write_folder(tmp_path / "img", {"a": 2, "b": 1})
    (tmp_path / "train.txt").write_text("a/000.png 0\n\nb/000.png 1\na/001.png 0\n")
    source = read_list(tmp_path / "train.txt")
    assert source.labels.tolist() == [0, 1, 0]
    with pytest.raises(FacebenchError, match="not found"):
        source.load(0)  # paths are relative to the list's folder: img/ is not in them
    source = read_list(tmp_path / "train.txt", root=tmp_path / "img")
    assert np.array_equal(source.load(2), chips["a"][1])

    # a raw 200x160 image with its 5 landmarks is aligned onto the 112x112 ArcFace chip
    raw = np.zeros((200, 160, 3), dtype=np.uint8)
    raw[60:140, 40:120] = 200
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "x.png").write_bytes(_png(raw))
    marks = ARCFACE_TEMPLATE * 1.5 + np.array([10.0, 20.0])  # the template scaled and shifted
    line = "raw/x.png 4 " + " ".join(f"{v:.4f}" for v in marks.reshape(-1))
    (tmp_path / "lmk.txt").write_text(line + "\n")
    lmk = read_list(tmp_path / "lmk.txt")
    chip = lmk.load(0)
    expected = cv2.warpAffine(raw, np.array([[1 / 1.5, 0, -10 / 1.5], [0, 1 / 1.5, -20 / 1.5]]), (112, 112),
                              flags=cv2.INTER_LINEAR, borderValue=0)
    assert chip.shape == (112, 112, 3)
    assert np.abs(chip.astype(int) - expected.astype(int)).max() <= 1


def test_list_errors_name_file_and_line(tmp_path: Path):
    bad = tmp_path / "bad.txt"
    bad.write_text("a/1.jpg 0\na/2.jpg zero\n")
    with pytest.raises(FacebenchError, match=r"bad.txt line 2: label 'zero' is not an integer"):
        read_list(bad)
    bad.write_text("x.jpg 0\n")
    with pytest.raises(FacebenchError, match="line 1: path 'x.jpg' has no identity folder"):
        read_list(bad)
    assert read_list(bad, identity_key="label").identity_keys() == ["0"]


def test_identity_list_remaps_to_sorted_ranks(tmp_path: Path):
    _write_folder(tmp_path / "faces", {"m.03": 1, "m.01": 2, "m.02": 1, "m.04": 1})
    (tmp_path / "keep.txt").write_text("m.04\nm.01\n")  # unsorted, like deepglint_unoverlap_list.txt
    source, classes = open_source(DataSpec("folder", str(tmp_path / "faces"), identities=str(tmp_path / "keep.txt")))
    assert classes == 2
    assert source.identity_keys() == ["m.01", "m.01", "m.04"]
    assert source.labels.tolist() == [0, 0, 1]
    with pytest.raises(FacebenchError, match="num_classes = 3"):
        open_source(DataSpec("folder", str(tmp_path / "faces"), identities=str(tmp_path / "keep.txt"), num_classes=3))
    (tmp_path / "missing.txt").write_text("m.01\nm.99\n")
    with pytest.raises(FacebenchError, match="1 listed identities have no image.*'m.99'"):
        open_source(DataSpec("folder", str(tmp_path / "faces"), identities=str(tmp_path / "missing.txt")))
    (tmp_path / "dup.txt").write_text("m.01\nm.02\nm.01\n")
    with pytest.raises(FacebenchError, match="dup.txt line 3: identity 'm.01' repeats line 1"):
        open_source(DataSpec("folder", str(tmp_path / "faces"), identities=str(tmp_path / "dup.txt")))


def test_recordio_pack_read_back_image_for_image(tmp_path: Path):
    from facebench.io.recordio import write_record_pack

    items = [(label, _chip(7 * label + j)) for label in range(3) for j in range(label + 1)]
    write_record_pack(tmp_path / "pack", ((lab, _png(c)) for lab, c in items), num_classes=5)
    source, classes = open_source(DataSpec("recordio", str(tmp_path / "pack")))
    assert classes == 5  # from the property file
    assert source.labels.tolist() == [lab for lab, _ in items]
    for i, (_, chip) in enumerate(items):
        assert np.array_equal(source.load(i), chip)
    (tmp_path / "ids.txt").write_text("2\n0\n")
    remapped, classes = open_source(DataSpec("recordio", str(tmp_path / "pack"), identities=str(tmp_path / "ids.txt")))
    assert classes == 2 and remapped.labels.tolist() == [0, 1, 1, 1]
    assert np.array_equal(remapped.load(3), items[5][1])


def test_sampler_is_a_function_of_seed_and_step():
    s = StepSampler(n=103, global_batch=10, seed=4)
    assert s.steps_per_epoch == 10
    run = list(s.batches(0, 25))
    assert list(s.batches(13, 25)) == run[13:]  # resuming at a step gives the same batches
    # an epoch visits distinct images, in the order of epoch_order; flips come from the same draw
    order, flips = epoch_order(103, 4, 1)
    epoch1 = [item for batch in run[10:20] for item in batch]
    assert [i for i, _ in epoch1] == order[:100].tolist()
    assert [f for _, f in epoch1] == flips[:100].tolist()
    assert 0.3 < np.mean(flips) < 0.7
    # two ranks split each global batch; together they see what one process sees
    r0 = list(StepSampler(103, 10, 4, rank=0, world_size=2).batches(0, 25))
    r1 = list(StepSampler(103, 10, 4, rank=1, world_size=2).batches(0, 25))
    assert [a + b for a, b in zip(r0, r1)] == run
    assert list(StepSampler(103, 10, 5).batches(0, 1)) != run[:1]
    assert all(not f for b in StepSampler(103, 10, 4, flip=False).batches(0, 3) for _, f in b)
    with pytest.raises(FacebenchError, match="not divisible"):
        StepSampler(103, 10, 4, rank=0, world_size=3)


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_batches_flip_and_normalise(tmp_path: Path, workers: int):
    chips = _write_folder(tmp_path / "faces", {"a": 3, "b": 3})
    source = scan_folder(tmp_path / "faces")
    sampler = StepSampler(len(source), 4, seed=0)
    profile = get_profile("insightface")
    batches = list(make_loader(source, sampler, profile, 0, 2, workers))
    assert len(batches) == 2
    flat = [c for name in ("a", "b") for c in chips[name]]
    for (images, labels), items in zip(batches, sampler.batches(0, 2)):
        assert images.dtype == torch.float32 and images.shape == (4, 3, 112, 112)
        for row, (i, flip) in enumerate(items):
            chip = flat[i][:, ::-1] if flip else flat[i]
            expected = (chip.astype(np.float32).transpose(2, 0, 1) - 127.5) / 127.5
            assert np.allclose(images[row].numpy(), expected, atol=1e-6)
            assert int(labels[row]) == (0 if i < 3 else 1)


def test_list_identity_is_the_folder_holding_the_image(tmp_path: Path):
    (tmp_path / "l.txt").write_text("imgs/m.01/a.jpg 0\n/abs/root/m.02/b.jpg 1\nimgs/m.01/c.jpg 0\n")
    source = read_list(tmp_path / "l.txt")
    assert source.identity_keys() == ["m.01", "m.02", "m.01"]
    assert source.paths[0] == str(tmp_path / "imgs" / "m.01" / "a.jpg") and source.paths[1] == "/abs/root/m.02/b.jpg"
    (tmp_path / "ids.txt").write_text("m.02\n")
    from facebench.train.data import remap_identities

    kept = remap_identities(source, ["m.02"], "ids.txt")
    assert kept.labels.tolist() == [0] and kept.paths[0] == "/abs/root/m.02/b.jpg"
