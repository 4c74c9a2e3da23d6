"""docs/api.md is a doctest: every example of the Python API runs and shows what it says."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


@pytest.mark.slow
def test_api_doc_examples_run():
    result = doctest.testfile(str(DOC), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 40
    assert result.failed == 0
