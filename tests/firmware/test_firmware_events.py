"""The firmware event handler (no lab): ansible-runner events in, change-log records out, as
they arrive: the BMC's task when it is accepted, then per component, per reset and per host in
one transaction; outcomes from what the playbook said."""

from __future__ import annotations

from typing import Any

from orchestrator.firmware.outcomes import FLASH_TASK, RESULT_TASK, FirmwareEvents

FW = "/redfish/v1/UpdateService/FirmwareInventory"
WANTED = {"web-01": [{"id": "BIOS", "match": "BIOS", "uri": f"{FW}/BIOS", "version": "2.19.1",
                      "image": "http://repo/bios-2.19.1.bin"},
                     {"id": "BMC", "match": "BMC", "uri": f"{FW}/BMC", "version": "7.10.30",
                      "image": "http://repo/bmc-7.10.30.bin"}]}


class FakeCtx:
    def __init__(self) -> None:
        self.writes: list[list[tuple[str, str, dict[str, Any]]]] = []

    def entry(self, action: str, status: str, **details: Any) -> tuple[str, str, dict]:
        return (action, status, details)

    def record_all(self, entries: list) -> None:
        self.writes.append(list(entries))

    def record(self, action: str, status: str, **details: Any) -> None:
        self.writes.append([(action, status, details)])


def ev(kind: str, task: str, res: dict, host: str = "web-01", **data: Any) -> dict:
    return {"event": kind, "event_data": {"host": host, "task": task, "res": res, **data}}


def comp(cid: str, status: str, before: str, after: str | None, reason: str = "",
         resets: list | None = None) -> dict:
    wanted = {"BIOS": "2.19.1", "BMC": "7.10.30"}[cid]
    return {"id": cid, "match": cid, "wanted": wanted, "before": before, "after": after,
            "status": status, "reason": reason, "handle": f"/redfish/v1/TaskService/{cid}",
            "resets": resets or []}


