"""Server CPU per call, from slices of load and each server's CPU time over the whole run.

Free of I/O, so it is tested without servers.

A variant's CPU is what its server spent during the variant's own slices, plus a share of
what the server spent outside every slice of its own: work a call leaves behind, chiefly
spans that the SDK batches and exports up to seconds later, while another server is being
loaded. A server that is idle between its slices has nothing to share out (measured: an idle
service spends no CPU tick in seconds). The share follows each variant's CPU in the slices,
so each slice's CPU is scaled by its server's run CPU over its CPU in slices.

Besides the totals, a comparison is also worked out round by round: on a machine others use
too, the spread of those per-round ratios says how far to trust the total's.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Slice:
    """A stretch of load on one variant, with its server's CPU time read before and after."""

    round: int
    """Which round it belongs to, from 0."""
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


def deferred_scale(slices: Sequence[Slice], run_cpu: Mapping[str, float]) -> dict[str, float]:
    """Per server: its CPU over the whole run divided by its CPU in its slices; more than 1
    when it worked between them. 1 for a server that spent nothing in its slices.

    `run_cpu`: each server's CPU seconds from before the first slice to after the last one
    and the wait for deferred work.
    """
    in_slices: dict[str, float] = {}
    for s in slices:
        in_slices[s.server] = in_slices.get(s.server, 0.0) + s.cpu_seconds
    return {
        server: run_cpu[server] / spent if spent > 0 else 1.0 for server, spent in in_slices.items()
    }


def figures(slices: Sequence[Slice], run_cpu: Mapping[str, float]) -> dict[str, Figures]:
    """Each variant's figures, in the order variants first appear in `slices`; `run_cpu` as
    for deferred_scale."""
    scale = deferred_scale(slices, run_cpu)
    result: dict[str, Figures] = {}
    for key in dict.fromkeys(s.variant for s in slices):
        own = [s for s in slices if s.variant == key]
        result[key] = Figures(
            calls=sum(s.calls for s in own),
            failures=sum(s.failures for s in own),
            seconds=sum(s.seconds for s in own),
            cpu_seconds=sum(s.cpu_seconds * scale[s.server] for s in own),
        )
    return result


def round_ratios(
    slices: Sequence[Slice], run_cpu: Mapping[str, float], numerator: str, denominator: str
) -> list[float]:
    """`numerator`'s server CPU per call over `denominator`'s, in each round where both
    answered calls and the denominator's server spent CPU; deferred work spread as in
    figures()."""
    scale = deferred_scale(slices, run_cpu)

    def per_call(s: Slice) -> float:
        return s.cpu_seconds * scale[s.server] / s.calls

    tops = {s.round: s for s in slices if s.variant == numerator and s.calls}
    bottoms = {s.round: s for s in slices if s.variant == denominator and s.calls}
    both = [r for r in sorted(tops) if r in bottoms and per_call(bottoms[r]) > 0]
    return [per_call(tops[r]) / per_call(bottoms[r]) for r in both]


def middle_half(values: Sequence[float]) -> tuple[float, float] | None:
    """The first and third quartiles of `values` (within their range); None for fewer than
    two values."""
    if len(values) < 2:
        return None
    first, _, third = statistics.quantiles(values, n=4, method="inclusive")
    return first, third


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator; None when the denominator is 0."""
    return numerator / denominator if denominator else None
