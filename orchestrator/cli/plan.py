"""`orchestrator plan --base REF [--head REF]`: what a policy change does, for review."""

from __future__ import annotations

import os
from datetime import UTC
from pathlib import Path

import click

from orchestrator.cli.output import app, emit_json, warn
from orchestrator.errors import EXIT_CHANGES, EXIT_OK


@click.command("plan")
@click.option("--base", required=True, help="The revision the change starts from (branch, "
              "tag or commit), e.g. the pull request's target.")
@click.option("--head", help="The revision with the change (default: the work tree).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]),
              help="Output format; markdown is a pull-request comment.")
@click.option("--at", "at", help="Judge occurrences and dates from this ISO 8601 instant "
              "(default: now).")
@click.pass_context
def plan(ctx: click.Context, base: str, head: str | None, fmt: str | None,
         at: str | None) -> None:
    """What a policy change between two git revisions does: exit 0 no change, 2 changes.

    Objects changed field by field, hosts affected, window occurrences added or removed in
    the next 30 days, freezes and waivers, and what stored audit and scan results say the
    change would do. Exit 1 on error (an invalid head, an unknown revision)."""
    from orchestrator.cli.windows import _instant
    from orchestrator.gitops.plan import Side, make_plan
    from orchestrator.patching.scan import canary_evidence
    from orchestrator.policy.gitsource import FolderMissing, load_revision, resolve, work_tree
    from orchestrator.policy.loader import ParsedTexts, load_policies
    from orchestrator.policy.model import PolicySet
    from orchestrator.reporting.plan_markdown import plan_markdown
    from orchestrator.reporting.plan_text import plan_text

    a = app(ctx)
    fmt = fmt or a.output_format
    now = _instant("--at", at).astimezone(UTC)
    policies = a.config.policies
    top, _prefix = work_tree(policies)
    base_rev = resolve(policies, base)
    memo = ParsedTexts()  # a file both revisions hold is parsed once
    try:
        base_ps = load_revision(base_rev, strict=False, memo=memo)
        base_side = Side(base_rev.label, base_rev.commit, tuple(base_ps.problems))
    except FolderMissing as exc:
        base_ps = PolicySet(root=policies)
        base_side = Side(base_rev.label, base_rev.commit, (exc.message,))
    if head is not None:
        head_rev = resolve(policies, head)
        head_ps = load_revision(head_rev, memo=memo)
        head_side = Side(head_rev.label, head_rev.commit)
    else:
        head_ps = load_policies(policies, memo=memo)
        head_side = Side("work tree", None)
    inventory = a.inventory() if a.config.inventory is not None else None
    store = None
    state = a.config.state
    if not state.startswith("sqlite:///") or Path(state[len("sqlite:///"):]).exists():
        store = a.store  # never creates a state database just to read it
    rc = a.run_context() if store is not None else None
    result = make_plan(base_ps, head_ps, base_side=base_side, head_side=head_side, now=now,
                       inventory=inventory, store=store,
                       evidence=canary_evidence(rc) if rc is not None else None,
                       shown=lambda name: _shown(name, top))
    if base_side.problems:
        warn(f"the base {base_side.label} has {len(base_side.problems)} policy problem(s); "
             "compared as far as it loads")
    if fmt == "json":
        emit_json(result.to_json())
    elif fmt == "markdown":
        click.echo(plan_markdown(result), nl=False)
    else:
        click.echo(plan_text(result))
    ctx.exit(EXIT_CHANGES if result.changed else EXIT_OK)


def _shown(name: str, top: Path) -> str:
    """A policy file as a reviewer knows it: its path in the repository."""
    if ":" in name and not name.startswith("/"):  # REV:PATH from a commit
        return name.split(":", 1)[1]
    real = os.path.realpath(name)
    rel = os.path.relpath(real, top)
    return name if rel.startswith("..") else rel
