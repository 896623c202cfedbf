"""Progress bars for long transfers (downloads, LINKS fetches, packing) and phase timings of a load.

Bars (:class:`ByteBar`, tqdm underneath) write to stderr, never stdout.  Whether one is shown is
decided here only, in this order:

1. an override for the current context (:func:`forced`; the CLI's ``--no-progress`` and
   ``--json`` turn bars off);
2. ``CARTON_PROGRESS``: ``0`` (or false, no, off) never, ``1`` (or true, yes, on) always;
3. otherwise tqdm's own rule (``disable=None``): only when stderr is a TTY, so tests, CI and
   pipes see nothing.

Transfers smaller than :data:`MIN_BYTES` get no bar; when the size is not known up front the
bar appears once that many bytes have gone through.  Bars are updated per chunk (callers read
MiB-sized chunks), so the overhead is one method call per chunk, and a bar is closed when its
operation ends, failed or not.

Phase timings: :func:`collect_phases` starts collecting for the current context (the loader does,
for one ``load``); code doing a phase of the work wraps it in :func:`phase`, which is a cheap
no-op when nothing collects.  A phase inside another is not counted in the outer one, so the
phases add up to at most the elapsed time.  :meth:`Phases.summary` renders them for the INFO line
that ``carton_runtime.loader`` logs.
"""

from __future__ import annotations

import contextvars
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

ENV_PROGRESS = "CARTON_PROGRESS"
#: Transfers smaller than this get no bar.
MIN_BYTES = 1024 * 1024
#: Bytes gathered before the tqdm bar is told (decoders read 16 KiB at a time).
_BATCH = 256 * 1024

_ON = ("1", "true", "yes", "on")
_OFF = ("0", "false", "no", "off")

_forced: contextvars.ContextVar[bool | None] = contextvars.ContextVar("carton_progress_forced", default=None)


@contextmanager
def forced(enabled: bool | None) -> Iterator[None]:
    """Within the block, bars are always shown (True), never (False), or as the environment
    says (None).  Takes precedence over ``CARTON_PROGRESS`` (the CLI's ``--no-progress``)."""
    token = _forced.set(enabled)
    try:
        yield
    finally:
        _forced.reset(token)


def setting() -> bool | None:
    """True: show bars; False: never; None: tqdm decides (stderr is a TTY)."""
    override = _forced.get()
    if override is not None:
        return override
    value = os.environ.get(ENV_PROGRESS, "").strip().lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    if value:
        log.debug("%s=%r is neither 0 nor 1; bars shown only on a terminal", ENV_PROGRESS, value)
    return None


class ByteBar:
    """A bytes bar (size, rate, total when known) that exists only when it is worth showing.

    ``update(n)`` per chunk; ``report(done, total)`` is the ``progress`` callback of
    ``carton_format.write`` (cumulative bytes and the total).  Use it as a context manager so
    it is closed on errors too.
    """

    def __init__(self, desc: str, total: int | None = None, *, min_bytes: int = MIN_BYTES) -> None:
        self.desc = desc
        self.total = total
        self.done = 0
        self.min_bytes = min_bytes
        self._enabled = setting()
        self._bar: Any = None
        self._pending = 0  # counted in done, not yet told to the bar
        self._closed = False
        self._maybe_start()

    def _maybe_start(self) -> None:
        if self._bar is not None or self._closed or self._enabled is False:
            return
        if (self.total if self.total is not None else self.done) < self.min_bytes:
            return
        from tqdm import tqdm

        self._bar = tqdm(
            total=self.total,
            initial=self.done,
            desc=self.desc,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            file=sys.stderr,
            disable=None if self._enabled is None else False,
            dynamic_ncols=True,
        )

    def update(self, n: int) -> None:
        """``n`` more bytes went through (the bar is told every 256 KiB and at the end)."""
        self.done += n
        if self._bar is not None:
            self._pending += n
            if self._pending >= _BATCH or self.done == self.total:
                self._flush()
        elif self.total is None:
            self._maybe_start()

    def _flush(self) -> None:
        if self._pending:
            self._bar.update(self._pending)
            self._pending = 0

    def report(self, done: int, total: int) -> None:
        """``done`` of ``total`` bytes so far (the first call sets the total; it may change later)."""
        if total != self.total:
            self.total = total
            if self._bar is None:
                self._maybe_start()
            else:
                self._bar.total = total
        self.update(done - self.done)

    def close(self) -> None:
        """Close the bar (idempotent); on the terminal its last state stays."""
        if self._bar is not None and not self._closed:
            self._flush()
            self._bar.close()
        self._closed = True

    def __enter__(self) -> ByteBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def transfer_name(url: str) -> str:
    """What a bar calls a download: the URL's last path segment (or the URL)."""
    tail = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return tail or url


