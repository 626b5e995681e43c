"""The cluster stack starts as written: a database per service, an object store for the artifacts, every command's
options known to the installed CLIs; and MLflow and Prefect servers on a real PostgreSQL track a flow run end to
end (Docker itself does not run here)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, SAMPLE, free_port, start_process, stop_process_group

CLUSTER = REPO / "deployments" / "cluster"
BIN = Path(sys.executable).parent
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None)  # Debian's postgresql package


def _compose() -> dict:
    return yaml.safe_load((CLUSTER / "docker-compose.yml").read_text(encoding="utf-8"))


def _command(service: dict) -> list[str]:
    """A service's command as the shell inside the container splits it, `${VAR...}` left as one word."""
    return shlex.split(re.sub(r"\$\{[^}]*\}", "VAR", service["command"]))


def _database_urls(compose: dict) -> dict[str, str]:
    """Each service's PostgreSQL connection URL (in its command or its environment), by service."""
    urls = {}
    for name, service in compose["services"].items():
        text = " ".join([str(service.get("command", "")), *map(str, (service.get("environment") or {}).values())])
        found = re.findall(r"postgresql[+\w]*://\S+", text)
        if found:
            urls[name] = found[0]
    return urls


def test_every_service_has_its_own_database_and_the_init_script_creates_each():
    compose = _compose()
    urls = _database_urls(compose)
    databases = {name: url.rsplit("/", 1)[1] for name, url in urls.items()}
    assert databases == {"prefect": "prefect", "mlflow": "mlflow"}
    auth = (CLUSTER / "mlflow-auth.ini.template").read_text(encoding="utf-8")
    auth_database = re.search(r"database_uri = postgresql\+psycopg2://\S+/(\w+)", auth).group(1)
    created = set(re.findall(r"CREATE DATABASE (\w+);", (CLUSTER / "postgres-init.sql").read_text()))
    assert created == {*databases.values(), auth_database} and len(created) == 3
    mounts = compose["services"]["postgres"]["volumes"]
    assert "./postgres-init.sql:/docker-entrypoint-initdb.d/10-databases.sql:ro" in mounts


def test_mlflow_has_its_auth_extra_and_an_object_store_to_write_to():
    compose, dockerfile = _compose(), (REPO / "Dockerfile").read_text(encoding="utf-8")
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(req.startswith("mlflow[auth]") for req in extras["server"])
    assert 'pip install -c constraints.txt ".[server]"' in dockerfile
    assert {"docker", "kubernetes"} <= set(extras) and extras["docker"][0].startswith("prefect-docker")
    mlflow = compose["services"]["mlflow"]
    assert "--app-name basic-auth" in mlflow["command"]
    endpoint = mlflow["environment"]["MLFLOW_S3_ENDPOINT_URL"]
    assert endpoint.endswith(":-http://minio:9000}") and "minio" in compose["services"]
    assert mlflow["depends_on"]["create-bucket"] == {"condition": "service_completed_successfully"}
    assert "TORCH_INDEX" in dockerfile  # the GPU variant: --build-arg TORCH_INDEX=.../cu128


