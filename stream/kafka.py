"""Kafka connection options and topic names, shared by every aiokafka client and Faust.

One place builds the security options, so a managed cluster (SASL, TLS) works alike for the
collectors, the worker and the admin client.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

from stream.config import Settings


@dataclass(frozen=True)
class Topics:
    """Topic names of docs/events.md ("Topics"), with the configured prefix."""

    raw: str
    liquidations: str
    totals: str
    breaches: str
    deadletter: str
    status: str
    batches: str  # internal to the worker: validated, de-duplicated events in batches
    history: str  # per scope and closed bucket (docs/events.md, "History records")

    @classmethod
    def with_prefix(cls, prefix: str) -> Topics:
        return cls(
            raw=f"{prefix}liquidations.raw",
            liquidations=f"{prefix}liquidations",
            totals=f"{prefix}liquidations.totals",
            breaches=f"{prefix}liquidations.breaches",
            deadletter=f"{prefix}liquidations.deadletter",
            status=f"{prefix}collectors.status",
            batches=f"{prefix}liquidations.batches",
            history=f"{prefix}liquidations.history",
        )

    def all(self) -> tuple[str, ...]:
        return (
            self.raw,
            self.liquidations,
            self.totals,
            self.breaches,
            self.deadletter,
            self.status,
            self.batches,
            self.history,
        )


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    context = ssl.create_default_context(
        cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
    )
    return context


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": settings.kafka_security_protocol,
    }
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if settings.kafka_security_protocol.startswith("SASL_"):
        password = settings.kafka_sasl_password
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=password.get_secret_value() if password else None,
        )
    return options
