"""Following a node's hourly output files as they are written, with a position that survives
restarts.

A Hyperliquid node appends lines to `{root}/hourly/{YYYYMMDD}/{hour}` (hour without padding,
0-23) and opens the next hour's file when the hour turns. The follower reads only complete
lines (a line without its final newline is still being written and is read once it is
complete), moves to the next file once one exists and the current one holds nothing more, and
keeps its position (file and byte offset) so that a restarted source continues exactly where
the last one stopped, neither skipping nor re-reading a line.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

MAX_READ_BYTES = 4 * 1024 * 1024  # per read: a busy hour file is read in bounded chunks
MAX_LINE_BYTES = 256 * 1024 * 1024  # a longer line (a block of a million fills) is skipped
_DATE = re.compile(r"^\d{8}$")
_HOUR = re.compile(r"^\d{1,2}$")


def hour_key(relative: str) -> tuple[str, int] | None:
    """`hourly/20260101/7` -> ("20260101", 7); None for any other path."""
    parts = relative.split("/")
    if len(parts) != 3 or parts[0] != "hourly":
        return None
    date, hour = parts[1], parts[2]
    if not _DATE.match(date) or not _HOUR.match(hour) or int(hour) > 23:
        return None
    return date, int(hour)


def hour_files(root: Path) -> list[str]:
    """The hourly files under `root` (relative paths), oldest first."""
    hourly = root / "hourly"
    if not hourly.is_dir():
        return []
    found = []
    for day in hourly.iterdir():
        if not day.is_dir() or not _DATE.match(day.name):
            continue
        for hour in day.iterdir():
            relative = f"hourly/{day.name}/{hour.name}"
            if hour.is_file() and hour_key(relative) is not None:
                found.append(relative)
    return sorted(found, key=_key)


def complete_lines(data: bytes) -> tuple[list[bytes], int]:
    """The complete lines of `data` and how many bytes they take (a partial tail is left)."""
    end = data.rfind(b"\n")
    if end < 0:
        return [], 0
    return data[:end].split(b"\n"), end + 1


@dataclass
class Position:
    file: str | None = None  # relative to the root, e.g. hourly/20260101/7
    offset: int = 0  # bytes of complete lines already read


@dataclass
class Read:
    """What one `read` found: complete lines, and notes for the status topic."""

    lines: list[str] = field(default_factory=list)
    opened: list[str] = field(default_factory=list)  # files started in this read
    truncated: list[tuple[str, str]] = field(default_factory=list)  # (file, unfinished tail)
    missing: str | None = None  # the saved file had disappeared (pruned): skipped to the next


class HourlyFollower:
    """Reads complete lines from the hourly files under `root`, file after file."""

    def __init__(self, root: Path, state_path: Path | None, *, from_beginning: bool = False):
        self.root = root
        self.state_path = state_path
        self.from_beginning = from_beginning
        self.position = self._load() or Position()
        self.saved = Position(self.position.file, self.position.offset)

    def _load(self) -> Position | None:
        if self.state_path is None or not self.state_path.is_file():
            return None
        try:
            state = json.loads(self.state_path.read_text())
            position = Position(str(state["file"]), int(state["offset"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable position file %s: %s", self.state_path, exc)
            return None
        if hour_key(position.file or "") is None or position.offset < 0:
            log.warning("ignoring position file %s: %r", self.state_path, state)
            return None
        if state.get("root") not in (None, str(self.root.absolute())):
            log.warning(
                "ignoring position file %s: it belongs to %s, not %s",
                self.state_path,
                state.get("root"),
                self.root.absolute(),
            )
            return None
        return position

    def save(self) -> None:
        """Write the position (atomically); call it only once what was read is delivered."""
        if self.state_path is None or self.position == self.saved:
            return
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.state_path.with_suffix(".tmp")
        state = {
            "root": str(self.root.absolute()),
            "file": self.position.file,
            "offset": self.position.offset,
        }
        temporary.write_text(json.dumps(state))
        temporary.replace(self.state_path)
        self.saved = Position(self.position.file, self.position.offset)

    def _start(self, files: list[str], read: Read) -> bool:
        """Choose where to begin when there is no position yet; False while no file exists."""
        if not files:
            return False
        if self.from_beginning:
            self.position = Position(files[0], 0)
        else:  # like `tail -f`: from the line being written now (complete ones are past)
            newest = files[-1]
            self.position = Position(newest, _last_line_end(self.root / newest))
        read.opened.append(self.position.file or "")
        return True

    def read(self, max_bytes: int = MAX_READ_BYTES) -> Read:
        """Complete lines written since the last read (about `max_bytes` per file at most)."""
        read = Read()
        # List before reading: a file listed here as newer was created after the current one
        # stopped growing, so reading the current one to its end afterwards misses nothing.
        files = hour_files(self.root)
        if self.position.file is None and not self._start(files, read):
            return read
        cap = max_bytes
        while True:
            current = self.position.file or ""
            later = [f for f in files if _key(f) > _key(current)]
            path = self.root / current
            if not path.is_file():
                if not later:
                    return read
                read.missing = current
                self._move_to(later[0], read)
                continue
            if path.stat().st_size < self.position.offset:
                log.warning("%s shrank below the read position; reading it again", path)
                self.position.offset = 0
            data = _read_from(path, self.position.offset, cap)
            lines, used = complete_lines(data)
            full = len(data) == cap  # the read stopped at the cap, not at the end of the file
            if full and used == 0:  # one line longer than the cap
                if cap < MAX_LINE_BYTES:
                    cap *= 2
                    continue
                read.truncated.append((current, f"line over {MAX_LINE_BYTES} bytes skipped"))
                used = _skip_line(path, self.position.offset)
                if used == 0:
                    return read  # still being written
            cap = max_bytes
            self.position.offset += used
            read.lines.extend(line.decode("utf-8", "surrogateescape") for line in lines)
            if full or not later:
                return read  # more in this file (next call), or the node is still writing it
            tail = data[used:]
            if tail:  # the node moved to the next hour without finishing this line
                read.truncated.append((current, tail.decode("utf-8", "surrogateescape")))
            self._move_to(later[0], read)

    def _move_to(self, relative: str, read: Read) -> None:
        self.position = Position(relative, 0)
        read.opened.append(relative)


def _key(relative: str) -> tuple[str, int]:
    return hour_key(relative) or ("", -1)


def _last_line_end(path: Path) -> int:
    """The offset just past the file's last newline (0 when it has none): a start there reads
    the line still being written once it is complete, never a fragment of it."""
    with path.open("rb") as handle:
        end = handle.seek(0, 2)
        while end > 0:
            start = max(0, end - MAX_READ_BYTES)
            handle.seek(start)
            found = handle.read(end - start).rfind(b"\n")
            if found >= 0:
                return start + found + 1
            end = start
    return 0


def _skip_line(path: Path, offset: int) -> int:
    """Bytes up to and including the next newline after `offset`, or 0 when there is none."""
    skipped = 0
    with path.open("rb") as handle:
        handle.seek(offset)
        while chunk := handle.read(MAX_READ_BYTES):
            end = chunk.find(b"\n")
            if end >= 0:
                return skipped + end + 1
            skipped += len(chunk)
    return 0


def _read_from(path: Path, offset: int, max_bytes: int) -> bytes:
    with path.open("rb") as handle:
        handle.seek(offset)
        return handle.read(max_bytes)
