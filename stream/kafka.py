"""Kafka connection options and topic names, shared by every aiokafka client and Faust.

One place builds the security options, so a managed cluster (SASL, TLS) works alike for the
collectors, the worker and the admin client.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from typing import Any

from aiokafka.conn import create_conn
from aiokafka.errors import (
    IllegalSaslStateError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)

from stream.config import Settings
from stream.errors import ConfigError, LiqstreamError

log = logging.getLogger(__name__)


class _HideSaslRequests(logging.Filter):
    """aiokafka logs every request at DEBUG, and a PLAIN login's request carries the password
    in clear (b"\\x00user\\x00password"): such a request is logged by its name only."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(
            type(arg).__name__.startswith("SaslAuthenticateRequest") for arg in record.args
        ):
            record.args = tuple(
                "SaslAuthenticateRequest(credentials not logged)"
                if type(arg).__name__.startswith("SaslAuthenticateRequest")
                else arg
                for arg in record.args
            )
        return True


# On aiokafka's connection logger itself, so it holds whoever configures logging (Faust too).
logging.getLogger("aiokafka.conn").addFilter(_HideSaslRequests())


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
    """Verifying TLS (certificate chain and host name) against LIQSTREAM_KAFKA_SSL_CAFILE, or
    the system's CAs when unset (what managed services with public certificates need)."""
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


class KafkaLoginError(ConfigError):
    """The broker refused our SASL login or TLS handshake: retrying cannot help, so the
    process stops at once with a message naming the settings to check."""


class KafkaUnreachableError(LiqstreamError):
    """No bootstrap server answered (only raised where the caller asks for a reachable one)."""


def _login_problem(settings: Settings, server: str, exc: BaseException) -> str | None:
    """A plain-words reason when `exc` is one retrying cannot cure, else None."""
    user = settings.kafka_sasl_username
    mechanism = settings.kafka_sasl_mechanism
    if isinstance(exc, SaslAuthenticationFailed):
        return (
            f"Kafka at {server} rejected the {mechanism} login of user {user!r}: check "
            "LIQSTREAM_KAFKA_SASL_USERNAME, LIQSTREAM_KAFKA_SASL_PASSWORD and "
            "LIQSTREAM_KAFKA_SASL_MECHANISM"
        )
    if isinstance(exc, UnsupportedSaslMechanismError | IllegalSaslStateError):
        return (
            f"Kafka at {server} does not accept SASL mechanism {mechanism} "
            f"(LIQSTREAM_KAFKA_SASL_MECHANISM) on this listener: {exc}"
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"the TLS certificate of Kafka at {server} is not trusted ({exc.verify_message}): "
            "set LIQSTREAM_KAFKA_SSL_CAFILE to the CA that signed it"
        )
    if isinstance(exc, ssl.SSLError):
        return (
            f"TLS handshake with Kafka at {server} failed ({exc.reason}): is "
            f"LIQSTREAM_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} "
            "what this listener speaks?"
        )
    return None


def _closed_on_us(exc: BaseException) -> bool:
    """The server took the connection and dropped it unanswered: what a TLS listener does to
    a plaintext client and a plaintext listener to a TLS one (a down server refuses)."""
    if isinstance(exc, KafkaConnectionError):
        return str(exc).endswith(" closed")
    return isinstance(exc, ConnectionResetError | ssl.SSLEOFError)


async def check_login(
    settings: Settings,
    *,
    require_reachable: bool = False,
    timeout_s: float = 15.0,
    recheck_s: float = 1.0,
) -> None:
    """Connect to the bootstrap servers once, TLS and SASL included, before any client starts.

    aiokafka reports a rejected password only as "Unable to bootstrap" and its clients (and
    Faust) retry it for ever; this names the cause and raises KafkaLoginError instead. A
    server that does not answer is not a login problem: the clients' own retries handle
    Kafka starting later, unless `require_reachable` (one-shot commands). A server that drops
    the connection unanswered twice, `recheck_s` apart, speaks another protocol.
    """
    options = client_options(settings)
    options.pop("bootstrap_servers")
    unreachable: list[str] = []
    for server in (part.strip() for part in settings.kafka_bootstrap.split(",")):
        host, _, port = server.rpartition(":")
        for attempt in (1, 2):
            try:
                connection = await asyncio.wait_for(
                    create_conn(
                        host,
                        int(port),
                        client_id="liqstream-login-check",
                        request_timeout_ms=int(timeout_s * 1000),
                        **options,
                    ),
                    timeout_s,
                )
            except (KafkaError, OSError, TimeoutError) as exc:
                problem = _login_problem(settings, server, exc)
                if problem is not None:
                    raise KafkaLoginError(problem) from None
                if _closed_on_us(exc) and attempt == 1:
                    await asyncio.sleep(recheck_s)  # or a broker stopping just then
                    continue
                if _closed_on_us(exc):
                    protocol = settings.kafka_security_protocol
                    raise KafkaLoginError(
                        f"Kafka at {server} closed the connection without an answer, twice: is "
                        f"LIQSTREAM_KAFKA_SECURITY_PROTOCOL={protocol} what this listener "
                        "speaks? (a TLS listener drops plaintext clients, a plaintext one TLS)"
                    ) from None
                unreachable.append(f"{server} ({exc!r})")
                break
            else:
                connection.close()
                return
    if require_reachable:
        raise KafkaUnreachableError(
            "cannot reach Kafka (LIQSTREAM_KAFKA_BOOTSTRAP): " + "; ".join(unreachable)
        )
    log.warning("Kafka not reachable yet, the clients keep trying: %s", "; ".join(unreachable))
