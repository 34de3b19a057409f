# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin sparkops.cluster.preflight: runs on the controller only.

The judgement (recipe, tables, rules of every stage, the plan) is plugin_utils/_preflight.
"""

from __future__ import annotations

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

from ansible_collections.sparkops.cluster.plugins.plugin_utils._settings import SettingError
from ansible_collections.sparkops.cluster.plugins.plugin_utils._preflight import judge


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("recipe", "overrides", "hosts", "stage", "facts"))

    def _render(self, name, value):
        """A collection variable as Ansible renders it: an action's task vars hold the
        inventory's, -e's and a vault's values unrendered ('{{ playbook_dir }}/recipes')."""
        try:
            return self._templar.template(value)
        except AnsibleError as exc:
            raise SettingError("%s cannot be rendered from %r: %s" % (name, value, exc.message))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args, variables = self._task.args, task_vars or {}
        hosts = list(args.get("hosts") or variables.get("ansible_play_hosts_all") or [])
        facts = args.get("facts")
        if facts is None and args.get("stage") == "dynamic":
            # what each node's facts step kept (node_facts' preflight, as deploy.yml sets it)
            facts = {h: variables["hostvars"][h].get("sparkops_node_facts") for h in hosts}
        result.update(judge(variables, variables["hostvars"], hosts, stage=args.get("stage", "static"),
                            facts=facts, recipe_name=args.get("recipe"), overrides=args.get("overrides"),
                            check_mode=self._play_context.check_mode, render=self._render))
        if result.get("failed") and self._display.verbosity < 1:
            # a refusal prints its rows, not the whole plan (about 17 KB): that at -v and above
            for key in ("plan", "recipe", "accepted", "not_judged"):
                result.pop(key, None)
        return result
