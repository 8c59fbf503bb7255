"""The rules file on disk. The rules themselves (model, parsing, evaluation) are pure and live
in `stream.engine.rules` and `stream.engine.evaluator`; this is only the I/O of reading one."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from stream.engine.rules import RuleSet, parse_rules
from stream.errors import ConfigError


def load_rules(path: Path, windows_ms: Mapping[str, int], resolution_ms: int) -> RuleSet:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read rules file: {exc.strerror or exc}") from exc
    return parse_rules(text, windows_ms, resolution_ms, source=str(path))
