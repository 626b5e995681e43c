"""The way from one machine to a cluster, checked by the loaders that will read it: Prefect work-pool templates for
Docker and Kubernetes, the DVC S3 remote, and the shared services (auth on, bound to loopback on the host)."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from tests.conftest import REPO

DEPLOYMENTS = REPO / "deployments"


@pytest.mark.parametrize("kind", ["docker", "kubernetes"])
def test_work_pool_templates_pass_prefects_own_validation(kind):
    from jsonschema import Draft202012Validator
    from prefect.server.schemas.actions import WorkPoolCreate

    template = json.loads((DEPLOYMENTS / "work-pools" / f"{kind}.json").read_text())
    pool = WorkPoolCreate(name=f"adaptflow-{kind}", type=kind, base_job_template=template)
    Draft202012Validator.check_schema(pool.base_job_template["variables"])
    defaults = {name: spec["default"] for name, spec in template["variables"]["properties"].items()
                if "default" in spec}
    Draft202012Validator(template["variables"]).validate(defaults)
    assert "adaptflow" in defaults["image"]


def test_the_dvc_s3_remote_passes_dvcs_config_schema():
    from dvc.config import Config

    conf = Config.validate(Config.load_file(str(DEPLOYMENTS / "cluster" / "dvc-s3.config")))
    assert conf["core"]["remote"] == "s3" and conf["remote"]["s3"]["url"].startswith("s3://")


def test_the_projects_dvc_config_has_a_local_default_remote():
    from dvc.config import Config

    conf = Config.validate(Config.load_file(str(REPO / ".dvc" / "config")))
    assert conf["core"]["remote"] == "local" and conf["remote"]["local"]["url"] == "../.dvc-storage"


def test_shared_services_use_postgres_s3_and_auth_and_publish_on_loopback_only():
    compose = yaml.safe_load((DEPLOYMENTS / "cluster" / "docker-compose.yml").read_text())
    services = compose["services"]
    mlflow = services["mlflow"]["command"]
    assert "--backend-store-uri postgresql+psycopg2://" in mlflow and "--artifacts-destination s3://" in mlflow
    assert "--allowed-hosts" in mlflow and "--app-name basic-auth" in mlflow
    assert "PREFECT_SERVER_API_AUTH_STRING" in services["prefect"]["environment"]
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)
        for key, value in (service.get("environment") or {}).items():  # secrets come from the environment
            if re.search(r"PASSWORD|SECRET|AUTH_STRING|_KEY|CONNECTION_URL", key):
                assert "${" in value, (name, key)
    template = (DEPLOYMENTS / "cluster" / "mlflow-auth.ini.template").read_text()
    assert "admin_password = ${MLFLOW_ADMIN_PASSWORD}" in template
