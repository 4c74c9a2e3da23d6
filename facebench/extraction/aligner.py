"""`facebench align SRC --out DIR`: detect, write aligned chips and the landmark file of a folder of photos.

Rule: every image file under ``SRC`` (any depth, sorted, suffixes of folder benchmarks, hidden entries
ignored) is enrolled by :mod:`facebench.extraction.enrol` (a 112x112 image is a ready chip and is copied as a chip
unchanged; the others are detected). Written under ``DIR``:

- ``<relative path>.png``: the aligned chip (lossless), for every enrolled image; ``--on-no-face skip``
  writes none for an image with no face, ``center-crop`` writes its centre crop;
- ``landmarks.txt``: ``path x1 y1 ... x5 y5`` (paths relative to ``SRC``, upright frame;
  :mod:`facebench.io.landmarks`) of every detected image with a face (and the centre-crop points under
  ``center-crop``), so ``SRC`` plus this file is a folder benchmark of raw photos;
- ``enrolment.json``: the failure-to-enrol report.

Resumable: detections are cached (:func:`facebench.extraction.enrol.detect_files`) and a chip that exists is not
written again; files are written atomically.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from facebench.extraction.enrol import EnrolOptions, EnrolReport, enrol
from facebench.errors import FacebenchError
from facebench.atomic import write_bytes, write_json, write_text
from facebench.extraction.images import ChipGeometry, ImageList
from facebench.io.landmarks import format_landmarks

LANDMARK_FILE = "landmarks.txt"
REPORT_FILE = "enrolment.json"


def list_images(src: Path) -> list[str]:
    """Absolute paths of every image file under ``src`` (module rule), sorted by relative path."""
    from facebench.evaluate.folder import IMAGE_SUFFIXES

    found = []
    for top, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [os.path.join(top, f) for f in files if not f.startswith(".") and f.lower().endswith(IMAGE_SUFFIXES)]
    return sorted(os.path.abspath(p) for p in found)


def align_folder(src: Path, out: Path, options: EnrolOptions, chip: ChipGeometry) -> EnrolReport:
    """Align every image of ``src`` into ``out`` (module rule); return the enrolment report."""
    src = Path(os.path.abspath(src))
    if not src.is_dir():
        raise FacebenchError(f"{src}: not a folder of images")
    paths = list_images(src)
    if not paths:
        raise FacebenchError(f"{src}: no image files found")
    images = ImageList(origin=str(src), paths=paths, crops=False)
    done = enrol(images, options, label=src.name)
    rel = [os.path.relpath(p, src) for p in paths]
    points = done.images.landmarks
    entries = {
        r: points[i] for i, r in enumerate(rel) if points is not None and np.isfinite(points[i]).all() and not done.unenrolled[i]
    }
    out.mkdir(parents=True, exist_ok=True)
    from facebench.progress import track

    for i, r in enumerate(track(rel, f"{src.name}: chips", "images", enabled=options.progress)):
        target = out / (r + ".png")
        if done.unenrolled[i] or target.is_file():
            continue
        chip_rgb = done.images.load_chip(i, chip)
        ok, data = cv2.imencode(".png", cv2.cvtColor(chip_rgb, cv2.COLOR_RGB2BGR))
        if not ok:
            raise FacebenchError(f"{target}: cannot encode the chip")
        target.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(target, data.tobytes())
    write_text(out / LANDMARK_FILE, format_landmarks(entries))
    report = done.report
    write_json(out / REPORT_FILE, {**report.to_dict(), "no_face_files": [os.path.relpath(p, src) for p in report.no_face],
                                   "several_faces_files": [os.path.relpath(p, src) for p in report.several_faces]})
    return report
