"""Security settings without a broker: contradictions refused at start, reasons in plain
words, and no password in what aiokafka logs (the broker-backed proof: test_sasl_ssl.py)."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.protocol.admin import SaslAuthenticateRequest_v0, SaslAuthenticateRequest_v1

from stream.config import Settings, load_settings
from stream.errors import ConfigError
from stream.kafka import _closed_on_us, _login_problem

PASSWORD = "hunter2-never-shown"


def sasl(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_mechanism": "SCRAM-SHA-512",
        "kafka_sasl_username": "desk",
        "kafka_sasl_password": PASSWORD,
    }
    return load_settings(**{**values, **overrides})


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL"])
def test_credentials_without_a_sasl_protocol_are_refused(protocol: str) -> None:
    with pytest.raises(ConfigError) as caught:
        sasl(kafka_security_protocol=protocol)
    message = str(caught.value)
    assert "LIQSTREAM_KAFKA_SASL_MECHANISM, LIQSTREAM_KAFKA_SASL_USERNAME" in message
    assert f"LIQSTREAM_KAFKA_SECURITY_PROTOCOL={protocol} does not log in" in message
    assert PASSWORD not in message


def test_a_ca_file_without_tls_is_refused(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text(ssl.DER_cert_to_PEM_cert(b"\x30\x03\x02\x01\x01"))
    with pytest.raises(ConfigError, match="SECURITY_PROTOCOL=PLAINTEXT does not use TLS"):
        load_settings(kafka_ssl_cafile=ca)


def test_a_ca_file_that_holds_no_certificate_is_refused(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=r"SSL_CAFILE=.*ca.pem holds no readable PEM"):
        sasl(kafka_ssl_cafile=ca)


def test_reasons_name_the_settings_to_check() -> None:
    settings = sasl()
    server = "broker:9096"
    rejected = _login_problem(settings, server, SaslAuthenticationFailed("invalid credentials"))
    assert rejected == (
        "Kafka at broker:9096 rejected the SCRAM-SHA-512 login of user 'desk': check "
        "LIQSTREAM_KAFKA_SASL_USERNAME, LIQSTREAM_KAFKA_SASL_PASSWORD and "
        "LIQSTREAM_KAFKA_SASL_MECHANISM"
    )
    unsupported = _login_problem(settings, server, UnsupportedSaslMechanismError("PLAIN"))
    assert unsupported is not None
    assert "does not accept SASL mechanism SCRAM-SHA-512" in unsupported
    untrusted = ssl.SSLCertVerificationError(1, "certificate verify failed")
    untrusted.verify_message = "self-signed certificate in certificate chain"
    assert "set LIQSTREAM_KAFKA_SSL_CAFILE" in (_login_problem(settings, server, untrusted) or "")
    # down, refused or slow is not a login problem: the clients' retries handle it
    assert _login_problem(settings, server, KafkaConnectionError("refused")) is None
    assert _login_problem(settings, server, ConnectionRefusedError()) is None
    assert _login_problem(settings, server, TimeoutError()) is None


@pytest.mark.parametrize("request_type", [SaslAuthenticateRequest_v0, SaslAuthenticateRequest_v1])
def test_aiokafka_never_logs_a_plain_login(
    caplog: pytest.LogCaptureFixture, request_type: type
) -> None:
    """aiokafka logs each request at DEBUG; a PLAIN login's holds the password in clear."""
    import stream.kafka  # noqa: F401  (installs the filter)

    request = request_type(sasl_auth_bytes=f"\x00desk\x00{PASSWORD}".encode())
    with caplog.at_level(logging.DEBUG, logger="aiokafka.conn"):
        logging.getLogger("aiokafka.conn").debug(
            "Request to %s:%d %d: %s", "broker", 9096, 3, request
        )
    assert caplog.records, "the request is still logged"
    assert "SaslAuthenticateRequest(credentials not logged)" in caplog.text
    assert PASSWORD not in caplog.text


def test_a_connection_dropped_unanswered_is_told_from_a_down_server() -> None:
    assert _closed_on_us(KafkaConnectionError("Connection at 127.0.0.1:9092 closed"))
    assert _closed_on_us(ConnectionResetError())  # a TLS handshake the listener dropped
    assert not _closed_on_us(ConnectionRefusedError())  # nobody listening: wait for Kafka
    assert not _closed_on_us(KafkaConnectionError("Unable to bootstrap from [...]"))
    assert not _closed_on_us(TimeoutError())
