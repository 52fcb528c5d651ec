"""Server CPU per call, from slices of load and each server's CPU time over the whole run.

Free of I/O, so it is tested without servers.

A variant's CPU is what its server spent during the variant's own slices, plus a share of
what the server spent outside every slice of its own: work a call leaves behind, chiefly
spans that the SDK batches and exports up to seconds later, while another server is being
loaded. A server that is idle between its slices has nothing to share out (measured: an idle
service spends no CPU tick in seconds). The share follows each variant's CPU in the slices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Slice:
    """A stretch of load on one variant, with its server's CPU time read before and after."""

    variant: str
    server: str
    seconds: float
    """Wall-clock length."""
    cpu_seconds: float
    """What the server spent meanwhile (user + system)."""
    calls: int
    """Calls answered OK."""
    failures: int
    """Calls that failed."""


@dataclass(frozen=True)
class Figures:
    """One variant's totals over every slice."""

    calls: int
    failures: int
    seconds: float
    """Wall-clock time under load."""
    cpu_seconds: float
    """The server's CPU time due to this variant, deferred work included."""

    @property
    def calls_per_second(self) -> float:
        return self.calls / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_per_call(self) -> float:
        """Seconds of server CPU per OK call; 0 without calls."""
        return self.cpu_seconds / self.calls if self.calls else 0.0


def figures(slices: Sequence[Slice], run_cpu: Mapping[str, float]) -> dict[str, Figures]:
    """Each variant's figures, in the order variants first appear in `slices`.

    `run_cpu`: each server's CPU seconds from before the first slice to after the last one
    and the wait for deferred work.
    """
    in_slices: dict[str, float] = {}
    for s in slices:
        in_slices[s.server] = in_slices.get(s.server, 0.0) + s.cpu_seconds
    result: dict[str, Figures] = {}
    for key in dict.fromkeys(s.variant for s in slices):
        own = [s for s in slices if s.variant == key]
        server = own[0].server
        cpu = sum(s.cpu_seconds for s in own)
        outside = run_cpu[server] - in_slices[server]
        share = cpu / in_slices[server] if in_slices[server] > 0 else 1 / len(own)
        result[key] = Figures(
            calls=sum(s.calls for s in own),
            failures=sum(s.failures for s in own),
            seconds=sum(s.seconds for s in own),
            cpu_seconds=cpu + outside * share,
        )
    return result


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator; None when the denominator is 0."""
    return numerator / denominator if denominator else None
