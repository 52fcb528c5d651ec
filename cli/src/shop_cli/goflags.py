"""Command-line flags in the syntax of Go's `flag` package, and Go's durations.

`shop probe` takes grpc_health_probe's flags, which scripts and pod specs write the
Go way: one or two dashes (``-addr=HOST:PORT``, ``--addr HOST:PORT``), a bool flag
alone to set it (``-tls``) or with a value (``-tls=false``), durations such as
``1s`` or ``250ms``, and ``--`` ending the flags. argparse reads ``-tls-ca-cert``
as a cluster of one-letter options and cannot follow these rules, so such a command
is handed its arguments untouched and parses them here. Errors read as Go's do.

One difference from Go: an argument that is not a flag does not end the flags; it
is kept as a positional and parsing goes on (``shop probe HOST:PORT -tls``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

NANOSECOND = 1
MICROSECOND = 1000 * NANOSECOND
MILLISECOND = 1000 * MICROSECOND
SECOND = 1000 * MILLISECOND
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
# time.ParseDuration's units; Go accepts both the micro sign and the Greek mu.
_UNITS = {
    "ns": NANOSECOND,
    "us": MICROSECOND,
    "\u00b5s": MICROSECOND,
    "\u03bcs": MICROSECOND,
    "ms": MILLISECOND,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
}
_DIGITS = "0123456789"  # ASCII only, as Go reads them
# A Duration is an int64 of nanoseconds; while parsing, Go counts magnitudes up to 1<<63.
_LIMIT = 1 << 63
# strconv.ParseBool
_BOOLS = {
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
}


@dataclass(frozen=True, order=True)
class Duration:
    """A Go ``time.Duration``: whole nanoseconds, printed as Go prints it (``1m30s``)."""

    nanoseconds: int

    @classmethod
    def parse(cls, text: str) -> Duration:
        """``time.ParseDuration``: ``300ms``, ``-1.5h``, ``2h45m``; raises ValueError.

        Step for step Go's algorithm, so the same texts are refused and the same
        nanoseconds come out: each number's fraction is scaled in floating point and
        truncated, and a total beyond what an int64 of nanoseconds holds is refused.
        """
        invalid = ValueError(f'time: invalid duration "{text}"')
        negative = text.startswith("-")
        rest = text[1:] if text[:1] in ("-", "+") else text
        if rest == "0":
            return cls(0)
        if not rest:
            raise invalid
        total = 0
        while rest:
            if not (rest[0] == "." or rest[0] in _DIGITS):
                raise invalid
            whole_digits = _leading_digits(rest)
            significant = rest[:whole_digits].lstrip("0") or "0"
            # A number of more digits than 1<<63 overflows, and would be slow to convert.
            if len(significant) > len(str(_LIMIT)):
                raise invalid
            whole = int(significant)
            if whole > _LIMIT:
                raise invalid
            rest = rest[whole_digits:]
            fraction, scale, fraction_digits = 0, 1.0, 0
            if rest.startswith("."):
                rest = rest[1:]
                fraction_digits = _leading_digits(rest)
                fraction, scale = _leading_fraction(rest[:fraction_digits])
                rest = rest[fraction_digits:]
            if not whole_digits and not fraction_digits:
                raise invalid  # ".s"
            unit_length = next(
                (i for i, c in enumerate(rest) if c == "." or c in _DIGITS), len(rest)
            )
            if not unit_length:
                raise ValueError(f'time: missing unit in duration "{text}"')
            unit_name, rest = rest[:unit_length], rest[unit_length:]
            unit = _UNITS.get(unit_name)
            if unit is None:
                raise ValueError(f'time: unknown unit "{unit_name}" in duration "{text}"')
            if whole > _LIMIT // unit:
                raise invalid
            value = whole * unit
            if fraction:
                value += int(float(fraction) * (float(unit) / scale))
            total += value
            if total > _LIMIT:
                raise invalid
        if negative:
            return cls(-total)
        if total > _LIMIT - 1:
            raise invalid  # 1<<63 fits only as the most negative duration
        return cls(total)

    @classmethod
    def of_seconds(cls, seconds: float) -> Duration:
        return cls(round(seconds * SECOND))

    @property
    def seconds(self) -> float:
        return self.nanoseconds / SECOND

    def __str__(self) -> str:
        """``Duration.String()``: ``0s``, ``1.5µs``, ``250ms``, ``1s``, ``1m0s``, ``2h45m0s``."""
        if self.nanoseconds == 0:
            return "0s"
        sign = "-" if self.nanoseconds < 0 else ""
        left = abs(self.nanoseconds)
        if left < SECOND:
            unit, size = next(
                (u, s)
                for u, s in (("ns", 1), ("\u00b5s", MICROSECOND), ("ms", MILLISECOND))
                if left < s * 1000
            )
            return f"{sign}{_decimal(left, size)}{unit}"
        hours, left = divmod(left, HOUR)
        minutes, left = divmod(left, MINUTE)
        text = f"{_decimal(left, SECOND)}s"
        if hours or minutes:
            text = f"{minutes}m{text}"
        if hours:
            text = f"{hours}h{text}"
        return sign + text


def _leading_digits(text: str) -> int:
    return next((i for i, c in enumerate(text) if c not in _DIGITS), len(text))


def _leading_fraction(digits: str) -> tuple[int, float]:
    """Go's leadingFraction: the digits as a whole number and their scale (10**count),
    ignoring the digits from the first that would overflow on."""
    fraction, scale = 0, 1.0
    for digit in digits:
        if fraction > (_LIMIT - 1) // 10:
            break
        widened = fraction * 10 + int(digit)
        if widened > _LIMIT:
            break
        fraction, scale = widened, scale * 10
    return fraction, scale


def _decimal(value: int, unit: int) -> str:
    """`value`/`unit` in decimal with no trailing zeros (`unit` a power of ten)."""
    whole, part = divmod(value, unit)
    digits = str(part).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


class Kind(Enum):
    BOOL = "bool"
    STRING = "string"
    DURATION = "duration"
    STRINGS = "value"
    """A string that may be given more than once; every value is kept, in order."""


@dataclass(frozen=True)
class Flag:
    name: str
    kind: Kind
    usage: str
    default: object = None

    def initial(self) -> object:
        if self.default is not None:
            return self.default
        return {Kind.BOOL: False, Kind.STRING: "", Kind.STRINGS: ()}.get(self.kind)


class FlagError(ValueError):
    """Arguments Go's flag package would refuse; the message is the one it prints."""


