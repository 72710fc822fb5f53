"""The recorded state of a lab Windows host (JSON in .orchestrator/lab/windows/<host>.json).

Tests change it with Lab.set_windows_state(); the WinRM endpoint reads it for every command and
writes it back after commands that change something (Start-Service, Set-ItemProperty, ...).
Registry values: int (DWord/QWord), str (String), list of str (MultiString) or
{"kind": "ExpandString", "value": "%SystemRoot%\\x"}; winps.py derives the ComputerName keys
from `hostname` and the Windows Update RebootRequired key from `reboot_pending`.
"""

from __future__ import annotations


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
        "pending_updates": [
            {"KB": "KB5035857", "Title": "2024-03 Cumulative Update for Windows Server 2022",
             "MsrcSeverity": "Critical", "Classification": "Security Updates",
             "Released": "2024-03-12", "RebootRequired": True},
            {"KB": "KB890830", "Title": "Windows Malicious Software Removal Tool",
             "MsrcSeverity": None, "Classification": "Update Rollups",
             "Released": "2024-03-12", "RebootRequired": False},
        ],
        "reboot_pending": False,
        "disks": {"C:": {"SizeGB": 127, "FreeGB": 80}},
    }
