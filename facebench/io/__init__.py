"""The field's file formats, read and written (no metrics here).

- `facebench.io.binpack`: insightface ``.bin`` verification packs.
- `facebench.io.pairlists`: the original pair-list distributions (LFW, CALFW/CPLFW, CFP, AgeDB-30).
- `facebench.io.landmarks`: 5-point landmark files for raw images.
- `facebench.io.recordio`: insightface MXNet RecordIO training packs (``train.rec``/``train.idx``/``property``).
"""
