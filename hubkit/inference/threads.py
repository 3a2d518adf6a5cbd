"""Torch's intra-op threads on a shared CPU: all cores while they are free, one while they are not.

With every core in torch's thread pool, each convolution ends in a barrier that waits for the
slowest thread; when another process takes a core, a thread is descheduled and the others spin
at the barrier. Measured on the 2-core box (29 Mpx real-tissue slide, starter model, no TTA):
2 threads took 4.9 s alone and 19.8 s beside two busy processes, twice the CPU time; 1 thread
took 8.5 s alone and 8.9 s beside them. OpenMP's passive wait policy halves the loaded time but
costs 25% alone (6.1 s), so neither fixed choice is right.

`ThreadGovernor` chooses per batch of tiles: it times the whole cycle from one batch's end to the
next (the wait for the reader threads included: with one torch thread the readers get the other
core, so the model's own time alone would favour the wrong setting), keeps running the faster of
the two settings per tile, and re-tries the other for a few batches every ``probe_every``
batches, so it follows the load as other processes come and go. A tile's cost does not depend on
its pixels, so the timings compare like with like.
"""

from __future__ import annotations

import statistics
import time
from collections import deque

import torch

__all__ = ["ThreadGovernor"]


class ThreadGovernor:
    """Switches torch between ``most`` threads and one, whichever predicts tiles faster now.

    Args:
        most: the thread count when the cores are free (torch's own count by default).
        probe_every: batches between tries of the other setting (doubling, up to 8 times, while
            the tries change nothing).
        probe_len: batches each try lasts.
        memory: recent batches whose median per-tile time stands for a setting.

    Call `tick` after each batch's forward pass; `restore` puts torch's count back.
    """

    def __init__(self, most: int | None = None, probe_every: int = 40, probe_len: int = 3, memory: int = 5):
        self.original = torch.get_num_threads()
        self.most = max(1, most or self.original)
        self.arms = [self.most, 1] if self.most > 1 else [self.most]
        self.times = {arm: deque(maxlen=memory) for arm in self.arms}
        self.current = self.most
        self.probe_every, self.probe_len = probe_every, probe_len
        self.batches = self.probing = 0
        self.switches = 0
        self.interval = self.until_probe = probe_every
        self.before_probe = self.current
        self.last: float | None = None
        torch.set_num_threads(self.current)

    def best(self) -> int:
        """The setting with the lowest median seconds per tile (one not yet timed counts as best)."""
        untimed = [arm for arm in self.arms if not self.times[arm]]
        if untimed:
            return untimed[0]
        return min(self.arms, key=lambda arm: statistics.median(self.times[arm]))

    def record(self, seconds: float, tiles: int) -> None:
        """Seconds of one batch cycle of ``tiles`` tiles at the current setting; picks the next setting."""
        self.times[self.current].append(seconds / max(1, tiles))
        self.batches += 1
        if len(self.arms) == 1:
            return
        self.until_probe -= 1
        if self.probing:
            self.probing -= 1
            nxt = self.current if self.probing else self.best()
            if not self.probing:  # a try that changed nothing: try less often (up to 8x); else as often as set
                kept = nxt == self.before_probe
                self.interval = min(2 * self.interval, 8 * self.probe_every) if kept else self.probe_every
                self.until_probe = self.interval
        elif self.until_probe <= 0 or (self.batches == 2 and not self.times[1]):
            self.before_probe = self.current
            nxt = next(arm for arm in self.arms if arm != self.current)  # try the other setting
            self.probing = self.probe_len
        else:
            nxt = self.best()
        if nxt != self.current:
            self.current = nxt
            self.switches += 1
            torch.set_num_threads(nxt)

    def tick(self, tiles: int) -> None:
        """A batch of ``tiles`` tiles is done: its cycle since the previous batch is recorded (the
        first batch only starts the clock)."""
        now = time.perf_counter()
        if self.last is not None:
            self.record(now - self.last, tiles)
        self.last = now

    def restore(self) -> None:
        """Torch's thread count as it was before."""
        torch.set_num_threads(self.original)
