"""Kind ``folder``: your own identity folder (``--benchmark folder:PATH``): seeded 10-fold pairs and an
open-set gallery/probe split (`facebench.evaluate.folder`); statistics as ``pairs`` for its pairs."""

from __future__ import annotations

from facebench.kinds.base import Kind, OwnData
from facebench.kinds.pairs import PAIR_METRICS

KIND = Kind(
    name="folder",
    title="own identity folder: 10-fold pairs and open-set identification",
    evaluator="facebench.evaluate.folder:run_folder",
    readers=("folder",),
    metrics=PAIR_METRICS,
    figures=("roc", "det", "folds"),
    pair_data="facebench.evaluate.folder:folder_pairs",
    drops_unenrolled=True,
    own_data=OwnData(
        "an image folder with one sub-folder per identity",
        {"images": "{root}", "landmarks": "{root}/landmarks.txt", "pairs": "{root}/pairs.txt"},
        ("landmarks", "pairs"),
        {
            "accuracy": "{stem} acc",
            "tar_at_far.1e-03": "{stem} TAR@1e-3",
            "rank.1": "{stem} rank-1",
            "tpir_at_fpir.1e-02": "{stem} TPIR@1e-2",
        },
    ),
)