def test_task_then_components_resets_and_host_in_one_write() -> None:
    ctx = FakeCtx()
    events = FirmwareEvents(ctx, "web", WANTED, batch=2)  # type: ignore[arg-type]
    events(ev("runner_on_ok", FLASH_TASK, {
        "return_values": {"update_status": {"handle": "/redfish/v1/TaskService/TaskMonitors/7"}},
        "invocation": {"module_args": {"update_targets": [f"{FW}/BMC"],
                                       "update_image_uri": "http://repo/bmc-7.10.30.bin",
                                       "password": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"}}}))
    assert ctx.writes == [[("firmware.task", "started", {
        "host": "web-01", "group": "web", "batch": 2, "component": "BMC",
        "image": "http://repo/bmc-7.10.30.bin", "version": "7.10.30",
        "handle": "/redfish/v1/TaskService/TaskMonitors/7"})]]
    events(ev("runner_on_ok", RESULT_TASK, {"orchestrator_result": {
        "power_state": "On",
        "components": [comp("BIOS", "current", "2.19.1", "2.19.1"),
                       comp("BMC", "updated", "7.00", "7.10.30", resets=[
                           {"uri": "/redfish/v1/Managers/bmc/Actions/Manager.Reset",
                            "type": "GracefulRestart"}])]}}))
    last = ctx.writes[-1]
    assert [(a, s) for a, s, _ in last] == [("firmware.update", "current"),
                                            ("firmware.update", "updated"),
                                            ("firmware.reset", "done"),
                                            ("firmware.apply", "done")]
    assert last[2][2]["target"] == "bmc" and last[2][2]["resetType"] == "GracefulRestart"
    assert last[1][2]["before"] == "7.00" and last[1][2]["after"] == "7.10.30"
    out = events.outcome("web-01")
    assert out.status == "done" and [c["status"] for c in out.components] == ["current",
                                                                               "updated"]
    # a repeated result changes nothing
    events(ev("runner_on_ok", RESULT_TASK, {"orchestrator_result": {"components": []}}))
    assert len(ctx.writes) == 2


def test_a_failed_component_fails_the_host_naming_it_and_what_was_not_tried() -> None:
    ctx = FakeCtx()
    events = FirmwareEvents(ctx, "web", WANTED)  # type: ignore[arg-type]
    events(ev("runner_on_failed", "orchestrator: task failed", {"msg": "flash failed at 50%"}))
    events(ev("runner_on_ok", RESULT_TASK, {"orchestrator_result": {"components": [
        comp("BIOS", "failed", "2.18.0", None, "task failed: flash failed at 50%")]}}))
    out = events.outcome("web-01")
    assert out.status == "failed"
    assert out.reason == ("BIOS: failed: task failed: flash failed at 50%; not tried after it: "
                          "BMC")
    assert ctx.writes[-1][-1][:2] == ("firmware.apply", "failed")


def test_versions_written_differently_count_as_the_wanted_one() -> None:
    ctx = FakeCtx()
    events = FirmwareEvents(ctx, "web", {"web-01": WANTED["web-01"][:1]})  # type: ignore[arg-type]
    events(ev("runner_on_ok", RESULT_TASK, {"orchestrator_result": {"components": [
        comp("BIOS", "failed", "2.18.0", "2.19.01", "the version is still 2.19.01")]}}))
    assert events.outcome("web-01").status == "done"
    assert ctx.writes[-1][0][:2] == ("firmware.update", "updated")


def test_precondition_and_no_result() -> None:
    ctx = FakeCtx()
    events = FirmwareEvents(ctx, "web", {"web-01": WANTED["web-01"], "web-02": []})  # type: ignore[arg-type]
    events(ev("runner_on_failed", "orchestrator: precondition",
              {"msg": "power state is Off; the firmware policy requires On"}))
    events(ev("runner_on_ok", RESULT_TASK, {"orchestrator_result": {"components": [],
                                                                    "power_state": "Off"}}))
    out = events.outcome("web-01")
    assert (out.status, out.reason) == ("failed", "orchestrator: precondition: power state is "
                                                  "Off; the firmware policy requires On")
    assert events.outcome("web-02").reason == "the playbook gave no result for this host"
    events.not_started("web-02", "the cutoff of w@x passed at y; no new work starts")
    assert events.outcome("web-02").status == "deferred"


def test_events_of_other_hosts_are_ignored() -> None:
    ctx = FakeCtx()
    events = FirmwareEvents(ctx, "web", WANTED)  # type: ignore[arg-type]
    assert events(ev("runner_on_ok", RESULT_TASK, {"orchestrator_result": {}},
                     host="intruder")) is False
    assert ctx.writes == [] and "intruder" not in events.seen


def test_each_component_is_recorded_when_it_ends_and_once() -> None:
    """A run killed after the first component keeps its records: they are written when the
    component's own result arrives; the host's result then adds only the rest."""
    from orchestrator.firmware.outcomes import COMPONENT_TASK

    ctx = FakeCtx()
    events = FirmwareEvents(ctx, "web", WANTED)  # type: ignore[arg-type]
    bios = comp("BIOS", "updated", "2.18.0", "2.19.1", resets=[
        {"uri": "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", "type": "ForceRestart"}])
    events(ev("runner_on_ok", COMPONENT_TASK, {"orchestrator_component": bios}))
    assert [[(a, s) for a, s, _ in w] for w in ctx.writes] == [
        [("firmware.update", "updated"), ("firmware.reset", "done")]]
    events(ev("runner_on_ok", RESULT_TASK, {"orchestrator_result": {"components": [
        bios, comp("BMC", "updated", "7.00", "7.10.30")]}}))
    assert [(a, s, d.get("component")) for a, s, d in ctx.writes[-1]] == [
        ("firmware.update", "updated", "BMC"), ("firmware.apply", "done", None)]
    assert [c["id"] for c in events.outcome("web-01").components] == ["BIOS", "BMC"]


def test_a_task_monitor_on_another_host_is_not_kept() -> None:
    """The handle is requested later with the BMC's credentials: only a Redfish path."""
    ctx = FakeCtx()
    events = FirmwareEvents(ctx, "web", WANTED)  # type: ignore[arg-type]
    for handle in ("@evil.example/x", "https://evil.example/redfish/v1/T/1",
                   "/redfish/v1/../../x", "/redfish/v1/T/1\n"):
        events(ev("runner_on_ok", FLASH_TASK, {
            "return_values": {"update_status": {"handle": handle}},
            "invocation": {"module_args": {"update_targets": [f"{FW}/BIOS"]}}}))
    assert [w[0][2]["handle"] for w in ctx.writes] == [None] * 4


def test_fwupd_install_failure_in_fwupds_own_words() -> None:
    ctx = FakeCtx()
    dev = "08d460be0f1f9f128413f816022a6439e0078018"
    events = FirmwareEvents(ctx, "lab", {"fw-01": [{"id": dev, "version": "1.2.4"}]})  # type: ignore[arg-type]
    failed = {"id": dev, "match": "Webcam*", "wanted": "1.2.4", "before": "1.2.2",
              "after": None, "status": "failed", "reason": "install: non-zero return code",
              "handle": None, "resets": [], "install": {
                  "rc": 1, "stderr": "", "stdout": '{"Error": {"Domain": "FwupdError", "Code": '
                  '10, "Message": "failed to write-firmware: \\u001b[31mnot supported"}}'}}
    events(ev("runner_on_ok", RESULT_TASK, {"orchestrator_result": {"components": [failed]}},
              host="fw-01"))
    reason = ctx.writes[-1][0][2]["reason"]
    assert reason.startswith("install: ") and "failed to write-firmware" in reason
    assert "\x1b" not in reason


def test_reasons_never_keep_an_image_urls_password_and_outcomes_keep_recorded_parts() -> None:
    from orchestrator.firmware.outcomes import COMPONENT_TASK

    ctx = FakeCtx()
    events = FirmwareEvents(ctx, "web", WANTED)  # type: ignore[arg-type]
    events(ev("runner_on_ok", COMPONENT_TASK, {"orchestrator_component": comp(
        "BIOS", "updated", "2.18.0", "2.19.1")}))
    events(ev("runner_on_failed", "orchestrator: flash", {
        "msg": "HTTP Error 400: ImageURI https://fw:t0ken@repo/bmc.bin is not allowed"}))
    # the playbook never gave the host's result (a timeout, a cancel): BIOS stays part of it
    out = events.outcome("web-01")
    assert out.status == "failed" and [c["id"] for c in out.components] == ["BIOS"]
    assert "t0ken" not in out.reason and "https://fw:***@repo/bmc.bin" in out.reason
    events(ev("runner_on_ok", COMPONENT_TASK, {"orchestrator_component": comp(
        "BMC", "failed", "7.00", None, "flash: https://fw:t0ken@repo/bmc.bin refused")}))
    assert "t0ken" not in str(ctx.writes)
