"""Go's flag syntax and durations, as grpc_health_probe's users write them."""

import re

import pytest

from shop_cli.goflags import (
    HOUR,
    MILLISECOND,
    MINUTE,
    SECOND,
    Duration,
    Flag,
    FlagError,
    HelpRequested,
    Kind,
    parse,
)

FLAGS = (
    Flag("addr", Kind.STRING, "address"),
    Flag("tls", Kind.BOOL, "use TLS"),
    Flag("rpc-timeout", Kind.DURATION, "timeout", Duration(SECOND)),
    Flag("rpc-header", Kind.STRINGS, "header"),
)


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [
        ("0", 0),
        ("1s", SECOND),
        ("+5s", 5 * SECOND),
        ("300ms", 300 * MILLISECOND),
        ("-1.5h", -90 * MINUTE),
        ("2h45m", 2 * HOUR + 45 * MINUTE),
        ("1h15m30.918273645s", HOUR + 15 * MINUTE + 30 * SECOND + 918273645),
        ("1.5us", 1500),
        ("1.5\u00b5s", 1500),  # micro sign
        ("1.5\u03bcs", 1500),  # Greek mu
        (".5s", SECOND // 2),
        ("1.s", SECOND),
        ("10ns", 10),
        ("1.5ns1.5ns", 2),  # each number's fraction is truncated on its own, as in Go
        ("2562047h47m16.854775807s", 2**63 - 1),  # the longest Go duration
        ("-9223372036854775808ns", -(2**63)),  # and the most negative
    ],
)
def test_durations_parse_as_go_parses_them(text, nanoseconds):
    assert Duration.parse(text) == Duration(nanoseconds)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", 'time: invalid duration ""'),
        ("1", 'time: missing unit in duration "1"'),
        ("s", 'time: invalid duration "s"'),
        ("1x", 'time: unknown unit "x" in duration "1x"'),
        ("--1s", 'time: invalid duration "--1s"'),
        ("1s.", 'time: invalid duration "1s."'),
        (".s", 'time: invalid duration ".s"'),
        # Beyond an int64 of nanoseconds: Go refuses them rather than wrap or saturate.
        ("9999999999h", 'time: invalid duration "9999999999h"'),
        ("2562047h47m16.854775808s", 'time: invalid duration "2562047h47m16.854775808s"'),
        ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
        ("-9223372036854775809ns", 'time: invalid duration "-9223372036854775809ns"'),
        ("99999999999999999999ns", 'time: invalid duration "99999999999999999999ns"'),
        ("2562047h48m", 'time: invalid duration "2562047h48m"'),
        ("9" * 5000 + "s", f'time: invalid duration "{"9" * 5000}s"'),
        ("1\u0663s", 'time: unknown unit "\u0663s" in duration "1\u0663s"'),  # ASCII digits only
    ],
)
def test_bad_durations_are_refused_with_gos_message(text, error):
    with pytest.raises(ValueError, match=f"^{re.escape(error)}$"):
        Duration.parse(text)


@pytest.mark.parametrize(
    ("nanoseconds", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1500, "1.5\u00b5s"),
        (11_844_923, "11.844923ms"),
        (250 * MILLISECOND, "250ms"),
        (SECOND, "1s"),
        (1500 * MILLISECOND, "1.5s"),
        (MINUTE, "1m0s"),
        (90 * SECOND, "1m30s"),
        (2 * HOUR + 45 * MINUTE, "2h45m0s"),
        (-1500 * MILLISECOND, "-1.5s"),
    ],
)
def test_durations_print_as_go_prints_them(nanoseconds, text):
    assert str(Duration(nanoseconds)) == text
    assert Duration.parse(text) == Duration(nanoseconds)


def test_a_flag_takes_one_or_two_dashes_and_its_value_after_an_equals_sign_or_apart():
    for arguments in (["-addr=a:1"], ["-addr", "a:1"], ["--addr=a:1"], ["--addr", "a:1"]):
        parsed = parse(FLAGS, arguments)
        assert parsed.values["addr"] == "a:1"
        assert parsed.given == {"addr"}


def test_defaults_stand_for_flags_not_given():
    parsed = parse(FLAGS, [])
    assert parsed.values == {
        "addr": "",
        "tls": False,
        "rpc-timeout": Duration(SECOND),
        "rpc-header": (),
    }
    assert parsed.given == frozenset()


def test_a_bool_flag_is_set_alone_or_with_one_of_gos_spellings():
    assert parse(FLAGS, ["-tls"]).values["tls"] is True
    for spelling in ("1", "t", "T", "TRUE", "true", "True"):
        assert parse(FLAGS, [f"-tls={spelling}"]).values["tls"] is True
    for spelling in ("0", "f", "F", "FALSE", "false", "False"):
        assert parse(FLAGS, [f"--tls={spelling}"]).values["tls"] is False
    with pytest.raises(FlagError) as refused:
        parse(FLAGS, ["-tls=yes"])
    assert str(refused.value) == 'invalid boolean value "yes" for -tls: parse error'


def test_a_value_is_the_next_argument_even_when_it_starts_with_a_dash():
    assert parse(FLAGS, ["-rpc-timeout", "-1s"]).values["rpc-timeout"] == Duration(-SECOND)
    assert parse(FLAGS, ["-addr", "-tls"]).values == {**parse(FLAGS, []).values, "addr": "-tls"}


def test_a_repeatable_flag_keeps_every_value_and_others_keep_the_last():
    parsed = parse(FLAGS, ["-rpc-header=a: 1", "-addr=x", "--rpc-header", "b: 2", "-addr=y"])
    assert parsed.values["rpc-header"] == ("a: 1", "b: 2")
    assert parsed.values["addr"] == "y"


def test_positionals_are_kept_wherever_they_stand_and_double_dash_ends_the_flags():
    parsed = parse(FLAGS, ["host:1", "-tls", "-", "--", "-addr=x"])
    assert parsed.positionals == ("host:1", "-", "-addr=x")
    assert parsed.values["tls"] is True
    assert parsed.values["addr"] == ""


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["-bogus"], "flag provided but not defined: -bogus"),
        (["---addr=x"], "bad flag syntax: ---addr=x"),
        (["-=x"], "bad flag syntax: -=x"),
        (["-addr"], "flag needs an argument: -addr"),
        (["-rpc-timeout=soon"], 'invalid value "soon" for flag -rpc-timeout: parse error'),
        (
            ["-rpc-timeout=9999999999h"],
            'invalid value "9999999999h" for flag -rpc-timeout: parse error',
        ),
    ],
)
def test_bad_flags_are_refused_with_gos_message(arguments, message):
    with pytest.raises(FlagError) as refused:
        parse(FLAGS, arguments)
    assert str(refused.value) == message


@pytest.mark.parametrize("spelling", ["-h", "-help", "--help", "--h"])
def test_help_is_asked_for_in_any_spelling(spelling):
    with pytest.raises(HelpRequested):
        parse(FLAGS, ["-addr=x", spelling])
