"""Reports: tables (Markdown, CSV, LaTeX, HTML), plots, statistics and comparisons from results.json documents.

- :mod:`.tables`: columns, rules per cell, marks, Markdown / CSV / LaTeX.
- :mod:`.published`: published reference results shipped as data (``published/*.toml``).
- :mod:`.runs`: run directories as reports read them (document, label, arrays).
- :mod:`.statistics`: bootstrap intervals and paired tests from a run's saved arrays.
- :mod:`.bootstrap`: the exact fast TAR@FAR cluster / template bootstrap kernel.
- :mod:`.plots`, :mod:`.gallery`, :mod:`.html`: figures, failure gallery, the self-contained page.
- :mod:`.comparison`: one comparison of runs and published rows, written in every format.
- :mod:`.run_report`: the report of one run (``facebench run``, ``facebench report``).
"""
