#!/usr/bin/env bash
# Prometheus metrics of `taustar serve`, parsed by prometheus_client (PyPI) during a study and
# compared with the store at the end (tests/python/metrics_check.py).
# Usage (repository root, release binaries built): bash tests/python/metrics.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -c 'import prometheus_client' 2>/dev/null ||
  python3 -m pip install -q --disable-pip-version-check prometheus-client
python3 tests/python/metrics_check.py
