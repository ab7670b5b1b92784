"""A graceful stop: SIGINT (Ctrl-C) and SIGTERM (what ``kill``, schedulers and containers send) while a run trains.

The first signal only raises a flag; the loop finishes the step it is in, writes a checkpoint at that step
(atomically, as always) and raises ``Stopped``, whose message says where the checkpoint is and how to resume.
The resumed run ends bit-identical to one that never stopped: the checkpoint is taken between two steps, like
the periodic ones. A second signal raises ``Stopped`` at once, wherever the run is -- also inside that write,
which then leaves the previous checkpoint whole (``checkpoint.save`` swaps complete folders only).
"""

from __future__ import annotations

import signal
import threading

CAUGHT = (signal.SIGINT, signal.SIGTERM)


class Stopped(KeyboardInterrupt):
    """A run stopped by a signal; ``str(err)`` is the one line to show, ``exit_status`` 128 + the signal."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum, self.exit_status = signum, 128 + signum


class StopSignals:
    """``with StopSignals() as stop:`` -- ``stop.signum`` is the first signal caught (None while none came).

    Outside the main thread (where Python cannot set handlers) it catches nothing and the defaults apply."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.previous: dict = {}

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else ""

    def _caught(self, signum, frame) -> None:
        if self.signum is not None:  # the second: stop now
            raise Stopped(f"stopped at once by a second {signal.Signals(signum).name}; the last complete "
                          "checkpoint is kept", signum)
        self.signum = signum

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in CAUGHT:
                self.previous[signum] = signal.signal(signum, self._caught)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}
