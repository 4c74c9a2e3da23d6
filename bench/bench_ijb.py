"""IJB-C 1:1 at full size: `facebench run --features` against the reference scripts' way, in one run.

Generates (vectorised, cached in --workdir) a synthetic set with IJB-C's sizes in the insightface testsuite
layout: 469,375 images, 23,124 templates (3,531 gallery, 19,593 probe), 15,658,489 template pairs of which
19,557 genuine, 512-d float32 features. Then times, each in its own subprocess (wall clock and peak RSS
of that process via ``os.wait4``):

- facebench: ``python -m facebench run --features F.npy -b ijbc --data-root D --out O`` end to end;
- baseline: the same computation the way insightface's ``ijb_11.py`` does it (pandas read of the meta
  files, the landmark file read line by line for the detector scores, a per-template loop with
  ``np.where`` and per-media means, ``sklearn.preprocessing.normalize``, scores by gathering both template
  rows of every pair in batches of 100,000, sklearn ROC and the nearest-FPR read-off). The baseline works
  in float64 (the reference takes the image-level mean in float32) so that both compute the same numbers.

Prints both times, the speed ratio, the TAR@FAR of both (must be identical) and facebench's peak RSS over
the feature file size. Targets: ratio >= 10, identical TAR@FAR, peak RSS <= 2.5 x the feature file.

    python bench/bench_ijb.py                     # full size (about 2 GB of files in --workdir)
    python bench/bench_ijb.py --scale 0.05        # a quick smaller run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from facebench.cpu import avoid_slow_avx512_sort

avoid_slow_avx512_sort(os.environ)  # numpy's code paths as the facebench command chooses them (facebench.cpu)

import numpy as np  # noqa: E402

IJBC = {
    "images": 469_375, "templates": 23_124, "gallery1": 1_772, "gallery2": 1_759, "pairs": 15_658_489, "genuine": 19_557
}
DIM = 512
GENERATOR_VERSION = 4  # bump when generate() changes, so cached sets are regenerated
FAR_TARGETS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


# ------------------------------------------------------------------------------------- generation


def sizes(scale: float) -> dict[str, int]:
    """IJB-C's figures times ``scale`` (scale 1: the real ones)."""
    if scale == 1.0:
        return dict(IJBC)
    out = {k: max(2, int(round(v * scale))) for k, v in IJBC.items()}
    n_gallery = out["gallery1"] + out["gallery2"]
    n_probe = out["templates"] - n_gallery
    out["genuine"] = min(out["genuine"], n_probe)
    # keep IJB-C's impostor density over the gallery x probe rectangle (about 22.6%)
    density = (IJBC["pairs"] - IJBC["genuine"]) / ((IJBC["templates"] - 3_531) * (3_531 - 1))
    out["pairs"] = out["genuine"] + int(round(density * n_probe * (n_gallery - 1)))
    return out


