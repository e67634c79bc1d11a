"""Shared fixtures. Real-data tests read the N-MNIST subset beside the repository.

The subset lives at ``../shared/data/nmnist-small`` (override with ``EGGROLL_SNN_NMNIST_SMALL``).
When it is missing the real-data tests fail loudly rather than skip: CI must exercise them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_NMNIST_SMALL = REPO_ROOT.parent / "shared" / "data" / "nmnist-small"


@pytest.fixture(scope="session")
def nmnist_small_root() -> Path:
    """Root of the real N-MNIST subset (holds ``NMNIST/Train`` and ``NMNIST/Test``)."""
    root = Path(os.environ.get("EGGROLL_SNN_NMNIST_SMALL", DEFAULT_NMNIST_SMALL))
    if not (root / "NMNIST" / "Train").is_dir():
        pytest.fail(
            f"real N-MNIST subset not found at {root}; set EGGROLL_SNN_NMNIST_SMALL to its folder",
            pytrace=False,
        )
    return root


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep every test's caches out of the user's home folder."""
    monkeypatch.setenv("EGGROLL_SNN_CACHE", str(tmp_path_factory.getbasetemp() / "eggroll-cache"))
