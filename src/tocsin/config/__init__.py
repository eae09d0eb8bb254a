"""The configuration: YAML in, typed immutable objects out, or every problem at once.

`load.py` reads the file (duplicate keys refused, `${ENV}` expanded, errors as
`FILE: key.path: what was expected`); `schema.py` assembles the parts' options into
`Config` and validates it. Secrets are read from `*_file` at load time and never shown.
"""

from .schema import (
    Config,
    GlobalConfig,
    LoadedConfig,
    Target,
    WebConfig,
    load_config,
    parse_config,
)

__all__ = ["Config", "GlobalConfig", "LoadedConfig", "Target", "WebConfig", "load_config", "parse_config"]
