"""What the change log tells the next firmware run (real SQLite store, no lab): which hosts a
dead run was flashing, and which BMC tasks nobody saw succeed (followed before any flash)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.changelog.sqlite import SqliteStore
from orchestrator.context import RunContext
from orchestrator.firmware.history import open_tasks
from orchestrator.patching.history import finished_in, interrupted_in

FW = "/redfish/v1/UpdateService/FirmwareInventory"
BIOS = {"id": "BIOS", "match": "BIOS", "uri": f"{FW}/BIOS", "version": "2.19.1",
        "image": "http://x/b.bin"}


def ctx(store: SqliteStore, run: str, occurrence: str | None = "occ-1") -> RunContext:
    return RunContext(run_id=run, actor="t", policy_revision="rev", store=store,
                      settings=None, forks=2, inventory_path=None, playbooks=Path("."),
                      occurrence=occurrence)


def test_a_patch_skip_does_not_end_the_firmware_work_of_the_same_run(tmp_path: Path) -> None:
    """run-window: the patch step skipped web-02 (budget), then the firmware step started
    flashing it and the run was killed: the retry must know web-02 was in flight."""
    store = SqliteStore(tmp_path / "state.db")
    r1 = ctx(store, "r-1")
    r1.record("skip", "budget-exhausted", host="web-02", group="web", reason="budget")
    r1.record("firmware.batch", "started", group="web", batch=1, hosts=["web-02"],
              components={"web-02": [BIOS]})
    r1.record("firmware.task", "started", host="web-02", group="web", component="BIOS",
              handle="/redfish/v1/TaskService/TaskMonitors/1")
    r2 = ctx(store, "r-2")
    earlier = finished_in(r2, "web", "occ-1", kind="firmware")
    assert interrupted_in(r2, "web", earlier, occurrence="occ-1", kind="firmware") == {
        "web-02": [BIOS]}
    # a firmware skip does end it
    r1.record("skip", "deferred", host="web-02", group="web", step="firmware")
    assert interrupted_in(r2, "web", earlier, occurrence="occ-1", kind="firmware") == {}
    # and the patch rollout's own view is unchanged: its skip ended its work
    r1.record("patch.batch", "started", group="web", batch=1,
              packages={"web-03": [{"name": "a", "version": "1"}]})
    r1.record("skip", "deferred", host="web-03", group="web")
    assert interrupted_in(r2, "web", {}, occurrence="occ-1") == {}
    store.close()


def test_open_tasks_any_run_until_a_success_is_recorded(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.db")
    a, b, now = ctx(store, "r-a", None), ctx(store, "r-b", "occ-2"), ctx(store, "r-now")
    a.record("firmware.task", "started", host="h1", group="web", component="BIOS",
             handle="/redfish/v1/TaskService/TaskMonitors/1")
    a.record("firmware.update", "timeout", host="h1", group="web", component="BIOS")
    b.record("firmware.task", "started", host="h2", group="web", component="NIC",
             handle="/redfish/v1/TaskService/TaskMonitors/2")
    b.record("firmware.update", "updated", host="h2", group="web", component="NIC")
    b.record("firmware.task", "started", host="h3", group="web", component="BMC",
             handle="@evil.example/x")  # never followed: not a path on the BMC
    b.record("firmware.task", "started", host="h1", group="other", component="BMC",
             handle="/redfish/v1/TaskService/TaskMonitors/3")
    # a timed-out task (another run, no occurrence) is followed; a succeeded one is not; a
    # task another group's run started on the same host counts too
    assert open_tasks(now, {"h1", "h2", "h3"}) == {
        ("h1", "BIOS"): ("/redfish/v1/TaskService/TaskMonitors/1", ""),
        ("h1", "BMC"): ("/redfish/v1/TaskService/TaskMonitors/3", "")}
    # a later task on the same component replaces the earlier one; success settles it
    a.record("firmware.task", "started", host="h1", group="web", component="BIOS",
             handle="/redfish/v1/TaskService/TaskMonitors/9")
    a.record("firmware.update", "updated", host="h1", group="other", component="BMC")
    assert open_tasks(now, {"h1"}) == {
        ("h1", "BIOS"): ("/redfish/v1/TaskService/TaskMonitors/9", "")}
    a.record("firmware.update", "updated", host="h1", group="web", component="BIOS")
    assert open_tasks(now, {"h1"}) == {}
    store.close()
