"""Locations the harness uses by default, all relative to the repository root."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

# Shared datasets live beside the repository, never inside it (see ../shared/data/*/README.md).
SHARED_DATA_DIR = REPO_ROOT.parent / "shared" / "data"

# Ground truth and other derived files; gitignored.
DEFAULT_CACHE_DIR = REPO_ROOT / "bench" / ".cache"

DEFAULT_RESULTS_DIR = REPO_ROOT / "bench" / "results"
