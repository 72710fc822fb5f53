#!/usr/bin/env bash
# The main job on the local lab: validate the example estate, bring up a fleet of real SSH
# hosts (plus a WinRM endpoint and BMCs), show the windows, audit the fleet, trigger a
# maintenance window as a scheduler would (on the real clock), and verify the change log.
# The lab's estate (demo/policies) puts every group in a window that is open around the clock,
# so that run-window acts whenever the demo runs; nothing here moves the clock.
set -euo pipefail
cd "$(dirname "$0")/.."
LOG=.orchestrator/demo.log
install -d -m 700 .orchestrator
: >"$LOG"
step() { printf '\n== %s\n' "$*"; }
orc() { echo "\$ orchestrator $*"; .venv/bin/orchestrator "$@"; }

step "The example estate (policies/) is valid"
orc validate
step "Bringing up the lab: 5 Debian hosts over SSH, a WinRM endpoint, BMCs, an apt repository"
echo "(first run builds the root filesystem, about two minutes; details in $LOG)"
.venv/bin/orchestrator lab up --hosts 5 --windows 1 >>"$LOG" 2>&1 || {
  echo "error: lab up failed; the last lines of $LOG:" >&2; tail -n 20 "$LOG" >&2; exit 1; }
LAB_INVENTORY=$(.venv/bin/orchestrator lab inventory)
export ORCHESTRATOR_INVENTORY="$LAB_INVENTORY"
export ORCHESTRATOR_SSH_KNOWN_HOSTS="$(dirname "$LAB_INVENTORY")/known_hosts"
orc lab status

step "Maintenance windows of the example estate"
orc windows list
orc windows next --count 3
orc windows check --group web || true        # exit 3 when closed: the reason is printed

step "The lab's estate (demo/policies): the same baselines, patch and firmware policies, an hourly window"
# a copy whose firmware images point at the lab's repository (its address depends on the lab)
FIRMWARE_URL=$(.venv/bin/python -c 'from orchestrator.lab.fleet import Lab; print(Lab().firmware_url("x.bin").rsplit("/", 1)[0])')
rm -rf .orchestrator/demo-policies
cp -rL demo/policies .orchestrator/demo-policies
sed -i "s#http://repo.internal/fw#$FIRMWARE_URL#g" .orchestrator/demo-policies/patching/policies.yml
export ORCHESTRATOR_POLICIES=.orchestrator/demo-policies
orc validate --inventory
orc windows check --group web

step "Drift audit of the whole fleet (exit 2: the db hosts and the Windows host drift on purpose)"
orc audit || true

step "Pending patches, approval and due dates (exit 2 would mean overdue patches)"
orc patch scan || true

step "Firmware: what each BMC runs against the policy (exit 2: outdated components)"
orc firmware scan || true

step "What a scheduler does at the window: for each open group audit, patch and update firmware in batches"
echo "(canary approves everything at once: acme-broken fails on purpose, acme-kernel asks for a"
echo " reboot; web and db hold their patches until canary has had them for 3 days)"
orc run-window lab-hourly --dry-run
orc run-window lab-hourly || true
step "A second trigger for the same occurrence does nothing"
orc run-window lab-hourly

step "The change log"
orc log --since "$(date -u +%Y-%m-%dT00:00:00Z)" --action patch.install
orc log --since "$(date -u +%Y-%m-%dT00:00:00Z)" | tail -n 12
orc log verify

step "The compliance report of the last 30 days (one HTML file that opens offline)"
orc report --format html --output .orchestrator/demo-report.html
orc report --format markdown --output .orchestrator/demo-report.md
head -n 24 .orchestrator/demo-report.md
echo
echo "demo finished; the lab keeps running (.venv/bin/orchestrator lab down stops it)"
