"""A SASL_SSL listener for the local broker, as a managed Kafka service presents one.

A throwaway certificate authority and a broker certificate signed by it are made with the
JDK's `keytool` (installed with the `java` the broker needs anyway), so clients verify the
broker against a CA file exactly as they would a managed cluster's. Users log in with
SCRAM-SHA-512 (credentials written into the cluster metadata when storage is formatted) or
PLAIN (listed in the listener's JAAS configuration).
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from stream.errors import LiqstreamError

SCRAM_MECHANISM = "SCRAM-SHA-512"
LISTENER = "SASL_SSL"
# The broker's own user for its inter-broker connections (PLAIN over the same listener).
BROKER_USER = "liqstream-broker"


class TlsSetupError(LiqstreamError):
    """keytool could not make the test certificate authority or the broker certificate."""


@dataclass(frozen=True)
class SaslSsl:
    """Who may log in: SCRAM-SHA-512 users and PLAIN users, name -> password."""

    scram_users: dict[str, str] = field(default_factory=dict)
    plain_users: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TlsFiles:
    """The CA certificate clients trust (PEM) and the broker's PKCS12 key store."""

    ca_pem: Path
    keystore: Path
    keystore_password: str


def _keytool(*args: str, stdin: str | None = None) -> str:
    keytool = shutil.which("keytool")
    if keytool is None:
        raise TlsSetupError("keytool (part of the Java runtime) is needed to make certificates")
    # A short-lived JVM: C1 only and the serial collector start it in a fraction of the time.
    fast = ["-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC"]
    result = subprocess.run(
        [keytool, *fast, *args], input=stdin, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise TlsSetupError(f"keytool {args[0]} failed: {result.stdout}{result.stderr}")
    return result.stdout


def make_tls(directory: Path, host: str) -> TlsFiles:
    """A self-signed CA and a broker certificate for `host` (IP and DNS names) signed by it."""
    directory.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(16)
    ca_store, keystore = directory / "ca.p12", directory / "broker.p12"
    for stale in (ca_store, keystore):
        stale.unlink(missing_ok=True)
    # EC P-256: Java makes such a key at once, an RSA key takes seconds on a busy machine.
    common = [
        "-storetype", "PKCS12", "-storepass", password, "-keyalg", "EC", "-groupname", "secp256r1"
    ]  # fmt: skip
    _keytool(
        "-genkeypair", "-alias", "ca", "-keystore", str(ca_store), *common,
        "-dname", "CN=liqstream test CA", "-ext", "bc:c", "-validity", "30",
    )  # fmt: skip
    ca_pem = _keytool(
        "-exportcert", "-rfc", "-alias", "ca", "-keystore", str(ca_store), "-storepass", password
    )
    (directory / "ca.pem").write_text(ca_pem)
    names = f"SAN=ip:{host},dns:localhost" if host[0].isdigit() else f"SAN=dns:{host}"
    _keytool(
        "-genkeypair", "-alias", "broker", "-keystore", str(keystore), *common,
        "-dname", f"CN={host}", "-validity", "30",
    )  # fmt: skip
    request = _keytool(
        "-certreq", "-alias", "broker", "-keystore", str(keystore), "-storepass", password
    )
    signed = _keytool(
        "-gencert", "-rfc", "-alias", "ca", "-keystore", str(ca_store), "-storepass", password,
        "-ext", names, "-ext", "eku=serverAuth", "-validity", "30",
        stdin=request,
    )  # fmt: skip
    # The chain the broker presents: its certificate, then the CA's.
    (directory / "broker-chain.pem").write_text(signed + ca_pem)
    _keytool(
        "-importcert", "-noprompt", "-alias", "broker", "-keystore", str(keystore),
        "-storepass", password, "-file", str(directory / "broker-chain.pem"),
    )  # fmt: skip
    ca_store.unlink()  # the CA's key is not needed again
    return TlsFiles(directory / "ca.pem", keystore, password)


def _jaas_plain(users: dict[str, str]) -> str:
    entries = " ".join(f'user_{name}="{password}"' for name, password in users.items())
    return f"org.apache.kafka.common.security.plain.PlainLoginModule required {entries}"


def listener_properties(sasl: SaslSsl, tls: TlsFiles, broker_password: str) -> list[str]:
    """server.properties lines for the SASL_SSL listener (also the inter-broker listener)."""
    prefix = f"listener.name.{LISTENER.lower()}"
    plain_users = {**sasl.plain_users, BROKER_USER: broker_password}
    broker_login = f'username="{BROKER_USER}" password="{broker_password}"'
    scram_module = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    return [
        f"sasl.enabled.mechanisms={SCRAM_MECHANISM},PLAIN",
        "sasl.mechanism.inter.broker.protocol=PLAIN",
        f"{prefix}.plain.sasl.jaas.config={_jaas_plain(plain_users)} {broker_login};",
        f"{prefix}.{SCRAM_MECHANISM.lower()}.sasl.jaas.config={scram_module}",
        f"ssl.keystore.location={tls.keystore}",
        "ssl.keystore.type=PKCS12",
        f"ssl.keystore.password={tls.keystore_password}",
        f"ssl.key.password={tls.keystore_password}",
        f"ssl.truststore.location={tls.ca_pem}",
        "ssl.truststore.type=PEM",
        "ssl.client.auth=none",
        "ssl.endpoint.identification.algorithm=https",
    ]


def scram_format_args(sasl: SaslSsl) -> list[str]:
    """`kafka-storage format` arguments that write the SCRAM users into the metadata log."""
    return [
        f"--add-scram={SCRAM_MECHANISM}=[name={name},password={password}]"
        for name, password in sasl.scram_users.items()
    ]
