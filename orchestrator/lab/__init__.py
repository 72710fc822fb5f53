"""A local lab fleet: Linux hosts in namespaces, an apt repository, Redfish BMCs, WinRM endpoints.

The entry point is `orchestrator.lab.fleet.Lab`; everything heavy is imported inside functions.
"""

from __future__ import annotations

from orchestrator.lab.fleet import Lab, LabHost, WindowsHost

__all__ = ["Lab", "LabHost", "WindowsHost"]
