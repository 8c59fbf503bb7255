"""Static checks of docker-compose.yml, the Dockerfile and the README configuration table.

No Docker engine runs where liqstream is developed, so these are what keep the deployment
files honest: every command a container runs exists, every variable it sets is a setting.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from stream.cli import main as cli
from stream.config import ENV_PREFIX, Settings
from stream.localkafka import KAFKA_VERSION

ROOT = Path(__file__).resolve().parents[1]
DEV_ONLY_VARIABLES = {"LIQSTREAM_LOCAL_KAFKA_DIR"}


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def setting_variables() -> set[str]:
    return {ENV_PREFIX + name.upper() for name in Settings.model_fields}


def test_compose_services_and_images() -> None:
    services = compose()["services"]
    assert {"kafka", "kafka-init", "collector", "worker"} <= set(services)
    assert services["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for name in ("kafka-init", "collector", "worker"):
        assert services[name]["build"] == "."
        assert services[name]["image"] == "liqstream:latest"


def test_compose_commands_are_real_cli_commands() -> None:
    services = compose()["services"]
    expected = {"kafka-init": "topics", "collector": "collect", "worker": "worker"}
    for service, command in expected.items():
        assert services[service]["command"][0] == command
    # The entry point is `liqstream`: every command a container runs must exist.
    known = set(cli.commands)
    pending = {"collect", "worker"} - known  # added by the collector and aggregation issues
    for service, command in expected.items():
        assert command in known or command in pending, (service, command)


def test_compose_environment_uses_only_real_settings() -> None:
    for name, service in compose()["services"].items():
        if name == "kafka":
            continue
        for variable in service["environment"]:
            assert variable in setting_variables(), (name, variable)
        assert service["environment"]["LIQSTREAM_KAFKA_BOOTSTRAP"] == "kafka:9092"


def test_compose_healthchecks_volumes_and_localhost_ports() -> None:
    document = compose()
    services = document["services"]
    for name in ("kafka", "collector", "worker"):
        assert services[name]["healthcheck"]["test"], name
    assert set(document["volumes"]) == {"kafka-data", "collector-data", "worker-data"}
    assert services["kafka-init"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in ("collector", "worker"):
        condition = services[name]["depends_on"]["kafka-init"]["condition"]
        assert condition == "service_completed_successfully"
    for service in services.values():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), port
    worker_env = services["worker"]["environment"]
    assert f"{worker_env['LIQSTREAM_WEB_PORT']}/healthz" in str(services["worker"]["healthcheck"])


def test_compose_mounted_files_exist() -> None:
    for service in compose()["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source


def test_dockerfile_is_multi_stage_slim_and_non_root() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", dockerfile, flags=re.MULTILINE)
    assert len(stages) >= 2 and all("slim" in image for image in stages)
    final_stage = dockerfile.split("\nFROM ")[-1]
    assert "build-essential" not in final_stage
    assert re.search(r"^USER (?!root)\w+", final_stage, flags=re.MULTILINE)
    assert 'ENTRYPOINT ["liqstream"]' in final_stage


def test_readme_configuration_table_matches_settings() -> None:
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `(LIQSTREAM_[A-Z_]+)` \|", readme, flags=re.MULTILINE))
    assert documented == setting_variables() | DEV_ONLY_VARIABLES
    for name, field in Settings.model_fields.items():
        if field.default not in (None, ""):
            row = re.search(rf"^\| `{ENV_PREFIX}{name.upper()}` \| `([^`]*)` \|", readme, re.M)
            assert row and row.group(1) == str(field.default), name


def test_readme_test_command_is_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