# -- phase timings --------------------------------------------------------------------------------


@dataclass
class PhaseTime:
    """One phase's own time (phases inside it excluded) and, for transfers, the bytes moved."""

    name: str
    seconds: float = 0.0
    nbytes: int | None = None

    def count(self, n: int) -> None:
        """``n`` more bytes were moved in this phase."""
        self.nbytes = (self.nbytes or 0) + n

    def describe(self) -> str:
        """``fetch 0.80 s, 20.1 MB at 25.1 MB/s`` (MB = 10^6 bytes)."""
        text = f"{self.name} {self.seconds:.2f} s"
        if self.nbytes is not None:
            text += f", {self.nbytes / 1e6:.1f} MB"
            if self.seconds > 0:
                text += f" at {self.nbytes / 1e6 / self.seconds:.1f} MB/s"
        return text


@dataclass
class Phases:
    """The phases of one operation, in the order they first ran."""

    started: float = field(default_factory=time.perf_counter)
    times: dict[str, PhaseTime] = field(default_factory=dict)
    _inner: list[float] = field(default_factory=list, repr=False)  # time spent in nested phases, per open phase

    @property
    def elapsed(self) -> float:
        """Seconds since collecting started."""
        return time.perf_counter() - self.started

    def get(self, name: str) -> PhaseTime:
        """The record of phase ``name`` (created empty)."""
        record = self.times.get(name)
        if record is None:
            record = self.times[name] = PhaseTime(name)
        return record

    @contextmanager
    def timed(self, name: str) -> Iterator[PhaseTime]:
        """Add the block's own time to phase ``name``."""
        record = self.get(name)
        start = time.perf_counter()
        self._inner.append(0.0)
        try:
            yield record
        finally:
            elapsed = time.perf_counter() - start
            record.seconds += elapsed - self._inner.pop()
            if self._inner:
                self._inner[-1] += elapsed

    def summary(self) -> str:
        """``open 0.02 s; fetch 0.80 s, 20.1 MB at 25.1 MB/s; verify 0.10 s; runner load 0.30 s``."""
        return "; ".join(t.describe() for t in self.times.values())


_phases: contextvars.ContextVar[Phases | None] = contextvars.ContextVar("carton_phases", default=None)


@contextmanager
def collect_phases() -> Iterator[Phases]:
    """Collect the phases timed with :func:`phase` in this context (nested collections: the
    inner one only)."""
    phases = Phases()
    token = _phases.set(phases)
    try:
        yield phases
    finally:
        _phases.reset(token)


@contextmanager
def phase(name: str) -> Iterator[PhaseTime]:
    """Time the block as phase ``name`` of the current collection; without one the record
    yielded is a throwaway."""
    phases = _phases.get()
    if phases is None:
        yield PhaseTime(name)
        return
    with phases.timed(name) as record:
        yield record


__all__ = [
    "ENV_PROGRESS",
    "MIN_BYTES",
    "ByteBar",
    "PhaseTime",
    "Phases",
    "collect_phases",
    "forced",
    "phase",
    "setting",
    "transfer_name",
]
