"""Fair turns for one connection's commands.

A client may pipeline thousands of commands in one write, and with COMPRESS=DEFLATE a
few KiB of them inflate to millions of NOOPs. Answered back to back they would keep the
event loop, and every other connection of the process, waiting. Two measures, both per
connection, both pure arithmetic here (the connection does the waiting):

- after ``yield_every`` commands in a row the connection yields to the loop once, so
  others get a turn however much one client has queued;
- a token bucket allows ``rate`` commands per second, with a burst of as many: beyond
  it the connection waits for its next tokens. It is slowed, never cut off, since a
  client that pipelines a lot is not necessarily hostile. The waits come in steps of at
  least a hundredth of a second's worth of commands, not one timer per command.
"""

from __future__ import annotations

from collections.abc import Callable

YIELD_EVERY = 64


class CommandPacer:
    def __init__(
        self, rate: int, *, clock: Callable[[], float], yield_every: int = YIELD_EVERY
    ) -> None:
        self._rate = rate
        self._clock = clock
        self._yield_every = yield_every
        self._tokens = float(rate)
        self._last = clock()
        # How far in debt the bucket may go before a wait: about 10 ms of commands.
        self._debt = max(1.0, rate / 100)
        self._since_yield = 0
        self.slowed = 0  # commands that had to wait, for the log

    def before_command(self) -> float | None:
        """Seconds to wait before the next command: a positive number when the rate
        is spent, 0.0 for a plain yield to the loop, None to go on at once."""
        now = self._clock()
        self._tokens = min(float(self._rate), self._tokens + (now - self._last) * self._rate)
        self._last = now
        self._tokens -= 1
        if -self._tokens >= self._debt - 1e-6:  # (a waited-out debt may refill a hair short)
            self._since_yield = 0
            self.slowed += 1
            return -self._tokens / self._rate
        self._since_yield += 1
        if self._since_yield >= self._yield_every:
            self._since_yield = 0
            return 0.0
        return None
