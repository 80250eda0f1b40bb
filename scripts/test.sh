#!/usr/bin/env bash
# The README's test command: starts what the tests need (unless it is already up), runs unit, integration
# and e2e tests, and stops what it started. Exits non-zero on any failure, and on zero tests collected.
set -uo pipefail
cd "$(dirname "$0")/.."

started=0
if ! stack/stack.sh status >/dev/null 2>&1; then
  stack/stack.sh up || { echo "test: the local stack did not come up (see above)" >&2; stack/stack.sh down; exit 1; }
  started=1
fi

mkdir -p test-artifacts
.venv/bin/python -m pytest -p no:cacheprovider -ra --strict-markers \
  --junitxml=test-artifacts/junit.xml "$@"
rc=$?

if [ "$started" = 1 ]; then stack/stack.sh down; fi
exit $rc
