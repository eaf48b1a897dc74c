"""What a long job adds to a run of the engine (``Hooks``), and the stages it reports progress in (``Phase``).

Shared by the engine's schedules (``engine``), the two-pass runs (``twopass``) and the progress bar
(``vsrkit.progress``), so that none of them imports another to get them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Hooks", "Phase"]


@dataclass
class Phase:
    """One stage of a run, for progress: ``frames`` gone through at ``cost`` per frame (in units of one model
    pass over a frame; 0: reading only)."""

    name: str
    frames: int | None
    cost: float = 1.0


@dataclass
class Hooks:
    """What a long job adds to a run: resuming, re-reading the input, temporary space and progress.

    - ``start``: first output frame wanted; frames before it are read but, where the schedule allows, not
      computed. Recurrent and two-pass models need ``state``, the object ``on_state`` gave at that frame.
    - ``on_state(t, state)``: called every ``state_every`` frames (stateful models only), before frame ``t`` is
      computed and after every frame before it was yielded: a run can restart at ``t`` from ``state``.
    - ``reopen(i)``: iterates ``(index, payload, image)`` again from a frame at or before ``i`` (two-pass models
      re-read the input from its source instead of spooling it).
    - ``workdir``: where two-pass runs keep their temporaries (kept across a resume); default a temporary folder.
    - ``disk_budget``: bytes of temporary disk the two-pass plan may use (``twopass.DEFAULT_BUDGET``).
    - ``on_progress(phases, index, done)``: ``done`` frames of ``phases[index]`` are finished.
    """

    start: int = 0
    state: Any = None
    on_state: Callable[[int, Any], None] | None = None
    state_every: int = 0
    reopen: Callable[[int], Iterator[tuple[int, Any, np.ndarray]]] | None = None
    workdir: Path | None = None
    disk_budget: float | None = None
    on_progress: Callable[[list[Phase], int, int], None] | None = None
