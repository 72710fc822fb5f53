"""`orchestrator lab`: the local lab fleet (Linux hosts, apt repo, Redfish BMCs, WinRM hosts)."""

from __future__ import annotations

from pathlib import Path

import click

from orchestrator.cli.output import app, emit_json, emit_line, info


def _lab():
    from orchestrator.lab.fleet import Lab

    return Lab(Path.cwd() / ".orchestrator" / "lab")


@click.group("lab")
def lab() -> None:
    """A lab fleet on this machine (root; state in .orchestrator/lab/)."""


@lab.command("up")
@click.option("--hosts", default=3, show_default=True, type=click.IntRange(0, 200),
              help="Linux hosts (lab-01...).")
@click.option("--windows", default=0, show_default=True, type=click.IntRange(0, 200),
              help="Windows hosts (lab-win-01..., WinRM protocol level only).")
@click.option("--rpm", default=0, show_default=True, type=click.IntRange(0, 200),
              help="RPM hosts managed by dnf (lab-rpm-01..., group lab_rpm).")
@click.option("--zypper", default=0, show_default=True, type=click.IntRange(0, 200),
              help="RPM hosts managed by zypper (lab-zypper-01..., group lab_zypper).")
@click.option("--fwupd", default=0, show_default=True, type=click.IntRange(0, 200),
              help="Debian hosts with fwupd and its test device (lab-fw-01..., group "
                   "lab_fwupd).")
@click.pass_context
def up(ctx: click.Context, hosts: int, windows: int, rpm: int, zypper: int, fwupd: int) -> None:
    """Start the lab (builds and caches the base rootfs on first use)."""
    a = app(ctx)
    lab_ = _lab()
    lab_.log = lambda msg: info(a, msg)
    status = lab_.up(hosts=hosts, windows=windows, rpm=rpm, zypper=zypper, fwupd=fwupd)
    if a.output_format == "json":
        emit_json(status)
    else:
        emit_line(str(lab_.inventory_path))


@lab.command("status")
@click.pass_context
def status(ctx: click.Context) -> None:
    """Hosts, addresses and services of the lab, and whether they run."""
    a = app(ctx)
    st = _lab().status()
    if a.output_format == "json":
        emit_json(st)
        return
    if not st["hosts"] and not st["windows"]:
        emit_line("lab: not running")
        return
    emit_line(f"lab: {'running' if st['running'] else 'DEGRADED'}  inventory: {st['inventory']}")
    for h in st["hosts"]:
        state = "up" if h["up"] and h["ssh"] else ("sshd down" if h["up"] else "stopped")
        emit_line(f"  {h['name']:<12} {h['address']}:{h['port']:<6} bmc {h['bmc_address']:<18}"
                   f" {state}")
    for w in st["windows"]:
        updown = "up" if w["up"] else "down"
        emit_line(f"  {w['name']:<12} {w['address']}:{w['port']:<6} winrm {updown}")
    for name, svc in st["services"].items():
        emit_line(f"  {name:<12} pid {svc['pid']:<8} {'up' if svc['up'] else 'down'}")


@lab.command("down")
@click.option("--wipe", is_flag=True, help="Also delete .orchestrator/lab/ (keys, repo, state).")
@click.pass_context
def down(ctx: click.Context, wipe: bool) -> None:
    """Stop every lab process; nothing stays running, mounted or listening."""
    _lab().down(wipe=wipe)
    info(app(ctx), "lab: down" + (" and wiped" if wipe else ""))


@lab.command("inventory")
def inventory() -> None:
    """Print the path of the generated Ansible inventory."""
    from orchestrator.errors import LabError

    path = _lab().inventory_path
    if not path.exists():
        raise LabError(f"{path}: no lab inventory; run 'orchestrator lab up' first")
    emit_line(str(path))
