"""A plan as a pull-request comment (GitHub and GitLab flavoured Markdown).

The first screen is a summary table; every list that can grow (fields, hosts, occurrences)
sits in a collapsed `<details>` block, and hosts with identical changes share one line, so
the comment stays readable at 500 changed hosts. Everything from the policy files is
escaped: a pull request must not be able to write Markdown or HTML into the comment (a fake
"approved" line, an image that calls home, a closing `</details>`).
"""

from __future__ import annotations

from orchestrator.gitops.plan import Plan
from orchestrator.gitops.timing import HORIZON
from orchestrator.reporting.plan_common import field_line, host_groups

# characters with a meaning in Markdown or HTML, or that start a mention (@), a reference
# (#), maths ($) or an autolink (www., http:), written as numeric entities
_SPECIAL = set("\\`*_[]<>#!|~&$:.@")
MARK = "<!-- orchestrator-plan -->"  # lets a pipeline find and update its own comment
MOST_HOST_NAMES = 1000
LIMIT = 60_000  # a comment is limited in size (GitHub: 65,536 characters)


def esc(text: object) -> str:
    """Literal text: entities for Markdown and HTML characters, one line, no control
    characters."""
    out = []
    for ch in str(text):
        if ch in _SPECIAL:
            out.append(f"&#{ord(ch)};")
        elif ch in "\r\n\t":
            out.append(" ")
        elif not ch.isprintable():  # controls, bidi overrides, zero-width: shown, not obeyed
            out.append(f"U+{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


def code(text: object) -> str:
    return f"<code>{esc(text)}</code>"


def _details(summary: str, body: list[str]) -> list[str]:
    return ["<details>", f"<summary>{summary}</summary>", "", *body, "", "</details>", ""]


def _render(plan: Plan, most_hosts: int, most_fields: int | None, middle: int = 1000) -> str:
    s = plan.summary()
    base = plan.base.commit[:12] if plan.base.commit else esc(plan.base.label)
    head = plan.head.commit[:12] if plan.head.commit else esc(plan.head.label)
    out = [MARK, f"### Policy plan: {code(base)} → {code(head)}", ""]
    if not plan.changed:
        out += ["No policy object changes.", ""]
    if plan.base.problems:
        out += [f"> **Warning:** the base has {len(plan.base.problems)} policy problem(s); "
                f"compared as far as it loads. First: {code(plan.base.problems[0])}", ""]
    o = s["objects"]
    rows = [("Objects", f"{o['added']} added, {o['removed']} removed, {o['changed']} changed")]
    if plan.hosts is not None:
        h = s["hosts"]
        rows.append(("Hosts affected", f"**{h['affected']}** (baselines {h['baselines']}, "
                     f"patch policy {h['patchPolicy']}, firmware policy "
                     f"{h['firmwarePolicy']}, windows {h['windows']})"))
    oc = s["occurrences"]
    rows.append((f"Window occurrences, next {HORIZON.days} days",
                 f"{oc['appears']} appear, {oc['disappears']} disappear, {oc['blocked']} "
                 f"newly blocked, {oc['unblocked']} unblocked"))
    f = s["freezes"]
    rows.append(("Freezes", f"{f['added']} added, {f['lifted']} lifted, {f['changed']} changed"))
    w = s["waivers"]
    rows.append(("Waivers", f"{w['added']} added, {w['extended']} extended, {w['removed']} "
                 f"removed, {w['shortened'] + w['changed']} otherwise changed, "
                 f"{w['expiring']} expiring within 30 days"))
    if plan.impact is not None:
        i = plan.impact
        rows.append(("Newly drifting (stored audits)",
                     f"**{len(i.newly_drifting)}** of {i.audited} audited"
                     + (f", {len(i.undetermined)} undetermined" if i.undetermined else "")))
        rows.append(("Newly overdue patches (stored scans)",
                     f"**{len(i.newly_overdue)}** of {i.scanned} scanned"))
    out += ["| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows], ""]

    if plan.objects:
        body = []
        for c in plan.objects:
            body.append(f"- **{c.change}** {code(f'{c.kind}/{c.name}')} in {code(c.file)}")
            shown = c.fields if most_fields is None else c.fields[:most_fields]
            body += [f"  - {code(field_line(fc, width=240, middle=middle))}" for fc in shown]
            if len(shown) < len(c.fields):
                body.append(f"  - and {len(c.fields) - len(shown)} more field(s)")
        out += _details(f"Objects ({len(plan.objects)})", body)
    if plan.hosts:
        lines, left = [], most_hosts
        for what, hosts in host_groups(plan.hosts):
            shown = ", ".join(code(x) for x in hosts[:max(left, 0)])
            if len(hosts) > left:
                shown += f"{', ' if shown else ''}and {len(hosts) - max(left, 0)} more " \
                    "(`plan --format json` lists every host)"
            left -= len(hosts)
            lines.append(f"- {len(hosts)} host(s), {esc(what)}: {shown}")
        out += _details(f"Hosts affected ({len(plan.hosts)})", lines)
    if plan.occurrences:
        table = ["| change | occurrence | until | blocked by | DST |", "|---|---|---|---|---|"]
        for c in plan.occurrences:
            j = c.to_json()
            table.append(f"| {c.change} | {code(j['occurrence'])} | {code(j['end'])} | "
                         f"{esc(', '.join(c.blocked_by)) or ' '} | {esc(c.dst or ' ')} |")
        out += _details(f"Window occurrences ({len(plan.occurrences)})", table)
    if plan.freezes or plan.waivers:
        lines = []
        for fz in plan.freezes:
            was = (f" (was {code(fz.was.start.isoformat())} to {code(fz.was.until.isoformat())})"
                   if fz.was else "")
            lines.append(f"- freeze **{fz.change}** {code(fz.name)}: "
                         f"{code(fz.freeze.start.isoformat())} to "
                         f"{code(fz.freeze.until.isoformat())} {esc(fz.freeze.timezone)}{was}")
        for wv in plan.waivers:
            was = (f" (was {wv.was.expires})" if wv.was and wv.was.expires != wv.waiver.expires
                   else "")
            lines.append(f"- waiver **{wv.change}** {code(wv.name)}: expires "
                         f"{wv.waiver.expires}{was}; "
                         + ", ".join(code(c) for c in wv.waiver.checks))
        out += _details(f"Freezes and waivers ({len(plan.freezes) + len(plan.waivers)})",
                        lines)
    if plan.impact is not None and (plan.impact.newly_drifting or plan.impact.newly_overdue):
        i = plan.impact
        lines = []
        for label, hosts in (("newly drifting", i.newly_drifting),
                             ("newly overdue", i.newly_overdue)):
            if hosts:
                more = f" and {len(hosts) - most_hosts} more" if len(hosts) > most_hosts \
                    else ""
                lines.append(f"- {label}: " + ", ".join(code(x) for x in hosts[:most_hosts])
                             + more)
        out += _details(f"Hosts judged from stored results since {esc(i.since[:10])}", lines)
    out += [f"<sub>{esc(n)}</sub>" for n in plan.notes]
    return "\n".join(out).rstrip() + "\n"


def _size(text: str) -> int:
    """Length as GitHub counts it (UTF-16 code units, to be safe)."""
    return len(text.encode("utf-16-le")) // 2


def plan_markdown(plan: Plan, limit: int = LIMIT) -> str:
    """The comment, at most `limit` characters: with fewer host names, then fewer fields,
    then none, until it fits; as a last resort cut at a line, every block closed."""
    for most_hosts, most_fields, middle in ((MOST_HOST_NAMES, None, 1000), (200, None, 300),
                                            (50, 20, 200), (0, 10, 120), (0, 0, 0)):
        text = _render(plan, most_hosts, most_fields, middle)
        if _size(text) <= limit:
            return text
    note = "\n*Cut to fit a comment; `orchestrator plan --format json` has all of it.*\n"
    cut = text[:limit // 2 - len(note) - 200]  # a character may take two UTF-16 units
    cut = cut[:cut.rfind("\n") + 1]
    opened = cut.count("<details>") - cut.count("</details>")
    return cut + "\n</details>\n" * opened + note
