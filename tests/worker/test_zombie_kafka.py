"""Issue 11, item 1: a zombie batcher. Batcher A holds records it fetched when its process is
stopped (SIGSTOP) past the session timeout; batcher B takes its partitions over and forwards
the same events; A resumes (SIGCONT) and goes on with the batch it held. Its transaction must
be fenced, and the totals a worker then computes must equal the brute-force truth.

The batchers run in child processes of their own (`python -m tests.worker.test_zombie_kafka`),
so that SIGSTOP freezes one batcher's event loop, heartbeats included, as a stall would."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from stream.config import Settings, load_settings
from stream.kafka import Topics, client_options
from stream.topics import ensure_topics
from stream.worker.batcher import Batcher
from tests.worker.test_worker_kafka import (
    WINDOWS,
    Totals,
    Worker,
    assert_exact,
    produce,
    recent_events,
    worker_settings,
)

HOLDING = "holding records"
HELD_DONE = "held records done"


class HoldingBatcher(Batcher):
    """Says so once it holds fetched records, then waits `hold_s` before forwarding them: the
    test stops the process within that wait."""

    hold_s = 0.0

    async def _forward(self, records: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        if not self.hold_s:
            await super()._forward(records)
            return
        print(HOLDING, sum(len(r) for r in records.values()), flush=True)
        await asyncio.sleep(self.hold_s)
        self.hold_s = 0.0
        try:
            await super()._forward(records)
        finally:
            print(HELD_DONE, flush=True)


async def run_child(hold_s: float) -> None:
    settings = load_settings(windows=WINDOWS)  # broker and prefix from the environment
    group = f"{settings.topic_prefix}{settings.worker_id}-batcher"  # the worker's
    batcher = HoldingBatcher(settings, group_id=group)
    batcher.hold_s = hold_s
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await batcher.start()
    try:
        await batcher.run(stop)
    finally:
        await batcher.stop()
        print("forwarded", batcher.forwarded, "fenced", getattr(batcher, "fenced", 0), flush=True)


def start_child(settings: Settings, log_path: Path, hold_s: float) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "LIQSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "LIQSTREAM_TOPIC_PREFIX": settings.topic_prefix,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.worker.test_zombie_kafka", str(hold_s)],
        env=env,
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
    )


async def committed_ids(settings: Settings) -> list[str]:
    """Event ids of every committed batch so far (read_committed, as stage two reads)."""
    topic = Topics.with_prefix(settings.topic_prefix).batches
    consumer = AIOKafkaConsumer(
        **client_options(settings), isolation_level="read_committed", enable_auto_commit=False
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        ids = []
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(tp, timeout_ms=500)).values():
                for record in records:
                    ids += [e["id"] for e in orjson.loads(record.value)["events"]]
        return ids
    finally:
        await consumer.stop()


def said(path: Path) -> str:
    return path.read_text() if path.exists() else ""


async def wait_for_text(path: Path, text: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in said(path):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path.name} never said {text!r}: {said(path)}")


@pytest.mark.kafka
async def test_a_zombie_batcher_is_fenced(kafka_settings: Settings, tmp_path: Path) -> None:
    settings = worker_settings(kafka_settings)
    await ensure_topics(settings)
    first = recent_events(3_000, seed=31)
    await produce(settings, first)
    zombie_log, other_log = tmp_path / "zombie.log", tmp_path / "other.log"
    zombie = start_child(settings, zombie_log, hold_s=3.0)
    other: subprocess.Popen[bytes] | None = None
    worker = Worker(settings, tmp_path, "w")
    try:
        await wait_for_text(zombie_log, HOLDING)
        zombie.send_signal(signal.SIGSTOP)  # a stall past the session timeout
        other = start_child(settings, other_log, hold_s=0.0)
        async with asyncio.timeout(120):  # the other takes over after the session timeout
            while len(set(await committed_ids(settings))) < len(first):
                await asyncio.sleep(0.5)
        zombie.send_signal(signal.SIGCONT)  # goes on with the records it held
        await wait_for_text(zombie_log, HELD_DONE)
        zombie.send_signal(signal.SIGTERM)
        other.send_signal(signal.SIGTERM)
        assert zombie.wait(60) == 0 and other.wait(60) == 0

        ids = await committed_ids(settings)
        assert len(ids) == len(set(ids)) == len(first)  # each event forwarded once
        assert "batcher fenced" in said(zombie_log)
        second = recent_events(1_000, seed=32)
        await produce(settings, second)
        worker.start()  # stage one goes on in the same group; stage two counts
        async with Totals(settings) as totals:
            assert_exact(await totals.wait_for_count(4_000, timeout_s=120), first + second)
    finally:
        for child in (zombie, other):
            if child is not None and child.poll() is None:
                child.send_signal(signal.SIGCONT)
                child.kill()
                child.wait()
        worker.stop(signal.SIGKILL)


if __name__ == "__main__":
    asyncio.run(run_child(float(sys.argv[1])))
