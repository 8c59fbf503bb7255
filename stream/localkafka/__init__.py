"""A genuine single-node Apache Kafka broker (KRaft) for development and tests.

No Docker engine runs on the machines this project is built on, so the broker is Apache
Kafka's own jars from Maven Central (fetched once by Maven into a cache) started with `java`.
The broker dies with its parent (PR_SET_PDEATHSIG), so an interrupted test run or a killed
`liqstream dev` leaves no JVM behind.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import hashlib
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from types import TracebackType

from stream.errors import LiqstreamError
from stream.localkafka.security import (
    LISTENER,
    SaslSsl,
    listener_properties,
    make_tls,
    scram_format_args,
)

log = logging.getLogger(__name__)

KAFKA_VERSION = "4.1.1"
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "liqstream" / f"kafka-{KAFKA_VERSION}"
READY_LINE = "Kafka Server started"
_PR_SET_PDEATHSIG = 1


class LocalKafkaError(LiqstreamError):
    """The local broker could not be fetched or started; the message says why."""


def _package_file(name: str) -> Path:
    return Path(str(resources.files(__package__).joinpath(name)))


def cache_dir() -> Path:
    return Path(os.environ.get("LIQSTREAM_LOCAL_KAFKA_DIR", DEFAULT_CACHE_DIR))


def jars_dir(root: Path | None = None) -> Path:
    return (root or cache_dir()) / "jars"


def fetch_jars(root: Path | None = None) -> Path:
    """Copy the broker jars from Maven Central into the cache, once per pom version."""
    root = root or cache_dir()
    pom = _package_file("pom.xml")
    stamp = root / "jars.stamp"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    target = jars_dir(root)
    if stamp.is_file() and stamp.read_text() == digest and any(target.glob("kafka_2.13-*.jar")):
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LocalKafkaError("Maven (mvn) is needed to fetch the Kafka jars; install it first")
    root.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(target, ignore_errors=True)
    command = [
        mvn,
        "-B",
        "-q",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={target}",
        "-DincludeScope=runtime",
    ]
    log.info("fetching Apache Kafka %s jars into %s", KAFKA_VERSION, target)
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LocalKafkaError(
            f"mvn failed ({result.returncode}) fetching Kafka jars:\n{result.stdout}{result.stderr}"
        )
    stamp.write_text(digest)
    return target


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def die_with_parent() -> None:
    """A `preexec_fn`: the child (the broker, the dev worker) gets SIGTERM when we die."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def broker_properties(
    data_dir: Path,
    host: str,
    port: int,
    controller_port: int,
    listener: str = "PLAINTEXT",
    extra: Sequence[str] = (),
) -> str:
    """server.properties: one client listener (`listener` is PLAINTEXT or SASL_SSL, which
    then needs `extra`: stream.localkafka.security.listener_properties) and the controller."""
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{host}:{controller_port}",
            f"listeners={listener}://{host}:{port},CONTROLLER://{host}:{controller_port}",
            f"advertised.listeners={listener}://{host}:{port}",
            "controller.listener.names=CONTROLLER",
            f"inter.broker.listener.name={listener}",
            f"listener.security.protocol.map={listener}:{listener},CONTROLLER:PLAINTEXT",
            f"log.dirs={data_dir / 'logs'}",
            "num.partitions=1",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=4",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=4",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            "log.cleaner.backoff.ms=1000",
            *extra,
            "",
        ]
    )


class LocalKafka:
    """Start/stop one KRaft broker+controller; use as a context manager.

    `data_dir` None means a temporary directory removed on stop. Port 0 picks a free port.
    `sasl` makes the one client listener SASL_SSL (its CA certificate is `ca_file` once
    started) instead of PLAINTEXT.
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        heap: str = "512m",
        cache: Path | None = None,
        sasl: SaslSsl | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.controller_port = free_port(host)
        self.heap = heap
        self.cache = cache or cache_dir()
        self._temporary = data_dir is None
        self.data_dir = (
            Path(tempfile.mkdtemp(prefix="liqstream-kafka-")) if data_dir is None else data_dir
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir / "broker.log"
        self.sasl = sasl
        self.ca_file: Path | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def _java(self, *args: str) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise LocalKafkaError("java (17+) is needed to run the local Kafka broker")
        jars = jars_dir(self.cache)
        return [
            java,
            f"-Xms{self.heap}",
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={_package_file('log4j2.properties')}",
            "-cp",
            f"{jars}/*",
            *args,
        ]

    def _format(self, properties: Path, *extra: str) -> None:
        if (self.data_dir / "logs" / "meta.properties").is_file():
            return  # already formatted: keep the data of an earlier run
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        command = self._java(
            # `=` form: a base64 id may start with "-" and would read as an option otherwise
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={cluster_id}",
            f"--config={properties}",
            *extra,
        )
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise LocalKafkaError(
                f"formatting KRaft storage failed:\n{result.stdout}{result.stderr}"
            )

    def start(self, timeout_s: float = 90.0) -> str:
        """Format storage if needed, start the broker, wait until it serves; return bootstrap."""
        fetch_jars(self.cache)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        properties = self.data_dir / "server.properties"
        listener, extra, format_args = "PLAINTEXT", [], []
        if self.sasl is not None:
            tls = make_tls(self.data_dir / "tls", self.host)
            self.ca_file = tls.ca_pem
            listener, format_args = LISTENER, scram_format_args(self.sasl)
            extra = listener_properties(self.sasl, tls, secrets.token_urlsafe(16))
        properties.write_text(
            broker_properties(
                self.data_dir, self.host, self.port, self.controller_port, listener, extra
            )
        )
        properties.chmod(0o600)  # passwords of the SASL listener
        self._format(properties, *format_args)
        log_file = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self._java("kafka.Kafka", str(properties)),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches us; we stop the broker cleanly
            preexec_fn=die_with_parent,
        )
        log_file.close()
        self._wait_ready(timeout_s)
        log.info("local Kafka %s listening on %s", KAFKA_VERSION, self.bootstrap)
        return self.bootstrap

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise LocalKafkaError(
                    f"broker exited with {self.process.returncode}; last log lines:\n{self._tail()}"
                )
            if READY_LINE in self.log_path.read_text(errors="replace"):
                with contextlib.suppress(OSError):
                    socket.create_connection((self.host, self.port), timeout=1).close()
                    return
            time.sleep(0.2)
        self.stop()
        raise LocalKafkaError(f"broker not ready after {timeout_s:.0f}s:\n{self._tail()}")

    def _tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM (Kafka's controlled shutdown), SIGKILL if it takes longer than timeout_s."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._temporary:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> LocalKafka:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
