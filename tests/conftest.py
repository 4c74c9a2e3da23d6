"""Shared fixtures: where the real public protocol lists are (skip cleanly when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def protocol_files() -> Path:
    """``../shared/protocol_files`` beside the checkout; tests using it skip when it is absent."""
    path = SHARED / "protocol_files"
    if not path.is_dir():
        pytest.skip("../shared/protocol_files is not present")
    return path


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """``../shared/reference`` beside the checkout; tests using it skip when it is absent."""
    path = SHARED / "reference"
    if not path.is_dir():
        pytest.skip("../shared/reference is not present")
    return path
