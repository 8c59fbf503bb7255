"""Log output of the long-running commands: text for a person at a terminal, JSON lines for
a log collector, and (for `liqstream dev`) libraries' chatter in a file instead of the console.

Pure setup and formatting; nothing here knows about Kafka or Faust beyond the text of the
known harmless start-up lines.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from typing import TextIO

import orjson

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

# Lines libraries log while a group, topic or leader is still being set up, which sort
# themselves out within seconds: harmless, but at ERROR/WARNING they look like a failure.
# They still go to the log file; only the console leaves them out.
KNOWN_NOISE = (
    # aiokafka, while the broker's group coordinator is still starting (Kafka's own retry)
    "GroupCoordinatorNotAvailableError",
    "CoordinatorNotAvailableError",
    "NotCoordinatorForGroupError",
    "Marking the coordinator dead",
    # aiokafka, a topic just created has no leader yet
    "LeaderNotAvailableError",
    "Topic .* not found in cluster metadata",
)
_NOISE = re.compile("|".join(KNOWN_NOISE))

# The level word of a line as Faust/mode ("[ts] [pid] [WARNING] ..."), TEXT_FORMAT
# ("2026-... WARNING name ...") and JsonFormatter ('"level":"WARNING"') write it.
_LEVEL = re.compile(r'(?:^|[\s\["])(DEBUG|INFO|WARNING|ERROR|CRITICAL)(?:[\s\]"]|$)')
_LEVELS = logging.getLevelNamesMapping()
_HEADER = re.compile(r"^(\[\d{4}-\d\d-\d\d|\d{4}-\d\d-\d\d[ T]|\{)")


def default_format(stream: TextIO | None = None) -> str:
    """Text on a terminal, JSON lines otherwise (a pipe, a file, a container's log)."""
    stream = stream or sys.stderr
    try:
        return "text" if stream.isatty() else "json"
    except (AttributeError, ValueError):  # a closed or fake stream
        return "json"


def is_noise(text: str) -> bool:
    """A known harmless start-up line (see KNOWN_NOISE)."""
    return _NOISE.search(text) is not None


def line_level(line: str) -> int | None:
    """The level of a log line another process wrote, or None for a line that does not start
    a record (a traceback's continuation, a banner)."""
    if not _HEADER.match(line):
        return None
    found = _LEVEL.search(line[:200])
    return _LEVELS[found.group(1)] if found else logging.INFO


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts (ms), level, logger, message, and exc when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": int(record.created * 1000),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


class DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info and record.exc_info[0] is not None:
            text += " " + record.exc_info[0].__name__
        return not is_noise(text)


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def setup_logging(
    level: str,
    log_format: str | None = None,
    *,
    log_file: Path | None = None,
    console_level: str | None = None,
    console: logging.Handler | None = None,
) -> None:
    """Root logging for a command: stderr (or the `console` handler) in `log_format`
    (default: default_format()). With `log_file`, every record at `level` goes to that file as
    text and the console shows only `console_level` (WARNING) and above, without the known
    start-up noise."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(level)
    console = console or logging.StreamHandler(sys.stderr)
    console.setFormatter(formatter(log_format or default_format()))
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        to_file = logging.FileHandler(log_file, encoding="utf-8")
        to_file.setFormatter(logging.Formatter(TEXT_FORMAT))
        root.addHandler(to_file)
        console.setLevel(console_level or logging.WARNING)
        console.addFilter(DropNoise())
    root.addHandler(console)
