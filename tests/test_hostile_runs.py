"""Hostile and mistaken use of runs: output directories whole or absent (kill -9, full disk, read-only,
concurrent writers, overwrite), one benchmark's failure kept to that benchmark, and user input validated where
it enters (--file typos, landmarks, BOM lists, IJB scores, symlinked identities, malformed runs, features
files, sidecars, benchmarks/doctor arguments)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from facebench.cli import main
from facebench.errors import FacebenchError
from facebench.io.binpack import write_bin
from tests.fakes import jpeg_bytes, random_images
from facebench.results import parse_results, read_results

REPO = Path(__file__).resolve().parents[1]
N_PAIRS = 200


def _features(n_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    per_fold = n_pairs // 10
    issame = np.tile(np.r_[np.ones(per_fold // 2, bool), np.zeros(per_fold - per_fold // 2, bool)], 10)
    feats = np.empty((2 * n_pairs, 16), np.float32)
    for i, same in enumerate(issame):
        a = rng.standard_normal(16)
        b = a if same else rng.standard_normal(16)
        feats[2 * i], feats[2 * i + 1] = a + 0.8 * rng.standard_normal(16), b + 0.8 * rng.standard_normal(16)
    return feats, issame


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """lfw.bin and cfp_fp.bin packs (200 pairs each) and features: feats/ (both), old/ and new/ (lfw)."""
    root = tmp_path_factory.mktemp("hostile")
    blobs = [jpeg_bytes(im, quality=60) for im in random_images(2 * N_PAIRS, size=32, seed=3)]
    for name, seed in (("lfw", 1), ("cfp_fp", 2)):
        feats, issame = _features(N_PAIRS, seed)
        write_bin(root / f"{name}.bin", blobs, issame)
        (root / "feats").mkdir(exist_ok=True)
        np.save(root / "feats" / f"{name}.npy", feats)
    np.save(root / "old.npy", _features(N_PAIRS, 1)[0])
    np.save(root / "new.npy", _features(N_PAIRS, 9)[0])
    return root


def _run(data: Path, out: Path, *extra: str, features: str = "new.npy", bench: str = "lfw") -> int:
    return main(["-q", "run", "--features", str(data / features), "-b", bench, "--data-root", str(data),
                 "--out", str(out), "--no-speed", *extra])


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def _siblings(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.") and "lock" not in p.name)


@pytest.fixture(scope="module")
def old_run_template(data: Path, tmp_path_factory) -> Path:
    """A complete run of old.npy, plus a marker file only the old run holds."""
    out = tmp_path_factory.mktemp("template") / "out"
    assert _run(data, out, features="old.npy") == 0
    (out / "old-marker.txt").write_text("old run")
    return out


@pytest.fixture()
def old_run(old_run_template: Path, tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """A copy of the old run in tmp_path/out and its files' bytes."""
    out = tmp_path / "out"
    shutil.copytree(old_run_template, out)
    return out, _snapshot(out)


def _accuracy(out: Path) -> float:
    return read_results(out).benchmarks["lfw"].value("accuracy")


# ------------------------------------------------------------------------------- 4. whole or absent
def test_existing_run_directory_is_refused_without_overwrite(data, old_run, capsys) -> None:
    out, before = old_run
    started = time.monotonic()
    assert _run(data, out) == 2
    assert time.monotonic() - started < 5
    err = capsys.readouterr().err
    assert "already exists (a facebench run); pass --overwrite" in err and "Traceback" not in err
    assert _snapshot(out) == before


def test_overwrite_replaces_the_whole_run_and_no_old_file_survives(data, old_run) -> None:
    out, before = old_run
    assert _run(data, out, "--overwrite") == 0
    after = _snapshot(out)
    assert "old-marker.txt" not in after and set(after) == set(before) - {"old-marker.txt"}
    assert after["results.json"] != before["results.json"]
    assert _siblings(out) == []


