"""The worker is configured by `LIQSTREAM_*` alone.

Faust reads its own settings from the environment too, ahead of the arguments `create_app`
passes: `WEB_BIND`, `WEB_PORT`, `APP_WEB_TABLES_ENABLED`, ... (every setting's name, with
`APP_ENV_PREFIX` in front if set) when the app is made, which `create_app` stops by giving
Faust an empty environment; and a few `FAUST_*` / `F_*` variables when faust is first imported,
which only removing them beforehand stops. Such names are common in a deployment that knows
nothing of Faust: Kubernetes sets `WEB_PORT=tcp://10.0.0.5:80` in every pod of a namespace
with a Service named `web` (and `FAUST_WEB_PORT` for one named `faust-web`), which stopped the
worker at start, and `WEB_BIND` moved the API to another address.
"""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping

log = logging.getLogger(__name__)

# faust/types/_env.py and faust/__init__.py read these, prefixed, at import.
_IMPORT_TIME_NAMES = (
    "BLOCKING_TIMEOUT",
    "CONSOLE_PORT",
    "DATADIR",
    "DEBUG",
    "FORCE_BLOCKING_TIMEOUT",
    "LOOP",
    "STRICT",
    "WEB_BIND",
    "WEB_PORT",
    "WEB_TRANSPORT",
    "WORKDIR",
)
FAUST_IMPORT_VARIABLES = tuple(
    prefix + name for prefix in ("FAUST_", "F_") for name in _IMPORT_TIME_NAMES
)


def drop_faust_variables(environ: MutableMapping[str, str] = os.environ) -> list[str]:
    """Remove the variables faust reads at import from this process' environment (before
    faust is imported); return their names, which are logged once the logging is set up."""
    dropped = [name for name in FAUST_IMPORT_VARIABLES if name in environ]
    for name in dropped:
        del environ[name]
    return dropped
