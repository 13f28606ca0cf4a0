"""Deployment files: no Docker engine runs here, so docker-compose.yml and the Dockerfile are checked with a
YAML parser against what the service needs (and `rag` must know every command they run)."""

from __future__ import annotations

from pathlib import Path

import yaml

from app.cli import build_parser

REPO = Path(__file__).resolve().parent.parent


def compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_wires_api_to_the_llm() -> None:
    services = compose()["services"]
    assert {"api", "llm", "vllm"} <= set(services)
    api = services["api"]
    assert api["environment"]["RAG_LLM_BASE_URL"].endswith("http://llm:8080/v1}")
    assert "8000" in api["ports"][0]
    assert any(v.endswith(":/data") for v in api["volumes"])
    assert services["llm"]["healthcheck"]["test"][-1].endswith(":8080/v1/models")


def test_gpu_profile_requests_an_nvidia_device() -> None:
    vllm = compose()["services"]["vllm"]
    assert vllm["profiles"] == ["gpu"]
    device = vllm["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]


def test_commands_in_compose_and_dockerfile_exist_in_the_cli() -> None:
    parser = build_parser()
    for name in ("api", "llm"):
        cmd = compose()["services"][name]["command"]
        assert cmd[0] == "rag"
        parser.parse_args(cmd[1:])  # exits (SystemExit) on an unknown command or flag
    dockerfile = (REPO / "Dockerfile").read_text()
    assert 'CMD ["rag", "serve", "--no-llm"]' in dockerfile
    assert "torch==2.13.0" in dockerfile
