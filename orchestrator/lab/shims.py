"""Files of the shared lab layer: power shims and sshd/apt settings (the same on every host)."""

from __future__ import annotations

POWER_SHIM = """#!/bin/sh
# orchestrator lab: shutdown/reboot/poweroff/halt shim. The host's supervisor (PID 1) does the work.
action=reboot
case "$(basename "$0")" in poweroff|halt) action=poweroff ;; esac
for arg in "$@"; do
  case "$arg" in
    -c) echo "lab: shutdown cancelled"; exit 0 ;;
    -h|-P|-H|--poweroff|--halt) action=poweroff ;;
    -r|--reboot) action=reboot ;;
  esac
done
echo "$action" > /run/lab-power
echo "lab: $action in progress"
kill -USR1 1
exit 0
"""

SSHD_CONF = """# orchestrator lab
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PrintMotd no
MaxStartups 200:30:400
MaxSessions 50
"""

APT_CONF = """Acquire::Languages "none";
Acquire::Retries "0";
Acquire::http::Timeout "10";
Dpkg::Options { "--force-confdef"; "--force-confold"; };
"""

POLICY_RC = """#!/bin/sh
# orchestrator lab: no init system; maintainer scripts must not start services
exit 101
"""

LAYER_FILES: dict[str, tuple[str, int]] = {
    "usr/sbin/shutdown": (POWER_SHIM, 0o755),
    "usr/sbin/reboot": (POWER_SHIM, 0o755),
    "usr/sbin/poweroff": (POWER_SHIM, 0o755),
    "usr/sbin/halt": (POWER_SHIM, 0o755),
    "usr/sbin/policy-rc.d": (POLICY_RC, 0o755),
    "etc/ssh/sshd_config.d/lab.conf": (SSHD_CONF, 0o644),
    "etc/apt/apt.conf.d/99lab": (APT_CONF, 0o644),
}
