"""End to end with the real local LLM: the llama.cpp server with SmolLM2-135M-Instruct (tests/llm_fixture.py),
the real MiniLM, over real HTTP: a grounded answer whose citations point at retrieved chunks, and streaming."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.services import build_services
from app.settings import Settings
from generation.llm_server import LlamaServer
from ingestion.embedder import SentenceTransformerEmbedder
from tests.live_server import live_server

pytestmark = pytest.mark.slow

DOCS = [
    {
        "id": "eiffel",
        "title": "Eiffel Tower",
        "text": "The Eiffel Tower is a wrought-iron lattice tower in Paris, France. It was completed in 1889 and "
        "is 330 metres tall.",
    },
    {
        "id": "liberty",
        "title": "Statue of Liberty",
        "text": "The Statue of Liberty stands on Liberty Island in New York Harbor. It was dedicated in 1886.",
    },
    {
        "id": "coffee",
        "title": "Coffee",
        "text": "Coffee is brewed from roasted coffee beans, the seeds of berries from Coffea plants.",
    },
]


@pytest.fixture
def settings(tmp_path: Path, llm_server: LlamaServer) -> Settings:
    return Settings(
        data_dir=tmp_path,
        llm_base_url=llm_server.base_url,
        llm_model=llm_server.model,
        llm_timeout_s=120,
        llm_passages=3,
    )


def test_grounded_answer_with_valid_citations(settings: Settings, minilm: SentenceTransformerEmbedder) -> None:
    with live_server(settings, lambda s: build_services(s, embedder=minilm)) as http:
        assert http.post("/ingest", json={"kb": "facts", "documents": DOCS}).status_code == 200
        ready = http.get("/ready").json()
        assert ready["llm"]["reachable"] is True
        r = http.post("/query", json={"kb": "facts", "query": "In which city is the Eiffel Tower?", "top_k": 3})
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["generation_error"] is None
        assert out["results"][0]["doc_id"] == "eiffel"
        assert out["answer"] and "paris" in out["answer"].lower(), out["answer"]
        assert out["citations"], "the answer cites nothing"
        result_chunks = {x["chunk_id"]: x["doc_id"] for x in out["results"]}
        for c in out["citations"]:
            assert 1 <= c["number"] <= 3
            assert result_chunks[c["chunk_id"]] == c["doc_id"]
        assert "eiffel" in {c["doc_id"] for c in out["citations"]}, out
        assert out["trace"]["timings_ms"]["generate"] > 0


def test_streamed_answer(settings: Settings, minilm: SentenceTransformerEmbedder) -> None:
    with live_server(settings, lambda s: build_services(s, embedder=minilm)) as http:
        http.post("/ingest", json={"kb": "facts", "documents": DOCS})
        body = {"kb": "facts", "query": "Where does the Statue of Liberty stand?", "stream": True, "top_k": 3}
        events: list[tuple[str, dict[str, object]]] = []
        with http.stream("POST", "/query", json=body) as r:
            assert r.status_code == 200
            event = ""
            for line in r.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    events.append((event, json.loads(line[6:])))
        kinds = [e for e, _ in events]
        assert kinds[0] == "results" and kinds[-2:] == ["answer", "done"]
        deltas = [d["text"] for e, d in events if e == "delta"]
        assert len(deltas) > 1
        final = dict(events)["answer"]
        streamed = "".join(deltas).lower()
        assert "liberty island" in streamed or "new york" in streamed, streamed
        assert all(c["doc_id"] in {d["id"] for d in DOCS} for c in final["citations"])  # type: ignore[union-attr]
