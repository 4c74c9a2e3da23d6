"""Kind ``identify``: 1:N on your own gallery and probe lists or identity folder (``--benchmark
identify:PATH``): ranks, TPIR@FPIR (``rules.tpir_rule``), mAP."""

from __future__ import annotations

from facebench.kinds.base import Kind, OwnData

KIND = Kind(
    name="identify",
    title="own 1:N identification",
    evaluator="facebench.evaluate.identify:run_identify",
    readers=("identify",),
    own_data=OwnData(
        "1:N identification: gallery and probe lists (or a seeded split of an identity folder)",
        {"images": "{root}", "landmarks": "{root}/landmarks.txt"},
        ("landmarks",),
        {"rank.1": "{stem} rank-1", "map": "{stem} mAP", "tpir_at_fpir.1e-02": "{stem} TPIR@1e-2"},
    ),
)
