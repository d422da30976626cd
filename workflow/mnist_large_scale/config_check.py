"""The config, checked the moment the workflow reads it, with messages of one line each.

* ``check_yaml_file``: a config file that is not valid YAML is named with the
  line and column where the parser stopped (Snakemake's own message names
  neither).
* ``coerce_command_line_values``: Snakemake reads the nested values of
  ``--config key={...}`` with YAML's base loader, which gives every scalar as a
  string (``recipe={sigma_per_scale: 1.0}`` gives ``'1.0'``).  Where the
  schema asks for a number, an integer or a boolean and the value is a string
  that YAML reads as one, the value becomes that number or boolean, so that
  such a command line means what it says (booleans: ``true`` and ``false``
  only, not YAML 1.1's yes/no).  A string that does not read as the type stays
  a string and fails the schema; a quoted number in a config file is taken
  as a number too.
* ``check_against_schema``: the schema's first error as one line naming the
  key (``recipe.smoothing``), not the whole schema and config; a string that
  fails a pattern is explained by the schema's ``pattern_in_words``.

Standard library, pyyaml and jsonschema only: the workflow reads this while it loads.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

__all__ = ["ConfigError", "check_yaml_file", "coerce_command_line_values", "check_against_schema", "load_schema"]

_SCALARS = {"number": (int, float), "integer": (int,)}


class ConfigError(ValueError):
    """A config that the workflow cannot run with; the message is one line."""


def check_yaml_file(path: str | os.PathLike) -> None:
    """Raise ConfigError naming the file, line and column when ``path`` is not valid YAML (nothing when it is, or is absent)."""
    path = Path(path)
    if not path.is_file():
        return
    try:
        yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{path}{where}: not valid YAML: {problem}") from None


def load_schema(path: str | os.PathLike) -> dict:
    return yaml.safe_load(Path(path).read_text())


def _types(schema: dict) -> list[str]:
    kind = schema.get("type", [])
    return [kind] if isinstance(kind, str) else list(kind)


def _coerced(value, schema: dict):
    """``value`` as the scalar type the schema asks for, when it is a string that YAML reads as that type."""
    if not isinstance(value, str) or "string" in _types(schema):
        return value
    kinds = _types(schema)
    if "boolean" in kinds and value.lower() in ("true", "false"):  # not YAML 1.1's yes/no/on/off
        return value.lower() == "true"
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    for kind in kinds:
        if kind in ("number", "integer") and isinstance(parsed, _SCALARS[kind]) and not isinstance(parsed, bool):
            return parsed
    return value


def coerce_command_line_values(config, schema: dict):
    """Turn strings that the schema wants as numbers or booleans into them, in place; return ``config``.

    Walks objects (``properties`` and ``additionalProperties``) and arrays
    (``items``, and ``prefixItems``).
    """
    if isinstance(config, dict):
        for key in list(config):
            sub = schema.get("properties", {}).get(key)
            if sub is None and isinstance(schema.get("additionalProperties"), dict):
                sub = schema["additionalProperties"]
            if sub is not None:
                config[key] = _coerced(config[key], sub)
                coerce_command_line_values(config[key], sub)
    elif isinstance(config, list):
        for index, item in enumerate(config):
            prefix = schema.get("prefixItems", [])
            sub = prefix[index] if index < len(prefix) else schema.get("items")
            if isinstance(sub, dict):
                config[index] = _coerced(item, sub)
                coerce_command_line_values(config[index], sub)
    return config


def _where(error) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "(top level)"


def check_against_schema(config: dict, schema: dict) -> None:
    """Raise ConfigError with the schema's most relevant error, in one line naming the key."""
    import jsonschema

    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is None:
        return
    message = error.message
    if error.validator == "pattern":
        words = error.schema.get("pattern_in_words")
        message = f"{error.instance!r} does not match: it must be {words}" if words else message
    if len(message) > 300:
        message = message[:300] + " ..."
    raise ConfigError(f"config: {_where(error)}: {message}")
