# The config, checked as it is read: a config.yaml that is not YAML is named with its line,
# --config strings of numbers become numbers, a schema error is one line naming the key
# (mnist_large_scale/config_check.py).  Included before `configfile:`, so that it sees the
# file before Snakemake parses it.

import sys
from pathlib import Path

try:
    _WORKFLOW_FOLDER = Path(workflow.current_basedir).parent
except TypeError:  # a remote source: common.smk stops with the reason and what works
    _WORKFLOW_FOLDER = None


def check_config(config):
    """The loaded config against the schema, one line per error; --config strings made numbers first."""
    if _WORKFLOW_FOLDER is None:
        return
    schema = load_schema(_WORKFLOW_FOLDER / "schemas" / "config.schema.yaml")
    coerce_command_line_values(config, schema)
    check_against_schema(config, schema)


if _WORKFLOW_FOLDER is not None:
    if str(_WORKFLOW_FOLDER) not in sys.path:
        sys.path.insert(0, str(_WORKFLOW_FOLDER))

    from mnist_large_scale.config_check import (
        check_against_schema,
        check_yaml_file,
        coerce_command_line_values,
        load_schema,
    )

    # The Snakefile's own config.yaml (its `configfile:`), beside the workflow/ folder.
    check_yaml_file(_WORKFLOW_FOLDER.parent / "config.yaml")
