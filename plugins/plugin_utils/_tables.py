# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading the collection's data on the controller: recipes (recipes/), hardware profiles and
the table of known failures (data/). A user's directories come first and extend the
collection's: a recipe or a profile of theirs shadows the collection's of the same name; rows
of their known_failures.yml are added to the collection's and may not reuse one of its ids
(so no row of ours, a hard limit above all, can be reopened there)."""

from __future__ import annotations

import copy
import os

import yaml

from ansible_collections.sparkops.cluster.plugins.plugin_utils import _rules

_ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
COLLECTION_RECIPES = os.path.join(_ROOT, "recipes")
COLLECTION_DATA = os.path.join(_ROOT, "data")


def load_yaml(path, what):
    """The YAML document of a file and None, or None and why it cannot be read."""
    try:
        with open(path, "rb") as fh:
            return yaml.safe_load(fh.read().decode("utf-8", "replace")), None
    except OSError as exc:
        return None, "cannot read %s %s: %s" % (what, path, exc.strerror or exc)
    except yaml.YAMLError as exc:
        return None, "%s %s is not YAML: %s" % (what, path, str(exc).replace("\n", " "))


def _own(settings, key):
    own = (settings or {}).get(key)
    return os.path.abspath(os.path.expanduser(own)) if own else None


def recipe_dirs(settings=None):
    """Where recipes are looked for, in order: sparkops_recipes_dir (when set), then the collection's."""
    own = _own(settings, "recipes_dir")
    return [own, COLLECTION_RECIPES] if own and own != COLLECTION_RECIPES else [COLLECTION_RECIPES]


def data_dirs(settings=None):
    """Where hardware.yml and known_failures.yml are read, in order: sparkops_data_dir (when set),
    then the collection's data/."""
    own = _own(settings, "data_dir")
    return [own, COLLECTION_DATA] if own and own != COLLECTION_DATA else [COLLECTION_DATA]


def recipes(dirs):
    """{name: path} of every recipe (a .yml file) of the directories, the first directory's
    recipe of a name winning; and {name: [paths it shadows]}."""
    found, shadowed = {}, {}
    for directory in dirs:
        names = sorted(f[:-4] for f in os.listdir(directory) if f.endswith(".yml")) if os.path.isdir(directory) else []
        for name in names:
            path = os.path.join(directory, name + ".yml")
            if name in found:
                shadowed.setdefault(name, []).append(path)
            else:
                found[name] = path
    return found, shadowed


_CACHE = {}


def read_tables(dirs=None):
    """(the known-failures Table, the hardware profiles, {profile: path of the profiles file it
    comes from}) of the data directories (data_dirs(); the collection's alone by default);
    TableError names what is wrong. Read once per version of the files (a copy of the profiles
    each time)."""
    dirs = list(dirs or [COLLECTION_DATA])
    paths = [os.path.join(d, name) for d in dirs for name in ("known_failures.yml", "hardware.yml")]
    try:
        key = tuple((p, os.stat(p).st_mtime_ns, os.stat(p).st_size) for p in paths if os.path.exists(p))
    except OSError:
        key = None
    if key in _CACHE:
        table, hardware, origin = _CACHE[key]
        return table, copy.deepcopy(hardware), dict(origin)
    table, hardware, origin = _read_tables(dirs)
    if key is not None:
        _CACHE.clear()
        _CACHE[key] = (table, copy.deepcopy(hardware), dict(origin))
    return table, hardware, origin


def _read_tables(dirs):
    rows, user_rows = None, []
    hardware, origin = {}, {}
    for directory in reversed(dirs):  # the collection's first, then what the user's adds
        ours = directory == COLLECTION_DATA
        path = os.path.join(directory, "known_failures.yml")
        if ours or os.path.exists(path):
            found, why = load_yaml(path, "the table of known failures")
            if why:
                raise _rules.TableError(why)
            if ours:
                rows = found
            else:
                if not isinstance(found, list):
                    raise _rules.TableError("%s must be a list of rows" % path)
                user_rows += [(path, row) for row in found]
        path = os.path.join(directory, "hardware.yml")
        if ours or os.path.exists(path):
            profiles, why = load_yaml(path, "the hardware profiles")
            if why or not isinstance(profiles, dict):
                raise _rules.TableError(why or "%s must be a mapping of profile names to profiles" % path)
            hardware.update(profiles)
            origin.update({name: path for name in profiles})
    table = _rules.Table(rows)
    for path, row in user_rows:
        table.extend(row, path)
    return table, hardware, origin
