"""Training/benchmark identity overlap: regenerate MS-Celeb-1M-v1c-R, audit any training set.

- :mod:`~facebench.overlap.whitelists`: Freebase MIDs, the published v1c-R lists and their checksums;
- :mod:`~facebench.overlap.listing`: training listings (msra_lmk, path-label, MID list, folder tree), streamed;
- :mod:`~facebench.overlap.v1cr`: the v1c-R regeneration and its checks (``facebench overlap v1c-r``);
- :mod:`~facebench.overlap.pack`: the filtered insightface RecordIO pack;
- :mod:`~facebench.overlap.names`: name normalisation and matching rules (happynear's, extended);
- :mod:`~facebench.overlap.centres`: identity centres and chunked centre cosine similarity;
- :mod:`~facebench.overlap.sources`: name maps and benchmark identity files;
- :mod:`~facebench.overlap.audit` / :mod:`~facebench.overlap.run_audit`: evidence, ranking, outputs
  (``facebench overlap audit``);
- :mod:`~facebench.overlap.staging`: all-or-nothing output folders.
"""
