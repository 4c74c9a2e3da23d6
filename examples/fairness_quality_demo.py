"""Build the figures of docs/fairness.md and docs/quality.md from synthetic demo data (no real faces).

Writes an RFW-layout data root (four ``{Race}_pairs.txt`` lists) and an XQLFW-layout one (LFW ``pairs.txt``
with header and a ``path score`` quality file) under OUT/data, seeded features of two "checkpoints" (the
second less biased), runs ``facebench run --features`` for each and ``facebench compare`` on both, and copies
the analysis figures to OUT/img. Usage (from the repository root)::

    PYTHONPATH=. python3 examples/fairness_quality_demo.py /tmp/fq_demo
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

RACES = ("African", "Asian", "Caucasian", "Indian")


def lfw_style(per_fold: int, prefix: str, rng: np.random.Generator, noise: float, dim: int = 32):
    lines, rels, vectors, quality = [], [], {}, {}
    for s in range(10):
        for m in range(per_fold):
            name = f"{prefix}{s}_{m}"
            a, b = f"{name}/{name}_0001.jpg", f"{name}/{name}_0002.jpg"
            vectors[a] = rng.normal(size=dim)
            q = float(rng.random())
            quality[a], quality[b] = 1.0, round(q, 4)
            vectors[b] = vectors[a] + noise * (1.6 - q) * rng.normal(size=dim)
            lines.append(f"{name}\t1\t2")
            rels += [a, b]
        for m in range(per_fold):
            n1, n2 = f"{prefix}{s}_{m}", f"{prefix}{s}_{(m + 1) % per_fold}"
            lines.append(f"{n1}\t1\t{n2}\t2")
            rels += [f"{n1}/{n1}_0001.jpg", f"{n2}/{n2}_0002.jpg"]
    return lines, rels, vectors, quality


def touch(root: Path, rels) -> None:
    for rel in set(rels):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"\xff\xd8\xff")


def main(out: Path) -> None:
    data = out / "data"
    runs = []
    for model, spread in (("model_a", 0.35), ("model_b", 0.1)):
        feats = out / f"features_{model}"
        feats.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0 if model == "model_a" else 1)
        for r, race in enumerate(RACES):
            lines, rels, vectors, _ = lfw_style(100, f"m.{race[:2]}", rng, 0.9 + spread * r)
            root = data / "rfw" / "test" / "data" / race
            touch(root, rels)
            txt = data / "rfw" / "test" / "txts" / race / f"{race}_pairs.txt"
            txt.parent.mkdir(parents=True, exist_ok=True)
            txt.write_text("\n".join(lines) + "\n")
            np.save(feats / f"rfw_{race}.npy", np.stack([vectors[x] for x in rels]).astype(np.float32))
        lines, rels, vectors, quality = lfw_style(400, "P", rng, 0.9 + 2 * spread)
        root = data / "xqlfw" / "xqlfw_aligned_112"
        touch(root, rels)
        (data / "xqlfw" / "xqlfw_pairs.txt").write_text("10\t400\n" + "\n".join(lines) + "\n")
        (data / "xqlfw" / "xqlfw_scores.txt").write_text("".join(f"{k} {v}\n" for k, v in quality.items()))
        np.save(feats / "xqlfw.npy", np.stack([vectors[x] for x in rels]).astype(np.float32))
        run_dir = out / model
        subprocess.run([sys.executable, "-m", "facebench", "-q", "run", "-b", "rfw,xqlfw", "--data-root", str(data),
                        "--features", str(feats), "--out", str(run_dir), "--no-speed", "--fairness-fmr", "1e-2",
                        "--fairness-boot", "50"], check=True)
        runs.append(str(run_dir))
    subprocess.run([sys.executable, "-m", "facebench", "-q", "compare", *runs, "--out", str(out / "compare"),
                    "--no-stats", "--no-html"], check=True)
    img = out / "img"
    img.mkdir(exist_ok=True)
    for png in sorted((out / "compare").glob("*.png")):
        if png.name.startswith(("det_", "groups_", "erc_")):
            shutil.copy(png, img / png.name)
            print(img / png.name)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "fq_demo"))
