"""The PostgreSQL store under faults, against the suite's throwaway cluster: processes racing
to create a brand-new store's tables and to take one lease (real processes, the URL passed
by environment), a CLI command whose connections are cut mid-write, and tampering caught by
`log verify` (and its `--expect SEQ:HASH` anchor) as on SQLite."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orchestrator.changelog.postgres import PostgresStore
from orchestrator.changelog.record import Entry, Record, canonical_from_row
from orchestrator.changelog.sqlite import SqliteStore
from orchestrator.cli.main import main

ORCHESTRATOR = Path(sys.executable).parent / "orchestrator"
TABLES = ("records", "leases", "patch_first_seen", "records_host", "records_run",
          "records_occurrence", "records_action", "records_time")

# A child says "ready", then for each line on stdin (sent to all children within
# microseconds: the start of a race) does one step and prints its outcome as JSON; it stays
# alive until stdin closes (a winner that exited would rightly be judged gone by the
# others). `open`: open the store STATE_URLS[i] (a new database each round); `lease`: claim
# lease `key` of the store STATE_URLS[0], opened beforehand.
CHILD = """
import json, os, sys
from datetime import datetime
from orchestrator.changelog.lease import claim
from orchestrator.changelog.open import open_store
mode, name = sys.argv[1], sys.argv[2]
urls = os.environ["STATE_URLS"].split()
store = open_store(urls[0]) if mode == "lease" else None
print("ready", flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    if mode == "open":
        try:
            open_store(urls[cmd["url"]]).close()
            out = {"ok": True}
        except Exception as exc:
            out = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    else:
        got = claim(store, cmd["key"], "run-" + name, datetime.fromisoformat(cmd["until"]))
        out = {"taken": got.taken, "held": got.held.holder if got.held else None,
               "gone": got.gone, "pid": os.getpid()}
    print(json.dumps(out), flush=True)
"""


class Racers:
    """`n` child processes (CHILD in `mode`) started once, racing round after round."""

    def __init__(self, mode: str, n: int, urls: list[str]) -> None:
        env = {**os.environ, "STATE_URLS": " ".join(urls)}  # never in argv
        self.procs = [subprocess.Popen([sys.executable, "-c", CHILD, mode, str(i)], env=env,
                                       text=True, stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE) for i in range(n)]
        for p in self.procs:
            assert p.stdout is not None and p.stdout.readline() == "ready\n"

    def race(self, **cmd: object) -> list[dict]:
        """Every child does `cmd` at the same moment; their outcomes, in child order."""
        line = json.dumps(cmd) + "\n"
        for p in self.procs:
            assert p.stdin is not None
            p.stdin.write(line)
            p.stdin.flush()
        return [json.loads(p.stdout.readline()) for p in self.procs]  # type: ignore[union-attr]

    def close(self) -> None:
        for p in self.procs:
            if p.stdin is not None:
                p.stdin.close()
        assert [p.wait(timeout=60) for p in self.procs] == [0] * len(self.procs)


def admin(url: str) -> PostgresStore:
    return PostgresStore(url)


def _tables(url: str) -> list[tuple[str, int]]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return sorted(conn.execute(
            "SELECT relname, count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = "
            "c.relnamespace WHERE n.nspname = 'public' AND relname = ANY(%s) GROUP BY relname",
            (list(TABLES),)).fetchall())


ROUNDS = 4


# ---------------------------------------------------------------- races across processes
def test_processes_creating_a_new_store_at_once_all_succeed(pg_cluster) -> None:
    """Five processes open the same empty database at the same moment (four rounds, a new
    database each): every one sees the tables missing and creates them (under the schema's
    advisory lock); none fails, and the store is whole and usable afterwards."""
    import uuid

    urls = [pg_cluster.database("t_" + uuid.uuid4().hex[:16]) for _ in range(ROUNDS)]
    assert _tables(urls[0]) == []
    racers = Racers("open", 5, urls)
    try:
        for i, url in enumerate(urls):
            outcomes = racers.race(url=i)
            assert outcomes == [{"ok": True}] * 5, outcomes
            assert _tables(url) == sorted((t, 1) for t in TABLES)
    finally:
        racers.close()
    store = admin(urls[-1])
    assert store.append(Entry("r", "audit", "ok", "t", "x", "h")).seq == 1
    assert store.verify().ok
    store.close()


def test_processes_racing_for_a_lease_one_wins(pg_url: str) -> None:
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    admin(pg_url).close()  # the tables exist: the race is on the lease alone
    racers = Racers("lease", 5, [pg_url])
    store = admin(pg_url)
    try:
        for r in range(ROUNDS):
            outcomes = racers.race(key=f"w@{r}", until=until)
            winners = [i for i, o in enumerate(outcomes) if o["taken"]]
            assert len(winners) == 1, outcomes
            # every loser found the winner holding it, alive: no take-over
            assert {o["held"] for o in outcomes if not o["taken"]} == {f"run-{winners[0]}"}
            held = store.lease(f"w@{r}")
            assert held is not None and (held.holder, held.state) == (f"run-{winners[0]}",
                                                                      "running")
            assert held.owner is not None and held.owner.pid == outcomes[winners[0]]["pid"]
    finally:
        racers.close()
        store.close()


def test_processes_taking_over_a_dead_holders_lease_one_wins(pg_url: str) -> None:
    """A run died holding the occurrence's lease: five runs judge it gone at once and take it
    over; the take-over is compare-and-swap, so exactly one does."""
    from orchestrator.changelog.lease import _start_tick, this_owner
    from orchestrator.changelog.store import LeaseOwner

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    tick = _start_tick(proc.pid)
    proc.wait()
    me = this_owner()
    boot, pidns, _ = me.started.split(":")
    dead = LeaseOwner(me.node, proc.pid, f"{boot}:{pidns}:{tick}")
    until = datetime.now(UTC) + timedelta(hours=1)
    store = admin(pg_url)
    racers = Racers("lease", 5, [pg_url])
    try:
        for r in range(ROUNDS):
            assert store.acquire_lease(f"w@{r}", "run-dead", until, owner=dead)
            outcomes = racers.race(key=f"w@{r}", until=until.isoformat())
            winners = [i for i, o in enumerate(outcomes) if o["taken"]]
            assert len(winners) == 1, outcomes
            won = outcomes[winners[0]]
            assert (won["held"], won["gone"]) == (
                "run-dead", f"its process {proc.pid} on {me.node} is gone")
            winner = f"run-{winners[0]}"
            assert {o["held"] for o in outcomes if not o["taken"]} <= {"run-dead", winner}
            held = store.lease(f"w@{r}")
            assert held is not None and (held.holder, held.state) == (winner, "running")
            assert held.owner is not None and held.owner.pid == won["pid"]
    finally:
        racers.close()
        store.close()


# ---------------------------------------------------------------- connection loss
def test_migrate_cut_off_mid_copy_keeps_whole_batches(tmp_path: Path, pg_url: str) -> None:
    """`log migrate` into PostgreSQL, its connections terminated by the server part way: the
    command ends with one line and exit 1; the target holds whole batches only (a multiple
    of the batch size), which verify, each record identical to the source's."""
    from orchestrator.changelog.migrate import BATCH

    source = tmp_path / "state.db"
    sqlite = SqliteStore(source)
    n = 8 * BATCH
    sqlite.append_many([Entry("r-1", "audit", "drift", "t", "rev", f"h{i % 50}", "web", None,
                              {"i": i, "note": "naïve"}) for i in range(n)])
    hashes = {r.seq: r.hash for r in sqlite.records()}
    sqlite.close()
    killer = admin(pg_url)
    killer.close()  # the tables exist before the copy starts
    proc = subprocess.Popen([str(ORCHESTRATOR), "log", "migrate", "--to", pg_url],
                            cwd=tmp_path, env={**os.environ,
                                               "ORCHESTRATOR_STATE": f"sqlite:///{source}"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = 0
    deadline = time.monotonic() + 60
    killer = admin(pg_url)
    while time.monotonic() < deadline and proc.poll() is None:
        if killer._query("SELECT count(*) FROM records")[0][0] > 0:
            killed = killer._query(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM "
                "pg_stat_activity WHERE datname = current_database() AND "
                "pid <> pg_backend_pid()) AS t")[0][0]
            break
        time.sleep(0.005)
    out, err = proc.communicate(timeout=60)
    assert killed >= 1, "the copy ended before its connection could be cut"
    assert proc.returncode == 1, out + err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "lost the PostgreSQL store" in err and "records written before are kept" in err
    rows = killer._query("SELECT seq, hash FROM records ORDER BY seq")
    assert 0 < len(rows) < n and len(rows) % BATCH == 0
    assert all(hashes[seq] == digest for seq, digest in rows)
    killer.close()
    proc2 = subprocess.run([str(ORCHESTRATOR), "log", "verify"], cwd=tmp_path,
                           env={**os.environ, "ORCHESTRATOR_STATE": pg_url},
                           capture_output=True, text=True, timeout=60)
    assert proc2.returncode == 0, proc2.stderr
    assert f"change log intact: {len(rows)} records" in proc2.stdout


def test_appends_cut_off_by_a_stopped_server_are_whole_or_absent(pg_cluster) -> None:
    """The server is stopped (fast shutdown: its backends end) while a process appends
    batches in a loop: every append either committed whole or raised one line; after a
    restart, the log holds exactly the batches that were acknowledged and verifies."""
    from orchestrator.errors import StateError
    from orchestrator.lab.postgres import Cluster

    cluster = Cluster()
    try:
        url = cluster.start()
        store = PostgresStore(url)
        acked: list[list[Record]] = []
        failure: list[str] = []

        def write() -> None:
            for i in range(100_000):
                try:
                    acked.append(store.append_many(
                        [Entry("r", "audit", "ok", "t", "x", f"h{i}-{k}") for k in range(25)]))
                except StateError as exc:
                    failure.append(exc.message)
                    return

        writer = threading.Thread(target=write)
        writer.start()
        while len(acked) < 20 and writer.is_alive():
            time.sleep(0.005)
        cluster._run(str(cluster.bin / "pg_ctl"), "-D", str(cluster.base / "data"), "-m",
                     "fast", "-w", "stop")
        writer.join(timeout=60)
        assert not writer.is_alive() and len(failure) == 1
        assert "\n" not in failure[0] and cluster.password not in failure[0]
        assert "PostgreSQL store" in failure[0]
        cluster._run(str(cluster.bin / "pg_ctl"), "-D", str(cluster.base / "data"), "-o",
                     f"-c listen_addresses=127.0.0.1 -p {cluster.port} -k {cluster.base}",
                     "-w", "-l", str(cluster.base / "server.log"), "start")
        again = PostgresStore(url)
        stored = [r.hash for r in again.records()]
        sent = [r.hash for batch in acked for r in batch]
        # every acknowledged record is in; the one batch under way is in whole or not at all
        assert stored[:len(sent)] == sent and len(stored) in (len(sent), len(sent) + 25)
        assert again.verify().ok
        # the first store's connection is dead; its next operation reconnects
        assert store.append(Entry("r", "audit", "ok", "t", "x", "after")).seq == len(stored) + 1
        store.close()
        again.close()
    finally:
        cluster.stop()


def test_a_store_lost_during_a_batch_playbook_stops_the_run_after_it(
        pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store's connection is cut while a batch's playbook runs: the record that meets
    the loss does not make its host a failure and does not stop the playbook half-way; the
    playbook runs to its end (the next host's records go in on a new connection), then the
    run stops with the store's one-line error."""
    from types import SimpleNamespace

    from orchestrator.context import RunContext
    from orchestrator.errors import StateError
    from orchestrator.execution import playbook as playbook_mod
    from orchestrator.patching.outcomes import RESULT_TASK, ApplyEvents
    from orchestrator.patching.playbook_run import run_batch_playbook

    store = PostgresStore(pg_url)
    ctx = RunContext("r-1", "t", "rev", store, SimpleNamespace(host_keys="strict"), 1,
                     tmp_path / "inventory.ini", tmp_path)
    wanted = {h: [{"name": "acme-agent", "version": "1.1"}] for h in ("web-01", "web-02")}
    events = ApplyEvents(ctx, "ring", wanted, False, 1)
    delivered: list[str] = []

    def run_playbook(playbook, inventory, host_vars, *, event_handler, **kw):
        killer = admin(pg_url)
        killer._query("SELECT pg_terminate_backend(%s)", (store._conn.info.backend_pid,))
        killer.close()
        for h in host_vars:
            delivered.append(h)
            event_handler({"event": "runner_on_ok", "event_data": {
                "host": h, "task": RESULT_TASK, "res": {"orchestrator_result": {
                    "packages": [{"name": "acme-agent", "wanted": "1.1", "before": "1.0",
                                  "after": "1.1", "status": "installed"}],
                    "rebooted": False, "health": {"services": {}, "command_rc": None}}}}})
        return playbook_mod.PlaybookOutcome(rc=0)

    monkeypatch.setattr(playbook_mod, "run_playbook", run_playbook)
    monkeypatch.setattr(playbook_mod, "known_hosts_files", lambda settings, hosts: [])
    inv = SimpleNamespace(hosts={h: SimpleNamespace(vars={}) for h in wanted})
    with pytest.raises(StateError) as err:
        run_batch_playbook(ctx, inv, tmp_path / "patch-apt.yml", list(wanted), events,  # type: ignore[arg-type]
                           limits={}, extravars=lambda ok: {}, cancel=None, timeout=60)
    assert "lost the PostgreSQL store" in err.value.message
    assert delivered == ["web-01", "web-02"]  # the playbook ran to its end
    assert events.failures == {}  # no host failed of it
    assert [(r.host, r.action) for r in store.records()] == [
        ("web-02", "patch.install"), ("web-02", "health"), ("web-02", "patch.apply")]
    assert store.verify().ok
    store.close()


# ---------------------------------------------------------------- tampering and anchors
def _seed(url: str, n: int = 5) -> list[Record]:
    store = admin(url)
    recs = store.append_many([Entry(f"r-{i}", "audit", "compliant", "tester@ci", "rev",
                                    f"lab-0{i}", "web", None, {"i": i, "checks": ["a", "b"]})
                              for i in range(1, n + 1)])
    store.close()
    return recs


def _sql(url: str, *statements: str) -> None:
    store = admin(url)
    for statement in statements:
        store._query(statement)
    store.close()


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def pg_state(pg_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ORCHESTRATOR_STATE", pg_url)
    return pg_url


@pytest.mark.parametrize(("statements", "broken_at", "words"), [
    (["UPDATE records SET details = '{\"checks\":[\"a\"],\"i\":3}' WHERE seq = 3"], 3,
     "altered"),
    (["UPDATE records SET status = 'drift' WHERE seq = 2"], 2, "altered"),
    (["DELETE FROM records WHERE seq = 3"], 4, "expected record 3 but found 4"),
    (["UPDATE records SET seq = 100 WHERE seq = 2", "UPDATE records SET seq = 2 WHERE seq = 3",
      "UPDATE records SET seq = 3 WHERE seq = 100"], 2, "prevHash"),
], ids=["edited-details", "edited-status", "removed-middle", "reordered"])
def test_log_verify_names_the_tampered_record(pg_state: str, capsys, statements: list[str],
                                              broken_at: int, words: str) -> None:
    _seed(pg_state)
    assert _cli(capsys, "log", "verify")[0] == 0
    _sql(pg_state, *statements)
    code, out, err = _cli(capsys, "log", "verify")
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert f"change log broken at record {broken_at}:" in err and words in err
    code, out, err = _cli(capsys, "--format", "json", "log", "verify")
    data = json.loads(out)
    assert code == 1 and (data["intact"], data["brokenAt"]) == (False, broken_at)


def test_a_rebuilt_chain_passes_alone_but_not_against_the_anchor(pg_state: str,
                                                                 capsys) -> None:
    """Record 3 is edited and every hash from there on recomputed: the chain holds again,
    but the anchor taken before (the last record) shows it; an anchor before the edit still
    matches."""
    recs = _seed(pg_state)
    code, anchor, _ = _cli(capsys, "-q", "log", "verify")
    assert code == 0 and anchor.strip() == f"5:{recs[-1].hash}"
    store = admin(pg_state)
    store._query("UPDATE records SET status = 'drift' WHERE seq = 3")
    cols = "seq, time, run, occurrence, policy_revision, actor, host, grp, action, status, " \
           "details, prev_hash, hash"
    prev = recs[1].hash
    for row in store._query(f"SELECT {cols} FROM records WHERE seq >= 3 ORDER BY seq"):
        digest = hashlib.sha256((prev + canonical_from_row(row)).encode()).hexdigest()
        store._query("UPDATE records SET prev_hash = %s, hash = %s WHERE seq = %s",
                     (prev, digest, row[0]))
        prev = digest
    store.close()
    code, out, err = _cli(capsys, "log", "verify")
    assert code == 0 and "intact: 5 records" in out, err  # the chain alone cannot see it
    code, out, err = _cli(capsys, "log", "verify", "--expect", anchor.strip())
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "change log broken at record 5" in err and "rebuilt" in err
    code, out, err = _cli(capsys, "log", "verify", "--expect", f"2:{recs[1].hash}")
    assert code == 0 and "record 2 matches the expected hash" in out, err


def test_removed_last_records_are_caught_by_the_anchor(pg_state: str, capsys) -> None:
    recs = _seed(pg_state)
    _sql(pg_state, "DELETE FROM records WHERE seq >= 4")
    assert _cli(capsys, "log", "verify")[0] == 0  # the shorter chain holds
    code, out, err = _cli(capsys, "log", "verify", "--expect", f"5:{recs[-1].hash}")
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "the log ends at record 3 but the expected anchor is record 5" in err
    code, out, err = _cli(capsys, "--format", "json", "log", "verify", "--expect",
                          f"5:{recs[-1].hash}")
    data = json.loads(out)
    assert code == 1 and data["intact"] is False and data["anchor"] is None
    # an empty store is not intact either, and says so
    _sql(pg_state, "DELETE FROM records")
    code, out, err = _cli(capsys, "log", "verify")
    assert code == 1 and "empty" in err
