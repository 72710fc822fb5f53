#!/usr/bin/env bash
# The main job on the embedded default, as far as it exists: validate the example estate,
# then show and verify the change log.
set -euo pipefail
cd "$(dirname "$0")/.."
orc() { echo "+ orchestrator $*" >&2; .venv/bin/orchestrator "$@"; }

orc validate
orc validate --inventory
orc log verify
echo "demo finished" >&2