def test_out_that_is_a_file_is_refused_before_any_work(data, tmp_path, capsys, monkeypatch) -> None:
    target = tmp_path / "taken"
    target.write_text("keep me")
    monkeypatch.setattr("facebench.pipeline._evaluate", lambda *a, **k: pytest.fail("work started"))
    assert _run(data, target) == 2
    assert "exists and is not a directory" in capsys.readouterr().err
    assert target.read_text() == "keep me"


def test_out_under_a_file_is_refused(data, tmp_path, capsys) -> None:
    (tmp_path / "file").write_text("x")
    assert _run(data, tmp_path / "file" / "sub" / "out") == 2
    assert "is not a directory" in capsys.readouterr().err


def test_current_directory_is_never_replaced(data, tmp_path, capsys, monkeypatch) -> None:
    (tmp_path / "project.txt").write_text("mine")
    monkeypatch.chdir(tmp_path)
    assert _run(data, Path("."), "--overwrite") == 2
    assert "would replace the current or home directory" in capsys.readouterr().err
    assert (tmp_path / "project.txt").read_text() == "mine"


def test_missing_parents_of_out_are_created(data, tmp_path) -> None:
    out = tmp_path / "a" / "b" / "out"
    assert _run(data, out) == 0 and (out / "results.json").is_file()


@contextlib.contextmanager
def _read_only(directory: Path):
    if os.geteuid() != 0:
        directory.chmod(0o555)
        try:
            yield
        finally:
            directory.chmod(0o755)
        return
    if subprocess.run(["chattr", "+i", str(directory)], capture_output=True).returncode != 0:
        pytest.skip("cannot make a directory read-only for root here (chattr +i refused)")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(directory)], check=True)


def test_read_only_parent_is_a_clear_error_before_any_work(data, tmp_path, capsys, monkeypatch) -> None:
    parent = tmp_path / "ro"
    parent.mkdir()
    monkeypatch.setattr("facebench.pipeline._evaluate", lambda *a, **k: pytest.fail("work started"))
    with _read_only(parent):
        assert _run(data, parent / "out") == 2
    err = capsys.readouterr().err
    assert f"--out {parent / 'out'}: cannot write in {parent}" in err
    assert list(parent.iterdir()) == []


def test_read_only_save_features_target_is_refused_before_work(data, tmp_path, capsys, monkeypatch) -> None:
    parent = tmp_path / "ro"
    parent.mkdir()
    monkeypatch.setattr("facebench.pipeline._evaluate", lambda *a, **k: pytest.fail("work started"))
    with _read_only(parent):
        assert _run(data, tmp_path / "out", "--save-features", str(parent / "f.npy")) == 2
    assert "--save-features" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_save_features_file_that_is_a_directory_is_refused(data, tmp_path, capsys) -> None:
    (tmp_path / "f.npy").mkdir()
    assert _run(data, tmp_path / "out", "--save-features", str(tmp_path / "f.npy")) == 2
    err = capsys.readouterr().err
    assert f"--save-features {tmp_path / 'f.npy'}: is a directory, expected a file name" in err
    assert not (tmp_path / "out").exists()


def test_features_saved_inside_out_belong_to_the_run(data, old_run) -> None:
    out, _ = old_run
    assert _run(data, out, "--overwrite", "--save-features", str(out / "feats.npy")) == 0
    assert np.array_equal(np.load(out / "feats.npy"), np.load(data / "new.npy"))
    assert "old-marker.txt" not in _snapshot(out) and _siblings(out) == []


def test_pack_out_is_checked_before_the_folder_is_read(tmp_path, capsys, monkeypatch) -> None:
    (tmp_path / "people").mkdir()
    (tmp_path / "people.bin").mkdir()
    monkeypatch.setattr("facebench.evaluate.folder.pack_folder", lambda *a, **k: pytest.fail("work started"))
    assert main(["pack", str(tmp_path / "people"), "--generate", "--out", str(tmp_path / "people.bin")]) == 2
    assert "--out" in capsys.readouterr().err