class HelpRequested(Exception):
    """``-h``, ``-help`` or ``--help`` (when not defined as a flag)."""


@dataclass(frozen=True)
class Parsed:
    values: Mapping[str, object]
    positionals: tuple[str, ...]
    given: frozenset[str]
    """Names of the flags that appeared on the command line."""


def parse(flags: Sequence[Flag], arguments: Sequence[str]) -> Parsed:
    """Reads `arguments` as Go's ``FlagSet.Parse`` would; raises FlagError or HelpRequested."""
    known = {flag.name: flag for flag in flags}
    values: dict[str, object] = {flag.name: flag.initial() for flag in flags}
    positionals: list[str] = []
    given: set[str] = set()
    rest = list(arguments)
    while rest:
        argument = rest.pop(0)
        if len(argument) < 2 or not argument.startswith("-"):
            positionals.append(argument)
            continue
        if argument == "--":
            positionals.extend(rest)
            break
        name = argument[2:] if argument.startswith("--") else argument[1:]
        if not name or name[0] in "-=":
            raise FlagError(f"bad flag syntax: {argument}")
        name, has_value, value = name.partition("=")
        flag = known.get(name)
        if flag is None:
            if name in ("h", "help"):
                raise HelpRequested
            raise FlagError(f"flag provided but not defined: -{name}")
        if flag.kind is Kind.BOOL:
            if has_value and value not in _BOOLS:
                raise FlagError(f'invalid boolean value "{value}" for -{name}: parse error')
            values[name] = _BOOLS[value] if has_value else True
        else:
            if not has_value:
                if not rest:
                    raise FlagError(f"flag needs an argument: -{name}")
                value = rest.pop(0)  # even one starting with "-", as in Go
            values[name] = _converted(flag, value, values[name])
        given.add(name)
    return Parsed(values, tuple(positionals), frozenset(given))


def _converted(flag: Flag, value: str, current: object) -> object:
    if flag.kind is Kind.DURATION:
        try:
            return Duration.parse(value)
        except ValueError:
            raise FlagError(f'invalid value "{value}" for flag -{flag.name}: parse error') from None
    if flag.kind is Kind.STRINGS:
        assert isinstance(current, tuple)
        return (*current, value)
    return value


def usage(program: str, flags: Sequence[Flag]) -> str:
    """The flag list as Go's ``PrintDefaults`` lays it out."""
    lines = [f"Usage of {program}:"]
    for flag in sorted(flags, key=lambda f: f.name):
        kind = "" if flag.kind is Kind.BOOL else f" {flag.kind.value}"
        lines.append(f"  -{flag.name}{kind}")
        default = ""
        if flag.default not in (None, "", False):
            shown = f'"{flag.default}"' if flag.kind is Kind.STRING else flag.default
            default = f" (default {shown})"
        lines.append(f"    \t{flag.usage}{default}")
    return "\n".join(lines)
