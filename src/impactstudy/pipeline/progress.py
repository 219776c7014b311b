"""Progress of the long stages on the console: a bar on a terminal (tqdm), plain lines otherwise.

The command line turns it on (:func:`enable`) for its standard error; the Python API stays silent unless a
caller does the same. A stage opens a :func:`progress` for the work it waits on and hands it the futures as
it starts them (:meth:`Progress.track`), or says how much it expects and advances as it goes
(:meth:`Progress.expect`, :meth:`Progress.advance`): the count grows as work is started and moves as it
finishes, in whatever order. Who shows what: ingest's waves run side by side (``pipeline/steps.py``),
link's parts (the councils, each panel and file, the SPSS/Stata files written beside them), impact's
outcomes (each with its estimators, bootstrap and randomisation inference), the model stage's fits, the
report's charts and council pages.

On a terminal the line is a tqdm bar redrawn in place; in a log file or a CI job (standard error not a
terminal) it is a plain line at each quarter of the work and one at the end, so a log stays readable.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from typing import TextIO

_STREAM: list[TextIO] = []  # where progress goes; empty: silent


def enable(stream: TextIO | None = None) -> None:
    """Show progress on ``stream`` (standard error by default) from now on."""
    _STREAM[:] = [stream or sys.stderr]


def disable() -> None:
    """Show no progress (the default)."""
    _STREAM.clear()


class Progress:
    """Work done out of work started, for one stage; see the module docstring."""

    def __init__(self, what: str, unit: str, stream: TextIO | None) -> None:
        self.what, self.unit, self.stream = what, unit, stream
        self.total = self.done = 0
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._said = 0  # quarters reported as plain lines
        self._bar = None
        if stream is not None and _is_terminal(stream):
            from tqdm import tqdm

            self._bar = tqdm(total=0, desc=what, unit=f" {unit}", file=stream, leave=True, dynamic_ncols=True)

    def expect(self, n: int) -> None:
        """``n`` more units of work started (or about to be), done as :meth:`advance` says."""
        with self._lock:
            self.total += n
            if self._bar is not None:
                self._bar.total = self.total
                self._bar.refresh()

    def track(self, futures: Iterable[Future | object], weight: int = 1) -> list:
        """Count ``futures`` as started work, ``weight`` units each, done when it finishes (a plain value:
        done already)."""
        futures = list(futures)
        self.expect(weight * len(futures))
        for future in futures:
            if isinstance(future, Future):
                future.add_done_callback(lambda _f: self.advance(weight))
            else:
                self.advance(weight)
        return futures

    def advance(self, n: int = 1) -> None:
        """``n`` more units done."""
        with self._lock:
            self.done += n
            if self._bar is not None:
                self._bar.update(n)
            elif self.stream is not None and self.total:
                quarter = 4 * self.done // self.total
                if 0 < quarter < 4 and quarter > self._said:
                    self._said = quarter
                    self._line(f"{self.done:,} {self.unit} done ({self.total:,} started so far)")

    def close(self) -> None:
        """The last line: how much was done, in how long."""
        seconds = time.monotonic() - self._started
        if self._bar is not None:
            with contextlib.suppress(ValueError, OSError):
                self._bar.close()
        elif self.stream is not None and self.total:
            self._line(f"{self.done:,} {self.unit} done in {seconds:.1f} s")

    def _line(self, text: str) -> None:
        with contextlib.suppress(ValueError, OSError):  # a closed or broken stream: progress never fails a run
            print(f"{self.what}: {text}", file=self.stream, flush=True)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


@contextlib.contextmanager
def progress(what: str, unit: str) -> Iterator[Progress]:
    """A :class:`Progress` for ``what`` (e.g. "model") counted in ``unit`` (e.g. "fits"), shown where
    :func:`enable` said (nowhere by default), closed with a summary line when the block ends normally."""
    bar = Progress(what, unit, _STREAM[0] if _STREAM else None)
    try:
        yield bar
    except BaseException:
        if bar._bar is not None:
            bar._bar.close()
        raise
    bar.close()
