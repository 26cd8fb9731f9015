"""Progress of long work (an index built from the stored vectors, a storage
format upgrade, an import): library code reports it through a
:data:`Progress` callback passed down from the public entry points and never
draws or prints it. How it is shown is decided here, in one place:
:class:`ProgressBars` draws bars on stderr (the CLI's, and what
:func:`vecdb.open` does by default: on a terminal, for work that takes over
a second), :class:`ProgressLog` writes log lines (the server's).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Callable, Dict, List, NamedTuple, Optional

from tqdm import tqdm


class Task(NamedTuple):
    """A piece of long work, as a display names it."""

    description: str  # "building the index of 'docs'"
    unit: str  # what its counts count: "vectors"


Progress = Callable[[Task, int, int], None]
"""Called as ``progress(task, done, total)``: first with ``done`` 0 when the
task starts, then with ``done`` growing, last with ``done == total``."""


def silent(task: Task, done: int, total: int) -> None:
    """Progress shown nowhere."""


class ProgressBars:
    """A tqdm bar on stderr per task in progress. ``show``: True always,
    False never, None when stderr is a terminal; a bar appears once its task
    has run ``delay`` seconds; ``leave``: a finished bar stays on screen."""

    def __init__(self, show: Optional[bool] = None, delay: float = 1.0, leave: bool = True) -> None:
        self._disable = None if show is None else not show
        self._delay = delay
        self._leave = leave
        self._bars: Dict[Task, tqdm] = {}
        self._lock = threading.Lock()

    def __call__(self, task: Task, done: int, total: int) -> None:
        with self._lock:
            bar = self._bars.get(task)
            if bar is None:
                if done >= total:  # over as soon as begun: nothing to draw
                    return
                bar = self._bars[task] = tqdm(total=total, desc=task.description, unit=f" {task.unit}",
                                              unit_scale=True, file=sys.stderr, dynamic_ncols=True,
                                              disable=self._disable, delay=self._delay, leave=self._leave)
            bar.update(done - bar.n)
            if done >= total:
                del self._bars[task]
                bar.close()

    def close(self) -> None:
        """Close the bars of tasks that stopped before their end (an error)."""
        with self._lock:
            bars: List[tqdm] = list(self._bars.values())
            self._bars.clear()
        for bar in bars:
            bar.close()


class ProgressLog:
    """Log lines on ``logger``: when a task starts, every ``interval``
    seconds while it runs, and when it ends."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0) -> None:
        self._logger = logger
        self._interval = interval
        self._started: Dict[Task, List[float]] = {}  # task -> [start, last line]
        self._lock = threading.Lock()

    def __call__(self, task: Task, done: int, total: int) -> None:
        now = time.monotonic()
        with self._lock:
            times = self._started.get(task)
            if times is None:
                if done >= total:
                    return
                self._started[task] = [now, now]
                self._logger.info("%s: %s %s to do", task.description, f"{total:,}", task.unit)
            elif done >= total:
                del self._started[task]
                self._logger.info("%s: %s %s done in %.1f s", task.description, f"{total:,}", task.unit,
                                  now - times[0])
            elif now - times[1] >= self._interval:
                times[1] = now
                self._logger.info("%s: %s of %s %s (%.0f%%)", task.description, f"{done:,}", f"{total:,}",
                                  task.unit, 100 * done / total)


# What vecdb.open reports to unless told otherwise: bars on a terminal.
terminal_bars = ProgressBars()
