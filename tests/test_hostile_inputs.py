"""Hostile and mistaken inputs (issue 14): stale caches, checkpoints that run code, unbounded pickles, image
and JSON bombs, degenerate embeddings. Each case builds the input and asserts the outcome: the numbers are
fresh, the payload never ran, the error names the file, the memory stays bounded."""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import subprocess
import sys
import tracemalloc
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from facebench.io import safe_pickle
from facebench.benchmarks import load_benchmarks
from facebench.cli import main
from facebench.extraction.extractor import FeatureExtractor, ModelSettings
from facebench.errors import FacebenchError
from facebench.evaluate.checks import find_degenerate
from facebench.evaluate.common import RunContext, RunSettings
from facebench.extraction.images import ImageList, check_image_size, decode_image
from facebench.io.binpack import read_bin, write_bin
from facebench.results import read_results
from facebench.extraction.preprocess import resolve_profile
from tests.fakes import LinearEncoder, jpeg_bytes, random_images, tiny_onnx

REPO = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


# ----------------------------------------------------------------------------------------------- fixtures


def _bmp(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".bmp", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    return buf.tobytes()


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    return tiny_onnx(tmp_path_factory.mktemp("model") / "m.onnx")


def _lfw_tree(root: Path, seed: int = 11) -> Path:
    """An LFW layout (image tree + pairs.txt, 10 folds of 3 genuine + 3 impostor pairs) under ``root``."""
    rng = np.random.default_rng(7)
    images = random_images(80, seed=seed)
    names = [f"Person_{k:02d}" for k in range(20)]
    tree = root / "lfw"
    for k, name in enumerate(names):
        (tree / name).mkdir(parents=True, exist_ok=True)
        for j in range(4):
            (tree / name / f"{name}_{j + 1:04d}.jpg").write_bytes(jpeg_bytes(images[4 * k + j]))
    lines = ["10\t3"]
    for _ in range(10):
        for _ in range(3):
            name = names[rng.integers(20)]
            i, j = rng.choice(4, 2, replace=False) + 1
            lines.append(f"{name}\t{i}\t{j}")
        for _ in range(3):
            a, b = rng.choice(20, 2, replace=False)
            i, j = rng.integers(1, 5, 2)
            lines.append(f"{names[a]}\t{i}\t{names[b]}\t{j}")
    (tree / "pairs.txt").write_text("\n".join(lines) + "\n")
    return tree


def _run(model: Path, data_root: Path, out: Path, *extra: str) -> tuple[int, dict]:
    status = main(["-q", "run", str(model), "-b", "lfw", "--data-root", str(data_root), "--out", str(out),
                   "--no-speed", "--workers", "0", "--no-progress", *extra])
    return status, read_results(out)


def _blob_list(n: int = 6, seed: int = 3) -> ImageList:
    return ImageList("mem.bin", blobs=[jpeg_bytes(im) for im in random_images(n, seed=seed)])


def _embedder(tmp_path: Path, encoder=None, **settings) -> FeatureExtractor:
    base = dict(batch_size=2, workers=0, progress=False, cache_dir=tmp_path / "cache", chunk_size=2)
    model = ModelSettings(Path("linear.onnx"), **{**base, **settings})
    return FeatureExtractor(model, encoder or LinearEncoder(), resolve_profile(None), sha256="0" * 64)


# ------------------------------------------------------------------ 1. the cache never serves stale features


def test_images_rewritten_in_place_give_fresh_numbers(model_path, tmp_path):
    _lfw_tree(tmp_path / "data")
    cache = str(tmp_path / "cache")
    status, first = _run(model_path, tmp_path / "data", tmp_path / "o1", "--cache-dir", cache,
                         "--save-features", str(tmp_path / "f1"))
    assert status == 0 and first.benchmarks["lfw"].feature_sources["lfw"]["source"] == "extracted"
    status, again = _run(model_path, tmp_path / "data", tmp_path / "o2", "--cache-dir", cache, "--verify-cache")
    source = again.benchmarks["lfw"].feature_sources["lfw"]
    assert source["source"] == "cache" and source["verified"] and source["stale_chunks"] == 0
    assert again.benchmarks["lfw"].metrics == first.benchmarks["lfw"].metrics
    # every image rewritten in place with other content: same paths, new bytes
    _lfw_tree(tmp_path / "data", seed=99)
    status, rewritten = _run(model_path, tmp_path / "data", tmp_path / "o3", "--cache-dir", cache,
                             "--save-features", str(tmp_path / "f3"))
    assert rewritten.benchmarks["lfw"].feature_sources["lfw"]["source"] == "extracted"
    status, truth = _run(model_path, tmp_path / "data", tmp_path / "o4", "--no-cache",
                         "--save-features", str(tmp_path / "f4"))
    np.testing.assert_array_equal(np.load(tmp_path / "f3" / "lfw.npy"), np.load(tmp_path / "f4" / "lfw.npy"))
    assert not np.array_equal(np.load(tmp_path / "f1" / "lfw.npy"), np.load(tmp_path / "f3" / "lfw.npy"))
    assert rewritten.benchmarks["lfw"].metrics == truth.benchmarks["lfw"].metrics
    assert truth.benchmarks["lfw"].feature_sources["lfw"] == {"source": "extracted", "cache": False}


def _bmp_files(root: Path, n: int = 6) -> list[str]:
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, im in enumerate(random_images(n, seed=4)):
        path = root / f"{i}.bmp"
        path.write_bytes(_bmp(im))
        paths.append(str(path))
    return paths


def test_same_size_same_mtime_change_is_caught_only_by_verify_cache(tmp_path):
    paths = _bmp_files(tmp_path / "img")
    images = ImageList("list.txt", paths=paths)
    first = _embedder(tmp_path).embed(images, "t")
    # image 3 gets other pixels of the same byte size, and its mtime is set back to the old one
    path = Path(paths[3])
    before = os.stat(path)
    other = _bmp(random_images(1, seed=77)[0])
    assert len(other) == before.st_size
    path.write_bytes(other)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    fresh = _embedder(tmp_path, cache=False).embed(images, "t")
    assert not np.array_equal(fresh[3], first[3])
    plain = _embedder(tmp_path)
    np.testing.assert_array_equal(plain.embed(images, "t"), first)  # the documented limit of the stat rule
    assert plain.cache_info["t"]["source"] == "cache"
    verified = _embedder(tmp_path, verify_cache=True)
    np.testing.assert_array_equal(verified.embed(images, "t"), fresh)
    info = verified.cache_info["t"]
    assert (info["stale_chunks"], info["chunks_from_cache"], info["chunks_computed"]) == (1, 2, 1)
    assert info["source"] == "cache+extracted" and info["verified"]


def test_a_cached_chunk_without_its_contents_digest_is_recomputed_under_verify(tmp_path):
    images = _blob_list()
    first = _embedder(tmp_path)
    expected = first.embed(images, "t")
    cache_dir = next((tmp_path / "cache").glob("*/*"))
    (cache_dir / "chunk_000001.sha256").unlink()
    again = _embedder(tmp_path, verify_cache=True)
    np.testing.assert_array_equal(again.embed(images, "t"), expected)
    assert again.cache_info["t"]["stale_chunks"] == 1
    assert (cache_dir / "chunk_000001.sha256").is_file()


def test_cache_key_covers_preprocessing_code_and_decoder_versions(tmp_path, monkeypatch):
    import facebench.extraction.extractor as embedder_module

    images = _blob_list()
    emb = _embedder(tmp_path)
    fields = emb.cache_fields(images, emb.profile)
    assert fields["preprocess_version"] == embedder_module.PREPROCESS_VERSION
    assert fields["opencv"] == cv2.__version__
    monkeypatch.setattr(embedder_module, "PREPROCESS_VERSION", embedder_module.PREPROCESS_VERSION + 1)
    emb.embed(images, "t")
    assert emb.cache_info["t"]["source"] == "extracted"
    assert emb.cache_fields(images, emb.profile) != fields


def test_image_identity_is_size_and_mtime(tmp_path):
    paths = _bmp_files(tmp_path / "img", 2)
    images = ImageList("list.txt", paths=paths)
    key = images.fingerprint()
    st = os.stat(paths[0])
    os.utime(paths[0], ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert images.fingerprint() != key
    os.utime(paths[0], ns=(st.st_atime_ns, st.st_mtime_ns))
    assert images.fingerprint() == key


def _external_onnx(path: Path, seed: int) -> Path:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(seed).standard_normal((3 * 112 * 112, 8)).astype(np.float32) * 0.01
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["flat"], axis=1), helper.make_node("MatMul", ["flat", "w"], ["y"])],
        "external",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 112, 112])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 8])],
        [numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    return path


def test_changed_onnx_external_weights_give_fresh_numbers(tmp_path):
    path = _external_onnx(tmp_path / "ext" / "m.onnx", seed=1)
    images = _blob_list()
    settings = ModelSettings(path, batch_size=2, workers=0, progress=False, cache_dir=tmp_path / "cache")
    first = FeatureExtractor.load(settings)
    old = first.embed(images, "t")
    assert set(first.describe()["files"]) == {"weights.bin"}
    graph_sha = first.sha256
    _external_onnx(tmp_path / "ext2" / "m.onnx", seed=2)
    os.replace(tmp_path / "ext2" / "weights.bin", tmp_path / "ext" / "weights.bin")  # new weights, same graph
    second = FeatureExtractor.load(settings)
    assert second.sha256 == graph_sha and second.files != first.files
    new = second.embed(images, "t")
    assert second.cache_info["t"]["source"] == "extracted"
    truth = FeatureExtractor.load(ModelSettings(path, batch_size=2, workers=0, progress=False, cache=False)).embed(images, "t")
    np.testing.assert_array_equal(new, truth)
    assert not np.allclose(new, old)


def test_missing_onnx_external_data_is_an_error_naming_it(tmp_path):
    path = _external_onnx(tmp_path / "m.onnx", seed=1)
    (tmp_path / "weights.bin").unlink()
    with pytest.raises(FacebenchError, match=r"m\.onnx"):
        FeatureExtractor.load(ModelSettings(path, workers=0, progress=False, cache=False))


# ------------------------------------------------------------------ 2. no checkpoint runs code by default


HOSTILE = """
import sys, torch

class Evil(torch.nn.Module):
    def __init__(self, marker: str):
        super().__init__()
        self.marker = marker
        self.w = torch.ones(3, 8)

    @torch.jit.export
    def __getstate__(self):
        return (self.marker, self.w, self.training)

    @torch.jit.export
    def __setstate__(self, state: tuple[str, torch.Tensor, bool]):
        self.marker = state[0]
        self.w = state[1]
        self.training = state[2]
        t = torch.from_file(self.marker + ".load", shared=True, size=4, dtype=torch.uint8)
        t.fill_(65)
        self.w = self.w + t[:1].float() * 0

    def forward(self, x):
        t = torch.from_file(self.marker + ".forward", shared=True, size=4, dtype=torch.uint8)
        t.fill_(66)
        return x.mean(dim=(2, 3)) @ self.w + t[:1].float() * 0

torch.jit.save(torch.jit.script(Evil(sys.argv[2])), sys.argv[1])
"""


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> tuple[Path, Path]:
    """A TorchScript archive whose __setstate__ (run by torch.jit.load) writes MARKER.load and whose forward
    writes MARKER.forward: (archive, marker stem)."""
    root = tmp_path_factory.mktemp("hostile")
    path, marker = root / "evil.pt", root / "marker"
    (root / "make_evil.py").write_text(HOSTILE)  # TorchScript compiles from source files, not from -c
    subprocess.run([sys.executable, str(root / "make_evil.py"), str(path), str(marker)], check=True, env=_env())
    return path, marker


def _written(marker: Path) -> list[str]:
    return sorted(p.name for p in marker.parent.glob(marker.name + ".*"))


def _clear(marker: Path) -> None:
    for p in marker.parent.glob(marker.name + ".*"):
        p.unlink()


def test_hostile_torchscript_is_refused_and_never_runs(hostile):
    from facebench.models.loader import load_encoder

    path, marker = hostile
    _clear(marker)
    with pytest.raises(FacebenchError, match=r"refused to load a torchscript checkpoint.*--trust-checkpoint-code"):
        load_encoder(path, device="cpu")
    with pytest.raises(FacebenchError, match="trust_checkpoint_code=True"):
        FeatureExtractor.load(ModelSettings(path, device="cpu", cache=False))
    assert _written(marker) == []


def test_hostile_torchscript_runs_with_the_opt_in(hostile):
    # control: the payload is real; the flag is what lets it run
    from facebench.models.loader import load_encoder

    path, marker = hostile
    _clear(marker)
    encoder = load_encoder(path, device="cpu", trust_checkpoint_code=True)
    assert encoder.format == "torchscript" and encoder.embedding_dim == 8
    assert _written(marker) == ["marker.forward", "marker.load"]
    _clear(marker)


@pytest.mark.parametrize("command", ["run", "doctor", "export"])
def test_every_command_refuses_the_hostile_torchscript(hostile, tmp_path, capsys, command):
    path, marker = hostile
    _clear(marker)
    _lfw_tree(tmp_path)
    args = {
        "run": ["run", str(path), "-b", "lfw", "--data-root", str(tmp_path), "--out", str(tmp_path / "o"), "--no-cache"],
        "doctor": ["doctor", str(path), "-b", "lfw", "--data-root", str(tmp_path)],
        "export": ["export", str(path), "--onnx", str(tmp_path / "x.onnx")],
    }[command]
    assert main(["-q", *args]) == 2
    err = capsys.readouterr().err
    assert "refused to load a torchscript checkpoint" in err and "--trust-checkpoint-code" in err
    assert _written(marker) == []
    assert not (tmp_path / "x.onnx").exists()


def test_overlap_audit_refuses_the_hostile_torchscript(hostile, tmp_path, capsys):
    path, marker = hostile
    _clear(marker)
    for k, im in enumerate(random_images(4, seed=8)):
        (tmp_path / "train" / f"id{k % 2}").mkdir(parents=True, exist_ok=True)
        (tmp_path / "train" / f"id{k % 2}" / f"{k}.jpg").write_bytes(jpeg_bytes(im))
    tree = _lfw_tree(tmp_path / "bench")
    status = main(["-q", "overlap", "audit", "--train", str(tmp_path / "train"), "--benchmark", f"lfw={tree}",
                   "--out", str(tmp_path / "audit"), "--checkpoint", str(path), "--no-cache", "--workers", "0"])
    assert status == 2
    assert "--trust-checkpoint-code" in capsys.readouterr().err
    assert _written(marker) == []


def test_torchscript_renamed_to_onnx_is_still_refused(hostile, tmp_path):
    from facebench.models.loader import load_encoder

    path, marker = hostile
    _clear(marker)
    disguised = tmp_path / "model.onnx"
    disguised.write_bytes(path.read_bytes())
    with pytest.raises(FacebenchError, match="refused to load a torchscript"):
        load_encoder(disguised, device="cpu")
    with pytest.raises(FacebenchError):  # forced through the state_dict reader: torch refuses it too
        load_encoder(disguised, device="cpu", format="pytorch", arch="mobilefacenet")
    assert _written(marker) == []


# ------------------------------------------------------------------ 3. bounded resources: pickles


class _Call:
    def __init__(self, func, args, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


def _load(data: bytes) -> object:
    return safe_pickle.load_stream(io.BytesIO(data), "evil.bin")


def _peak(fn) -> int:
    """Peak bytes traced by tracemalloc while ``fn`` runs (numpy and pickle allocations are traced)."""
    tracemalloc.start()
    try:
        fn()
    except FacebenchError:
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def test_direct_ndarray_call_with_zero_strides_is_refused():
    data = pickle.dumps(_Call(np.ndarray, ((10**10,), "u1", b"x", 0, (0,))), protocol=4)
    assert len(data) < 110
    assert pickle.loads(data).shape == (10**10,)  # control: a 10-GB array view over one byte
    with pytest.raises(FacebenchError, match=r"evil\.bin: refused to unpickle a call of numpy\.ndarray"):
        _load(data)


def test_zero_itemsize_array_with_a_huge_shape_is_refused():
    from numpy._core import multiarray

    data = pickle.dumps(_Call(multiarray._reconstruct, (np.ndarray, (0,), b"b"),
                              (1, (10**12,), np.dtype("V0"), False, b"")), protocol=2)
    assert pickle.loads(data).shape == (10**12,)  # control
    with pytest.raises(FacebenchError, match="declares .* bytes or elements, more than the file"):
        _load(data)


def test_zero_stride_array_of_small_declared_size_is_refused():
    from numpy._core import multiarray

    data = pickle.dumps(_Call(multiarray._reconstruct, (np.ndarray, (0,), b"b"),
                              (1, (50,), np.dtype("V0"), False, b"")), protocol=2)
    with pytest.raises(FacebenchError, match="zero-stride"):
        _load(data)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_object_arrays_are_refused(protocol):
    data = pickle.dumps(([b"a", np.array([1, "x"], dtype=object)], [True]), protocol=protocol)
    with pytest.raises(FacebenchError, match="object dtype"):
        _load(data)


def test_declared_bytes_beyond_the_file_are_refused_before_allocation():
    data = b"\x80\x04\x8e" + struct.pack("<Q", 1 << 40) + b"x" * 16 + b"."
    assert _peak(lambda: _load(data)) < 1 << 20
    with pytest.raises(FacebenchError, match=r"ends early .*1,099,511,627,776 bytes declared"):
        _load(data)


def test_declared_bytearray_beyond_the_file_is_refused_before_allocation():
    data = b"\x80\x05\x96" + struct.pack("<Q", 1 << 40) + b"x" * 16 + b"."
    assert _peak(lambda: _load(data)) < 1 << 20
    with pytest.raises(FacebenchError, match="bytearray declares"):
        _load(data)


def test_repeated_copies_of_one_string_are_bounded_by_the_file_size():
    blob = b"z" * 100_000
    body = b"\x80\x04B" + struct.pack("<I", len(blob)) + blob + b"\x94"  # memo 0: the string
    body += b"c__builtin__\nbytearray\n\x94("  # memo 1: bytearray; MARK
    body += b"h\x01h\x00\x85R" * 2000  # bytearray(memo[0]) 2000 times: 200 MB from a 112-kB file
    data = body + b"l."
    assert len(data) < 120_000
    assert _peak(lambda: _load(data)) < 5 * len(data)
    with pytest.raises(FacebenchError, match="more than the file's data could hold"):
        _load(data)


def test_state_change_of_an_admitted_function_is_refused_and_changes_nothing():
    state = pickle.dumps((None, {"__defaults__": ("rot13", "strict")}), protocol=2)[2:-1]
    data = b"\x80\x02c_codecs\nencode\n" + state + b"b."
    defaults = safe_pickle._codecs_encode.__defaults__

    class Permissive(pickle.Unpickler):  # control: the allow-list alone lets BUILD rewrite the function
        def find_class(self, module, name):
            return safe_pickle._ALLOWED[(module, name)]

    try:
        Permissive(io.BytesIO(data)).load()
        assert safe_pickle._codecs_encode.__defaults__ == ("rot13", "strict")
    finally:
        safe_pickle._codecs_encode.__defaults__ = defaults
    with pytest.raises(FacebenchError, match=r"state change \(BUILD\) of _codecs\.encode"):
        _load(data)
    assert safe_pickle._codecs_encode.__defaults__ == defaults


def test_state_change_of_an_admitted_type_is_refused():
    state = pickle.dumps({"names": None}, protocol=2)[2:-1]
    with pytest.raises(FacebenchError, match=r"state change \(BUILD\) of numpy\.dtype"):
        _load(b"\x80\x02cnumpy\ndtype\n" + state + b"b.")


def test_object_construction_opcodes_are_refused():
    with pytest.raises(FacebenchError, match="NEWOBJ"):
        _load(b"\x80\x02cnumpy\nndarray\n)\x81.")
    with pytest.raises(FacebenchError, match="INST"):
        _load(b"(inumpy\ndtype\nS'u1'\n.")


def test_pack_reader_refuses_the_109_byte_pack(tmp_path):
    pack = tmp_path / "lfw.bin"
    pack.write_bytes(pickle.dumps(([_Call(np.ndarray, ((10**10,), "u1", b"x", 0, (0,)))] * 2, [True]), protocol=4))
    assert pack.stat().st_size < 130
    assert _peak(lambda: read_bin(pack)) < 4 << 20  # the checksum's 1-MiB read buffer, nothing more
    with pytest.raises(FacebenchError, match=rf"{pack}: refused to unpickle"):
        read_bin(pack)


# ------------------------------------------------------------------ 3. bounded resources: images


def _png_header(width: int, height: int, idat: bytes = b"") -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat or zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")


def _png_bomb(width: int, height: int) -> bytes:
    """A complete PNG of ``width`` x ``height`` black pixels: deflate makes it tiny."""
    comp = zlib.compressobj(9)
    row = b"\0" * (1 + 3 * width)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    return _png_header(width, height, idat)


def _jpeg_header(width: int, height: int) -> bytes:
    sof = struct.pack(">BHHB", 8, height, width, 3) + b"\x01\x11\x00\x02\x11\x00\x03\x11\x00"
    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return (b"\xff\xd8\xff\xe0" + struct.pack(">H", len(app0) + 2) + app0 + b"\xff\xc0" + struct.pack(">H", len(sof) + 2)
            + sof + b"\xff\xd9")


def _bmp_header(width: int, height: int) -> bytes:
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + 64, 0, 0, 54) + info + b"\0" * 64


@pytest.mark.parametrize("header", [_png_header, _jpeg_header, _bmp_header], ids=["png", "jpeg", "bmp"])
def test_decompression_bomb_headers_are_refused_naming_the_file(header):
    data = header(30000, 30000)
    assert len(data) < 200
    with pytest.raises(FacebenchError, match=r"bomb\.img: the image declares 30000x30000 = 900,000,000 pixels"):
        decode_image(data, "bomb.img")


def test_pixel_limit_is_configurable(monkeypatch):
    data = _jpeg_header(9000, 9000)
    with pytest.raises(FacebenchError, match="over the limit of 67,108,864"):
        check_image_size(data, "big.jpg")
    monkeypatch.setenv("FACEBENCH_MAX_IMAGE_PIXELS", "100000000")
    assert check_image_size(data, "big.jpg") == (9000, 9000)
    monkeypatch.setenv("FACEBENCH_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(FacebenchError, match=r"\$FACEBENCH_MAX_IMAGE_PIXELS='lots': expected a positive number"):
        check_image_size(data, "big.jpg")


def test_headerless_bytes_are_an_undecodable_image():
    with pytest.raises(FacebenchError, match=r"x\.jpg: cannot decode the image"):
        decode_image(b"\xff\xd8\xff\xda garbage", "x.jpg")


def test_bomb_inside_a_pack_is_refused_naming_the_item(tmp_path):
    blobs = [jpeg_bytes(im) for im in random_images(3)] + [_png_header(30000, 30000)]
    write_bin(tmp_path / "lfw.bin", blobs, [True, False])
    pack = read_bin(tmp_path / "lfw.bin")
    images = ImageList(str(pack.path), blobs=pack.blobs)
    from facebench.extraction.images import arcface_chip

    images.load_chip(0, arcface_chip())
    with pytest.raises(FacebenchError, match=r"lfw\.bin item 3: the image declares 30000x30000"):
        images.load_chip(3, arcface_chip())


BOMB_SCRIPT = """
import resource, sys
from facebench.errors import FacebenchError
from facebench.extraction.images import decode_image
data = open(sys.argv[1], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
size = 0
try:
    size = decode_image(data, sys.argv[1]).nbytes
    outcome = "decoded"
except FacebenchError as exc:
    outcome = "refused"
print(outcome, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before, size)
"""


def test_bomb_decoding_memory_is_bounded(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_bomb(10000, 10000))  # 300 MB of pixels in a few hundred kB
    assert bomb.stat().st_size < 1 << 20
    env = _env()

    def measure(limit: str | None) -> tuple[str, int]:
        run_env = {**env, "FACEBENCH_MAX_IMAGE_PIXELS": limit} if limit else env
        out = subprocess.run([sys.executable, "-c", BOMB_SCRIPT, str(bomb)], capture_output=True, text=True,
                             env=run_env, check=True).stdout.split()
        return out[0], int(out[1]) * 1024, int(out[2])

    outcome, grown, _ = measure(None)
    assert outcome == "refused" and grown < 20 << 20
    # control: decoding it does build the 300 MB array (peak RSS growth is not asserted: under a loaded
    # test run the kernel's accounting of a fresh process's peak was seen to read 0)
    outcome, _, size = measure("200000000")
    assert outcome == "decoded" and size == 10000 * 10000 * 3


# ------------------------------------------------------------------ 3. bounded resources: deep nesting


DEEP_JSON = "[" * 100_000 + "]" * 100_000


def test_deep_sidecar_json_is_a_clear_error(tmp_path):
    from facebench.extraction.preprocess import read_sidecar

    (tmp_path / "m.onnx.facebench.json").write_text(DEEP_JSON)
    with pytest.raises(FacebenchError, match=r"m\.onnx\.facebench\.json: the JSON document is nested too deeply"):
        read_sidecar(tmp_path / "m.onnx")


def test_deep_results_json_is_a_clear_error(tmp_path):
    (tmp_path / "results.json").write_text('{"schema": ' + DEEP_JSON + "}")
    with pytest.raises(FacebenchError, match=r"results\.json: the JSON document is nested too deeply"):
        read_results(tmp_path)


def test_deep_protocol_toml_is_a_clear_error(tmp_path):
    (tmp_path / "deep.toml").write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(FacebenchError, match=r"deep\.toml: the TOML document is nested too deeply"):
        load_benchmarks(tmp_path)


def test_deep_training_config_is_a_clear_error(tmp_path):
    from facebench.train.config import load_config

    (tmp_path / "train.toml").write_text("[model]\nx = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n")
    with pytest.raises(FacebenchError, match=r"train\.toml: the TOML document is nested too deeply"):
        load_config(tmp_path / "train.toml")


def test_deep_megaface_devkit_json_is_a_clear_error(tmp_path):
    from facebench.io import megaface as mfio

    (tmp_path / "facescrub_features_list.json").write_text(DEEP_JSON)
    with pytest.raises(FacebenchError, match="nested too deeply"):
        mfio.read_probe_list(tmp_path / "facescrub_features_list.json")


def test_deep_run_sidecar_through_the_cli(model_path, tmp_path, capsys):
    model = tmp_path / "m.onnx"
    model.write_bytes(model_path.read_bytes())
    (tmp_path / "m.onnx.facebench.json").write_text(DEEP_JSON)
    _lfw_tree(tmp_path)
    assert main(["-q", "run", str(model), "-b", "lfw", "--data-root", str(tmp_path), "--out",
                 str(tmp_path / "o"), "--no-cache", "--no-speed"]) == 2
    err = capsys.readouterr().err
    assert "nested too deeply" in err and "Traceback" not in err


# ------------------------------------------------------------------ 6. embeddings checked before scoring


def _brute(features: np.ndarray) -> tuple[list[int], list[int], bool]:
    nonfinite, zero = [], []
    for i, row in enumerate(features):
        if any(not np.isfinite(v) for v in row):
            nonfinite.append(i)
        elif all(v == 0 for v in row):
            zero.append(i)
    constant = len(features) >= 2 and all(np.array_equal(r, features[0]) for r in features)
    return nonfinite, zero, constant


@pytest.mark.parametrize("block_bytes", [16, 1000, 8 << 20])
def test_find_degenerate_matches_a_row_by_row_check(monkeypatch, block_bytes):
    import facebench.evaluate.checks as checks

    monkeypatch.setattr(checks, "BLOCK_BYTES", block_bytes)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((97, 5)).astype(np.float32)
    x[[3, 50]] = 0
    x[7, 2], x[60, 0], x[61, 4] = np.nan, np.inf, -np.inf
    found = find_degenerate(x, row_offset=10)
    nonfinite, zero, constant = _brute(x)
    assert found.nonfinite.tolist() == [i + 10 for i in nonfinite] == [17, 70, 71]
    assert found.zero_norm.tolist() == [i + 10 for i in zero] == [13, 60]
    assert not found.constant and not found.zero_dim
    same = np.tile(x[:1], (9, 1))
    assert find_degenerate(same).constant == _brute(same)[2] is True
    assert find_degenerate(np.zeros((4, 0), np.float32)).zero_dim
    assert find_degenerate(x[:1]).ok


def _context(tmp_path: Path, encoder) -> tuple[RunContext, object]:
    settings = RunSettings(benchmarks="lfw", data_root=tmp_path, out=tmp_path / "o", progress=False, cache=False,
                           workers=0)
    emb = _embedder(tmp_path, encoder, cache=False)
    return RunContext(settings, emb, emb.profile), load_benchmarks()["lfw"]


class _Rigged(LinearEncoder):
    """A linear encoder whose rows for all-black images are replaced by ``value`` (NaN, 0, ...)."""

    def __init__(self, value: float | None = None, dim: int = 16, constant: bool = False) -> None:
        super().__init__(dim=dim)
        self.value, self.constant = value, constant

    def embed(self, batch: np.ndarray) -> np.ndarray:
        out = super().embed(batch)
        if self.constant:
            return np.ones_like(out)
        black = batch.reshape(len(batch), -1).max(axis=1) <= -1.0
        if self.value is not None:
            out[black] = self.value
        return out


def _with_black(n: int, black: list[int]) -> ImageList:
    images = random_images(n, seed=2)
    for i in black:
        images[i] = np.zeros_like(images[i])
    return ImageList("lfw.bin", blobs=[jpeg_bytes(im) for im in images])


@pytest.mark.parametrize("value,message", [
    (np.nan, r"row 4 \(lfw\.bin item 4\) contains NaN or infinite values \(2 of 8 rows; also row 6"),
    (np.inf, r"row 4 \(lfw\.bin item 4\) contains NaN or infinite values"),
    (0.0, r"row 4 \(lfw\.bin item 4\) is all zeros \(2 of 8 rows; also row 6 \(lfw\.bin item 6\)\)"),
])
def test_degenerate_model_outputs_are_errors_naming_the_images(tmp_path, value, message):
    ctx, spec = _context(tmp_path, _Rigged(value))
    with pytest.raises(FacebenchError, match=rf"lfw: lfw features: {message}"):
        ctx.features_for(spec, _with_black(8, [4, 6]))
    ok = ctx.features_for(spec, _with_black(8, []))  # control: the same model on ordinary images
    assert ok.shape == (8, 16)


def test_zero_dimensional_and_constant_outputs_are_errors(tmp_path):
    ctx, spec = _context(tmp_path, _Rigged(dim=0))
    with pytest.raises(FacebenchError, match="embeddings have 0 dimensions"):
        ctx.features_for(spec, _with_black(4, []))
    ctx, spec = _context(tmp_path, _Rigged(constant=True))
    with pytest.raises(FacebenchError, match="all 4 embeddings are identical"):
        ctx.features_for(spec, _with_black(4, []))


def test_zero_rows_in_a_features_file_fail_the_benchmark_naming_rows(tmp_path, capsys):
    blobs = [jpeg_bytes(im) for im in random_images(120, seed=5)]
    write_bin(tmp_path / "lfw.bin", blobs, np.tile([True, False], 30))
    feats = np.random.default_rng(0).standard_normal((120, 8)).astype(np.float32)
    feats[[9, 33]] = 0
    np.save(tmp_path / "feats.npy", feats)
    status = main(["-q", "run", "--features", str(tmp_path / "feats.npy"), "-b", "lfw", "--data-root", str(tmp_path),
                   "--out", str(tmp_path / "o")])
    assert status == 1
    failed = read_results(tmp_path / "o").failed["lfw"]
    assert "row 9 (" in failed and "lfw.bin item 9" in failed and "is all zeros (2 of 120 rows; also row 33" in failed


def test_all_zero_megaface_distractors_no_longer_score_rank1_100(tmp_path):
    from facebench.evaluate.megaface import ArrayRows, Distractors, stream_top_scores
    from facebench.metrics import megaface as mmf

    rng = np.random.default_rng(1)
    probes = mmf.l2_normalise(rng.standard_normal((20, 8)).astype(np.float32))
    zeros = np.zeros((300, 8), np.float32)
    members = {300: np.ones(300, bool)}
    d = Distractors(ArrayRows(zeros, "megaface.npy"), np.arange(300), [f"d/{i}.jpg" for i in range(300)], members)
    no = np.zeros(300, bool)
    with pytest.raises(FacebenchError, match=r"megaface\.npy: row 0 \(d/0\.jpg\) is all zeros \(300 of 300 rows"):
        stream_top_scores(probes, d, no, no, 10, {300: 10}, chunk_rows=512, workers=1)
    # control: the zero rows are only an error; a protocol's own zeroing (facexzoo noise) still scores
    d_ok = Distractors(ArrayRows(rng.standard_normal((300, 8)).astype(np.float32), "megaface.npy"),
                       np.arange(300), [f"d/{i}.jpg" for i in range(300)], members)
    zeroed = np.zeros(300, bool)
    zeroed[:5] = True
    tops = stream_top_scores(probes, d_ok, no, zeroed, 10, {300: 10}, chunk_rows=512, workers=1)
    assert tops[300].per_probe.shape == (20, 10)


def test_megaface_features_dir_of_zero_distractors_fails(tmp_path):
    from facebench.evaluate.megaface import Distractors, FileRows, stream_top_scores
    from facebench.io import megaface as mfio
    from facebench.metrics import megaface as mmf

    paths = [f"a/b/{i}.jpg" for i in range(50)]
    mfio.write_features_dir(tmp_path / "f", np.ones((3, 4), np.float32), np.zeros((50, 4), np.float32), paths)
    feats = mfio.open_features_dir(tmp_path / "f", 3)
    d = Distractors(FileRows(feats.megaface, str(feats.megaface.path)), np.arange(50), paths,
                    {50: np.ones(50, bool)})
    probes = mmf.l2_normalise(np.eye(3, 4, dtype=np.float32))
    no = np.zeros(50, bool)
    with pytest.raises(FacebenchError, match=r"megaface\.npy: row 0 \(a/b/0\.jpg\) is all zeros"):
        stream_top_scores(probes, d, no, no, 5, {50: 5}, workers=1)


# ------------------------------------------------------------------ 8. decoding ends with the run


WORKER_SCRIPT = """
import sys, threading, time
import numpy as np
import facebench.extraction.extract as extract
from facebench.extraction.images import ImageList
from facebench.extraction.preprocess import resolve_profile
from tests.fakes import LinearEncoder, jpeg_bytes, random_images

class Slow(LinearEncoder):
    def embed(self, batch):
        print(" ".join(sorted(t.name for t in threading.enumerate())), flush=True)
        time.sleep(0.2)
        return super().embed(batch)

images = ImageList("mem.bin", blobs=[jpeg_bytes(im) for im in random_images(8, seed=1)] * 100)
extract.extract_raw(Slow(), images, resolve_profile(None), extract.ExtractOptions(batch_size=4, workers=2,
                    progress=False))
"""


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGTERM"])
def test_decoding_runs_in_threads_and_a_killed_run_leaves_no_process(sig):
    import signal

    import psutil

    proc = subprocess.Popen([sys.executable, "-c", WORKER_SCRIPT], env=_env(), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        threads = proc.stdout.readline().split()  # the threads while the model runs a batch
        assert sum(name.startswith("facebench-decode") for name in threads) == 2, threads
        assert psutil.Process(proc.pid).children(recursive=True) == []  # nothing that could be orphaned
        os.kill(proc.pid, getattr(signal, sig))
        assert proc.wait(timeout=30) == -getattr(signal, sig)
    finally:
        proc.kill()


CTRL_C_SCRIPT = """
import sys, time
import facebench.extraction.extract as extract
from facebench.cli import main

slow = extract.embed_chips
def embed_chips(*args, **kwargs):
    print("embedding", flush=True)
    time.sleep(0.2)
    return slow(*args, **kwargs)
extract.embed_chips = embed_chips
sys.exit(main(sys.argv[1:]))
"""


def test_ctrl_c_prints_one_line_and_no_worker_traceback(model_path, tmp_path):
    import signal

    import psutil

    _lfw_tree(tmp_path)
    args = ["-q", "run", str(model_path), "-b", "lfw", "--data-root", str(tmp_path), "--out", str(tmp_path / "o"),
            "--no-cache", "--no-speed", "--workers", "2", "--batch-size", "2", "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-c", CTRL_C_SCRIPT, *args], env=_env(), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout.readline().strip() == "embedding"  # extraction with its decode threads is running
    assert psutil.Process(proc.pid).children(recursive=True) == []
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does: the whole foreground group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert [line for line in err.splitlines() if not line.startswith("WARNING ")] == ["facebench: interrupted"], err


def test_ijb_templates_weighted_to_zero_are_a_counted_warning(tmp_path):
    from tests._ijbworld import build_world, run_cli

    world = build_world(tmp_path)
    target = int(world.templates[0])
    meta = tmp_path / "IJBC/meta/ijbc_name_5pts_score.txt"
    lines = meta.read_text().splitlines()
    zeroed = [" ".join(line.split()[:-1] + ["0"]) if t == target else line for line, t in zip(lines, world.templates)]
    meta.write_text("\n".join(zeroed) + "\n")
    status, doc = run_cli(world, "ijbc", tmp_path / "o")
    assert status == 0
    n_templates = np.unique(world.templates).size
    assert f"ijbc: 1 of {n_templates} templates pool to a zero vector" in " ".join(doc.benchmarks["ijbc"].warnings)
    status, doc = run_cli(world, "ijbc", tmp_path / "o2", "--no-detector-weight")  # control: no zero template
    assert not any("zero vector" in w for w in doc.benchmarks["ijbc"].warnings)


def test_dlib_tensor_dims_that_overflow_int64_are_a_clear_error():
    from facebench.models.dlib import _Stream

    big = b"\x05" + (1 << 32).to_bytes(5, "little")  # a dlib integer of 2**32
    data = b"\x01\x02" + big * 4 + b"\0" * 64  # tensor version 2, dims 2**32 x 4: 2**128 floats, 0 in int64
    assert int(np.prod([1 << 32] * 4, dtype=np.int64)) == 0  # what the old count computed
    with pytest.raises(FacebenchError, match=r"net\.dat byte \d+: unexpected end of file reading"):
        _Stream(data, "net.dat").tensor()
