"""The console's pieces: the live line, in-place redraws, which log lines reach the console,
JSON log lines, and --log-format on the long-running commands."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from stream.cli import main
from stream.console import Console, LiveStatus, format_live, pump_lines, usd
from stream.logs import JsonFormatter, is_noise, line_level, setup_logging


def test_usd_and_live_line() -> None:
    assert [usd(x) for x in (950, 12_345, 4_560_000, 1.2e9)] == [
        "$950",
        "$12.3k",
        "$4.56M",
        "$1.2B",
    ]
    status = LiveStatus(12.34, 45_700_000, 688, 9, 21, 22)
    assert format_live(status) == (
        "  12.3 events/s | 1h $45.7M (688) | 9 breaches | 21/22 feeds connected"
    )
    waiting = LiveStatus(0.0, None, None, None, 0, 22)
    assert format_live(waiting) == "   0.0 events/s | 1h … | … breaches | 0/22 feeds connected"


def test_terminal_redraws_the_live_line_in_place_and_keeps_it_under_new_lines() -> None:
    out = io.StringIO()
    console = Console(out, tty=True)
    console.part("broker", "up")
    console.live("one")
    console.live("two")
    console.line("a warning")
    console.close()
    assert out.getvalue() == (
        "  broker       up\n\r\x1b[2Kone\r\x1b[2Ktwo\r\x1b[2Ka warning\ntwo\n"
    )


def test_a_pipe_gets_each_live_line_as_a_line() -> None:
    out = io.StringIO()
    console = Console(out, tty=False)
    console.live("one")
    console.line("x")
    console.close()
    assert out.getvalue() == "one\nx\n"
    assert console.live_every_s > Console(io.StringIO(), tty=True).live_every_s


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("[2026-12-03 08:44:44,288] [24420] [ERROR] Group Coordinator failed", logging.ERROR),
        ("[2026-12-03 08:44:44,288] [24420] [INFO] [^Worker]: Ready", logging.INFO),
        ("2026-12-03 08:44:44,288 WARNING stream.x lag", logging.WARNING),
        ('{"ts":1,"level":"CRITICAL","logger":"x","message":"m"}', logging.CRITICAL),
        ("Traceback (most recent call last):", None),
        ('  File "x.py", line 1, in <module>', None),
    ],
)
def test_line_level(line: str, level: int | None) -> None:
    assert line_level(line) == level


def test_known_start_up_noise() -> None:
    assert is_noise(
        "Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError"
    )
    assert not is_noise("the worker exited with code 1")


def test_pump_shows_warnings_with_their_traceback_and_files_everything(tmp_path: Path) -> None:
    lines = [
        "[2026-12-03 08:44:40,000] [1] [INFO] starting",
        "[2026-12-03 08:44:41,000] [1] [ERROR] Request failed: GroupCoordinatorNotAvailableError",
        "[2026-12-03 08:44:42,000] [1] [ERROR] broke",
        "Traceback (most recent call last):",
        "ValueError: x",
        "[2026-12-03 08:44:43,000] [1] [INFO] fine again",
    ]

    async def pump() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data("".join(line + "\n" for line in lines).encode())
        reader.feed_eof()
        await pump_lines(reader, tmp_path / "w.log", Console(out, tty=False))

    out = io.StringIO()
    asyncio.run(pump())
    assert (tmp_path / "w.log").read_text().splitlines() == lines
    assert out.getvalue().splitlines() == lines[2:5]


def test_dev_style_logging_files_everything_and_shows_warnings(tmp_path: Path) -> None:
    shown = io.StringIO()
    handler = logging.StreamHandler(shown)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("INFO", "text", log_file=tmp_path / "dev.log", console=handler)
        logging.getLogger("aiokafka").info("joined group")
        logging.getLogger("aiokafka").error("failed: GroupCoordinatorNotAvailableError")
        logging.getLogger("stream").warning("feed lagging")
    finally:
        for h in root.handlers[:]:
            root.removeHandler(h)
            h.close()
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    assert "feed lagging" in shown.getvalue()
    assert "joined group" not in shown.getvalue()
    assert "GroupCoordinator" not in shown.getvalue()
    filed = (tmp_path / "dev.log").read_text()
    assert "joined group" in filed and "GroupCoordinatorNotAvailableError" in filed


def test_json_log_lines() -> None:
    record = logging.LogRecord("stream.x", logging.WARNING, __file__, 1, "lag %d s", (3,), None)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "WARNING" and entry["logger"] == "stream.x"
    assert entry["message"] == "lag 3 s" and isinstance(entry["ts"], int)


@pytest.mark.parametrize(
    "command", ["dev", "worker", "api", "collect", "collect-node", "kafka", "fake-exchange"]
)
def test_long_running_commands_take_log_format(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0 and "--log-format [json|text]" in result.output
    bad = CliRunner().invoke(main, [command, "--log-format", "xml"])
    assert bad.exit_code == 2 and "'xml' is not one of" in bad.output


def test_progress_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from stream import cli

    lines = [b"a\n", b"b\n"]
    monkeypatch.setattr(cli.sys, "stderr", io.StringIO())
    assert cli._progress(lines, "report") is lines  # a pipe: stderr keeps only rejects

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(cli.sys, "stderr", terminal)
    assert list(cli._progress(lines, "report")) == lines
    assert "report" in terminal.getvalue() and "2" in terminal.getvalue()
