"""Progress bars for long work, on stderr so stdout stays machine-readable."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from bench.optional import TQDM, require

Item = TypeVar("Item")


def progress(items: Iterable[Item], description: str, total: int | None = None) -> Iterable[Item]:
    """Wrap ``items`` in a tqdm progress bar labelled ``description``."""
    tqdm = require(TQDM, "progress bars").tqdm
    return tqdm(items, desc=description, total=total, leave=False, dynamic_ncols=True)
