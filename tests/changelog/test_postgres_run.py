"""Real runs on the PostgreSQL store against the lab: an audit and a window's patch rollout
with `state: postgresql://...`, their records in PostgreSQL and `log verify` on them; and a
run-window whose server connections are cut in the middle of its rollout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from orchestrator.changelog.postgres import PostgresStore
from orchestrator.cli.main import main

REPO = Path(__file__).resolve().parents[2]
ORCHESTRATOR = Path(sys.executable).parent / "orchestrator"

# the window is open whenever the test runs: an occurrence every hour for an hour
POLICIES = """\
apiVersion: orchestrator/v1
kind: Window
metadata: {{name: always}}
spec:
  schedule: {{cron: "0 * * * *"}}
  timezone: UTC
  duration: 1h
  cutoff: 0m
---
apiVersion: orchestrator/v1
kind: Baseline
metadata: {{name: lab-linux}}
spec:
  platform: linux
  packages: {{installed: [openssh-server, acme-agent], absent: [telnetd]}}
  services: {{running: [ssh]}}
  files:
    - {{path: /etc/passwd, owner: root, group: root, mode: "0644"}}
---
apiVersion: orchestrator/v1
kind: PatchPolicy
metadata: {{name: lab}}
spec:
  approval:
    rules:
      - {{classification: any, approveAfterDays: 0, deadlineDays: 30}}
    rejected: ["acme-brok*"]
  reboot: never
  rollout: {{serial: [1], maxFailures: 0}}
---
apiVersion: orchestrator/v1
kind: AssetGroup
metadata: {{name: ring}}
spec:
  hosts: {{patterns: ["{host}"]}}
  baselines: [lab-linux]
  patchPolicy: lab
  windows: [always]
