"""The `faust.App` and nothing else: topics, tables and agents live in their own modules."""

from __future__ import annotations

import secrets
import socket
from pathlib import Path

import faust

from stream.config import Settings
from stream.kafka import ssl_context


def broker_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    """The same security options the aiokafka clients get (stream.kafka.client_options)."""
    context = ssl_context(settings)
    if settings.kafka_security_protocol.startswith("SASL_"):
        password = settings.kafka_sasl_password
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=password.get_secret_value() if password else None,
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def group_instance_id(settings: Settings, state_dir: Path) -> str | None:
    """The worker's static member id in its consumer group (KIP-345), kept in its state dir.

    A worker killed and started again on the same state rejoins as the same member and takes
    its partitions back at once, instead of waiting for the dead member's session to expire
    (10 s) and a rebalance. The id belongs to the state dir: two workers never share one
    (RocksDB locks it; compose gives each replica a volume of its own), and a replica given a
    new volume is a new member, as it has none of the old one's state."""
    configured = settings.worker_instance_id
    if configured == "none":
        return None
    if configured != "auto":
        return configured
    path = state_dir / "member-id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        member = f"{socket.gethostname()}-{secrets.token_hex(6)}"
        state_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(member + "\n")
        return member


def create_app(settings: Settings) -> faust.App:
    servers = ";".join(
        f"kafka://{server.strip()}" for server in settings.kafka_bootstrap.split(",")
    )
    app_id = f"{settings.topic_prefix}{settings.worker_id}"
    # Per app id: RocksDB files remember changelog offsets of that app's topics only.
    state_dir = settings.data_dir / "worker" / app_id
    return faust.App(
        app_id,
        # Faust would read its settings from os.environ ahead of these arguments (see
        # stream.worker.environment): it gets none, so LIQSTREAM_* alone configures the worker.
        env={},
        broker=servers,
        broker_credentials=broker_credentials(settings),
        store="rocksdb://" if settings.table_store == "rocksdb" else "memory://",
        datadir=str(state_dir),
        topic_replication_factor=settings.topic_replication,
        topic_partitions=1,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        # A dead worker's partitions move on after 10 s instead of Faust's default minute.
        broker_session_timeout=10.0,
        consumer_group_instance_id=group_instance_id(settings, state_dir),
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=20.0,
        web_enabled=True,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        web_host=settings.web_host,
        # Faust's own pages would expose table contents and internals on the API port.
        web_router_enabled=False,
        web_tables_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        table_standby_replicas=1,
        stream_wait_empty=False,
    )
