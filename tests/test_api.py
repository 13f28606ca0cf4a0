"""The HTTP API in process (httpx against the ASGI app), with a hashing embedder for speed and no LLM server:
every documented error path, ingest/update/delete over HTTP, jobs, streaming, and LLM-down behaviour."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.services import build_services
from app.settings import Settings
from generation.llm_server import free_port
from ingestion.embedder import HashingEmbedder

DOCS = [
    {
        "id": "p1",
        "title": "Photosynthesis",
        "text": "Plants turn light into chemical energy in chloroplasts.",
    },
    {
        "id": "p2",
        "title": "Mitochondria",
        "text": "Mitochondria produce ATP for the cell through respiration.",
    },
    {"title": "Volcanoes", "text": "Volcanoes erupt lava, ash and gases.", "metadata": {"topic": "geology"}},
]


def make_client(tmp_path: Path, **overrides: object) -> TestClient:
    settings = Settings(
        data_dir=tmp_path,
        llm_base_url=f"http://127.0.0.1:{free_port()}/v1",  # nothing listens there
        llm_timeout_s=5,
        llm_connect_timeout_s=1,
        **overrides,  # type: ignore[arg-type]
    )
    return TestClient(create_app(settings, lambda s: build_services(s, embedder=HashingEmbedder(64))))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with make_client(tmp_path) as c:
        yield c


def ingest(client: TestClient, docs: list[dict[str, object]], kb: str = "kb") -> dict[str, object]:
    r = client.post("/ingest", json={"kb": kb, "documents": docs})
    assert r.status_code == 200, r.text
    return r.json()


def assert_error(r: object, status: int, code: str, words: str) -> None:
    assert r.status_code == status, r.text  # type: ignore[attr-defined]
    err = r.json()["error"]  # type: ignore[attr-defined]
    assert err["code"] == code
    assert words.lower() in err["message"].lower(), err


def test_ingest_query_update_delete(client: TestClient) -> None:
    body = ingest(client, DOCS)
    assert body["documents_added"] == 3 and body["chunks_added"] == 3
    derived_id = body["document_ids"][2]
    assert len(derived_id) == 16  # content-hash id
    assert ingest(client, DOCS)["documents_unchanged"] == 3

    r = client.post("/query", json={"kb": "kb", "query": "mitochondria ATP", "generate": False, "top_k": 2})
    assert r.status_code == 200
    out = r.json()
    assert out["answer"] is None and out["generation_error"] is None
    assert out["results"][0]["doc_id"] == "p2" and out["results"][0]["chunk_id"] == "p2#0"
    ranks = out["trace"]["ranks"][0]
    assert ranks["sparse_rank"] == 1 and ranks["fused_rank"] is not None
    assert {"encode", "sparse", "dense", "fuse"} <= set(out["trace"]["timings_ms"])

    updated = ingest(client, [{"id": "p2", "title": "Mitochondria", "text": "Ribosomes build proteins."}])
    assert updated["documents_updated"] == 1 and updated["chunks_deleted"] == 1
    r = client.post("/query", json={"kb": "kb", "query": "ATP respiration", "generate": False, "mode": "bm25"})
    assert "p2" not in [x["doc_id"] for x in r.json()["results"]]

    assert client.get("/kbs/kb").json()["documents"] == 3
    r = client.delete(f"/kbs/kb/documents/{derived_id}")
    assert r.status_code == 200 and r.json()["chunks_deleted"] == 1
    assert client.get("/kbs/kb").json()["documents"] == 2
    assert [k["name"] for k in client.get("/kbs").json()] == ["kb"]
    assert client.get("/kbs/kb/documents/p1").json()["chunks"] == 1


def test_not_found_errors(client: TestClient) -> None:
    assert_error(client.post("/query", json={"kb": "nope", "query": "x"}), 404, "kb_not_found", "nope")
    assert_error(client.get("/kbs/nope"), 404, "kb_not_found", "nope")
    ingest(client, DOCS[:1])
    assert_error(client.delete("/kbs/kb/documents/zzz"), 404, "document_not_found", "zzz")
    assert_error(client.delete("/kbs/nope/documents/zzz"), 404, "kb_not_found", "nope")
    assert_error(client.get("/jobs/unknown"), 404, "not_found", "unknown")


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ({"kb": "kb", "query": ""}, "empty"),
        ({"kb": "kb", "query": "   "}, "empty"),
        ({"kb": "kb", "query": "x" * 2001}, "limit is 2000"),
        ({"kb": "kb", "query": "ok", "top_k": 0}, "top_k"),
        ({"kb": "kb", "query": "ok", "top_k": 101}, "top_k"),
        ({"kb": "kb"}, "query"),
        ({"kb": "kb", "query": "ok", "mode": "magic"}, "mode"),
    ],
)
def test_bad_queries_are_422(client: TestClient, payload: dict[str, object], words: str) -> None:
    ingest(client, DOCS[:1])
    r = client.post("/query", json=payload)
    assert r.status_code == 422, r.text
    assert words in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ({"kb": "kb", "documents": []}, "documents"),
        ({"kb": "kb", "documents": [{"text": "  "}]}, "text is empty"),
        ({"kb": "../etc", "documents": [{"text": "x"}]}, "invalid knowledge base name"),
        ({"documents": [{"text": "x"}]}, "kb"),
        ({"kb": "kb", "documents": [{"text": "x", "colour": "red"}]}, "colour"),
    ],
)
def test_bad_ingests_are_422_and_store_nothing(client: TestClient, payload: dict[str, object], words: str) -> None:
    ingest(client, DOCS)
    r = client.post("/ingest", json=payload)
    assert r.status_code == 422, r.text
    assert words in r.json()["error"]["message"]
    assert client.get("/kbs/kb").json()["documents"] == 3


def test_malformed_json_is_422(client: TestClient) -> None:
    r = client.post("/ingest", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "json" in r.json()["error"]["message"].lower()


def test_file_uploads(client: TestClient) -> None:
    files = [
        (
            "files",
            (
                "notes.md",
                b"# Coral reefs\n\nCoral reefs host a quarter of marine species.\n",
                "text/markdown",
            ),
        ),
        (
            "files",
            (
                "page.html",
                b"<html><head><title>Tides</title></head><body><h1>Tides</h1>"
                b"<p>The moon pulls the oceans.</p><script>x()</script></body></html>",
                "text/html",
            ),
        ),
        ("files", ("plain.txt", b"Glaciers carve valleys over millennia.", "text/plain")),
    ]
    r = client.post("/ingest", data={"kb": "files", "metadata": json.dumps({"batch": 7})}, files=files)
    assert r.status_code == 200, r.text
    assert r.json()["documents_added"] == 3
    res = client.post("/query", json={"kb": "files", "query": "moon oceans", "generate": False}).json()["results"]
    assert res[0]["title"] == "Tides" and "x()" not in res[0]["text"]
    assert res[0]["metadata"]["batch"] == 7 and res[0]["metadata"]["source"] == "page.html"


def test_unsupported_file_type_is_415(client: TestClient) -> None:
    r = client.post("/ingest", data={"kb": "files"}, files=[("files", ("x.exe", b"MZ\x90\x00", "application/x-msdos"))])
    assert_error(r, 415, "unsupported_file_type", ".exe")
    assert client.get("/kbs/files").status_code == 404  # nothing was created


def test_corrupt_pdf_is_422(client: TestClient) -> None:
    r = client.post(
        "/ingest",
        data={"kb": "files"},
        files=[("files", ("bad.pdf", b"%PDF-1.4 garbage", "application/pdf"))],
    )
    assert r.status_code == 422 and "pdf" in r.json()["error"]["message"].lower()


def test_body_too_large_is_413(tmp_path: Path) -> None:
    with make_client(tmp_path, max_request_bytes=2048) as client:
        ingest(client, DOCS[:1])
        r = client.post("/ingest", json={"kb": "kb", "documents": [{"text": "word " * 2000}]})
        assert_error(r, 413, "payload_too_large", "2048")
        big = io.BytesIO(b"a" * 5000)
        r = client.post("/ingest", data={"kb": "kb"}, files=[("files", ("big.txt", big, "text/plain"))])
        assert r.status_code == 413
        assert client.get("/kbs/kb").json()["documents"] == 1


def test_background_ingest_job_reports_progress(client: TestClient) -> None:
    docs = [{"id": f"d{i}", "text": f"document {i} about subject {i % 5}"} for i in range(300)]
    r = client.post("/ingest?wait=false", json={"kb": "bg", "documents": docs})
    assert r.status_code == 202
    job_id = r.json()["job_id"]
    deadline = time.monotonic() + 30
    while (job := client.get(f"/jobs/{job_id}").json())["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert job["status"] == "succeeded", job
    assert job["result"]["documents_added"] == 300 and job["done"] == job["total"] == 300


def test_llm_down_retrieval_still_answers_with_a_generation_error(client: TestClient) -> None:
    ingest(client, DOCS)
    t = time.monotonic()
    r = client.post("/query", json={"kb": "kb", "query": "what do mitochondria make?"})
    assert time.monotonic() - t < 5
    assert r.status_code == 200
    out = r.json()
    assert out["answer"] is None and out["results"][0]["doc_id"] == "p2"
    assert out["generation_error"]["status"] == 504 and out["generation_error"]["code"] == "generation_timeout"
    assert "unreachable" in out["generation_error"]["message"]


def test_llm_down_stream_sends_results_then_error(client: TestClient) -> None:
    ingest(client, DOCS)
    with client.stream("POST", "/query", json={"kb": "kb", "query": "mitochondria", "stream": True}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line.split(": ", 1)[1] for line in r.iter_lines() if line.startswith("event: ")]
    assert events == ["results", "error", "done"]


def test_health_and_ready(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["retrieval"] is True and ready.json()["llm"]["reachable"] is False


def test_openapi_documents_the_routes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {
        "/ingest",
        "/query",
        "/kbs",
        "/kbs/{kb}",
        "/kbs/{kb}/documents/{doc_id}",
        "/health",
        "/ready",
    } <= set(spec["paths"])
    assert "multipart/form-data" in spec["paths"]["/ingest"]["post"]["requestBody"]["content"]


def test_chinese_documents_are_searchable_with_bm25(client: TestClient) -> None:
    docs = [
        {"id": "zh1", "title": "机器学习", "text": "机器学习是人工智能的一个分支，研究计算机如何从数据中学习。"},
        {"id": "zh2", "title": "天气", "text": "今天北京的天气很好，阳光明媚，适合去公园散步。"},
        {"id": "en", "title": "Weather", "text": "The weather in Paris is rainy today."},
    ]
    ingest(client, docs, kb="zh")
    r = client.post("/query", json={"kb": "zh", "query": "人工智能和数据", "generate": False, "mode": "bm25"})
    assert [x["doc_id"] for x in r.json()["results"]][:1] == ["zh1"]
    r = client.post("/query", json={"kb": "zh", "query": "北京天气", "generate": False, "mode": "bm25"})
    assert [x["doc_id"] for x in r.json()["results"]][:1] == ["zh2"]
