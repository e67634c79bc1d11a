"""Shared fixtures. Real-data tests read the N-MNIST subset beside the repository.

The subset lives at ``../shared/data/nmnist-small`` (override with ``EGGROLL_SNN_NMNIST_SMALL``).
Where it is missing (a user's fresh clone) the real-data tests are skipped, each with the reason
and how to get real recordings; with ``EGGROLL_SNN_REQUIRE_REAL_DATA=1`` (set by ``.ci/run``)
they fail instead, so that CI always exercises them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_NMNIST_SMALL = REPO_ROOT.parent / "shared" / "data" / "nmnist-small"
REQUIRE_REAL_DATA = "EGGROLL_SNN_REQUIRE_REAL_DATA"


@pytest.fixture(scope="session")
def nmnist_small_root() -> Path:
    """Root of the real N-MNIST subset (holds ``NMNIST/Train`` and ``NMNIST/Test``)."""
    root = Path(os.environ.get("EGGROLL_SNN_NMNIST_SMALL", DEFAULT_NMNIST_SMALL))
    if not (root / "NMNIST" / "Train").is_dir():
        reason = (
            f"real N-MNIST recordings not found at {root}: get them with `eggroll-snn data download --to DIR` "
            "(the official archives) and set EGGROLL_SNN_NMNIST_SMALL=DIR"
        )
        if os.environ.get(REQUIRE_REAL_DATA) == "1":
            pytest.fail(f"{reason} ({REQUIRE_REAL_DATA}=1 makes this an error)", pytrace=False)
        pytest.skip(reason)
    return root


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep every test's caches out of the user's home folder."""
    monkeypatch.setenv("EGGROLL_SNN_CACHE", str(tmp_path_factory.getbasetemp() / "eggroll-cache"))
