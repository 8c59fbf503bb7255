"""`liqstream worker --log-format json`: every line JSON, Faust's and aiokafka's included
(Faust's worker replaces the root handlers when it starts; it gets our dictConfig)."""

from __future__ import annotations

import asyncio
import logging
import logging.config
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import faust
import orjson
import pytest

from stream.config import Settings
from stream.topics import ensure_topics
from stream.worker.service import logging_config
from tests.worker.test_worker_kafka import Worker, worker_settings


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_faust_worker_logs_in_the_chosen_format(
    restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    app = faust.App("logging-test", env={}, broker="kafka://127.0.0.1:9")
    worker = faust.Worker(
        app,
        loglevel="INFO",
        logging_config=logging_config("INFO", "json"),
        quiet=True,
        redirect_stdouts=False,
    )
    worker._setup_logging()  # what Faust does when it starts
    logging.getLogger("faust.transport.drivers.aiokafka").info("joined the group")
    logging.getLogger("aiokafka.consumer.group_coordinator").warning("coordinator moved")
    logging.getLogger("stream.worker.agents").debug("below the level")
    lines = capsys.readouterr().err.splitlines()
    entries = [orjson.loads(line) for line in lines]
    assert [(e["level"], e["logger"], e["message"]) for e in entries] == [
        ("INFO", "faust.transport.drivers.aiokafka", "joined the group"),
        ("WARNING", "aiokafka.consumer.group_coordinator", "coordinator moved"),
    ]


def test_text_format_keeps_the_text_lines(
    restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logging.config.dictConfig(logging_config("INFO", "text"))
    logging.getLogger("faust").info("started")
    (line,) = capsys.readouterr().err.splitlines()
    assert line.endswith(" INFO faust started")


@pytest.mark.kafka
def test_worker_process_writes_only_json_lines(kafka_settings: Settings, tmp_path: Path) -> None:
    settings = worker_settings(kafka_settings)
    asyncio.run(ensure_topics(settings))
    worker = Worker(settings, tmp_path, "w")
    worker.env["LIQSTREAM_LOG_LEVEL"] = "INFO"
    log = worker.log_path.open("ab")
    worker.process = subprocess.Popen(
        [sys.executable, "-m", "stream", "worker", "--log-format", "json"],
        env=worker.env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 180
        while "aggregation active" not in worker.log_path.read_text():
            assert worker.process.poll() is None, worker.log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, worker.log_path.read_text()[-3000:]
            time.sleep(0.5)
    finally:
        worker.stop(signal.SIGTERM)
    lines = [line for line in worker.log_path.read_text().splitlines() if line.strip()]
    entries = [orjson.loads(line) for line in lines]  # every line one JSON object
    loggers = {entry["logger"].split(".")[0] for entry in entries}
    assert {"faust", "stream"} <= loggers
