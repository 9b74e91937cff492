#!/usr/bin/env bash
# Set up, then run the whole pipeline on the bundled offline demo (no internet needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/monitor demo "$@"
