#!/usr/bin/env bash
# The README's demo: build the bundled example, start 3 replicas, call them, show stats, tear down.
# Works without a registry by building FROM the local base image (make base-image).
set -euo pipefail
cd "$(dirname "$0")/.."
RFENV=${RFENV:-./bin/rfenv}
BASE=${RFENV_BASE_IMAGE:-rfenv-python:bookworm}
set -x
$RFENV build examples/calculator -t calculator:latest --base-image "$BASE"
$RFENV up calculator:latest --replicas 3
$RFENV call calculator evaluate --arg task_type=sat --arg num_samples=5 --timeout 90
$RFENV call calculator add --arg a=2 --arg b=3
$RFENV methods calculator
$RFENV stats calculator
$RFENV down calculator
