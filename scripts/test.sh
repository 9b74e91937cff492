#!/usr/bin/env bash
# Set up everything the tests need, then run the whole suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
mkdir -p test-artifacts
exec .venv/bin/python -m pytest -n 2 -p no:cacheprovider "$@"
