"""The compliance report as one self-contained HTML file: opens offline, no script at all
(a Content-Security-Policy forbids any, and any fetch), charts as inline SVG (charts.py),
readable when printed. Every value is escaped; each figure links to the appendix entry
listing its records and the `log` query that returns them."""

from __future__ import annotations

from html import escape
from typing import Any

from orchestrator.compliance.model import Report, Section
from orchestrator.reporting import charts
from orchestrator.reporting.report_common import (
    Refs,
    chain_line,
    day,
    firmware_status,
    num,
    outcomes,
    pct,
    section_name,
    title,
    visible,
)

MOST_ROWS = 200  # rows of a long table per section; the JSON report has them all
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
       "base-uri 'none'; form-action 'none'")

CSS = """
body{font-family:"DejaVu Sans","Liberation Sans",Arial,sans-serif;margin:2em auto;
 max-width:1100px;color:#222;line-height:1.4;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:2px solid #444;margin-top:2em}
h3{margin-top:1.5em}
.banner{padding:.8em 1em;border-radius:4px;font-weight:bold;margin:1em 0}
.banner.ok{background:#e6f4ea;border:1px solid #2e7d32}
.banner.broken{background:#fdecea;border:2px solid #c62828;color:#8e0000}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.9em;width:100%}
th,td{border:1px solid #bbb;padding:.25em .5em;text-align:left;vertical-align:top;
 overflow-wrap:anywhere}
th{background:#f0f0f0}td.n{text-align:right;white-space:nowrap}
.figure{font-size:1.1em;margin:.6em 0}.ref{font-size:.85em}
figure{margin:1em 0;page-break-inside:avoid;break-inside:avoid}
figure svg{width:100%;height:auto;max-height:360px}
code{font-size:.9em;background:#f5f5f5;padding:0 .2em}
.more{font-style:italic;color:#555}
@media print{body{margin:0;max-width:none}a{color:inherit;text-decoration:none}
 h2{page-break-before:always}h2.first{page-break-before:avoid}
 tr,figure{page-break-inside:avoid;break-inside:avoid}}
"""


def _e(value: Any) -> str:
    return escape(visible(value), quote=True)


class _Page:
    def __init__(self) -> None:
        self.refs = Refs()
        self.out: list[str] = []

    def ref(self, trace: Any) -> str:
        label = self.refs.add(trace)
        return f'<a class="ref" href="#{label}">[{label}]</a>'

    def table(self, head: list[str], rows: list[list[str]], most: int = MOST_ROWS,
              numeric: tuple[int, ...] = ()) -> None:
        """Cells are HTML already (escaped by the caller)."""
        if not rows:
            self.out.append("<p class=\"more\">none</p>")
            return
        self.out.append("<table><thead><tr>" + "".join(f"<th>{h}</th>" for h in head)
                        + "</tr></thead><tbody>")
        for row in rows[:most]:
            self.out.append("<tr>" + "".join(
                f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>"
                for i, c in enumerate(row)) + "</tr>")
        self.out.append("</tbody></table>")
        if len(rows) > most:
            self.out.append(f'<p class="more">and {len(rows) - most} more rows (the JSON '
                            "report has them all)</p>")

    def figure(self, svg: str, caption: str) -> None:
        self.out.append(f"<figure>{svg}<figcaption>{_e(caption)}</figcaption></figure>")


def report_html(r: Report) -> str:
    page = _Page()
    o = page.out
    o.append(f'<div class="banner {"ok" if r.intact else "broken"}" id="chain">'
             f"{_e(r.headline())}</div>")
    o.append(f"<h1>{_e(title(r))}</h1>")
    p = r.period
    o.append("<ul>")
    o.append(f"<li>Period: {_e(p['from'])} to {_e(p['until'])} (trend periods of "
             f"{_e(p['periodDays'])} day{'s' if p['periodDays'] != 1 else ''})</li>")
    o.append(f"<li>Store: <code>{_e(p['store'])}</code>; {_e(p['records'])} records in the "
             "period" + (f" (records {_e(p['firstSeq'])} to {_e(p['lastSeq'])})"
                         if p["records"] else "") + "</li>")
    o.append(f"<li>{_e(chain_line(r))}</li><li>Generated {_e(p['generated'])}</li></ul>")
    for note in r.notes:
        o.append(f'<p class="more">{_e(note)}</p>')
    o.append('<h2 class="first">Policy revisions</h2>')
    page.table(["revision", "records", "first record", "last record"],
               [[f"<code>{_e(v['revision'])}</code>", _e(v["records"]),
                 f"{_e(v['firstSeq'])} ({_e(day(v['first']))})",
                 f"{_e(v['lastSeq'])} ({_e(day(v['last']))})"] for v in r.revisions],
               numeric=(1,))
    if r.applies:
        o.append("<p>Applied in the period (<code>policy.apply</code>):</p>")
        page.table(["record", "time", "status", "commit", "by"],
                   [[_e(a["seq"]), _e(a["time"]), _e(a["status"]),
                     f"<code>{_e(a['commit'])}</code>", _e(a["actor"])] for a in r.applies])
    _charts(page, r)
    for s in [r.overall, *r.groups]:
        _section(page, s)
    o.append("<h2>Appendix: the records behind each figure</h2>")
    o.append("<p>Each reference lists the records a figure was computed from, or the "
             "<code>orchestrator log</code> command that returns them.</p>")
    o.append("<table><thead><tr><th>ref</th><th>records</th><th>how to list them</th>"
             "</tr></thead><tbody>")
    for label, t in page.refs.items:
        note = f" ({_e(t.note)})" if t.note else ""
        o.append(f'<tr id="{label}"><td>{label}</td><td>{_e(t.describe())}{note}</td>'
                 f"<td><code>{_e(t.query)}</code></td></tr>")
    o.append("</tbody></table>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title(r))}</title><style>{CSS}</style></head><body>\n"
            + "\n".join(o) + "\n</body></html>\n")


