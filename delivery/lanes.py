"""Several connections at once inside one chunk task: its messages go to up to N
transports (SMTP connections, ESP sessions), each in a thread of its own, because the
time of a send goes in waiting for the server (milliseconds for a relay to take a
message, hundreds for an ESP to answer a call), not in building the messages.

Only the chunk's own thread touches the database. It hands units of work out a step at
a time, as the lanes take them, and takes back the outcomes they report, to record
them. A lane whose connection is lost stops, and the others go on; when no lane is
left, what was not sent goes back for a retry.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from delivery.rendering import RenderedIssue
from delivery.transports.base import Batch, Outcome, Transport

_END = None


class Lanes:
    def __init__(
        self, make: Callable[[], Transport], count: int, rendered: RenderedIssue, *, every: int
    ) -> None:
        self._make, self._rendered, self.count, self._every = make, rendered, max(1, count), every
        self._work: queue.SimpleQueue = queue.SimpleQueue()
        self._changed = threading.Condition()
        self._outcome = Outcome()
        self._queued = 0  # units handed out, not taken by a lane yet
        self._alive = self.count
        self._stopped = False
        self.error: BaseException | None = None  # what ended a lane other than its server
        self._threads = [
            threading.Thread(target=self._run, name=f"lane-{n}", daemon=True)
            for n in range(self.count)
        ]

    def __enter__(self) -> Lanes:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None:
            # The chunk failed (its record could not be written): what no lane took yet
            # stays claimed, to go when its lease runs out, rather than go unrecorded.
            self.untaken()
        self.close()
        for thread in self._threads:
            thread.join()

    # --- the lanes' side ----------------------------------------------------------

    def _run(self) -> None:
        try:
            with self._make() as mailer:
                mailer.send_from(self._rendered, self._take, self._report)
        except BaseException as exc:  # a lane must never leave the chunk waiting
            self.error = exc
        finally:
            with self._changed:
                self._alive -= 1
                self._changed.notify()

    def _take(self, block: bool) -> Batch | None:
        if self._stopped:
            return None
        try:
            unit = self._work.get(block)
        except queue.Empty:
            return None
        if unit is _END:
            self._work.put(_END)  # for the next lane
            return None
        with self._changed:
            self._queued -= 1
            if self._queued < self.count:
                self._changed.notify()  # the chunk may hand out its next step
        return unit

    def _report(self, outcome: Outcome) -> None:
        with self._changed:
            self._outcome.merge(outcome)
            if len(self._outcome) >= self._every:
                self._changed.notify()

    # --- the chunk's side ---------------------------------------------------------

    def hungry(self) -> bool:
        """Whether a lane would soon wait for work."""
        return self._queued < self.count

    def hand(self, units: list[Batch]) -> None:
        with self._changed:
            self._queued += len(units)
        for unit in units:
            self._work.put(unit)

    def close(self) -> None:
        """No more work: each lane ends once it has sent what it took."""
        self._work.put(_END)

    def stop(self) -> None:
        """The send was paused or cancelled: what no lane took yet stays unsent, and
        each lane ends once it has sent what it holds."""
        self._stopped = True
        self.untaken()
        with self._changed:
            self._queued = 0
        self.close()

    def unrecorded(self) -> int:
        with self._changed:
            return len(self._outcome)

    def done(self) -> bool:
        return self._alive == 0

    def wait(self, timeout: float, *, for_work: bool) -> None:
        """Until a lane wants work (`for_work`: there is more to hand out), enough
        outcomes wait to be recorded, every lane has ended, or `timeout` seconds."""
        with self._changed:
            self._changed.wait_for(
                lambda: (
                    (for_work and self._queued < self.count)
                    or len(self._outcome) >= self._every
                    or self._alive == 0
                ),
                timeout=max(0.0, timeout),
            )

    def outcomes(self) -> Outcome:
        """The outcomes reported since the last call."""
        with self._changed:
            taken, self._outcome = self._outcome, Outcome()
        return taken

    def untaken(self) -> list[int]:
        """The delivery ids handed out that no lane took (taken back)."""
        return [i for unit in self.take_back() for i, _ in unit]

    def take_back(self) -> list[Batch]:
        """The units handed out that no lane took yet, no longer handed out."""
        units = []
        while True:
            try:
                unit = self._work.get_nowait()
            except queue.Empty:
                break
            if unit is _END:
                self._work.put(_END)  # for the lanes
                break
            units.append(unit)
        with self._changed:
            self._queued -= len(units)
        return units
