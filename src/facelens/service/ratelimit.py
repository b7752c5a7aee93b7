"""Per-key token buckets: ``rate`` tokens per second refill a bucket of ``burst``; a request takes one token."""

from __future__ import annotations

import threading
import time


class RateLimiter:
    """Token bucket per key id. ``rate <= 0`` disables limiting."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = float(rate)
        self.burst = max(int(burst), 1)
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill time)
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> float:
        """Take a token for ``key``: 0.0 if allowed, else the seconds until one is available."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate


class FailureThrottle:
    """Failed attempts per identity (a client address, a key id) in a sliding window; an identity with ``limit``
    failures in the last ``window_s`` seconds is refused until the oldest of them leaves the window."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = int(limit)
        self.window_s = float(window_s)
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, identity: str, now: float) -> list[float]:
        times = [t for t in self._failures.get(identity, ()) if now - t < self.window_s]
        if times:
            self._failures[identity] = times
        else:
            self._failures.pop(identity, None)
        return times

    def wait(self, identities: tuple[str, ...], now: float | None = None) -> float:
        """0.0 when every identity may try, else the seconds until all of them may."""
        if self.limit <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            waits = [t[-self.limit] + self.window_s - now for i in identities
                     if len(t := self._recent(i, now)) >= self.limit]
        return max(waits, default=0.0)

    def fail(self, identities: tuple[str, ...], now: float | None = None) -> bool:
        """Count a failure for each identity; True when this failure reaches the limit for one of them."""
        if self.limit <= 0:
            return False
        now = time.monotonic() if now is None else now
        reached = False
        with self._lock:
            for identity in identities:
                times = self._recent(identity, now)
                times.append(now)
                self._failures[identity] = times
                reached = reached or len(times) == self.limit
            if len(self._failures) > 100_000:  # a flood of distinct identities: keep memory bounded
                for identity in [i for i in self._failures if not self._recent(i, now)]:
                    self._failures.pop(identity, None)
        return reached
