#!/usr/bin/env bash
# The main job on the local lab: validate the example estate, bring up a fleet of real SSH
# hosts (plus a WinRM endpoint and BMCs), show the windows, audit the fleet, trigger a
# maintenance window as a scheduler would, and verify the change log.
set -euo pipefail
cd "$(dirname "$0")/.."
orc() { echo "+ orchestrator $*" >&2; .venv/bin/orchestrator "$@"; }

orc validate
orc validate --inventory
orc lab up --hosts 5 --windows 1
LAB_INVENTORY=$(.venv/bin/orchestrator lab inventory)
export ORCHESTRATOR_INVENTORY="$LAB_INVENTORY"
export ORCHESTRATOR_SSH_KNOWN_HOSTS="$(dirname "$LAB_INVENTORY")/known_hosts"
orc windows list
orc windows next --count 3
orc windows check --group web || true        # exit 3 when closed: the reason is printed
# Drift audit of the whole fleet (exit 2 means drift was found, which the demo expects).
orc audit || true
# What the scheduler does at the next web window, shown as a dry run and then run for real
# at that instant (the demo acts as if it were then).
NEXT=$(.venv/bin/orchestrator --format json windows next --window patch-saturday --count 1 \
       | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)[0]["start"])')
orc run-window patch-saturday --at "$NEXT" --dry-run
orc run-window patch-saturday --at "$NEXT" || true
orc run-window patch-saturday --at "$NEXT"   # a second trigger for the same occurrence: nothing
orc log --since "$(date -u +%Y-%m-%dT00:00:00Z)" | tail -n 12
orc log verify
echo "demo finished; the lab keeps running (orchestrator lab down to stop it)" >&2