def test_the_basic_auth_app_imports_where_the_server_extra_is_installed():
    done = subprocess.run([sys.executable, "-c", "import mlflow.server.auth"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize(("service", "cli"), [("mlflow", ["mlflow", "server"]),
                                              ("prefect", ["prefect", "server", "start"])])
def test_each_service_command_uses_only_options_its_cli_has(service, cli):
    words = _command(_compose()["services"][service])
    assert words[:len(cli)] == cli
    helped = subprocess.run([str(BIN / cli[0]), *cli[1:], "--help"], capture_output=True, text=True, check=True,
                            env={**os.environ, "COLUMNS": "200"}).stdout
    known = set(re.findall(r"(--[a-z][a-z0-9-]*)", helped))
    used = [word.split("=")[0] for word in words if word.startswith("--")]
    assert used and not [option for option in used if option not in known]


# --- MLflow and Prefect on a real PostgreSQL -------------------------------------------------------------------------

@pytest.fixture
def postgres():
    """Debian's PostgreSQL on 127.0.0.1 (a throwaway cluster, trust auth), its databases made by the compose
    stack's init script; stopped and removed after. Yields the server's base URL without a database."""
    if PG_BIN is None:
        pytest.skip("PostgreSQL is not installed (/usr/lib/postgresql/*/bin): apt-get install postgresql")
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="adaptflow-pg-"))  # not under pytest's 0700 tmp: the postgres user reads it
    if as_postgres:
        shutil.chown(root, "postgres")
    data, port = root / "data", free_port()
    subprocess.run([*as_postgres, str(PG_BIN / "initdb"), "-D", str(data), "-U", "adaptflow", "--auth=trust"],
                   check=True, capture_output=True)
    subprocess.run([*as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "start",
                    "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1"], check=True, capture_output=True)
    try:
        subprocess.run([str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "adaptflow", "-d", "postgres",
                        "-v", "ON_ERROR_STOP=1", "-f", str(CLUSTER / "postgres-init.sql")],
                       check=True, capture_output=True)
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([*as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
                       check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _serve(command: list[str], env: dict[str, str], health: str, log: Path) -> subprocess.Popen:
    process = start_process(command, env, log)
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(health, timeout=2):
                return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                stop_process_group(process)
                pytest.fail(f"{command[0]} did not start: {log.read_text()[-2000:]}")
            time.sleep(1)


@pytest.mark.integration
def test_a_flow_run_is_tracked_through_mlflow_and_prefect_servers_on_postgresql(postgres, tiny_model_dir, tmp_path):
    import psycopg2

    mlflow_port, prefect_port = free_port(), free_port()
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_API_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://adaptflow@{postgres}/prefect"}
    env.pop("PREFECT_API_URL", None)
    servers = [
        _serve([str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(mlflow_port),
                "--backend-store-uri", f"postgresql+psycopg2://adaptflow@{postgres}/mlflow",
                "--artifacts-destination", str(tmp_path / "artifacts")],
               env, f"http://127.0.0.1:{mlflow_port}/health", tmp_path / "mlflow.log"),
        _serve([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(prefect_port)],
               env, f"http://127.0.0.1:{prefect_port}/api/health", tmp_path / "prefect.log"),
    ]
    try:
        params = tmp_path / "params.yaml"
        params.write_text(yaml.safe_dump({
            "data": {"source": str(SAMPLE / "electronics.csv"), "target": str(SAMPLE / "kitchen.csv")},
            "split": {"target_test_size": 60, "target_labeled_per_class": 10},
            "model": {"name_or_path": str(tiny_model_dir), "max_length": 48},
            "train": {"epochs": 1, "learning_rate": 1e-2, "freeze_embeddings": False},
            "similarity": {"sample_size": 100, "permutations": 20, "cache_dir": str(tmp_path / "cache")},
            "output": {"dir": str(tmp_path / "outputs")},
            "tracking": {"uri": f"http://127.0.0.1:{mlflow_port}"}}))
        run_env = {**os.environ, "PREFECT_API_URL": f"http://127.0.0.1:{prefect_port}/api",
                   "PREFECT_HOME": str(tmp_path / "client-home")}
        done = subprocess.run([str(BIN / "adaptflow"), "run", "--params", str(params), "--json"], env=run_env,
                              capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        assert summary["registered"]["version"] == 1
    finally:
        for server in servers:
            stop_process_group(server)

    # what the servers stored is in PostgreSQL: the run, its registered version, the flow run and its task runs
    with psycopg2.connect(f"postgresql://adaptflow@{postgres}/mlflow") as connection, connection.cursor() as cursor:
        cursor.execute("SELECT status FROM runs WHERE run_uuid = %s", (summary["mlflow_run_id"],))
        assert cursor.fetchall() == [("FINISHED",)]
        cursor.execute("SELECT name, version FROM model_versions")
        assert cursor.fetchall() == [("adaptflow-classifier", 1)]
    with psycopg2.connect(f"postgresql://adaptflow@{postgres}/prefect") as connection, connection.cursor() as cursor:
        cursor.execute("SELECT state_type FROM flow_run")
        assert cursor.fetchall() == [("COMPLETED",)]
        cursor.execute("SELECT count(*) FROM task_run WHERE state_type = 'COMPLETED'")
        assert cursor.fetchone()[0] >= 6
