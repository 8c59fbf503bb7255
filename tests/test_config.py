"""Configuration: defaults, derived values, and failures that name the variable."""

from __future__ import annotations

import pytest

from stream.config import load_settings, parse_duration_ms
from stream.errors import ConfigError
from stream.kafka import Topics, client_options


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("LIQSTREAM_"):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    settings = load_settings()
    assert settings.kafka_bootstrap == "127.0.0.1:9092"
    assert settings.web_host == "127.0.0.1"
    assert settings.resolution_ms == 60_000
    assert settings.windows_ms == {
        "5m": 300_000,
        "15m": 900_000,
        "1h": 3_600_000,
        "4h": 14_400_000,
        "12h": 43_200_000,
        "24h": 86_400_000,
    }


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIQSTREAM_TOPIC_PREFIX", "desk1.")
    monkeypatch.setenv("LIQSTREAM_TOPIC_PARTITIONS", "12")
    monkeypatch.setenv("LIQSTREAM_WINDOWS", "1m, 2h")
    settings = load_settings()
    assert settings.topic_partitions == 12
    assert settings.windows_ms == {"1m": 60_000, "2h": 7_200_000}
    assert Topics.with_prefix(settings.topic_prefix).totals == "desk1.liquidations.totals"


def test_collector_intervals(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().instruments_refresh_s == 3600.0
    monkeypatch.setenv("LIQSTREAM_INSTRUMENTS_REFRESH_S", "2")
    assert load_settings().instruments_refresh_s == 2.0
    assert load_settings().status_interval_s == 30.0
    monkeypatch.setenv("LIQSTREAM_STATUS_INTERVAL_S", "5")
    assert load_settings().status_interval_s == 5.0


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LIQSTREAM_TOPIC_PARTITIONS", "zero"),
        ("LIQSTREAM_TOPIC_PARTITIONS", "0"),
        ("LIQSTREAM_KAFKA_BOOTSTRAP", "localhost"),
        ("LIQSTREAM_KAFKA_SECURITY_PROTOCOL", "TLS"),
        ("LIQSTREAM_WEB_PORT", "70000"),
        ("LIQSTREAM_RESOLUTION", "1 minute"),
        ("LIQSTREAM_WINDOWS", "5m,forever"),
        ("LIQSTREAM_TOPIC_PREFIX", "bad prefix/"),
        ("LIQSTREAM_LOG_LEVEL", "LOUD"),
        ("LIQSTREAM_KAFKA_SSL_CAFILE", "/nonexistent/ca.pem"),
        ("LIQSTREAM_INSTRUMENTS_REFRESH_S", "hourly"),
        ("LIQSTREAM_INSTRUMENTS_REFRESH_S", "0"),
        ("LIQSTREAM_STATUS_INTERVAL_S", "0.1"),
    ],
)
def test_invalid_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=variable):
        load_settings()


def test_window_must_be_a_multiple_of_the_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIQSTREAM_WINDOWS", "5m,90s")
    with pytest.raises(ConfigError, match=r"window 90s .*LIQSTREAM_RESOLUTION"):
        load_settings()


def test_sasl_needs_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIQSTREAM_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    with pytest.raises(ConfigError, match="LIQSTREAM_KAFKA_SASL_MECHANISM"):
        load_settings()


def test_sasl_options_reach_aiokafka_and_the_secret_never_shows(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("")  # an empty bundle is enough for the options; no connection is made
    monkeypatch.setenv("LIQSTREAM_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("LIQSTREAM_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("LIQSTREAM_KAFKA_SASL_USERNAME", "desk")
    monkeypatch.setenv("LIQSTREAM_KAFKA_SASL_PASSWORD", "hunter2-secret")
    settings = load_settings()
    options = client_options(settings)
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "desk"
    assert options["sasl_plain_password"] == "hunter2-secret"
    assert "hunter2-secret" not in repr(settings)
    assert "hunter2-secret" not in str(settings.model_dump())


def test_password_is_not_echoed_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIQSTREAM_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("LIQSTREAM_KAFKA_SASL_PASSWORD", "hunter2-secret")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "hunter2-secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "ms"),
    [("250ms", 250), ("90s", 90_000), ("5m", 300_000), ("24h", 86_400_000), ("2d", 172_800_000)],
)
def test_durations(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "5", "m", "-5m", "0s", "1.5h", "5 m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration_ms(text)


def test_the_same_security_options_reach_faust(monkeypatch: pytest.MonkeyPatch) -> None:
    import faust

    from stream.worker.app import broker_credentials, create_app

    monkeypatch.setenv("LIQSTREAM_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("LIQSTREAM_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("LIQSTREAM_KAFKA_SASL_USERNAME", "desk")
    monkeypatch.setenv("LIQSTREAM_KAFKA_SASL_PASSWORD", "hunter2-secret")
    monkeypatch.setenv("LIQSTREAM_KAFKA_BOOTSTRAP", "k1:9092,k2:9093")
    settings = load_settings()
    credentials = broker_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password) == ("desk", "hunter2-secret")
    assert str(credentials.mechanism.value) == "SCRAM-SHA-256"
    app = create_app(settings)
    assert [str(url) for url in app.conf.broker] == ["kafka://k1:9092", "kafka://k2:9093"]
    assert app.conf.web_bind == "127.0.0.1"
