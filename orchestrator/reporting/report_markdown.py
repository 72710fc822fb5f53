"""The compliance report as Markdown, for a ticket: the chain's state first, each figure
with a reference (R<n>) to the appendix that lists its records and the `log` query
returning them. Every value from the log or the policies is escaped (plan_markdown.esc)."""

from __future__ import annotations

from typing import Any

from orchestrator.compliance.model import Report, Section
from orchestrator.reporting.plan_markdown import code, esc
from orchestrator.reporting.report_common import (
    MOST_ROWS,
    Refs,
    chain_line,
    day,
    firmware_status,
    num,
    outcomes,
    pct,
    section_name,
    title,
)


def _table(head: list[str], rows: list[list[Any]], most: int = MOST_ROWS) -> list[str]:
    if not rows:
        return ["_none_", ""]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows[:most]]
    if len(rows) > most:
        out.append(f"\n_and {len(rows) - most} more rows (the JSON report has them all)_")
    return out + [""]


def _ref(refs: Refs, trace: Any) -> str:
    return refs.add(trace)


def report_markdown(r: Report) -> str:
    refs = Refs()
    # the headline, title, period and chain line are the orchestrator's own text (times,
    # numbers, hashes); values from records or policies are escaped
    out = [f"**{r.headline()}**", "", f"# {esc(title(r))}", ""]
    p = r.period
    out += [f"- Period: {p['from']} to {p['until']} (trend periods of "
            f"{p['periodDays']} day{'s' if p['periodDays'] != 1 else ''})",
            f"- Store: {code(p['store'])}; {p['records']} records in the period"
            + (f" (records {p['firstSeq']} to {p['lastSeq']})" if p['records'] else ""),
            f"- {chain_line(r)}",
            f"- Generated {p['generated']}", ""]
    out += ["## Policy revisions", ""]
    out += _table(["revision", "records", "first", "last"],
                  [[code(v["revision"]), v["records"], f"{v['firstSeq']} ({esc(day(v['first']))})",
                    f"{v['lastSeq']} ({esc(day(v['last']))})"] for v in r.revisions])
    if r.applies:
        out += ["Applied in the period (`policy.apply`):", ""]
        out += _table(["record", "time", "status", "commit", "by"],
                      [[a["seq"], esc(a["time"]), esc(a["status"]), code(a["commit"]),
                        esc(a["actor"])] for a in r.applies])
    for note in r.notes:
        out += [f"> {esc(note)}", ""]
    for s in [r.overall, *r.groups]:
        out += _section(s, refs)
    out += ["## Appendix: the records behind each figure", ""]
    out += _table(["ref", "records", "how to list them"],
                  [[ref, esc(t.describe()) + (f" ({esc(t.note)})" if t.note else ""),
                    code(t.query)] for ref, t in refs.items], most=len(refs.items))
    return "\n".join(out).rstrip() + "\n"


