"""The recorded state of a lab Windows host (JSON in .orchestrator/lab/windows/<host>.json).

Tests change it with Lab.set_windows_state(); the WinRM endpoint reads it for every command and
writes it back after commands that change something (Start-Service, Set-ItemProperty, ...).
Registry values: int (DWord/QWord), str (String), list of str (MultiString) or
{"kind": "ExpandString", "value": "%SystemRoot%\\x"}; winps.py derives the ComputerName keys
from `hostname` and the Windows Update RebootRequired key from `reboot_pending`.

`pending_updates`: what the Windows Update Agent's search finds (winupdate.py), each
{"KB": "KB5035857", "Title": ..., "MsrcSeverity": "Critical" | "Important" | "Moderate" | "Low" |
null, "Classification": "Security Updates" (the UpdateClassification category's name),
"Product": optional, "Released": "YYYY-MM-DD" (LastDeploymentChangeTime), "RebootBehavior":
"NeverReboots" | "AlwaysRequiresReboot" | "CanRequestReboot"} and optionally "Hidden": true,
"RebootRequired": true (installed, waiting for a restart), "Type": "Driver", "Description".
Search failures: "update_search_error": "0x8024402C" (every Search throws that HRESULT),
"update_search_result_code": 0..5 (2 = succeeded); a Disabled wuauserv throws 0x80070422.
Download and install (winupdate.py): an update's "DownloadError" / "InstallError" HRESULT
("0x80240022") fails it; "RebootAfterInstall": false/true overrides what its RebootBehavior
says about needing a restart once installed.

Restart-Computer (winps.py): the endpoint answers nothing for "reboot_seconds" (default 2; a
large value: a host that does not come back), recorded as "down_until" (epoch seconds), and
"last_boot" (LastBootUpTime, UTC) becomes the time it is back. "system_drive" is
$env:SystemDrive (default "C:"), whose entry in "disks" the disk pre-check reads.

"files" (winfs.py): folders and files with their security descriptors (SDDL), by default
C:\\ProgramData with Windows' own ACL. Scheduled tasks (wintasks.py): "scheduled_tasks" (the
registered ones), "scheduled_task_orphans" (unregistered while running, still running),
"scheduled_task_history" (registered / started / completed / stopped / deleted) and the knob
"task_seconds" (how long a started task runs before its action does; default 1, a large value:
a task that never finishes).
"""

from __future__ import annotations

from orchestrator.lab.winfs import default_files


def default_state(name: str) -> dict:
    return {
        "hostname": name.upper(),
        "os": {"caption": "Microsoft Windows Server 2022 Standard", "version": "10.0.20348",
               "build": "20348"},
        "services": {
            "WinRM": {"DisplayName": "Windows Remote Management (WS-Management)",
                      "Status": "Running", "StartType": "Automatic"},
            "wuauserv": {"DisplayName": "Windows Update", "Status": "Running",
                         "StartType": "Manual"},
            "Spooler": {"DisplayName": "Print Spooler", "Status": "Running",
                        "StartType": "Automatic"},
            "W32Time": {"DisplayName": "Windows Time", "Status": "Running",
                        "StartType": "Automatic"},
            "EventLog": {"DisplayName": "Windows Event Log", "Status": "Running",
                         "StartType": "Automatic"},
            "RemoteRegistry": {"DisplayName": "Remote Registry", "Status": "Stopped",
                               "StartType": "Disabled"},
        },
        "hotfixes": [
            {"HotFixID": "KB5034439", "Description": "Security Update",
             "InstalledOn": "2024-01-09"},
            {"HotFixID": "KB5034441", "Description": "Security Update",
             "InstalledOn": "2024-01-09"},
        ],
        "registry": {
            "HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Lsa": {
                "LmCompatibilityLevel": 5, "RunAsPPL": 1},
            "HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows\\WindowsUpdate\\AU": {
                "NoAutoUpdate": 0},
        },
        # what the Windows Update Agent's search finds (winupdate.py); none is installed
        "pending_updates": [
            {"KB": "KB5035857",
             "Title": "2024-03 Cumulative Update for Microsoft server operating system version "
                      "21H2 for x64-based Systems (KB5035857)",
             "MsrcSeverity": "Critical", "Classification": "Security Updates",
             "Product": "Microsoft Server operating system-21H2", "Released": "2024-03-12",
             "RebootBehavior": "CanRequestReboot"},
            {"KB": "KB890830",
             "Title": "Windows Malicious Software Removal Tool x64 - v5.122 (KB890830)",
             "MsrcSeverity": None, "Classification": "Update Rollups",
             "Product": "Windows Server 2016", "Released": "2024-03-12",
             "RebootBehavior": "NeverReboots"},
            {"KB": "KB2267602",
             "Title": "Security Intelligence Update for Microsoft Defender Antivirus - "
                      "KB2267602 (Version 1.407.373.0)",
             "MsrcSeverity": None, "Classification": "Definition Updates",
             "Product": "Microsoft Defender Antivirus", "Released": "2024-03-20",
             "RebootBehavior": "NeverReboots"},
            {"KB": "KB5035961",  # hidden by an administrator: IsHidden=0 leaves it out
             "Title": "2024-03 Cumulative Update Preview for Microsoft server operating system "
                      "version 21H2 for x64-based Systems (KB5035961)",
             "MsrcSeverity": None, "Classification": "Updates",
             "Product": "Microsoft Server operating system-21H2", "Released": "2024-03-26",
             "RebootBehavior": "CanRequestReboot", "Hidden": True},
        ],
        "reboot_pending": False,
        "disks": {"C:": {"SizeGB": 127, "FreeGB": 80}},
        "files": default_files("C:"),
    }
