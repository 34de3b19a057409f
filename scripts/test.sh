#!/usr/bin/env bash
# Installs everything and runs every test: lint, sanity, unit tests, molecule.
# Usage (as root, fresh Debian 12 machine): bash scripts/test.sh
. "$(dirname "$0")/lib.sh"
cd "$REPO"
rc=0
run() { stage "$@" || rc=1; }

stage bootstrap bootstrap || { summary; exit 1; }
stage images build_images || { summary; exit 1; }
run yamllint yamllint -s .
run ansible-lint ansible-lint --profile production --offline
run sanity "$REPO/tests/sanity/run.sh"
run "newest ansible" "$REPO/tests/newest/run.sh"
run pytest python -m pytest -q tests/unit tests/integration
for scenario in $(ls molecule); do
  [ -f "molecule/$scenario/molecule.yml" ] || continue
  run "molecule $scenario" molecule test -s "$scenario"
done
summary
exit $rc
