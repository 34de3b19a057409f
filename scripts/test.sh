#!/usr/bin/env bash
# Installs everything and runs every test: lint, sanity, unit tests, molecule.
# Usage (as root, fresh Debian 12 machine): bash scripts/test.sh
. "$(dirname "$0")/lib.sh"
cd "$REPO"
rc=0
run() { stage "$@" || rc=1; }

stage bootstrap bootstrap || { summary; exit 1; }
# The 4-node scenario, cluster, is the long pole: it starts as soon as the images are built,
# here in the foreground. Beside it, in two background lanes whose output is printed at the
# end: the checks that need no image (from the start, beside the image build), then the tests
# that run containers of the images (pytest's integration tests, the one-node scenarios).
# The lanes run at a lower CPU priority (nice 10; their programs, not the containers Docker
# starts for them, which the tests and the scenarios' molecule.yml cap at one CPU): on CI's two
# cores the cluster scenario is the long pole, and the lanes fill its idle time instead of
# slowing it down.
checks=$CACHE/logs/lane-checks.txt
containers=$CACHE/logs/lane-containers.txt
(
  renice -n 10 -p "$BASHPID" >/dev/null || true
  run yamllint yamllint -s .
  run ansible-lint ansible-lint --profile production --offline
  run sanity "$REPO/tests/sanity/run.sh"
  run "newest ansible" "$REPO/tests/newest/run.sh"
  run "pytest unit" python -m pytest -q tests/unit
  exit $rc  # this subshell's own rc (run sets it), 0 at its start
) > "$checks" 2>&1 &
checks_lane=$!
rm -f "$CACHE/images.env"
if stage images build_images; then
  (
    renice -n 10 -p "$BASHPID" >/dev/null || true
    run "pytest integration" python -m pytest -q tests/integration
    for scenario in $(ls molecule); do
      [ "$scenario" != cluster ] && [ -f "molecule/$scenario/molecule.yml" ] || continue
      run "molecule $scenario" molecule test -s "$scenario"
    done
    exit $rc
  ) > "$containers" 2>&1 &
  containers_lane=$!
  run "molecule cluster" molecule test -s cluster
  wait $containers_lane || rc=1
else
  rc=1
  printf 'the images did not build: the tests that run them are left out\n' > "$containers"
fi
wait $checks_lane || rc=1
printf '\n=== beside the above: the checks that need no image\n'
cat "$checks"
printf '\n=== beside the above: the tests that run containers of the images\n'
cat "$containers"
summary
exit $rc