def _section(s: Section, refs: Refs) -> list[str]:
    out = [f"## {esc(section_name(s))}", ""]
    pc = s.patch
    if pc:
        out += [f"**Patch compliance:** {pct(pc['percent'])} of {pc['hosts']} hosts have no "
                f"overdue patch ({pc['compliant']} compliant, {pc['overdue']} overdue, "
                f"{pc['unknown']} unknown: unreachable or in error at their last scan) "
                f"[{_ref(refs, pc['records'])}]", ""]
    if s.patch_trend:
        out += ["### Patch compliance over time", ""]
        out += _table(["period", "hosts", "compliant", "%", "records"],
                      [[esc(day(t["from"])), t["hosts"], t["compliant"], pct(t["percent"]),
                        _ref(refs, t["records"])] for t in s.patch_trend], most=400)
    if s.overdue:
        out += ["### Overdue patches", ""]
        out += _table(["host", "patch", "classification", "severity", "released", "due",
                       "days overdue", "record"],
                      [[esc(o["host"]), esc(o["name"]), esc(o["classification"]),
                        esc(o["severity"] or ""), esc(o["released"] or ""),
                        esc(o["dueOn"] or ""), num(o["daysOverdue"]), o["seq"]]
                       for o in s.overdue])
    dr = s.drift
    if dr:
        out += ["### Drift", "", f"**Baseline compliance:** {pct(dr['percentCompliant'])} of "
                f"{dr['hosts']} hosts ({dr['drifting']} drifting, {dr['unknown']} unknown) "
                f"[{_ref(refs, dr['records'])}]", ""]
        out += _table(["check", "hosts drifting", "hosts", "records"],
                      [[code(c["check"]), len(c["hosts"]),
                        esc(", ".join(c["hosts"][:10]) + (" ..." if len(c["hosts"]) > 10
                                                          else "")),
                        _ref(refs, c["records"])] for c in dr["byCheck"]])
    if s.drift_trend:
        out += ["### Drift over time", ""]
        out += _table(["period", "hosts", "drifting", "findings", "records"],
                      [[esc(day(t["from"])), t["hosts"], t["drifting"], t["findings"],
                        _ref(refs, t["records"])] for t in s.drift_trend], most=400)
    if s.recurring:
        out += ["### Recurring failures", ""]
        out += _table(["kind", "host", "check or step", "runs", "first", "last", "records"],
                      [[e["kind"], esc(e["host"]), code(e["what"]), e["runs"],
                        esc(day(e["first"])), esc(day(e["last"])), _ref(refs, e["records"])]
                       for e in s.recurring])
    if s.time_to_install:
        out += ["### Time to install", ""]
        out += _table(["classification", "installs", "mean days from release",
                       "mean days from first seen", "records"],
                      [[esc(t["classification"]), t["installs"],
                        f"{num(t['meanDaysFromRelease'])} ({t['withReleaseDate']} dated)",
                        f"{num(t['meanDaysFromFirstSeen'])} ({t['withFirstSeen']} dated)",
                        _ref(refs, t["records"])] for t in s.time_to_install])
    w = s.windows
    if w.get("windows"):
        out += ["### Maintenance windows", ""]
        out += _table(["window", "occurrences used", "runs", "override runs", "outcomes",
                       "records"],
                      [[esc(x["window"]), x["used"], x["runs"], x["overrideRuns"],
                        esc(outcomes(x["outcomes"])), _ref(refs, x["records"])]
                       for x in w["windows"]])
    if w.get("skipped"):
        out += ["### Skipped, and why", ""]
        out += _table(["window", "group", "status", "reason", "records"],
                      [[esc(x["window"] or ""), esc(x["group"] or ""), esc(x["status"]),
                        esc(x["reason"]), _ref(refs, x["records"])] for x in w["skipped"]])
    ov = s.overrides
    if ov.get("items"):
        out += [f"### Overrides ({ov.get('count', len(ov['items']))})", ""]
        out += _table(["record", "time", "by", "group or window", "reason", "command"],
                      [[o["seq"], esc(o["time"]), esc(o["actor"]),
                        esc(o["group"] or o["window"] or ""), esc(o["reason"] or ""),
                        esc(o["command"] or "run-window")] for o in ov["items"]])
    if s.waivers:
        out += ["### Waivers expiring within 30 days", ""]
        out += _table(["waiver", "expires", "days left", "checks", "applies to",
                       "justification", "file"],
                      [[esc(v["name"]), v["expires"], v["daysLeft"],
                        esc(", ".join(v["checks"])),
                        esc(", ".join(v["groups"] + v["hosts"]) or "all"),
                        esc(v["justification"]), esc(v["source"])] for v in s.waivers])
    if s.firmware:
        out += ["### Firmware versions", ""]
        out += _table(["component", "version", "hosts", "status", "wanted", "reported since",
                       "age (days)", "records"],
                      [[esc(f["component"]), esc(f["version"]), f["hosts"],
                        esc(firmware_status(f["status"])), esc(", ".join(f["wanted"])),
                        esc(day(f["reportedSince"])), num(f["ageDays"]),
                        _ref(refs, f["records"])] for f in s.firmware])
    return out
