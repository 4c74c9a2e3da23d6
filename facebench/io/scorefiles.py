"""Score files written by other toolkits and systems: bob.bio's 4- and 5-column files and a plain CSV.

One line per comparison of a probe with a reference (a model, an enrolled template):

- ``4col`` (bob.bio): ``claimed_id real_id test_label score``, whitespace separated. The reference is the
  model of ``claimed_id`` (its id and its subject); the probe is ``test_label``, whose subject is
  ``real_id``. Genuine when ``claimed_id == real_id``.
- ``5col`` (bob.bio): ``claimed_id model_label real_id test_label score``: the reference is
  ``model_label`` (several models may share a ``claimed_id``).
- ``csv``: a header row naming the columns ``probe``, ``reference``, ``score`` and either ``label`` (1/0,
  true/false: same person) or ``probe_subject`` and ``reference_subject`` (genuine when equal); comma
  separated, any column order, other columns ignored.

``nan`` scores are failures to compare (bob.measure counts them as failures to acquire): kept as NaN
here and left out of every rate by the evaluator, which reports their number. Any other unparsable field
is an error naming the file, line and field. ``auto`` picks ``csv`` for a ``.csv`` name or a first line
with a comma, else ``4col``/``5col`` by the number of fields of the first line.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facebench.errors import FacebenchError, where
from facebench.io.textlines import expect_columns, iter_fields, iter_lines
from facebench.registry import Registry

FORMATS: Registry[str] = Registry("score file format", [
    ("auto", "csv for a .csv name or a first line with a comma, else 4col or 5col by field count"),
    ("4col", "claimed_id real_id test_label score"),
    ("5col", "claimed_id model_label real_id test_label score"),
    ("csv", "a header naming probe, reference, score and label or probe_subject, reference_subject"),
])
"""Score file format -> its columns (rules in the module docstring)."""
_TRUE, _FALSE = {"1", "true", "yes", "genuine"}, {"0", "false", "no", "impostor"}


@dataclass(frozen=True)
class ScoreList:
    """The comparisons of a score file, one entry per line (file order).

    ``probe_subject``/``reference_subject`` are None for a CSV with a ``label`` column (1:1 only).
    """

    probe: np.ndarray
    reference: np.ndarray
    scores: np.ndarray
    genuine: np.ndarray
    probe_subject: np.ndarray | None
    reference_subject: np.ndarray | None
    format: str


def _score(path: Path, line: int, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FacebenchError(f"{where(path, line)}: score {text!r} is not a number") from None
    if math.isinf(value):
        raise FacebenchError(f"{where(path, line)}: score {text!r} is infinite")
    return value


def detect_format(path: str | Path) -> str:
    """``csv``, ``4col`` or ``5col`` from the file name and its first non-blank line (module rule)."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return "csv"
    for line, text in iter_lines(path, "score file"):
        if "," in text:
            return "csv"
        n = len(text.split())
        if n in (4, 5):
            return f"{n}col"
        raise FacebenchError(
            f"{where(path, line)}: expected 4 fields (claimed_id real_id test_label score), 5 fields "
            f"(claimed_id model_label real_id test_label score) or a CSV header; got {n}"
        )
    raise FacebenchError(f"{path}: empty score file")


def read_score_file(path: str | Path, fmt: str = "auto") -> ScoreList:
    """Read a score file in ``fmt`` (one of :data:`FORMATS`; module rules)."""
    path = Path(path)
    FORMATS.check(fmt)
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt == "csv":
        return _read_csv(path)
    n = 4 if fmt == "4col" else 5
    names = "claimed_id real_id test_label score" if n == 4 else "claimed_id model_label real_id test_label score"
    claimed, model, real, probe, scores = [], [], [], [], []
    for line, fields in iter_fields(path):
        expect_columns(path, line, fields, n, names)
        claimed.append(fields[0])
        model.append(fields[1] if n == 5 else fields[0])
        real.append(fields[-3])
        probe.append(fields[-2])
        scores.append(_score(path, line, fields[-1]))
    if not scores:
        raise FacebenchError(f"{path}: empty score file")
    claimed_a, real_a = np.asarray(claimed), np.asarray(real)
    return ScoreList(
        probe=np.asarray(probe),
        reference=np.asarray(model),
        scores=np.asarray(scores, dtype=np.float64),
        genuine=claimed_a == real_a,
        probe_subject=real_a,
        reference_subject=claimed_a,
        format=fmt,
    )


def _read_csv(path: Path) -> ScoreList:
    try:
        handle = open(path, newline="", encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        raise FacebenchError(f"{path}: file not found (expected a score file)") from None
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise FacebenchError(f"{path}: empty score file")
        columns = {name.strip().lower(): i for i, name in enumerate(header)}
        with_label = "label" in columns
        needed = ["probe", "reference", "score"] + (["label"] if with_label else ["probe_subject", "reference_subject"])
        missing = [c for c in needed if c not in columns]
        if missing:
            raise FacebenchError(
                f"{where(path, 1)}: CSV header lacks {', '.join(missing)}; expected probe,reference,label,score or "
                f"probe,reference,probe_subject,reference_subject,score; got {','.join(header)}"
            )
        rows: dict[str, list] = {c: [] for c in needed}
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) < len(header):
                raise FacebenchError(f"{where(path, line)}: expected {len(header)} fields, got {len(row)}")
            for c in needed:
                rows[c].append(row[columns[c]].strip())
            rows["score"][-1] = _score(path, line, rows["score"][-1])
            if with_label:
                label = rows["label"][-1].lower()
                if label not in _TRUE | _FALSE:
                    raise FacebenchError(f"{where(path, line)}: label {rows['label'][-1]!r} is not 1/0 or true/false")
                rows["label"][-1] = label in _TRUE
    if not rows["score"]:
        raise FacebenchError(f"{path}: no comparisons after the header")
    probe_subject = None if with_label else np.asarray(rows["probe_subject"])
    reference_subject = None if with_label else np.asarray(rows["reference_subject"])
    genuine = np.asarray(rows["label"], dtype=bool) if with_label else probe_subject == reference_subject
    return ScoreList(
        probe=np.asarray(rows["probe"]),
        reference=np.asarray(rows["reference"]),
        scores=np.asarray(rows["score"], dtype=np.float64),
        genuine=genuine,
        probe_subject=probe_subject,
        reference_subject=reference_subject,
        format="csv",
    )
