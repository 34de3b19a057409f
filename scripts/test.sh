#!/usr/bin/env bash
# Installs everything and runs every test: lint, sanity, unit tests, molecule.
# Usage (as root, fresh Debian 12 machine): bash scripts/test.sh
. "$(dirname "$0")/lib.sh"
cd "$REPO"
rc=0
run() { stage "$@" || rc=1; }

stage bootstrap bootstrap || { summary; exit 1; }
# Two lanes at once: the images (downloads, builds), then pytest and the one-node molecule
# scenarios, which run containers of them; and beside them the checks that need no image.
# The 4-node scenario, cluster, runs alone after both. The images lane's output is printed
# when it ends.
lane=$CACHE/logs/lane-images.txt
rm -f "$CACHE/images.env"
(
  stage images build_images || exit 1
  run pytest python -m pytest -q tests/unit tests/integration
  for scenario in $(ls molecule); do
    [ "$scenario" != cluster ] && [ -f "molecule/$scenario/molecule.yml" ] || continue
    run "molecule $scenario" molecule test -s "$scenario"
  done
  exit $rc  # this subshell's own rc (run sets it), 0 at its start
) > "$lane" 2>&1 &
images_lane=$!
run yamllint yamllint -s .
run ansible-lint ansible-lint --profile production --offline
run sanity "$REPO/tests/sanity/run.sh"
run "newest ansible" "$REPO/tests/newest/run.sh"
wait $images_lane || rc=1
printf '\n=== the images lane (images, pytest, the one-node molecule scenarios), run beside the checks above\n'
cat "$lane"
[ -s "$CACHE/images.env" ] || { summary; exit 1; }
set -a; . "$CACHE/images.env"; set +a
run "molecule cluster" molecule test -s cluster
summary
exit $rc
