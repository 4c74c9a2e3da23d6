"""`facebench score`: evaluate another system's score file (bob.bio 4/5-column, CSV) like a run."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    from facebench.io.scorefiles import FORMATS

    p = subparsers.add_parser(
        "score",
        help="evaluate a score file (bob.bio 4/5-column or CSV): 1:1 and 1:N metrics, tables, ROC",
        description="Evaluate comparisons scored elsewhere: bob.bio's 'claimed_id real_id test_label score' "
        "(4col) and 'claimed_id model_label real_id test_label score' (5col) files, or a CSV with a header "
        "probe,reference,label,score or probe,reference,probe_subject,reference_subject,score. Writes a run "
        "directory that `facebench report` and `facebench compare` read.",
    )
    p.add_argument("file", type=Path, help="the score file")
    p.add_argument("--format", choices=FORMATS, default="auto",
                   help="auto (default), 4col or 5col (bob.bio), csv (a header row)")
    p.add_argument("--name", help="its name in tables (default: the file name without suffix)")
    p.add_argument("--out", type=Path, help="output directory (default reports/<name>)")
    p.add_argument("--tar-rule", choices=("nearest", "le", "interp"), default="nearest",
                   help="TAR@FAR read-off: nearest (insightface), le (FPR <= target, bob.measure), interp")
    p.add_argument("--tpir-rule", choices=("insightface", "ge", "best"), default="insightface",
                   help="1:N TPIR@FPIR threshold rule, as `run --tpir-rule` (insightface: evaluation_1N; ge: "
                   "bob.measure; best: supremum over thresholds with FPIR <= target)")
    p.add_argument("--cmc-ties", choices=(">=", ">", "argsort"), default=">=",
                   help="1:N rank ties, as `run --cmc-ties`: >= a tied non-mate ranks above the mate (bob, "
                   "default); > the mate wins; argsort: insightface's np.argsort order")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from facebench.evaluate.scores import score
    from facebench.report.tables import build_table, to_markdown

    out = args.out or Path("reports") / (args.name or args.file.stem)
    doc = score(args.file, out, args.format, args.tar_rule, args.name, args.tpir_rule, args.cmc_ties)
    print(to_markdown(build_table([doc])), end="")
    for entry in doc.benchmarks.values():
        for warning in entry.warnings:
            print(f"warning: {warning}")
    print(f"results: {out / 'results.json'}")
    return 0