def test_full_file_system_is_refused_in_the_first_second(data, tmp_path, capsys, monkeypatch) -> None:
    real = os.statvfs

    class Full:
        def __init__(self, stats):
            self.f_frsize, self.f_bavail = stats.f_frsize, (1 << 20) // stats.f_frsize

    monkeypatch.setattr("facebench.rundir.os.statvfs", lambda p: Full(real(p)))
    monkeypatch.setattr("facebench.pipeline._evaluate", lambda *a, **k: pytest.fail("work started"))
    assert _run(data, tmp_path / "out") == 2
    assert "1.0 MiB free, less than the 16 MiB" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and _siblings(tmp_path / "out") == []


def test_disk_full_while_writing_keeps_the_old_run(data, old_run, capsys, monkeypatch) -> None:
    out, before = old_run
    import facebench.report.output as comparison

    def full(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(comparison, "write_bytes", full)  # results.json and lfw.npz are already staged
    assert _run(data, out, "--overwrite") == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert _snapshot(out) == before and _siblings(out) == []


def test_report_in_place_is_whole_or_unchanged(data, old_run, monkeypatch) -> None:
    out, before = old_run
    import facebench.report.output as comparison

    real = comparison.write_bytes
    calls = []

    def fail_third(path, data):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data)

    monkeypatch.setattr(comparison, "write_bytes", fail_third)
    assert main(["-q", "report", str(out), "--n-boot", "20"]) == 1
    assert _snapshot(out) == before and _siblings(out) == []
    monkeypatch.setattr(comparison, "write_bytes", real)
    assert main(["-q", "report", str(out), "--n-boot", "20"]) == 0
    after = _snapshot(out)
    assert after["results.json"] == before["results.json"] and after["old-marker.txt"] == b"old run"
    assert "report.html" in after and "intervals.csv" in after


def test_compare_refuses_an_existing_out_unless_overwrite(data, old_run, tmp_path, capsys) -> None:
    out, _ = old_run
    cmp_dir = tmp_path / "cmp"
    cmp_dir.mkdir()
    (cmp_dir / "stale.txt").write_text("x")
    assert main(["-q", "compare", str(out), "--out", str(cmp_dir), "--no-stats"]) == 2
    assert "pass --overwrite" in capsys.readouterr().err and (cmp_dir / "stale.txt").exists()
    assert main(["-q", "compare", str(out), "--out", str(cmp_dir), "--no-stats", "--overwrite"]) == 0
    assert not (cmp_dir / "stale.txt").exists() and (cmp_dir / "table.md").is_file()


def test_replace_policy_runs_replaces_only_a_previous_run(old_run, tmp_path) -> None:
    from facebench.rundir import OutputDir, Replace

    out, _ = old_run
    with OutputDir(out, Replace.RUNS) as staging:
        (staging / "new.txt").write_text("new")
    assert _snapshot(out) == {"new.txt": b"new"}
    other = tmp_path / "photos"
    other.mkdir()
    (other / "me.jpg").write_bytes(b"precious")
    with pytest.raises(FacebenchError, match="already exists \\(not empty\\)"):
        with OutputDir(other, Replace.RUNS):
            pass
    assert (other / "me.jpg").read_bytes() == b"precious"


HOLDER = r"""
import sys, time
from facebench.rundir import OutputDir
with OutputDir(sys.argv[1]) as staging:
    (staging / "partial.json").write_text("{")
    print("held", flush=True)
    time.sleep(60)
"""


def test_concurrent_writer_is_refused_naming_its_pid_and_its_leftovers_are_cleaned(data, tmp_path, capsys, caplog) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE, env=env, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert _run(data, out) == 2
        err = capsys.readouterr().err
        assert f"another facebench process (PID {holder.pid}) is writing this directory" in err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert not out.exists() and _siblings(out) == [f".out.tmp-{holder.pid}"]
    assert _run(data, out) == 0
    assert _siblings(out) == [] and (out / "results.json").is_file() and not (out / "partial.json").exists()
    assert f".out.tmp-{holder.pid}, left by a killed run" in caplog.text


