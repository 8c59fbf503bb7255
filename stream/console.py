"""What `liqstream dev` shows a person: one line per part as it starts, the dashboard URL,
then one live line, redrawn in place on a terminal and printed every few seconds otherwise.
Warnings and errors of the parts print above the live line; everything else goes to the log
files whose paths the console names."""

from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from stream.logs import is_noise, line_level

LIVE_EVERY_TTY_S = 1.0
LIVE_EVERY_PIPE_S = 10.0
PART_WIDTH = 12
_CLEAR_LINE = "\r\x1b[2K"


@dataclass(frozen=True, slots=True)
class LiveStatus:
    events_per_s: float
    total_1h_usd: float | None  # None until the worker answers
    count_1h: int | None
    breaches: int | None
    feeds_connected: int
    feeds: int


def usd(amount: float) -> str:
    """$950, $12.3k, $4.56M, $1.2B: a width that does not jump as the total grows."""
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(amount) >= limit:
            return f"${amount / limit:.3g}{suffix}"
    return f"${amount:.0f}"


def format_live(status: LiveStatus) -> str:
    total = "…" if status.total_1h_usd is None else usd(status.total_1h_usd)
    count = "" if status.count_1h is None else f" ({status.count_1h:,})"
    breaches = "…" if status.breaches is None else f"{status.breaches}"
    return (
        f"{status.events_per_s:6.1f} events/s | 1h {total}{count} | {breaches} breaches"
        f" | {status.feeds_connected}/{status.feeds} feeds connected"
    )


class Console:
    """Lines for a person on `out`; a terminal gets the live line redrawn in place."""

    def __init__(self, out: TextIO | None = None, *, tty: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.tty = self.out.isatty() if tty is None else tty
        self._live = ""

    @property
    def live_every_s(self) -> float:
        return LIVE_EVERY_TTY_S if self.tty else LIVE_EVERY_PIPE_S

    def line(self, text: str) -> None:
        """A line above the live line (which a terminal then redraws)."""
        if self.tty and self._live:
            self.out.write(_CLEAR_LINE)
        self.out.write(text + "\n")
        if self.tty and self._live:
            self.out.write(self._live)
        self.out.flush()

    def part(self, name: str, detail: str) -> None:
        self.line(f"  {name:<{PART_WIDTH}} {detail}")

    def live(self, text: str) -> None:
        if self.tty:
            self._live = text
            self.out.write(_CLEAR_LINE + text)
            self.out.flush()
        else:
            self.line(text)

    def close(self) -> None:
        """End the live line, so that what follows starts on a line of its own."""
        if self.tty and self._live:
            self.out.write("\n")
            self.out.flush()
            self._live = ""


class ConsoleHandler(logging.Handler):
    """Log records through the console, so that a warning never lands inside the live line."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.line(self.format(record))
        except (OSError, ValueError):  # a closed terminal: the log file still has it
            self.handleError(record)


async def pump_lines(
    source: asyncio.StreamReader,
    log_file: Path,
    console: Console,
    *,
    console_level: int = logging.WARNING,
) -> None:
    """Another process's log lines: every one to `log_file`, and to the console the lines at
    `console_level` and above (with the traceback lines under them), known noise left out."""
    shown = False
    with log_file.open("a", encoding="utf-8") as sink:
        while raw := await source.readline():
            text = raw.decode(errors="replace").rstrip("\r\n")
            sink.write(text + "\n")
            sink.flush()
            level = line_level(text)
            if level is not None:
                shown = level >= console_level and not is_noise(text)
            if shown:
                console.line(text)
