"""One progress bar for a whole run, across its phases (two-pass models: reading, backward, forward), with an
ETA from the measured speed: the work left is weighed by each phase's cost per frame, so a backward pass that
writes no frame still moves the bar, and the ETA is not fooled by a forward pass that costs more per frame."""

from __future__ import annotations

import time
from collections.abc import Callable

from tqdm import tqdm

from vsrkit.infer.hooks import Phase


def _clock_text(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:d}:{s:02d}"


class ProgressBar:
    """Weighted progress of a run: ``phases(...)`` is the engine's ``Hooks.on_progress``; ``frame(n)`` counts
    the written frames of a one-phase run. ``fraction`` and ``eta`` (seconds) are what the bar shows."""

    def __init__(self, name: str, frames: int | None, enabled: bool = True, clock: Callable[[], float] = time.monotonic):
        self.frames = frames
        self.clock = clock
        self._phases = [Phase("upscale", frames, 1.0)]
        self._index, self._done = 0, 0
        self._t0: float | None = None  # when the first costed phase began
        self._units_at_t0 = 0.0
        self._bar = tqdm(total=1000, desc=name, disable=not enabled, dynamic_ncols=True,
                         bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}")

    # the engine's callback
    def phases(self, phases: list[Phase], index: int, done: int) -> None:
        self._phases = phases
        self._index, self._done = index, done
        self._update()

    def frame(self, n: int) -> None:
        """``n`` frames written in a one-phase run."""
        if len(self._phases) == 1:
            self._index, self._done = 0, n
            self._update()

    def _frames_of(self, p: Phase) -> int:
        return p.frames if p.frames is not None else (self.frames or 0)

    def _units(self) -> tuple[float, float]:
        total = sum(self._frames_of(p) * p.cost for p in self._phases)
        done = sum(self._frames_of(p) * p.cost for p in self._phases[: self._index])
        done += min(self._done, self._frames_of(self._phases[self._index]) or self._done) * self._phases[self._index].cost
        return done, total

    @property
    def fraction(self) -> float:
        done, total = self._units()
        return 0.0 if total <= 0 else min(1.0, done / total)

    @property
    def eta(self) -> float | None:
        """Seconds left: the weighted work left at the speed measured since the costed phases began."""
        done, total = self._units()
        if self._t0 is None or done <= self._units_at_t0:
            return None
        rate = (done - self._units_at_t0) / max(self.clock() - self._t0, 1e-9)
        return max(0.0, (total - done) / rate)

    def _update(self) -> None:
        phase = self._phases[self._index]
        if self._t0 is None and phase.cost > 0:
            self._t0 = self.clock()
            self._units_at_t0 = self._units()[0]
        self._bar.n = round(1000 * self.fraction)
        named = [p for p in self._phases if p.cost > 0 and (p.frames or 0) > 0]
        step = f"pass {named.index(phase) + 1}/{len(named)} " if phase in named and len(named) > 1 else ""
        frames = phase.frames if phase.frames is not None else (self.frames or "?")  # 0: a phase with nothing to do
        self._bar.set_postfix_str(f"{step}{phase.name} {self._done}/{frames} frames, ETA {_clock_text(self.eta)}",
                                  refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