KILLER = r"""
import contextlib, os, signal, sys
import facebench.atomic as fio
import facebench.rundir as rd
from facebench.cli import main

point, out = sys.argv[1], sys.argv[2]
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
if point.startswith("files:"):
    n, count, real = int(point[6:]), [0], fio.atomic_path

    @contextlib.contextmanager
    def atomic_path(path):
        with real(path) as tmp:
            yield tmp
        count[0] += 1
        if count[0] == n:
            die()

    fio.atomic_path = atomic_path
elif point == "exchange":
    real_exchange = rd._exchange
    rd._exchange = lambda a, b: real_exchange(a, b) and die()
elif point == "fallback":
    rd._exchange = lambda a, b: False
    real_rename = os.rename
    def rename(src, dst):
        if ".tmp-" in os.path.basename(str(src)):
            die()
        real_rename(src, dst)
    rd.os.rename = rename
sys.exit(main(["-q", "run", "--features", sys.argv[3], "-b", "lfw", "--data-root", sys.argv[4], "--out", out,
               "--no-speed", "--overwrite"]))
"""


@pytest.mark.parametrize("point, expect", [("files:1", "old"), ("files:3", "old"), ("exchange", "new"),
                                            ("fallback", "restored")])
def test_kill_9_during_the_write_phase_leaves_the_old_run_or_the_new_one(data, old_run, point, expect, caplog) -> None:
    out, before = old_run
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", KILLER, point, str(out), str(data / "new.npy"), str(data)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr
    if expect == "old":
        assert _snapshot(out) == before
    elif expect == "new":
        after = _snapshot(out)
        assert "old-marker.txt" not in after and set(after) == set(before) - {"old-marker.txt"}
        previous = parse_results(json.loads(before["results.json"]), "the previous results.json")
        assert _accuracy(out) != previous.benchmarks["lfw"].value("accuracy")
    else:  # killed between the two renames of the fallback: OUT is gone until the next claim restores it
        assert not out.exists() and any(".out.old-" in s for s in _siblings(out))
        assert _run(data, out) == 2  # the next writer restores the old run, which then exists
        assert _snapshot(out) == before
        assert "restored the previous output" in caplog.text
    assert _run(data, out, "--overwrite") == 0
    assert _siblings(out) == [] and "old-marker.txt" not in _snapshot(out)


# ------------------------------------------------------------------ 5. one benchmark's failure
def test_unexpected_exception_fails_only_that_benchmark(data, tmp_path, capsys, monkeypatch) -> None:
    import facebench.pipeline as runner

    real = runner.evaluator_for

    def evaluator_for(kind):
        def evaluate(spec, ctx):
            if spec.name == "cfp_fp":
                raise ValueError("only one class in fold 3")
            return real(kind)(spec, ctx)
        return evaluate

    monkeypatch.setattr(runner, "evaluator_for", evaluator_for)
    out = tmp_path / "out"
    assert _run(data, out, features="feats", bench="lfw,cfp_fp") == 1
    doc = read_results(out)
    assert list(doc.benchmarks) == ["lfw"]
    message = doc.failed["cfp_fp"]
    assert message.startswith("ValueError: only one class in fold 3 [model ")
    assert str(data / "feats") in message and f"pack={data / 'cfp_fp.bin'}" in message
    assert "Traceback" not in capsys.readouterr().err


