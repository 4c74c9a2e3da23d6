"""Regenerate MS-Celeb-1M-v1c-R: the user's v1c listing intersected with a published whitelist.

Rule (PROTOCOLS 5): kept = the listing's identities that are in the whitelist; the check is
86,876 identities in (``expect_identities``), every whitelist MID present, so kept = the whitelist's size
(72,690 for the deepglint list) and removed = in - kept (14,186). New labels: the kept MIDs sorted by
code point (byte order, ``LC_ALL=C sort``) are numbered 0..kept-1. The training list keeps the listing's
order and paths, drops removed identities and duplicate lines, and gives each image its new label.

Outputs (one folder, written all or nothing, ``summary.json`` last):

- ``identities.txt``: kept MIDs, sorted, one per line;
- ``removed_identities.txt``: the listing's MIDs that are not in the whitelist, sorted;
- ``label_map.tsv``: header ``mid old_label new_label``, then one row per kept MID in new-label order
  (``old_label`` is ``-`` when the listing has no labels);
- ``train_list.txt``: ``<path> <new_label>`` per kept image, when the listing names images;
- ``train.rec``/``train.idx``/``property``: the filtered RecordIO pack, when asked for;
- ``summary.json``: counts, checks, the whitelist's and listing's checksums, warnings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facebench import __version__
from facebench.errors import FacebenchError
from facebench.atomic import sha256_file, write_json
from facebench.overlap.listing import Listing, iter_rows, read_listing
from facebench.overlap.staging import finish_file, staged_folder
from facebench.overlap.whitelists import V1C_IDENTITIES, Whitelist

log = logging.getLogger(__name__)

OUTPUT_FILES: tuple[str, ...] = (
    "identities.txt",
    "removed_identities.txt",
    "label_map.tsv",
    "train_list.txt",
    "train.rec",
    "train.idx",
    "property",
    "summary.json",
)
SHOW_FIRST = 10


@dataclass
class V1cRPlan:
    """What to keep and how to relabel, with every count the check compares.

    ``new_labels[i]`` is the new label of listing identity ``i`` (``-1`` when removed).
    """

    kept: list[str]
    removed: list[str]
    absent: list[str]
    new_labels: np.ndarray
    identities_in: int
    expect_identities: int
    expect_kept: int
    problems: list[str] = field(default_factory=list)

    @property
    def expect_removed(self) -> int:
        return self.expect_identities - self.expect_kept

    def counts(self) -> dict[str, int]:
        return {
            "identities_in": self.identities_in,
            "kept": len(self.kept),
            "removed": len(self.removed),
            "whitelist_absent": len(self.absent),
            "expected_identities_in": self.expect_identities,
            "expected_kept": self.expect_kept,
            "expected_removed": self.expect_removed,
        }


def _first(items: list[str], n: int = SHOW_FIRST) -> str:
    shown = ", ".join(items[:n])
    return f"{shown}{', ...' if len(items) > n else ''}"


def plan_v1c_r(listing: Listing, whitelist: Whitelist, expect_identities: int = V1C_IDENTITIES) -> V1cRPlan:
    """Intersect the listing with the whitelist, number the kept MIDs and list every failed check."""
    allowed = set(whitelist.mids)
    present = set(listing.classes)
    kept = sorted(present & allowed)
    removed = sorted(present - allowed)
    absent = sorted(allowed - present)
    rank = {mid: i for i, mid in enumerate(kept)}
    new_labels = np.fromiter((rank.get(c, -1) for c in listing.classes), dtype=np.int64, count=len(listing.classes))
    plan = V1cRPlan(
        kept=kept,
        removed=removed,
        absent=absent,
        new_labels=new_labels,
        identities_in=len(listing.classes),
        expect_identities=expect_identities,
        expect_kept=len(whitelist.mids),
    )
    if absent:
        plan.problems.append(
            f"{len(absent):,} whitelist MID(s) are absent from {listing.source} (first, sorted: {_first(absent)})"
        )
    if plan.identities_in != expect_identities:
        plan.problems.append(
            f"{listing.source} has {plan.identities_in:,} identities, expected {expect_identities:,} (MS-Celeb-1M-v1c)"
        )
    return plan


def counts_text(plan: V1cRPlan) -> str:
    """``in N (expected N), kept K (expected K), removed R (expected R)``."""
    return (
        f"in {plan.identities_in:,} (expected {plan.expect_identities:,}), kept {len(plan.kept):,} "
        f"(expected {plan.expect_kept:,}), removed {len(plan.removed):,} (expected {plan.expect_removed:,})"
    )


def regenerate_v1c_r(
    listing_path: str | Path,
    whitelist: Whitelist,
    out_dir: str | Path,
    *,
    kind: str | None = None,
    allow_mismatch: bool = False,
    expect_identities: int = V1C_IDENTITIES,
    rec_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Read, check, and write the v1c-R folder; return the summary written to ``summary.json``.

    A failed count check is an error listing the first offending MIDs, unless ``allow_mismatch``
    (then it is a warning and is recorded). ``rec_dir`` (an insightface pack of the same v1c set whose
    record labels are the listing's labels) also writes the filtered pack with the new labels.
    """
    warnings: list[str] = []
    wl_warning = whitelist.mismatch_warning()
    if wl_warning:
        log.warning(wl_warning)
        warnings.append(wl_warning)
    listing = read_listing(listing_path, kind, identity="mid")
    for text in listing.warnings:
        log.warning(text)
        warnings.append(text)
    plan = plan_v1c_r(listing, whitelist, expect_identities)
    if plan.problems:
        if not allow_mismatch:
            raise FacebenchError(
                "v1c-R check failed: " + "; ".join(plan.problems) + f"; counts: {counts_text(plan)}; nothing "
                f"was written to {out_dir}. Use --allow-mismatch to write the intersection anyway"
            )
        plan.problems.append(f"counts: {counts_text(plan)}")
        for text in plan.problems:
            log.warning("%s (--allow-mismatch: continuing)", text)
            warnings.append(text)
    if rec_dir is not None and not listing.has_labels:
        raise FacebenchError(
            f"--rec {rec_dir}: the pack's records carry labels, so the listing must too "
            f"({listing.source} is a {listing.kind} listing); give the msra_lmk or a path-label list"
        )
    pack = None
    if rec_dir is not None:
        from facebench.overlap.pack import FilteredPack

        pack = FilteredPack.open(rec_dir, listing, plan.new_labels)

    summary: dict[str, Any] = {
        "facebench_version": __version__,
        "command": "overlap v1c-r",
        "listing": {
            "path": str(listing.source),
            "kind": listing.kind,
            "sha256": sha256_file(listing.source) if listing.source.is_file() else None,
            "rows": listing.n_rows,
            "duplicate_lines_left_out": len(listing.dropped_lines),
        },
        "whitelist": {
            "path": str(whitelist.path),
            "name": whitelist.name,
            "published_name": whitelist.expected.name,
            "published_source": whitelist.expected.source,
            "sha256": whitelist.sha256,
            "published_sha256": whitelist.expected.sha256,
            "is_published": whitelist.published,
            "mids": len(whitelist.mids),
        },
        "counts": plan.counts(),
        "checks_passed": not plan.problems,
        "allow_mismatch": allow_mismatch,
        "problems": plan.problems,
        "whitelist_mids_absent": plan.absent,
        "label_rule": "new label = position of the MID among the kept MIDs sorted by code point (0-based)",
        "outputs": {},
        "warnings": warnings,
    }
    with staged_folder(out_dir, OUTPUT_FILES) as stage:
        _write_lines(stage / "identities.txt", plan.kept)
        _write_lines(stage / "removed_identities.txt", plan.removed)
        _write_label_map(stage / "label_map.tsv", listing, plan)
        if listing.has_paths:
            summary["train_images"] = _write_train_list(stage / "train_list.txt", listing, plan.new_labels)
        if pack is not None:
            summary["rec"] = pack.write(stage, source_rows=listing.n_rows)
        summary["outputs"] = {p.name: sha256_file(p) for p in sorted(stage.iterdir())}
        write_json(stage / "summary.json", summary)
    return summary


def _write_lines(path: Path, items: list[str]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for item in items:
            handle.write(item + "\n")
        finish_file(handle)


def _write_label_map(path: Path, listing: Listing, plan: V1cRPlan) -> None:
    order = np.flatnonzero(plan.new_labels >= 0)
    order = order[np.argsort(plan.new_labels[order], kind="stable")]
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write("mid\told_label\tnew_label\n")
        for ci in order.tolist():
            old = "-" if listing.labels is None else str(listing.labels[ci])
            handle.write(f"{listing.classes[ci]}\t{old}\t{int(plan.new_labels[ci])}\n")
        finish_file(handle)


def _write_train_list(path: Path, listing: Listing, new_labels: np.ndarray) -> int:
    """``<path> <new_label>`` for each kept row in listing order; returns the number of lines."""
    label_bytes = [str(int(v)).encode("ascii") if v >= 0 else None for v in new_labels]
    n = 0
    with open(path, "wb", buffering=1 << 20) as handle:
        write = handle.write
        for _row, image, _fields, ci in iter_rows(listing):
            label = label_bytes[ci]
            if label is not None:
                write(image + b" " + label + b"\n")
                n += 1
        finish_file(handle)
    return n
