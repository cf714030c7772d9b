#!/usr/bin/env bash
# Checks and unit-tests the shipped alert rules with promtool (Debian: `prometheus` package).
# Fails when promtool is missing, a rule does not parse, or an alert does not fire as the
# tests in sundial-rules.test.yml expect.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v promtool >/dev/null 2>&1; then
  echo "test-rules.sh: promtool not found (apt-get install prometheus)" >&2
  exit 1
fi
promtool check rules sundial-rules.yml
promtool test rules sundial-rules.test.yml