def test_nan_and_empty_features_fail_their_benchmarks_only(data, tmp_path) -> None:
    feats = tmp_path / "feats"
    feats.mkdir()
    good = np.load(data / "feats" / "lfw.npy")
    np.save(feats / "lfw.npy", good)
    (feats / "cfp_fp.npy").write_bytes(b"")
    out = tmp_path / "out"
    assert main(["-q", "run", "--features", str(feats), "-b", "lfw,cfp_fp", "--data-root", str(data), "--out",
                 str(out), "--no-speed"]) == 1
    doc = read_results(out)
    assert "lfw" in doc.benchmarks and "empty file (0 bytes)" in doc.failed["cfp_fp"]
    bad = good.copy()
    bad[7, 3] = np.nan
    np.save(feats / "cfp_fp.npy", bad)
    assert main(["-q", "run", "--features", str(feats), "-b", "cfp_fp,lfw", "--data-root", str(data), "--out",
                 str(out), "--no-speed", "--overwrite"]) == 1
    doc = read_results(out)
    assert "lfw" in doc.benchmarks and "row 7 contains NaN" in doc.failed["cfp_fp"]


def test_npz_named_npy_is_a_clear_error(data, tmp_path, capsys) -> None:
    fake = tmp_path / "f.npy"
    with open(fake, "wb") as handle:
        np.savez(handle, x=np.zeros((2, 2)))
    assert main(["-q", "run", "--features", str(fake), "-b", "lfw", "--data-root", str(data), "--out",
                 str(tmp_path / "o"), "--no-speed"]) == 1
    doc = read_results(tmp_path / "o")
    assert "is an .npz archive" in doc.failed["lfw"]


