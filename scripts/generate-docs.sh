#!/usr/bin/env bash
# Regenerates docs/configuration.md from schemas/sundial-jobs.v1.schema.json (via the schema
# embedded in the binary: run scripts/embed-schema.sh first after editing the schema).
# Tests/SundialConfigTests/ConfigurationReferenceTests.swift fails when the file is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --product sundial >/dev/null
"$(swift build --show-bin-path)/sundial" config-reference > docs/configuration.md
echo "wrote docs/configuration.md"
