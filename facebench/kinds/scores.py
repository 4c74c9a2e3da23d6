"""Kind ``scores``: a score file evaluated by `facebench score` (bob.bio 4/5-column or CSV): TAR@FAR, AUC, EER,
and ranks and TPIR@FPIR when subjects are known. No protocol file names it: it has no evaluator."""

from __future__ import annotations

from facebench.kinds.base import Kind

KIND = Kind(name="scores", title="scores from a score file", readers=("scores",))