def test_internal_error_is_one_line_and_debug_shows_the_traceback(data, tmp_path, capsys, monkeypatch) -> None:
    def broken():
        raise KeyError("protocols")

    monkeypatch.setattr("facebench.pipeline.load_benchmarks", broken)
    assert _run(data, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert err.strip() == ("facebench: internal error: KeyError: 'protocols' (rerun with --debug for the "
                           "traceback)")
    with pytest.raises(KeyError):
        main(["--debug", "run", "--features", str(data / "new.npy"), "-b", "lfw", "--out", str(tmp_path / "o")])


def test_file_system_error_is_one_line_exit_1(tmp_path, capsys, monkeypatch) -> None:
    def denied(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied", "/data/lfw.bin")

    monkeypatch.setattr("facebench.pipeline.load_benchmarks", denied)
    assert main(["run", "--features", "x.npy", "-b", "lfw", "--out", str(tmp_path / "o")]) == 1
    assert capsys.readouterr().err == "facebench: error: [Errno 13] Permission denied: '/data/lfw.bin'\n"


# ---------------------------------------------------------------------- 7. input validation
@pytest.mark.parametrize("item, message", [
    ("lfx.pack=/x.bin", "--file lfx.pack: no benchmark 'lfx'; selected: lfw; did you mean 'lfw'"),
    ("lfw.pak=/x.bin", "--file lfw.pak: lfw has no file role 'pak'; its roles: pack, pairs, images, landmarks; "
                       "did you mean 'pack'"),
    ("cfp_fp.pack=/x.bin", "--file cfp_fp.pack: benchmark cfp_fp is not selected (selected: lfw); add it to"),
])
def test_file_override_typos_are_errors(data, tmp_path, capsys, item, message) -> None:
    assert _run(data, tmp_path / "out", "--file", item) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("points, message", [
    ([[30, 40], [70, 40], [50, np.nan], [35, 80], [65, 80]], "NaN or infinite"),
    ([[50, 50]] * 5, "span 0 pixels"),
    ([[10, 10], [20, 20], [30, 30], [40, 40], [50, 50]], "collinear"),
    ([[30, 40], [70, 40], [50, 60], [35, 80], [65, 400]], "landmark 5 (65, 400) lies off the 100x120 image"),
])
def test_bad_landmarks_are_errors_naming_the_image(tmp_path, points, message) -> None:
    from facebench.extraction.images import ImageList, arcface_chip

    import cv2

    path = tmp_path / "face.png"
    cv2.imwrite(str(path), np.zeros((120, 100, 3), np.uint8))
    images = ImageList("lfw", paths=[str(path)], landmarks=np.asarray([points], np.float64))
    with pytest.raises(FacebenchError) as info:
        images.load_chip(0, arcface_chip())
    assert str(info.value).startswith(f"lfw: {path}: ") and message in str(info.value)


def test_plausible_landmarks_align_and_all_nan_means_none(tmp_path) -> None:
    import cv2

    from facebench.extraction.images import ImageList, arcface_chip

    path = tmp_path / "face.png"
    cv2.imwrite(str(path), np.full((112, 112, 3), 9, np.uint8))
    lmk = np.array([[[38.3, 51.7], [73.5, 51.5], [56.0, 71.7], [41.5, 92.4], [70.7, 92.2]], [[np.nan] * 2] * 5])
    images = ImageList("x", paths=[str(path)] * 2, landmarks=lmk)
    assert images.load_chip(0, arcface_chip()).shape == (112, 112, 3)
    assert images.load_chip(1, arcface_chip()).shape == (112, 112, 3)


BOM = "\ufeff"


def _bom_cases():
    from facebench.io import ijb, landmarks, megaface, pairlists
    from facebench.overlap import listing, whitelists
    from facebench.train import data

    return {
        "lfw pairs": ("1\t1\nAbel 1 2\nAbel 1 Bob 1\n",
                      lambda p: pairlists.read_lfw_pairs(p, p.parent, check_images=False).paths[0]),
        "landmarks": ("a.jpg 30 40 70 40 50 60 35 80 65 80\n",
                      lambda p: next(iter(landmarks.read_landmarks(p, "/r")))),
        "ijb tid_mid": ("1.jpg 1 3\n2.jpg 1 3\n", lambda p: ijb.read_face_tid_mid(p)[0][0]),
        "ijb 5pts": ("1.jpg " + "30 40 70 40 50 60 35 80 65 80" + " 0.9\n", lambda p: ijb.read_name_5pts_score(p)[0][0]),
        "ijb pairs": ("11 12 1\n13 14 0\n", lambda p: int(ijb.read_template_pairs(p).t1[0])),
        "megaface noises": ("x/y/z.jpg\n", lambda p: sorted(megaface.read_megaface_noises(p))[0]),
        "megaface paths": ("1/a/1.jpg\n2/b/2.jpg\n", lambda p: megaface.read_path_list(p)[0]),
        "identity list": ("m.0abc\nm.0def\n", lambda p: data.read_identity_list(p)[0]),
        "overlap mids": ("m.0abc\nm.0def\n", lambda p: listing.read_listing(p, "mids").classes[0]),
        "whitelist": ("m.0abc\nm.0def\n", lambda p: whitelists.read_whitelist(p).mids[0]),
    }


@pytest.mark.parametrize("case", ["lfw pairs", "landmarks", "ijb tid_mid", "ijb 5pts", "ijb pairs", "megaface noises",
                                  "megaface paths", "identity list", "overlap mids", "whitelist"])
def test_a_bom_never_hides_the_first_entry(tmp_path, case) -> None:
    text, first = _bom_cases()[case]
    plain, marked = tmp_path / "plain.txt", tmp_path / "bom.txt"
    plain.write_text(text, encoding="utf-8")
    marked.write_text(BOM + text, encoding="utf-8")
    assert marked.read_bytes()[:3] == b"\xef\xbb\xbf"
    expected = first(plain)
    assert first(marked) == expected and "\ufeff" not in str(expected)


def test_negative_ijb_detector_score_names_file_and_line(tmp_path) -> None:
    from facebench.io.ijb import read_name_5pts_score

    rows = ["1.jpg 30 40 70 40 50 60 35 80 65 80 0.9", "", "2.jpg 30 40 70 40 50 60 35 80 65 80 -0.2"]
    (tmp_path / "s.txt").write_text("\n".join(rows) + "\n")
    with pytest.raises(FacebenchError, match=r"s\.txt line 3: detector_score -0\.2 is negative \(image 2\.jpg\)"):
        read_name_5pts_score(tmp_path / "s.txt")


def test_symlinked_duplicate_identity_folders_are_an_error(tmp_path) -> None:
    from facebench.evaluate.folder import list_folder

    import cv2

    for who in ("ann", "bob"):
        (tmp_path / who).mkdir()
        for k in range(2):
            cv2.imwrite(str(tmp_path / who / f"{k}.jpg"), np.zeros((112, 112, 3), np.uint8))
    assert list_folder(tmp_path).identities == ("ann", "bob")
    (tmp_path / "ann_again").symlink_to(tmp_path / "ann", target_is_directory=True)
    with pytest.raises(FacebenchError, match="identity folders ann and ann_again are the same directory"):
        list_folder(tmp_path)


@pytest.mark.parametrize("content, message", [
    (None, "no results.json here"),
    ("", "empty file"),
    ('{"schema": "facebench.results/1", "benchmarks": {"lfw": {"met', "not valid JSON (truncated or edited?)"),
    ('{"schema": "other/2"}', "not a facebench results file (schema 'other/2'"),
    ('[1, 2]', "expected a JSON object, got list"),
    ('{"schema": "facebench.results/1", "benchmarks": [], "failed": {}}', "member 'benchmarks' must be an object"),
    ('{"schema": "facebench.results/1", "benchmarks": {"lfw": 3}, "failed": {}}',
     "benchmarks.lfw must be an object with a 'metrics' object"),
])
def test_report_on_a_malformed_run_directory_says_what_is_wrong(tmp_path, capsys, content, message) -> None:
    run = tmp_path / "run"
    run.mkdir()
    if content is not None:
        (run / "results.json").write_text(content)
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("sidecar, message", [
    ('{"profile": {"mean": [127.5, NaN, 127.5]}}', "profile mean[1]: expected a number, got nan"),
    ('{"profile": {"std": [1e309, 1, 1]}}', "profile std[0]: expected a number, got inf"),
    ('{"profile": {"std": [1, 1]}}', "profile std: expected a list of 3 values, got [1, 1]"),
    ('{"profile": "insightface"}', "profile: expected a table, got 'insightface'"),
    ('{"profile": {"name": "raw"}, "extra": 1}', "unknown key 'extra' (known: profile, threshold)"),
    ('{"profile": {"size": "112"}}', "profile size: expected an integer, got '112'"),
    ('{"profile": {"colour": "rgb", "gamma": 2}}', "profile unknown key 'gamma'"),
    ('{"chip": "dlib5"}', "profile chip: 'dlib5' is not one of arcface, dlib; did you mean 'dlib'?"),
    ('{"name": "raw", "threshold": {"metric": "cosine"}}', "threshold missing required key 'value'"),
])
def test_sidecar_values_are_checked_naming_the_field(tmp_path, sidecar, message) -> None:
    from facebench.extraction.preprocess import read_sidecar

    (tmp_path / "m.onnx.facebench.json").write_text(sidecar)
    with pytest.raises(FacebenchError) as info:
        read_sidecar(tmp_path / "m.onnx")
    assert message in str(info.value) and "m.onnx.facebench.json" in str(info.value)


def test_benchmarks_with_a_missing_data_root_exits_nonzero(tmp_path, capsys) -> None:
    assert main(["benchmarks", "--data-root", str(tmp_path / "nonexistent")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_doctor_checks_the_checkpoint_before_rendering_anything(tmp_path, capsys, monkeypatch) -> None:
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not a model")
    monkeypatch.setattr("facebench.demo.suite.build_suite", lambda *a, **k: pytest.fail("rendered the suite"))
    assert main(["doctor", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "model.onnx" in err and "demo suite" not in err


def test_undecodable_image_fails_its_benchmark_naming_the_item(data, tmp_path) -> None:
    from tests.fakes import tiny_onnx

    model = tiny_onnx(tmp_path / "tiny.onnx")
    root = tmp_path / "data"
    root.mkdir()
    blobs = [jpeg_bytes(im, quality=60) for im in random_images(2 * 60, size=32, seed=3)]
    issame = _features(60, 1)[1]
    write_bin(root / "cfp_fp.bin", blobs, issame)
    blobs[5] = b"\xff\xd8 this is not a jpeg"
    write_bin(root / "lfw.bin", blobs, issame)
    out = tmp_path / "out"
    assert main(["-q", "run", str(model), "-b", "lfw,cfp_fp", "--data-root", str(root), "--out", str(out),
                 "--no-speed", "--no-cache", "--workers", "0"]) == 1
    doc = read_results(out)
    assert list(doc.benchmarks) == ["cfp_fp"]
    message = doc.failed["lfw"]
    assert "lfw.bin item 5" in message and "cannot decode the image" in message and f"model {model}" in message


def test_unexpected_failure_while_loading_an_image_names_it(tmp_path, monkeypatch) -> None:
    import cv2

    from facebench.extraction.images import ImageList, arcface_chip

    path = tmp_path / "face.png"
    cv2.imwrite(str(path), np.zeros((300, 200, 3), np.uint8))

    def exhausted(*a, **k):
        raise MemoryError("cannot allocate 5.3 GB")

    monkeypatch.setattr("facebench.extraction.images.warp_to_chip", exhausted)
    lmk = np.array([[[60, 120], [140, 120], [100, 160], [70, 200], [130, 200]]], np.float64)
    with pytest.raises(FacebenchError, match=rf"^ijbc: {path}: MemoryError: cannot allocate 5\.3 GB$"):
        ImageList("ijbc", paths=[str(path)], landmarks=lmk).load_chip(0, arcface_chip())


@pytest.mark.parametrize("issame, message", [
    ([1, 0, 1, 0, 1], "ValueError: n_folds=10 exceeds the number of pairs (5)"),
    ([1] * 20, "needs both genuine (same) and impostor (different) pairs; got 20 genuine and 0 impostor"),
])
def test_degenerate_pack_fails_its_benchmark_and_the_other_runs(data, tmp_path, issame, message) -> None:
    root = tmp_path / "data"
    root.mkdir()
    n = len(issame)
    write_bin(root / "cfp_fp.bin", [jpeg_bytes(im) for im in random_images(2 * n, size=32)], np.asarray(issame, bool))
    shutil.copy(data / "lfw.bin", root / "lfw.bin")
    feats = tmp_path / "feats"
    feats.mkdir()
    shutil.copy(data / "feats" / "lfw.npy", feats / "lfw.npy")
    np.save(feats / "cfp_fp.npy", np.random.default_rng(0).standard_normal((2 * n, 8)).astype(np.float32))
    out = tmp_path / "out"
    assert main(["-q", "run", "--features", str(feats), "-b", "cfp_fp,lfw", "--data-root", str(root), "--out",
                 str(out), "--no-speed"]) == 1
    doc = read_results(out)
    assert list(doc.benchmarks) == ["lfw"] and message in doc.failed["cfp_fp"]
    assert f"files pack={root / 'cfp_fp.bin'}" in doc.failed["cfp_fp"]


@pytest.mark.parametrize("when", ["staging appears", "results.json staged"])
def test_real_sigkill_at_a_polled_moment_leaves_old_or_new(data, old_run, when) -> None:
    out, before = old_run
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "facebench", "-q", "run", "--features", str(data / "new.npy"),
                             "-b", "lfw", "--data-root", str(data), "--out", str(out), "--no-speed", "--overwrite"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    staging = out.parent / f".out.tmp-{proc.pid}"
    target = staging if when == "staging appears" else staging / "results.json"
    deadline = time.monotonic() + 120
    while not target.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    after = _snapshot(out)
    if after != before:  # the kill came after the swap: the new run, whole
        assert "old-marker.txt" not in after and set(after) == set(before) - {"old-marker.txt"}
    assert _run(data, out, "--overwrite") == 0 and _siblings(out) == []