def _charts(page: _Page, r: Report) -> None:
    """The overall section's charts: compliance and drift over time per group, time to
    install, window outcomes, firmware age."""
    s = r.overall
    sections = [s, *r.groups]
    if s.patch_trend:
        labels = [day(t["from"]) for t in s.patch_trend]
        series = {visible(section_name(x)): _by_period(x.patch_trend, labels, "percent")
                  for x in sections if x.patch_trend}
        page.figure(charts.line("Patch compliance (% of hosts with no overdue patch)", labels,
                                series, y_title="%", y_range=(0, 100)),
                    "Each host's last patch scan in each period.")
    if s.drift_trend:
        labels = [day(t["from"]) for t in s.drift_trend]
        series = {visible(section_name(x)): _by_period(x.drift_trend, labels, "drifting")
                  for x in sections if x.drift_trend}
        page.figure(charts.line("Hosts drifting from their baseline", labels, series,
                                y_title="hosts"),
                    "Each host's last audit in each period.")
    if s.time_to_install:
        labels = [visible(t["classification"]) for t in s.time_to_install]
        page.figure(charts.bars("Mean days to install, per classification", labels, {
            "from release": [t["meanDaysFromRelease"] for t in s.time_to_install],
            "from first seen": [t["meanDaysFromFirstSeen"] for t in s.time_to_install]},
            y_title="days"), "Installs recorded in the period.")
    wins = s.windows.get("windows") or []
    if wins:
        names = [visible(w["window"]) for w in wins]
        kinds = sorted({k for w in wins for k in w["outcomes"]})
        page.figure(charts.bars("Window runs by outcome", names,
                                {visible(k): [w["outcomes"].get(k, 0) for w in wins]
                                 for k in kinds},
                                y_title="runs", stacked=True),
                    "run.start and run.end records of the period.")
    if s.firmware:
        fw = [f for f in s.firmware if f["ageDays"] is not None][:30]
        if fw:
            page.figure(charts.bars("Firmware: days since each installed version was first "
                                    "reported",
                                    [visible(f"{f['component']} {f['version']}") for f in fw],
                                    {"age (days)": [f["ageDays"] for f in fw]},
                                    y_title="days", horizontal=True),
                        "Hosts' last firmware scans; age from the first record showing the "
                        "version.")


def _by_period(trend: list[dict[str, Any]], labels: list[str], key: str) -> list[Any]:
    values = {day(t["from"]): t.get(key) for t in trend}
    return [values.get(label) for label in labels]