def generate(root: Path, scale: float, seed: int = 0) -> dict[str, Path]:
    """Write the synthetic set under ``root`` (meta files via facebench.io.ijb) and ``root/features.npy``."""
    from facebench.io import ijb

    rng = np.random.default_rng(seed)
    n = sizes(scale)
    n_gallery = n["gallery1"] + n["gallery2"]
    n_probe = n["templates"] - n_gallery
    n_images = n["images"]
    # template ids: distinct, non-contiguous, in shuffled order; gallery template g is subject g
    template_ids = rng.choice(10 * n["templates"], size=n["templates"], replace=False) + 1
    probe_subject = np.concatenate([np.arange(n_gallery), rng.integers(0, n_gallery, n_probe - n_gallery)])[:n_probe]
    rng.shuffle(probe_subject)
    subject_of_template = np.concatenate([np.arange(n_gallery), probe_subject])
    # images per template (>= 1), grouped by template in the file; media: runs of video frames or stills
    weight = rng.lognormal(0.0, 1.0, n["templates"])  # many small templates, a few large ones
    per_template = 1 + rng.multinomial(n_images - n["templates"], weight / weight.sum())
    template_of_image = np.repeat(np.arange(n["templates"]), per_template)
    first_of_template = np.r_[True, template_of_image[1:] != template_of_image[:-1]]
    new_media = first_of_template | (rng.random(n_images) < 0.45)
    medias = np.cumsum(new_media) * 7 + 100_000
    names = np.char.add(np.arange(1, n_images + 1).astype(str), ".jpg")
    scores = rng.uniform(0.4, 1.0, n_images)
    landmarks = np.array([[38.3, 51.7], [73.5, 51.5], [56.0, 71.7], [41.5, 92.4], [70.7, 92.2]]) + rng.normal(
        0, 2.0, (n_images, 5, 2)
    )
    meta = ijb.MetaImages(names, template_ids[template_of_image], medias, landmarks, scores)

    # pairs: each probe against its mate gallery template (the first `genuine` probes) and a random subset of
    # the other gallery templates, sized so the totals match IJB-C exactly
    n_impostor = n["pairs"] - n["genuine"]
    cells = n_probe * (n_gallery - 1)
    p = min(1.0, (n_impostor + 6 * np.sqrt(n_impostor) + 10) / cells)  # a few sd over, then trimmed
    chosen = []
    chunk = max(1, (1 << 23) // n_gallery)
    for start in range(0, n_probe, chunk):
        stop = min(n_probe, start + chunk)
        hits = np.flatnonzero(rng.random((stop - start) * (n_gallery - 1)) < p)
        chosen.append(hits + start * (n_gallery - 1))
    chosen = np.concatenate(chosen)
    if chosen.size < n_impostor:
        raise RuntimeError("impostor sampling fell short; rerun with another seed")
    drop = rng.choice(chosen.size, chosen.size - n_impostor, replace=False)
    keep = np.ones(chosen.size, dtype=bool)
    keep[drop] = False
    chosen = chosen[keep]
    probe_local, other = np.divmod(chosen, n_gallery - 1)
    mate = probe_subject[probe_local]
    gallery_index = other + (other >= mate)  # skip the mate column
    genuine_probes = np.arange(n["genuine"])
    t1 = np.concatenate([gallery_index, probe_subject[genuine_probes]])
    t2 = np.concatenate([probe_local, genuine_probes]) + n_gallery
    label = np.concatenate([np.zeros(chosen.size, dtype=bool), np.ones(genuine_probes.size, dtype=bool)])
    order = np.argsort(t2, kind="stable")  # probe-major, as the pair list is grouped
    pairs = ijb.TemplatePairs(template_ids[t1[order]], template_ids[t2[order]], label[order])
    # 1:N files: one row per image of each template; G1 = the first gallery subjects, G2 the others
    def search(first: int, stop: int) -> ijb.SearchSet:
        rows = np.repeat(np.arange(first, stop), per_template[first:stop])
        return ijb.SearchSet(template_ids[rows], subject_of_template[rows])

    searches = {
        "gallery1": search(0, n["gallery1"]),
        "gallery2": search(n["gallery1"], n_gallery),
        "probes": search(n_gallery, n["templates"]),
    }
    paths = ijb.write_ijb(root, "ijbc", meta, pairs, searches)

    # features: subject centre + image noise, with a per-image norm (quality) that the default keeps
    centres = rng.standard_normal((n_gallery, DIM), dtype=np.float32)
    features_path = root / "features.npy"
    out = np.lib.format.open_memmap(features_path, mode="w+", dtype=np.float32, shape=(n_images, DIM))
    block = 65536
    for start in range(0, n_images, block):
        stop = min(n_images, start + block)
        subj = subject_of_template[template_of_image[start:stop]]
        noise = rng.standard_normal((stop - start, DIM), dtype=np.float32)
        noise *= rng.uniform(3.0, 7.0, (stop - start, 1)).astype(np.float32)
        x = centres[subj] + noise
        x *= rng.uniform(5.0, 30.0, (stop - start, 1)).astype(np.float32) / np.sqrt(DIM, dtype=np.float32)
        out[start:stop] = x
    out.flush()
    del out
    paths["features"] = features_path
    return paths


def ensure_generated(workdir: Path, scale: float, seed: int) -> dict:
    """Generate the set under ``workdir`` unless the same generator, scale and seed already did; return
    the stamp (``sizes`` among it)."""
    workdir.mkdir(parents=True, exist_ok=True)
    stamp = workdir / "generated.json"
    wanted = {"generator": GENERATOR_VERSION, "scale": scale, "seed": seed, "sizes": sizes(scale)}
    if not stamp.is_file() or json.loads(stamp.read_text()) != wanted:
        start = time.perf_counter()
        generate(workdir, scale, seed)
        stamp.write_text(json.dumps(wanted))
        print(f"generated {wanted['sizes']} in {time.perf_counter() - start:.1f} s under {workdir}")
    return wanted


# ------------------------------------------------------------------------------------- baseline


def baseline(data_root: Path, features_path: Path, out_json: Path) -> None:
    """The reference scripts' way (ijb_11.py), in float64; writes TAR@FAR and AUC to ``out_json``."""
    import pandas as pd
    import sklearn.preprocessing
    from sklearn.metrics import auc, roc_curve

    meta = data_root / "IJBC" / "meta"
    ijb_meta = pd.read_csv(meta / "ijbc_face_tid_mid.txt", sep=" ", header=None).values
    templates, medias = ijb_meta[:, 1].astype(int), ijb_meta[:, 2].astype(int)
    pairs = pd.read_csv(meta / "ijbc_template_pair_label.txt", sep=" ", header=None).values
    p1, p2, label = pairs[:, 0].astype(int), pairs[:, 1].astype(int), pairs[:, 2].astype(int)
    faceness = []
    with open(meta / "ijbc_name_5pts_score.txt") as handle:
        for line in handle.readlines():
            faceness.append(line.strip().split(" ")[-1])
    faceness_scores = np.array(faceness).astype(np.float64)
    img_feats = np.load(features_path)
    img_input_feats = img_feats * faceness_scores[:, np.newaxis]
    del img_feats

    unique_templates = np.unique(templates)
    template_feats = np.zeros((len(unique_templates), img_input_feats.shape[1]))
    for count_template, uqt in enumerate(unique_templates):
        (ind_t,) = np.where(templates == uqt)
        face_norm_feats = img_input_feats[ind_t]
        face_medias = medias[ind_t]
        unique_medias, unique_media_counts = np.unique(face_medias, return_counts=True)
        media_norm_feats = []
        for u, ct in zip(unique_medias, unique_media_counts):
            (ind_m,) = np.where(face_medias == u)
            if ct == 1:
                media_norm_feats += [face_norm_feats[ind_m]]
            else:
                media_norm_feats += [np.mean(face_norm_feats[ind_m], axis=0, keepdims=True)]
        template_feats[count_template] = np.sum(np.array(media_norm_feats), axis=0)
    template_norm_feats = sklearn.preprocessing.normalize(template_feats)

    template2id = np.zeros((max(unique_templates) + 1, 1), dtype=int)
    for count_template, uqt in enumerate(unique_templates):
        template2id[uqt] = count_template
    score = np.zeros((len(p1),))
    total_pairs = np.array(range(len(p1)))
    batchsize = 100000
    for s in [total_pairs[i : i + batchsize] for i in range(0, len(p1), batchsize)]:
        feat1 = template_norm_feats[template2id[p1[s]]]
        feat2 = template_norm_feats[template2id[p2[s]]]
        score[s] = np.sum(feat1 * feat2, -1).flatten()

    fpr, tpr, _ = roc_curve(label, score)
    roc_auc = auc(fpr, tpr)
    fpr, tpr = np.flipud(fpr), np.flipud(tpr)
    tar = {}
    for target in FAR_TARGETS:
        _, min_index = min(list(zip(abs(fpr - target), range(len(fpr)))))
        tar[f"{target:.0e}"] = float(tpr[min_index])
    out_json.write_text(json.dumps({"tar_at_far": tar, "auc": float(roc_auc)}))


# ------------------------------------------------------------------------------------- timing


def timed(cmd: list[str]) -> tuple[float, int, int]:
    """Run ``cmd``; (wall seconds, peak RSS bytes of the process, exit status).

    The peak is the kernel's high-water mark ``VmHWM`` of the process, polled every 20 ms until it exits
    (``ru_maxrss`` from ``wait4`` is not used: Linux carries the parent's RSS at fork time across exec into
    it, so a bench that generated data in-process would inflate it).
    """
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        peak_kb = 0
        status_file = Path(f"/proc/{proc.pid}/status")
        while proc.poll() is None:
            try:
                for line in status_file.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak_kb = max(peak_kb, int(line.split()[1]))
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            err.seek(0)
            print(err.read().decode(errors="replace")[-3000:], file=sys.stderr)
    return wall, peak_kb * 1024, proc.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, help="where the synthetic set lives (default: a temp dir, removed)")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of IJB-C's sizes (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", choices=("baseline",), help=argparse.SUPPRESS)
    parser.add_argument("--args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "baseline":
        baseline(Path(args.args[0]), Path(args.args[1]), Path(args.args[2]))
        return 0

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_ijb_"))
    wanted = ensure_generated(workdir, args.scale, args.seed)
    features = workdir / "features.npy"
    feature_bytes = features.stat().st_size
    out = workdir / "run"
    shutil.rmtree(out, ignore_errors=True)

    fb_cmd = [sys.executable, "-m", "facebench", "run", "--features", str(features), "-b", "ijbc",
              "--data-root", str(workdir), "--out", str(out), "--no-progress", "--no-cache"]
    fb_time, fb_rss, fb_rc = timed(fb_cmd)
    base_json = workdir / "baseline.json"
    base_cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "baseline", "--args",
                str(workdir), str(features), str(base_json)]
    base_time, base_rss, base_rc = timed(base_cmd)
    if fb_rc or base_rc:
        print(f"FAILED: facebench exit {fb_rc}, baseline exit {base_rc}")
        return 1

    from facebench.results import read_results

    fb_entry = read_results(out).benchmarks["ijbc"]
    fb_tar = {path.partition(".")[2]: m.value for path, m in fb_entry.metrics.items() if path.startswith("tar_at_far.")}
    base = json.loads(base_json.read_text())
    same = fb_tar == base["tar_at_far"]
    ratio = base_time / fb_time
    mem_ratio = fb_rss / feature_bytes
    print(f"sizes: {wanted['sizes']}, features {feature_bytes / 2**20:.0f} MiB")
    print(f"facebench run --features: {fb_time:8.2f} s  peak RSS {fb_rss / 2**20:7.0f} MiB")
    print(f"baseline (reference way): {base_time:8.2f} s  peak RSS {base_rss / 2**20:7.0f} MiB")
    phases = fb_entry.extra.get("timings_s", {})
    inside = sum(phases.values())
    print("  facebench IJB phases: " + ", ".join(f"{k} {v:.2f} s" for k, v in phases.items())
          + f"; the rest ({fb_time - inside:.2f} s) is interpreter start, imports, results and report")
    print(f"speed ratio (baseline / facebench): {ratio:.1f}x   [target >= 10]")
    print(f"peak RSS / feature file: {mem_ratio:.2f}   [target <= 2.5]")
    print("TAR@FAR  facebench  baseline")
    for k, value in fb_tar.items():
        print(f"  {k}  {value:.6f}  {base['tar_at_far'][k]:.6f}")
    print(f"AUC {fb_entry.value('auc'):.12f} vs {base['auc']:.12f}")
    print(f"TAR@FAR identical: {same}")
    # 1:N on the same set (no reference timing: the merged-gallery script computes other numbers)
    features_dir = workdir / "features_dir"
    features_dir.mkdir(exist_ok=True)
    if not (features_dir / "ijbc.npy").exists():
        os.link(features, features_dir / "ijbc.npy")
    out_1n = workdir / "run_1n"
    shutil.rmtree(out_1n, ignore_errors=True)
    n1_time, n1_rss, n1_rc = timed([sys.executable, "-m", "facebench", "run", "--features", str(features_dir), "-b",
                                    "ijbc_1n", "--data-root", str(workdir), "--out", str(out_1n), "--no-progress"])
    if n1_rc == 0:
        m = read_results(out_1n).benchmarks["ijbc_1n"]
        print(f"ijbc_1n (facebench run --features DIR): {n1_time:.2f} s, peak RSS {n1_rss / 2**20:.0f} MiB; rank-1 "
              f"{m.value('rank1'):.4f}, TPIR@FPIR=1e-2 {m.value('tpir_at_fpir.1e-02'):.4f}, "
              f"1e-1 {m.value('tpir_at_fpir.1e-01'):.4f}")
    else:
        print(f"ijbc_1n FAILED (exit {n1_rc})")
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if same and ratio >= 10 and mem_ratio <= 2.5 else 1


if __name__ == "__main__":
    sys.exit(main())
