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
    assert {"kafka", "kafka-init", "collector", "worker", "api"} <= set(services)
    assert services["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for name in ("kafka-init", "collector", "worker", "api"):
        assert services[name]["build"] == "."
        assert services[name]["image"] == "liqstream:latest"


def test_compose_commands_are_real_cli_commands() -> None:
    services = compose()["services"]
    expected = {"kafka-init": "topics", "collector": "collect", "worker": "worker", "api": "api"}
    for service, command in expected.items():
        assert services[service]["command"][0] == command
    # The entry point is `liqstream`: every command a container runs must exist.
    known = set(cli.commands)
    pending = {"collect", "worker"} - known  # added by the collector and aggregation issues
    for service, command in expected.items():
        assert command in known or command in pending, (service, command)


def test_compose_environment_uses_only_real_settings() -> None:
    for name, service in compose()["services"].items():
        if name in ("kafka", "prometheus", "grafana"):
            continue
        for variable in service["environment"]:
            assert variable in setting_variables(), (name, variable)
        assert service["environment"]["LIQSTREAM_KAFKA_BOOTSTRAP"] == "kafka:9092"


def test_compose_healthchecks_volumes_and_localhost_ports() -> None:
    document = compose()
    services = document["services"]
    for name in ("kafka", "collector", "worker", "api"):
        assert services[name]["healthcheck"]["test"], name
    assert set(document["volumes"]) == {
        "kafka-data",
        "collector-data",
        "prometheus-data",
        "grafana-data",
    }
    assert services["kafka-init"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in ("collector", "worker", "api"):
        condition = services[name]["depends_on"]["kafka-init"]["condition"]
        assert condition == "service_completed_successfully"
    for service in services.values():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), port
    worker_env = services["worker"]["environment"]
    assert f"{worker_env['LIQSTREAM_WEB_PORT']}/healthz" in str(services["worker"]["healthcheck"])
    api_env = services["api"]["environment"]
    assert f"{api_env['LIQSTREAM_API_PORT']}/readyz" in str(services["api"]["healthcheck"])


def test_the_api_serves_apart_from_the_worker() -> None:
    """The api service serves the dashboard, API and streams; the worker only its health and
    metrics, so no dashboard ever shares the worker's event loop."""
    services = compose()["services"]
    assert services["worker"]["environment"]["LIQSTREAM_WORKER_API"] == "false"
    api = services["api"]
    assert api["environment"]["LIQSTREAM_API_HOST"] == "0.0.0.0"  # inside its container
    assert "container_name" not in api and "volumes" not in api  # stateless: scales freely
    for port in api["ports"]:  # `--scale api=N`: a host port range, one port per replica
        host, container = str(port).split(":")[1:]
        assert "-" in host and container == api["environment"]["LIQSTREAM_API_PORT"], port
    worker_host_ports = str(services["worker"]["ports"][0]).split(":")[1].split("-")
    api_host_ports = str(api["ports"][0]).split(":")[1].split("-")
    worker_range = range(int(worker_host_ports[0]), int(worker_host_ports[1]) + 1)
    assert not set(worker_range) & set(range(int(api_host_ports[0]), int(api_host_ports[1]) + 1))
    assert api["environment"]["LIQSTREAM_API_PORT"] in (ROOT / "Dockerfile").read_text()


def test_worker_scales_without_clashes() -> None:
    worker = compose()["services"]["worker"]
    assert "container_name" not in worker
    for port in worker["ports"]:  # a host port range: one port per replica
        host = str(port).split(":")[1]
        assert "-" in host, port
    for volume in worker["volumes"]:  # no named volume shared by replicas (RocksDB locks)
        source = volume.split(":")[0]
        assert source.startswith(("/", "./")), volume


def test_monitoring_profile_scrapes_what_runs() -> None:
    services = compose()["services"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"]
    for name in ("kafka", "kafka-init", "collector", "worker", "api"):
        assert "profiles" not in services[name]  # the core stack runs without a profile
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    worker_sd = jobs["liqstream-worker"]["dns_sd_configs"][0]
    assert worker_sd["names"] == ["worker"]
    assert str(worker_sd["port"]) == services["worker"]["environment"]["LIQSTREAM_WEB_PORT"]
    collector_env = services["collector"]["environment"]
    target = jobs["liqstream-collector"]["static_configs"][0]["targets"][0]
    assert target == f"collector:{collector_env['LIQSTREAM_METRICS_PORT']}"
    assert collector_env["LIQSTREAM_METRICS_HOST"] == "0.0.0.0"


# Each long-running liqstream command serves /metrics on the port of this setting, on the
# host of the paired one (which must be 0.0.0.0 in a container for Prometheus to reach it).
METRICS_ENDPOINT = {
    "collect": ("LIQSTREAM_METRICS_HOST", "LIQSTREAM_METRICS_PORT"),
    "worker": ("LIQSTREAM_WEB_HOST", "LIQSTREAM_WEB_PORT"),
    "api": ("LIQSTREAM_API_HOST", "LIQSTREAM_API_PORT"),
}
ONE_SHOT_COMMANDS = {"topics"}  # runs to completion: nothing to scrape


def test_every_service_serving_metrics_is_scraped() -> None:
    """Every compose service running a liqstream command that serves /metrics has a scrape
    job reaching it on that port: through the network's DNS (every replica) when the service
    scales, else as a static target."""
    services = compose()["services"]
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    scraped: set[tuple[str, str]] = set()
    for job in prometheus["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics", job["job_name"]
        for sd in job.get("dns_sd_configs", []):
            scraped |= {(name, str(sd["port"])) for name in sd["names"]}
        for static in job.get("static_configs", []):
            scraped |= {(t.split(":")[0], t.split(":")[1]) for t in static["targets"]}
    serving = {}
    for name, service in services.items():
        if service.get("build") != ".":
            continue  # not liqstream
        command = service["command"][0]
        if command in ONE_SHOT_COMMANDS:
            continue
        assert command in METRICS_ENDPOINT, (name, command)  # a new service: say what it serves
        host, port = METRICS_ENDPOINT[command]
        assert service["environment"][host] == "0.0.0.0", name
        serving[name] = service["environment"][port]
    assert set(serving) == {"collector", "worker", "api"}
    for name, port in serving.items():
        assert (name, port) in scraped, (name, port, sorted(scraped))
    for name in ("worker", "api"):  # scaled with --scale: one DNS name, every replica
        jobs = [j for j in prometheus["scrape_configs"] if j.get("dns_sd_configs")]
        assert any(name in sd["names"] for j in jobs for sd in j["dns_sd_configs"]), name


def code_metric_names() -> set[str]:
    names = set()
    for path in (ROOT / "stream").rglob("*.py"):
        names |= set(re.findall(r'"(liqstream_[a-z_]+)"', path.read_text()))
    return names


def test_grafana_dashboard_uses_only_exported_metrics() -> None:
    import json

    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/liqstream.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {
        re.sub(r"_(total|created)$", "", name)
        for expr in exprs
        for name in re.findall(r"liqstream_[a-z_]+", expr)
    }
    assert used and used <= code_metric_names(), used - code_metric_names()
    datasource = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"
    assert all(p["datasource"]["uid"] == datasource["uid"] for p in dashboard["panels"])


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


def test_grafana_has_liquidations_per_5_minutes_by_side() -> None:
    """The provisioned panel: long and short USD stacked per 5 minutes from the worker's
    counters (rate over the step, scaled to 5 minutes: right over any range Prometheus keeps),
    and the order count as a line on its own axis."""
    import json

    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/liqstream.json").read_text())
    (panel,) = [p for p in dashboard["panels"] if "by side" in p["title"]]
    assert panel["type"] == "timeseries" and panel["interval"] == "5m"
    usd, orders = panel["targets"]
    assert usd["expr"] == (
        "sum by (side) (rate(liqstream_liquidated_usd_total[$__rate_interval])) * 300"
    )
    assert orders["expr"] == "sum(rate(liqstream_liquidations_total[$__rate_interval])) * 300"
    custom = panel["fieldConfig"]["defaults"]["custom"]
    assert custom["drawStyle"] == "bars" and custom["stacking"]["mode"] == "normal"
    (line,) = [o for o in panel["fieldConfig"]["overrides"] if o["matcher"]["options"] == "orders"]
    properties = {p["id"]: p["value"] for p in line["properties"]}
    assert properties["custom.drawStyle"] == "line"
    assert properties["custom.stacking"]["mode"] == "none"
    assert properties["custom.axisPlacement"] == "right"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