def _section(page: _Page, s: Section) -> None:
    o = page.out
    o.append(f"<h2>{_e(section_name(s))}</h2>")
    pc = s.patch
    if pc:
        o.append(f'<p class="figure"><b>Patch compliance: {_e(pct(pc["percent"]))}</b> of '
                 f"{_e(pc['hosts'])} hosts have no overdue patch ({_e(pc['compliant'])} "
                 f"compliant, {_e(pc['overdue'])} overdue, {_e(pc['unknown'])} unknown: "
                 f"unreachable or in error at their last scan) {page.ref(pc['records'])}</p>")
    if s.patch_trend:
        o.append("<h3>Patch compliance over time</h3>")
        page.table(["period", "hosts", "compliant", "%", "records"],
                   [[_e(day(t["from"])), _e(t["hosts"]), _e(t["compliant"]),
                     _e(pct(t["percent"])), page.ref(t["records"])] for t in s.patch_trend],
                   most=400, numeric=(1, 2, 3))
    if s.overdue:
        o.append("<h3>Overdue patches</h3>")
        page.table(["host", "patch", "classification", "severity", "released", "due",
                    "days overdue", "record"],
                   [[_e(x["host"]), _e(x["name"]), _e(x["classification"]),
                     _e(x["severity"]), _e(x["released"]), _e(x["dueOn"]),
                     _e(num(x["daysOverdue"])), _e(x["seq"])] for x in s.overdue],
                   numeric=(6, 7))
    dr = s.drift
    if dr:
        o.append("<h3>Drift</h3>")
        o.append(f'<p class="figure"><b>Baseline compliance: '
                 f"{_e(pct(dr['percentCompliant']))}</b> of {_e(dr['hosts'])} hosts "
                 f"({_e(dr['drifting'])} drifting, {_e(dr['unknown'])} unknown) "
                 f"{page.ref(dr['records'])}</p>")
        page.table(["check", "hosts drifting", "hosts", "records"],
                   [[f"<code>{_e(c['check'])}</code>", _e(len(c["hosts"])),
                     _e(", ".join(c["hosts"][:20]) + (" ..." if len(c["hosts"]) > 20 else "")),
                     page.ref(c["records"])] for c in dr["byCheck"]], numeric=(1,))
    if s.drift_trend:
        o.append("<h3>Drift over time</h3>")
        page.table(["period", "hosts", "drifting", "findings", "records"],
                   [[_e(day(t["from"])), _e(t["hosts"]), _e(t["drifting"]),
                     _e(t["findings"]), page.ref(t["records"])] for t in s.drift_trend],
                   most=400, numeric=(1, 2, 3))
    if s.recurring:
        o.append("<h3>Recurring failures</h3>")
        page.table(["kind", "host", "check or step", "runs", "first", "last", "records"],
                   [[_e(x["kind"]), _e(x["host"]), f"<code>{_e(x['what'])}</code>",
                     _e(x["runs"]), _e(day(x["first"])), _e(day(x["last"])),
                     page.ref(x["records"])] for x in s.recurring], numeric=(3,))
    if s.time_to_install:
        o.append("<h3>Time to install</h3>")
        page.table(["classification", "installs", "mean days from release",
                    "mean days from first seen", "records"],
                   [[_e(t["classification"]), _e(t["installs"]),
                     _e(f"{num(t['meanDaysFromRelease'])} ({t['withReleaseDate']} dated)"),
                     _e(f"{num(t['meanDaysFromFirstSeen'])} ({t['withFirstSeen']} dated)"),
                     page.ref(t["records"])] for t in s.time_to_install], numeric=(1,))
    w = s.windows
    if w.get("windows"):
        o.append("<h3>Maintenance windows</h3>")
        page.table(["window", "occurrences used", "runs", "override runs", "outcomes",
                    "records"],
                   [[_e(x["window"]), _e(x["used"]), _e(x["runs"]), _e(x["overrideRuns"]),
                     _e(outcomes(x["outcomes"])), page.ref(x["records"])]
                    for x in w["windows"]], numeric=(1, 2, 3))
    if w.get("skipped"):
        o.append("<h3>Skipped, and why</h3>")
        page.table(["window", "group", "status", "reason", "records"],
                   [[_e(x["window"]), _e(x["group"]), _e(x["status"]), _e(x["reason"]),
                     page.ref(x["records"])] for x in w["skipped"]])
    ov = s.overrides
    if ov.get("items"):
        o.append(f"<h3>Overrides ({_e(ov.get('count', len(ov['items'])))})</h3>")
        page.table(["record", "time", "by", "group or window", "reason", "command"],
                   [[_e(x["seq"]), _e(x["time"]), _e(x["actor"]),
                     _e(x["group"] or x["window"]), _e(x["reason"]),
                     _e(x["command"] or "run-window")] for x in ov["items"]], numeric=(0,))
    if s.waivers:
        o.append("<h3>Waivers expiring within 30 days</h3>")
        page.table(["waiver", "expires", "days left", "checks", "applies to",
                    "justification", "file"],
                   [[_e(v["name"]), _e(v["expires"]), _e(v["daysLeft"]),
                     _e(", ".join(v["checks"])), _e(", ".join(v["groups"] + v["hosts"]) or "all"),
                     _e(v["justification"]), _e(v["source"])] for v in s.waivers],
                   numeric=(2,))
    if s.firmware:
        o.append("<h3>Firmware versions</h3>")
        page.table(["component", "version", "hosts", "status", "wanted", "reported since",
                    "age (days)", "records"],
                   [[_e(f["component"]), _e(f["version"]), _e(f["hosts"]),
                     _e(firmware_status(f["status"])), _e(", ".join(f["wanted"])),
                     _e(day(f["reportedSince"])), _e(num(f["ageDays"])),
                     page.ref(f["records"])] for f in s.firmware], numeric=(2, 6))
