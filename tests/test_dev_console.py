"""`liqstream dev`'s first screen as a person sees it on a terminal (a pseudo-terminal here):
the parts as they start, the dashboard URL and the live line, in at most 25 lines, with no
ERROR line (the libraries' chatter is in the log files the screen names)."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stream.localkafka import free_port

SCREEN_ROWS = 25
HANG_GUARD_S = 300.0  # a pipeline that shows no live line by then is stuck, not slow
AFTER_LIVE_S = 15.0  # keep reading a while after the first live line: late start-up lines


def screen_lines(raw: str) -> list[str]:
    """The lines a terminal shows: a carriage return or an erase-line rewrites the line."""
    lines = []
    for line in raw.replace("\r\n", "\n").split("\n"):
        line = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "\r", line)
        lines.append(line.split("\r")[-1] if "\r" in line else line)
    return [line for line in lines if line.strip()]


def read_until(fd: int, buffer: bytearray, done, guard_s: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + guard_s
    while not done(buffer.decode(errors="replace")) and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                return
            if not chunk:
                return
            buffer.extend(chunk)


@pytest.mark.kafka
def test_dev_first_screen_on_a_terminal(tmp_path: Path) -> None:
    web_port = free_port()
    env = {
        **os.environ,
        "LIQSTREAM_DATA_DIR": str(tmp_path / "dev"),
        "LIQSTREAM_WEB_PORT": str(web_port),
        "LIQSTREAM_METRICS_PORT": "0",
        "LIQSTREAM_TOPIC_PREFIX": "",
        "COLUMNS": "120",
        "LINES": str(SCREEN_ROWS),
    }
    for name in ("LIQSTREAM_RULES_FILE", "LIQSTREAM_KAFKA_BOOTSTRAP", "LIQSTREAM_WEB_HOST"):
        env.pop(name, None)
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "stream", "dev", "--port", str(free_port())],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=env,
        start_new_session=True,
    )
    os.close(terminal)
    raw = bytearray()
    try:
        read_until(controller, raw, lambda text: "feeds connected" in text, HANG_GUARD_S)
        read_until(controller, raw, lambda text: False, AFTER_LIVE_S)
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(90)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        read_until(controller, raw, lambda text: False, 2.0)
        os.close(controller)
    text = raw.decode(errors="replace")
    first_screen = screen_lines(text.split("stopping:")[0])
    shown = "\n".join(first_screen)
    assert f"dashboard on http://127.0.0.1:{web_port}/" in first_screen, shown
    assert "feeds connected" in first_screen[-1], shown  # the live line, last, in place
    assert len(first_screen) <= SCREEN_ROWS, shown
    assert "ERROR" not in shown, shown
    for part in ("broker", "topics", "fake venues", "collectors", "node source", "worker"):
        assert any(line.strip().startswith(part) for line in first_screen), (part, shown)
    assert (tmp_path / "dev" / "worker.log").stat().st_size > 0  # the chatter went there
    assert process.returncode == 0, shown
