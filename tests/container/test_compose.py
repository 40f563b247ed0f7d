"""compose.yaml, read as Compose would (no Compose in CI): valid YAML and the deployment it promises.

Two replicas of the image behind the load balancer, API keys from the env file (never in the file
itself), Redis wired through ``BROWSER_SERVICE_REDIS_URL``, the remote browser server only on request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_two_replicas_share_redis_and_read_keys_from_the_env_file() -> None:
    services = compose()["services"]
    service = services["browser-service"]
    assert service["build"] == "."
    assert service["deploy"]["replicas"] == 2
    assert service["env_file"] == "deploy/browser-service.env"
    assert service["environment"] == {"BROWSER_SERVICE_REDIS_URL": "redis://redis:6379/0"}
    assert "ports" not in service  # reached through the load balancer only
    assert service["depends_on"] == {"redis": {"condition": "service_healthy"}}
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert services["lb"]["ports"] == ["8000:8000"]
    assert services["lb"]["depends_on"] == {"browser-service": {"condition": "service_healthy"}}
    assert services["browsers"]["profiles"] == ["remote-browsers"]


def test_env_example_sets_keys_and_nginx_points_at_the_replicas() -> None:
    example = (ROOT / "deploy" / "browser-service.env.example").read_text().splitlines()
    settings = dict(line.split("=", 1) for line in example if line and not line.startswith("#"))
    assert settings["BROWSER_SERVICE_API_KEYS"]
    assert all(name.startswith("BROWSER_SERVICE_") for name in settings)
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "server browser-service:8000;" in nginx
    assert "proxy_pass http://browser_service;" in nginx