"""


def workdir(tmp_path: Path, lab, host: str, state: str | None) -> Path:
    """policies/ for `host`, and orchestrator.yml with the lab's inventory and host keys,
    the shipped playbooks and `state` (None: none in the file)."""
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "lab.yml").write_text(POLICIES.format(host=host))
    lines = ["policies: policies/", f"inventory: {lab.inventory_path}",
             f"playbooks: {REPO / 'playbooks'}",
             f"ssh: {{knownHosts: {lab.known_hosts_path}, hostKeys: strict}}"]
    if state is not None:
        lines.append(f"state: {state}")
    (tmp_path / "orchestrator.yml").write_text("\n".join(lines) + "\n")
    (tmp_path / "orchestrator.yml").chmod(0o600)  # it holds the store's password
    return tmp_path


def rows(url: str) -> list[tuple]:
    """(seq, run, host, action, status) of every record, straight from PostgreSQL."""
    store = PostgresStore(url)
    try:
        return [tuple(r) for r in store._query(
            "SELECT seq, run, host, action, status FROM records ORDER BY seq")]
    finally:
        store.close()


def test_audit_and_run_window_record_into_postgresql(lab_fleet, lab_fresh_host, pg_url,
                                                     tmp_path, monkeypatch, capsys) -> None:
    host = lab_fresh_host
    monkeypatch.chdir(workdir(tmp_path, lab_fleet, host, pg_url))
    monkeypatch.delenv("ORCHESTRATOR_STATE", raising=False)
    assert main(["--format", "json", "audit"]) == 0
    audit = json.loads(capsys.readouterr()[0])
    assert [(h["host"], h["status"]) for h in audit["hosts"]] == [(host, "compliant")]

    assert main(["--format", "json", "run-window", "always"]) == 0
    out = json.loads(capsys.readouterr()[0])
    assert out["status"] == "done", out
    [group] = out["groups"]
    assert [(h["host"], h["status"]) for h in group["patch"]["hosts"]] == [(host, "done")]

    recs = rows(pg_url)
    assert [r[0] for r in recs] == list(range(1, len(recs) + 1))
    audit_run = recs[0][1]
    assert [(r[2], r[3], r[4]) for r in recs if r[1] == audit_run] == [
        (None, "audit.start", "started"), (host, "audit", "compliant"),
        (None, "audit.end", "finished")]
    window = [r for r in recs if r[1] != audit_run]
    assert {r[1] for r in window} == {out["run"]}
    assert (window[0][3], window[0][4]) == ("run.start", "started")
    assert (window[-1][3], window[-1][4]) == ("run.end", "done")
    installs = [r for r in window if r[3] == "patch.install"]
    assert installs and {r[2] for r in installs} == {host}
    assert all(r[4].startswith("installed") for r in installs), installs
    assert [(r[2], r[4]) for r in window if r[3] == "patch.apply"] == [(host, "done")]
    # the audit before the rollout and the audit after it
    assert [(r[2], r[4]) for r in window if r[3] == "audit"] == [(host, "compliant")] * 2
    assert not list(tmp_path.rglob("*.db"))  # nothing went to an SQLite file

    assert main(["log", "verify"]) == 0
    assert f"change log intact: {len(recs)} records" in capsys.readouterr()[0]
    # the same store through the environment, as another machine would name it
    monkeypatch.setenv("ORCHESTRATOR_STATE", pg_url)
    assert main(["--config", str(tmp_path / "orchestrator.yml"), "-q", "log", "verify"]) == 0
    assert capsys.readouterr()[0].startswith(f"{len(recs)}:")


def test_run_window_losing_its_connections_mid_rollout(lab_fleet, lab_fresh_host, pg_url,
                                                       tmp_path) -> None:
    """The store's server ends every connection of the run (pg_terminate_backend) while its
    patch playbook is at work: what was written before stays, the run ends with one line on
    stderr and a non-zero exit, and the log verifies (nothing half-written)."""
    host = lab_fresh_host
    cwd = workdir(tmp_path, lab_fleet, host, None)
    env = {**os.environ, "ORCHESTRATOR_STATE": pg_url}  # never in argv
    proc = subprocess.Popen([str(ORCHESTRATOR), "--format", "json", "run-window", "always"],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    killer = None
    cut: list[tuple] = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None and not cut:
            try:
                if killer is None:
                    killer = PostgresStore(pg_url)
                started = killer._query("SELECT count(*) FROM records WHERE action = "
                                        "'patch.batch'")[0][0]
            except Exception:  # noqa: BLE001 - the run has not created the tables yet
                started = 0
            if started:
                before = rows(pg_url)
                killed = killer._query(
                    "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                    "datname = current_database() AND pid <> pg_backend_pid()")
                cut = before
                assert killed and all(ok for _, ok in killed)
            time.sleep(0.05)
        assert cut, "the run ended before its connections could be cut"
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if killer is not None:
        killer.close()
    after = rows(pg_url)
    assert after[:len(cut)] == cut  # what was written before the loss stays
    assert proc.returncode == 1 and out == "", out + err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "lost the PostgreSQL store" in err and "records written before are kept" in err
    assert pg_url.split(":")[2].split("@")[0] not in err  # the password
    # the loss is the run's error, not a host's failure; the run ended (the store
    # reconnected for its last records): the occurrence is given back for a retry
    run = cut[0][1]
    assert {r[1] for r in after} == {run}
    assert not [r for r in after if r[3] == "patch.apply" and r[4] == "failed"]
    assert after[-2][3:] == ("patch.apply.end", "aborted")  # not "done"
    assert after[-1][3:] == ("run.end", "error")
    store = PostgresStore(pg_url)
    end = store.record_at(after[-1][0])
    start = store.record_at(1)
    assert start is not None and start.occurrence is not None
    held = store.lease(start.occurrence)
    store.close()
    assert end is not None and "lost the PostgreSQL store" in end.details["error"]
    assert held is None
    # the playbook was not cut short: the host got what was approved
    installed = lab_fleet.ssh(host, "dpkg-query -W -f '${Version}' acme-agent").stdout
    assert installed == "1.1"
    verify = subprocess.run([str(ORCHESTRATOR), "log", "verify"], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stderr
    assert f"change log intact: {len(after)} records" in verify.stdout
