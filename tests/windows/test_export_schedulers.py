"""Exported cron lines and systemd units: the year guard of cron lines, `%` and quoting in
paths and arguments, checked by simulating cron (croniter for the firings, cron's own `%`
rule, /bin/sh for the command) and by systemd-analyze where it is installed."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from window_builders import make_window, policy_set

from orchestrator.windows.export import ExportError, export_cron, export_systemd
from orchestrator.windows.occurrences import occurrences_between, to_instant

LINE = re.compile(
    r'^(?P<fields>\S+ \S+ \S+ \S+ \*) case "\$\(TZ=(?P<tz>\S+) date \+\\%Y\\%m\\%d\)" in '
    r"(?P<d1>\d{8})\|(?P<d2>\d{8})\) (?P<cmd>.*);; esac  # (?P<id>\S+)$"
)

WINDOWS = [
    make_window({"cron": "0 22 * * TUE#2", "offsetDays": 4, "timezone": "Europe/Berlin",
                 "duration": "4h"}, name="patch-saturday"),
    make_window({"cron": "0 3 * * SUN#1", "timezone": "Europe/Berlin", "duration": "2h"},
                name="windows-sunday"),
    make_window({"cron": "30 2 * * SUN", "timezone": "Europe/Berlin", "duration": "1h"},
                name="dst-sunday"),  # gap and fold starts (UTC lines)
    make_window({"cron": "59 23 31 12 *", "timezone": "Pacific/Kiritimati", "duration": "1h"},
                name="new-year"),  # the last minute of the year, UTC+14
    make_window({"cron": "30 0 1 1 *", "timezone": "America/St_Johns", "duration": "1h"},
                name="first-minute"),  # local year != UTC year
    make_window({"cron": "0 0 29 2 *", "timezone": "America/New_York", "duration": "1h"},
                name="leap-day"),
    make_window({"rrule": "DTSTART;TZID=Australia/Sydney:20260105T020000\n"
                          "RRULE:FREQ=MONTHLY;BYDAY=1MO\nEXDATE;TZID=Australia/Sydney:"
                          "20270104T020000", "timezone": "Australia/Sydney", "duration": "3h"},
                name="sydney-monday"),
]


def cron_lines(text: str) -> list[tuple[str, re.Match]]:
    """(CRON_TZ in effect, parsed line) for every job line of a crontab."""
    out, tz = [], None
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("CRON_TZ="):
            tz = line.split("=", 1)[1]
            continue
        m = LINE.match(line)
        assert m, f"unexpected crontab line: {line!r}"
        out.append((tz, m))
    return out


LATE = timedelta(minutes=3)


def guard_passes(m: re.Match, tz: str, instant: datetime) -> bool:
    """What the `case` guard does when its shell starts at `instant`."""
    day = instant.astimezone(ZoneInfo(tz)).strftime("%Y%m%d")
    return day in (m["d1"], m["d2"])


@pytest.mark.parametrize("now", [
    datetime(2026, 11, 27, tzinfo=UTC),
    datetime(2027, 12, 20, 12, tzinfo=UTC),
    datetime(2028, 2, 28, 6, tzinfo=UTC),
])
def test_no_cron_line_fires_at_a_non_occurrence_within_two_years(now):
    ps = policy_set(WINDOWS)
    text = export_cron(ps, now, ["/usr/bin/orchestrator"], "/srv/ops")[
        "orchestrator-windows.crontab"]
    lines = cron_lines(text)
    end = now + timedelta(days=731)
    starts = {w.name: {o.start for o in occurrences_between(w, now, end)} for w in WINDOWS}
    exported = {o.id for w in WINDOWS for o in occurrences_between(w, now, now + timedelta(400))
                if o.start >= now}
    ran: list[str] = []
    stray = 0
    for cron_tz, m in lines:
        assert m["tz"] == cron_tz  # the guard reads the date in the zone cron matched in
        window = m["id"].split("@")[0]
        zone = ZoneInfo(cron_tz)
        it = croniter(m["fields"], now.astimezone(zone).replace(tzinfo=None) - timedelta(
            minutes=1))
        while True:
            naive = it.get_next(datetime)  # wall-clock firing in CRON_TZ
            fired = to_instant(naive, zone)  # a gap time runs just after the gap
            if fired >= end:
                break
            if fired < now:
                continue
            own = fired == datetime.fromisoformat(m["id"].split("@", 1)[1])
            # The guard runs when the shell starts: on time, or a little late.
            passes = [guard_passes(m, cron_tz, fired + d) for d in (timedelta(0), LATE)]
            if own:
                assert passes == [True, True], m["id"]
                ran.append(m["id"])
            elif any(passes):
                pytest.fail(f"{m['id']} line also runs at {fired}")
            else:
                stray += 1
            assert not any(passes) or fired in starts[window]
    assert sorted(ran) == sorted(exported)  # every occurrence runs exactly once
    assert stray > 0  # the horizon overlaps the next year: the guard did some work


def test_cron_guard_with_a_late_shell_around_new_year():
    w = make_window({"cron": "59 23 31 12 *", "timezone": "UTC", "duration": "1h"})
    text = export_cron(policy_set([w]), datetime(2026, 6, 1, tzinfo=UTC), ["/bin/o"], "/srv",
                       days=3660)["orchestrator-windows.crontab"]
    lines = cron_lines(text)
    assert len(lines) == 10
    for _, m in lines:
        year = int(m["id"][len("patch-window@"):][:4])
        for y in range(2026, 2037):
            fired = datetime(y, 12, 31, 23, 59, tzinfo=UTC)
            for delay in (timedelta(0), timedelta(seconds=61)):  # after midnight
                assert guard_passes(m, "UTC", fired + delay) == (y == year)


def fake_date(bindir: Path) -> None:
    """A `date` honouring TZ at the instant in $FAKE_NOW (so the guard runs unchanged)."""
    script = bindir / "date"
    script.write_text(
        f"#!{sys.executable} -S\n"
        "import os, sys, datetime, zoneinfo\n"
        "t = datetime.datetime.fromisoformat(os.environ['FAKE_NOW'])\n"
        "print(t.astimezone(zoneinfo.ZoneInfo(os.environ.get('TZ', 'UTC')))"
        ".strftime(sys.argv[1][1:]))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def cron_command(command: str) -> tuple[str, str]:
    """cron's handling of `%` (Vixie/cronie do_command): `\\%` -> `%`, an unescaped `%` ends
    the command (the rest becomes stdin). Returns (command, stdin)."""
    out, escaped = [], False
    for i, ch in enumerate(command):
        if escaped:
            if ch == "%":
                out[-1] = "%"
            else:
                out.append(ch)
            escaped = False
            continue
        if ch == "\\":
            escaped = True
        elif ch == "%":
            return "".join(out), command[i + 1:]
        out.append(ch)
    return "".join(out), ""


@pytest.fixture()
def odd_paths(tmp_path):
    """A working directory and a program whose paths hold %, blanks, quotes, $ and \\."""
    workdir = tmp_path / "ops %d 'q' $HOME \\%n"
    bindir = tmp_path / "bin%1 x"
    workdir.mkdir()
    bindir.mkdir()
    recorder = bindir / "orchestrator"
    recorder.write_text('#!/bin/sh\n{ pwd; for a in "$@"; do printf "%s\\n" "$a"; done; }'
                        ' > "$RECORD"\n')
    recorder.chmod(recorder.stat().st_mode | stat.S_IXUSR)
    prefix = [str(recorder), "--config", str(tmp_path / "cfg%h \"x\" $y\\%.yml")]
    return workdir, prefix


def test_percent_and_quotes_in_cron_lines_survive_cron_and_sh(tmp_path, odd_paths):
    workdir, prefix = odd_paths
    w = make_window({"cron": "0 22 * * TUE#2", "timezone": "Europe/Berlin", "duration": "1h"},
                    name="patch%window")
    now = datetime(2026, 11, 1, tzinfo=UTC)
    text = export_cron(policy_set([w]), now, prefix, str(workdir), days=60)[
        "orchestrator-windows.crontab"]
    lines = cron_lines(text)
    assert len(lines) == 2
    shim = tmp_path / "shim"
    shim.mkdir()
    fake_date(shim)
    record = tmp_path / "record"
    env = {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}", "RECORD": str(record)}
    for _, m in lines:
        line_cmd = m.string[len(m["fields"]) + 1:]
        command, stdin = cron_command(line_cmd)
        assert stdin == ""  # no `%` left unescaped anywhere in the line
        start = datetime.fromisoformat(m["id"].split("@", 1)[1])
        for when, runs in ((start, True), (start + timedelta(minutes=2), True),
                           (start.replace(year=start.year + 1), False)):
            record.unlink(missing_ok=True)
            subprocess.run(["/bin/sh", "-c", command], check=True, cwd=tmp_path,
                           env={**env, "FAKE_NOW": when.isoformat()})
            assert record.exists() == runs, (when, command)
            if runs:
                assert record.read_text().splitlines() == [
                    str(workdir), *prefix[1:], "run-window", "patch%window"]


def systemd_argv(value: str) -> list[str]:
    """ExecStart= words as systemd reads them: `%%` -> `%`, `$$` -> `$`, quotes, C escapes
    (the subset the exporter writes)."""
    assert not re.search(r"%[^%]", value.replace("%%", "")), value  # no other specifier
    words, word, quote, i, started = [], [], None, 0, False
    while i < len(value):
        ch = value[i]
        if ch == "\\":
            nxt = value[i + 1]
            assert nxt in '\\"', f"unexpected escape in {value!r}"
            word.append(nxt)
            i += 2
            continue
        if ch in "%$" and value[i + 1] == ch:
            word.append(ch)
            i += 2
            continue
        assert ch not in "%$", value
        if quote:
            if ch == quote:
                quote = None
            else:
                word.append(ch)
        elif ch == '"':
            quote, started = ch, True
        elif ch == " ":
            if word or started:
                words.append("".join(word))
            word, started = [], False
        else:
            word.append(ch)
        i += 1
    if word or started:
        words.append("".join(word))
    return words


def test_percent_and_quotes_in_systemd_units(tmp_path, odd_paths):
    workdir, prefix = odd_paths
    w = make_window({"cron": "0 22 * * TUE#2", "timezone": "Europe/Berlin", "duration": "1h"})
    units = export_systemd(policy_set([w]), datetime(2026, 11, 1, tzinfo=UTC), prefix,
                           str(workdir), days=60)
    service = units["orchestrator-window-patch-window.service"]
    wd = next(x for x in service.splitlines() if x.startswith("WorkingDirectory="))
    assert wd == "WorkingDirectory=" + str(workdir).replace("%", "%%")
    exec_start = next(x for x in service.splitlines() if x.startswith("ExecStart="))
    assert systemd_argv(exec_start[len("ExecStart="):]) == [*prefix, "run-window",
                                                             "patch-window"]
    if shutil.which("systemd-analyze") is None:
        return
    unit = tmp_path / "orchestrator-window-patch-window.service"
    unit.write_text(service)
    # verify resolves the specifiers and checks that the (decoded) program exists.
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    unit.write_text(service.replace("%%", "%"))  # the unescaped form is refused
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                          capture_output=True, text=True)
    assert done.returncode != 0


@pytest.mark.parametrize("fmt", ["cron", "systemd"])
def test_paths_that_cannot_be_written_are_refused(fmt):
    w = make_window({"cron": "0 22 * * TUE#2", "timezone": "UTC", "duration": "1h"})
    make = export_cron if fmt == "cron" else export_systemd
    with pytest.raises(ExportError, match="line break"):
        make(policy_set([w]), datetime(2026, 1, 1, tzinfo=UTC), ["/bin/o"], "/srv/a\nb", 30)
    if fmt == "systemd":
        with pytest.raises(ExportError, match="WorkingDirectory"):
            make(policy_set([w]), datetime(2026, 1, 1, tzinfo=UTC), ["/bin/o"], "/srv/x ", 30)
