# The config, checked as it is read: a config.yaml that is not YAML is named with its line,
# --config strings of numbers become numbers, a schema error is one line naming the key
# (mnist_large_scale/config_check.py).  Included before `configfile:`, so that it sees the
# file before Snakemake parses it.

import sys
from pathlib import Path

try:
    _PACKAGE_DIR = str(Path(workflow.current_basedir).parent)
except TypeError:  # a remote source: common.smk says why it cannot be used so
    _PACKAGE_DIR = None
if _PACKAGE_DIR and _PACKAGE_DIR not in sys.path:
    sys.path.insert(0, _PACKAGE_DIR)

from mnist_large_scale.config_check import (
    check_against_schema,
    check_yaml_file,
    coerce_command_line_values,
    load_schema,
)

CONFIG_SCHEMA = str(
    Path(workflow.current_basedir).parent / "schemas" / "config.schema.yaml"
)

check_yaml_file("config.yaml")


def check_config(config):
    """The loaded config against the schema, one line per error; --config strings made numbers first."""
    schema = load_schema(CONFIG_SCHEMA)
    coerce_command_line_values(config, schema)
    check_against_schema(config, schema)
