#!/usr/bin/env bash
# The collection as a consumer gets it, on the newest `ansible` release on PyPI, in a
# venv of its own (.venv-newest): the tarball built and installed offline into a
# consumer repo (its own ansible.cfg, group `my_sparks` named by sparkops_target),
# every playbook by FQCN, a refusal of the static preflight through
# `import_playbook: sparkops.cluster.deploy`, ansible-doc of every plugin, and
# ansible-test sanity in the installed location.
#
# The newest `ansible` (its bundled collections: community.docker, community.general,
# ansible.posix, ...) needs an ansible-core that needs a newer Python than Debian 12's
# 3.11; the venv gets the newest ansible-core pip finds for this Python with the newest
# `ansible`'s collections (installed without its ansible-core pin). Both versions are
# printed.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
venv=$repo/.venv-newest
work=$repo/.cache/newest
pip() {  # quiet, but for errors (this machine's pip configuration names mirrors that may be absent)
  "$venv/bin/pip" -q "$@" 2> >(grep -v "^WARNING: Location .* is ignored" >&2)
}
if [ ! -x "$venv/bin/ansible-playbook" ]; then
  python3 -m venv "$venv"
  pip install --upgrade pip
  pip install ansible-core -r "$repo/meta/ee-requirements.txt"
  pip install --no-deps --ignore-requires-python ansible
fi
unset ANSIBLE_CONFIG  # the consumer's own, below
export PATH=$venv/bin:$PATH
core=$(python -c 'import ansible.release as r; print(r.__version__)')
bundle=$(python -c 'import importlib.metadata as m; print(m.version("ansible"))')
echo "ansible-core $core with the collections of ansible $bundle:"
ansible-galaxy collection list 2>/dev/null | grep -E '^(ansible\.posix|ansible\.utils|community\.crypto|community\.docker|community\.general) '

rm -rf "$work" && mkdir -p "$work/src" "$work/dist"
(cd "$repo" && git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -C "$work/src" -xf -)
ansible-galaxy collection build --force --output-path "$work/dist" "$work/src" >/dev/null
consumer=$work/consumer
mkdir -p "$consumer/inventory/group_vars/my_sparks" "$consumer/inventory/host_vars"
cd "$consumer"
cat > ansible.cfg <<'EOF'
[defaults]
collections_path = ./collections
interpreter_python = auto_silent
EOF
export ANSIBLE_CONFIG=$consumer/ansible.cfg
ansible-galaxy collection install --offline -p collections "$work"/dist/sparkops-cluster-*.tar.gz
cat > inventory/hosts.yml <<'EOF'
all:
  children:
    my_sparks:
      hosts:
        spark-alpha:
        spark-beta:
        spark-gamma:
        spark-delta:
EOF
echo "sparkops_target: my_sparks" > inventory/group_vars/all.yml
cp "$repo"/inventory/simulated/group_vars/sparkops_nodes/*.yml inventory/group_vars/my_sparks/
cp "$repo"/inventory/simulated/host_vars/*.yml inventory/host_vars/
cat > site.yml <<'EOF'
- name: Deploy with sparkops.cluster
  ansible.builtin.import_playbook: sparkops.cluster.deploy
  vars:
    sparkops_recipe: qwen397b
EOF

echo "--- every playbook by its FQCN"
for playbook in deploy deploy_qwen397b setup_hosts validate_fabric benchmark status teardown; do
  ansible-playbook -i inventory "sparkops.cluster.$playbook" --syntax-check >/dev/null
  echo "sparkops.cluster.$playbook: syntax ok"
done

echo "--- a known-bad plan is refused before any node (the nodes are not running)"
set +e
out=$(ansible-playbook -i inventory site.yml -e '{"sparkops_recipe_overrides": {"serving": {"concurrency": 64}}}' 2>&1)
rc=$?
set -e
recap=$(sed -n '/^PLAY RECAP/,$p' <<<"$out")
if [ "$rc" = 0 ] || ! grep -q '\[KF-100\]' <<<"$out" || grep -Eq 'changed=[1-9]|unreachable=[1-9]' <<<"$recap" \
   || ! grep -q 'failed=1' <<<"$recap"; then
  echo "$out" | tail -c 4000
  echo "expected rc != 0, a refusal naming KF-100, nothing changed and no node contacted (rc=$rc)"
  exit 1
fi
grep -o '\[KF-100\][^.]*' <<<"$out" | head -1

echo "--- ansible-doc of every plugin"
n=0
for kind in module filter; do
  for name in $(ansible-doc -t "$kind" -l sparkops.cluster 2>/dev/null | awk '{print $1}'); do
    ansible-doc -t "$kind" "$name" | head -1 | grep -q "$name" || { echo "ansible-doc -t $kind $name"; exit 1; }
    n=$((n + 1))
  done
done
[ "$n" -ge 10 ] || { echo "only $n plugins listed"; exit 1; }
echo "$n plugins documented"

echo "--- ansible-test sanity in the installed location"
unset ANSIBLE_CONFIG
cd "$repo" && tests/sanity/run.sh
