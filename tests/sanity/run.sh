#!/usr/bin/env bash
# ansible-test sanity on the collection as users get it: built with ansible-galaxy, installed
# offline (no Galaxy: the dependencies come with the `ansible` package), then tested in
# its installed location. ansible-test needs the collection under
# ansible_collections/NAMESPACE/NAME in a git tree, and bootstraps pip in each of its
# venvs with a get-pip script from a host this machine cannot reach: a stand-in that
# uses ensurepip and the machine's pip configuration (its CA bundle) takes its place.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$repo/.cache/sanity
rm -rf "$work" && mkdir -p "$work/dist"
# the tracked and new files of the checkout, as a clean clone would have them, built
export_dir=$work/export
mkdir -p "$export_dir"
(cd "$repo" && git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -C "$export_dir" -xf -)
ansible-galaxy collection build --force --output-path "$work/dist" "$export_dir" >/dev/null
tarball=$(ls "$work"/dist/sparkops-cluster-*.tar.gz)
ansible-galaxy collection install --offline --force -p "$work/collections" "$tarball" >/dev/null
installed=$work/collections/ansible_collections/sparkops/cluster
echo "sanity on $(basename "$tarball") installed in $installed"
(cd "$installed" && git init -q && git add -A && git -c user.name=sanity -c user.email=sanity@localhost commit -qm sanity)

pip_version=$(python - <<'PY'
import re, ansible_test, pathlib
src = pathlib.Path(ansible_test.__file__).parent / "_internal/python_requirements.py"
print(re.search(r"pip='([0-9.]+)'", src.read_text()).group(1))
PY
)
cache=~/.ansible/test/cache/get_pip_${pip_version//./_}.py
mkdir -p "$(dirname "$cache")"
cat > "$cache" <<'PY'
"""Offline stand-in for get-pip.py (written by sparkops tests/sanity/run.sh)."""
import ensurepip
import os
import subprocess
import sys

ensurepip.bootstrap(upgrade=True)
# ensurepip points PIP_CONFIG_FILE at /dev/null, which hides the machine's pip
# configuration and so its CA bundle.
os.environ.pop("PIP_CONFIG_FILE", None)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "pip", "install", *args])
PY
cd "$installed"
ansible-test sanity --python 3.11 --requirements --color no "$@"
