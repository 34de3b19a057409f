# -*- coding: utf-8 -*-
# Copyright (c) sparkops.cluster contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading the collection's data files on the controller: recipes, hardware profiles and
the table of known failures (a user's recipes directory may bring its own of each)."""

from __future__ import annotations

import copy
import os

import yaml

from ansible_collections.sparkops.cluster.plugins.module_utils import _rules

COLLECTION_RECIPES = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "recipes"))
TABLES = ("hardware.yml", "known_failures.yml")


def load_yaml(path, what):
    """The YAML document of a file and None, or None and why it cannot be read."""
    try:
        with open(path, "rb") as fh:
            return yaml.safe_load(fh.read().decode("utf-8", "replace")), None
    except OSError as exc:
        return None, "cannot read %s %s: %s" % (what, path, exc.strerror or exc)
    except yaml.YAMLError as exc:
        return None, "%s %s is not YAML: %s" % (what, path, str(exc).replace("\n", " "))


def recipes_dir(settings=None):
    """The recipes directory: sparkops_recipes_dir when set, else the collection's."""
    own = (settings or {}).get("recipes_dir")
    return os.path.abspath(os.path.expanduser(own)) if own else COLLECTION_RECIPES


def table_file(name, directory):
    own = os.path.join(directory, name)
    return own if os.path.exists(own) else os.path.join(COLLECTION_RECIPES, name)


_CACHE = {}


def read_tables(directory=COLLECTION_RECIPES):
    """(the known-failures Table, the hardware profiles); TableError names what is wrong.
    Read once per version of the two files (a copy of the profiles each time)."""
    paths = tuple(table_file(name, directory) for name in ("known_failures.yml", "hardware.yml"))
    try:
        key = tuple((p, os.stat(p).st_mtime_ns, os.stat(p).st_size) for p in paths)
    except OSError:
        key = None
    if key in _CACHE:
        table, hardware = _CACHE[key]
        return table, copy.deepcopy(hardware)
    table, hardware = _read_tables(directory)
    if key is not None:
        _CACHE.clear()
        _CACHE[key] = (table, copy.deepcopy(hardware))
    return table, hardware


def _read_tables(directory):
    rows, why = load_yaml(table_file("known_failures.yml", directory), "the table of known failures")
    if why:
        raise _rules.TableError(why)
    table = _rules.Table(rows)
    hardware, why = load_yaml(table_file("hardware.yml", directory), "the hardware profiles")
    if why or not isinstance(hardware, dict):
        raise _rules.TableError(why or "hardware.yml must be a mapping of profile names to profiles")
    return table, hardware
