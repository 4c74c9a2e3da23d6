"""`facebench align SRC --out DIR`: aligned chips, a landmark file and the failure-to-enrol report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    from facebench.cli.run import add_enrol_arguments

    p = subparsers.add_parser(
        "align",
        help="detect faces in a folder of photos; write aligned chips and a landmark file",
        description="Detect the face of every photo under SRC (any depth), write DIR/<path>.png aligned chips, "
        "DIR/landmarks.txt (paths relative to SRC) and DIR/enrolment.json. Resumes an interrupted run.",
    )
    p.add_argument("src", type=Path, help="folder of photos")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--profile", default="insightface",
                   help="chip geometry of the profile: insightface (ArcFace 112x112, default), dlib (150x150)")
    p.add_argument("--cache-dir", type=Path, help="cache root (detections go to CACHE/detections)")
    p.add_argument("--workers", type=int, default=2, help="detection processes (default 2; 0 = inline)")
    p.add_argument("--no-progress", action="store_true", help="no progress line")
    add_enrol_arguments(p)
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from facebench.extraction.aligner import LANDMARK_FILE, align_folder
    from facebench.extraction.cache import default_cache_root
    from facebench.extraction.enrol import EnrolOptions
    from facebench.extraction.preprocess import chip_geometry, get_profile

    options = EnrolOptions(
        detector=args.detector, on_no_face=args.on_no_face, landmark_frame=args.landmark_frame,
        cache_root=(args.cache_dir or default_cache_root()) / "detections",
        progress=not args.no_progress and sys.stderr.isatty(), workers=args.workers,
    )
    report = align_folder(args.src, args.out, options, chip_geometry(get_profile(args.profile)))
    rate = f"{report.rate:.2%}" if report.rate is not None else "n/a"
    print(f"{report.n_images} images, {report.detected} detected, {len(report.no_face)} without a face "
          f"(failure to enrol {rate}, --on-no-face {report.policy}), {len(report.several_faces)} with several faces")
    for path in report.no_face[:20]:
        print(f"no face: {path}")
    print(f"chips: {args.out}/, landmarks: {args.out / LANDMARK_FILE}")
    return 0
