#!/usr/bin/env bash
# The test command (README): Debian deps check/install, build, lint, typecheck, then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
echo "== build";     node scripts/build.mjs
echo "== lint";      npx eslint --max-warnings 0 .
echo "== typecheck"; npx tsc -p tsconfig.json --noEmit
echo "== tests";     node scripts/run-tests.mjs "$@"
