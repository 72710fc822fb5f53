"""Firmware: what a host's components run (Redfish through its BMC, or fwupd in-band), how that
compares with the firmware policy, and the rollout that brings them there inside a window."""
