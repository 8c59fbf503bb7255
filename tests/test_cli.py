"""The command line: help lists the commands, and the local broker stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from stream.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in (
        "collect",
        "worker",
        "normalize",
        "report",
        "fake-exchange",
        "dev",
        "kafka",
        "topics",
    ):
        assert command in result.output


def test_python_dash_m_stream_is_the_same_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stream", "--help"], capture_output=True, text=True, check=True
    )
    assert "liqstream" in result.stdout and "dev" in result.stdout


def test_invalid_configuration_fails_naming_the_variable() -> None:
    result = CliRunner().invoke(main, ["topics"], env={"LIQSTREAM_TOPIC_PARTITIONS": "many"})
    assert result.exit_code != 0
    assert "LIQSTREAM_TOPIC_PARTITIONS" in result.output


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline:
                found.append(int(entry.name))
    return found


@pytest.mark.kafka
def test_kafka_command_prints_address_and_ctrl_c_leaves_no_process(tmp_path: Path) -> None:
    data_dir = tmp_path / "broker"
    process = subprocess.Popen(
        [sys.executable, "-m", "stream", "kafka", "--port", "0", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "LIQSTREAM_TOPIC_PREFIX": "clitest."},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("Kafka listening on 127.0.0.1:"), line
        assert processes_mentioning(str(data_dir)), "the broker JVM should be running"
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0
    finally:
        process.kill()
    deadline = time.monotonic() + 10
    while processes_mentioning(str(data_dir)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_mentioning(str(data_dir)) == []
