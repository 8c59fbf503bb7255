"""The `faust.App` and nothing else: topics, tables and agents live in their own modules."""

from __future__ import annotations

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


def create_app(settings: Settings) -> faust.App:
    servers = ";".join(
        f"kafka://{server.strip()}" for server in settings.kafka_bootstrap.split(",")
    )
    app_id = f"{settings.topic_prefix}{settings.worker_id}"
    return faust.App(
        app_id,
        # Faust would read its settings from os.environ ahead of these arguments (see
        # stream.worker.environment): it gets none, so LIQSTREAM_* alone configures the worker.
        env={},
        broker=servers,
        broker_credentials=broker_credentials(settings),
        store="rocksdb://" if settings.table_store == "rocksdb" else "memory://",
        # Per app id: RocksDB files remember changelog offsets of that app's topics only.
        datadir=str(settings.data_dir / "worker" / app_id),
        topic_replication_factor=settings.topic_replication,
        topic_partitions=1,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        # A dead worker's partitions move on after 10 s instead of Faust's default minute.
        broker_session_timeout=10.0,
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
