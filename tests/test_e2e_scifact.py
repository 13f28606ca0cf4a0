"""End to end over real HTTP with the real packaged MiniLM (ONNX int8), FAISS, tantivy and SQLite:
~300 SciFact documents ingested through POST /ingest, their test claims asked through POST /query."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.services import build_services
from app.settings import Settings
from ingestion.embedder import SentenceTransformerEmbedder
from retrieval.beir import load_dataset, load_split
from tests.live_server import live_server

pytestmark = pytest.mark.slow


def scifact_subset(
    scifact_dir: Path, n_docs: int = 300
) -> tuple[list[dict[str, object]], dict[str, str], dict[str, set[str]]]:
    data = load_dataset(scifact_dir)
    qrels = load_split(scifact_dir, "test")
    relevant: list[str] = []
    for rel in qrels.values():
        relevant += [d for d in rel if d not in relevant]
    wanted = set(relevant[: n_docs * 2 // 3])
    docs = [d for d in data.corpus if d.id in wanted]
    docs += [d for d in data.corpus if d.id not in wanted][: n_docs - len(docs)]
    ids = {d.id for d in docs}
    claims = {q: data.queries[q] for q, rel in qrels.items() if set(rel) <= ids}
    payload = [{"id": d.id, "title": d.title, "text": d.text} for d in docs]
    return payload, claims, {q: set(qrels[q]) for q in claims}


def test_scifact_subset_over_http(scifact_dir: Path, minilm: SentenceTransformerEmbedder, tmp_path: Path) -> None:
    docs, claims, qrels = scifact_subset(scifact_dir)
    assert len(docs) == 300 and len(claims) >= 100
    settings = Settings(data_dir=tmp_path, llm_base_url="http://127.0.0.1:9/v1")
    factory = lambda s: build_services(s, embedder=minilm)  # noqa: E731
    with live_server(settings, factory) as http:
        for start in range(0, len(docs), 100):
            r = http.post("/ingest", json={"kb": "scifact", "documents": docs[start : start + 100]})
            assert r.status_code == 200, r.text
        stats = http.get("/kbs/scifact").json()
        assert stats["documents"] == 300 and stats["chunks"] >= 300
        hits, before = 0, {}
        for qid, claim in claims.items():
            r = http.post("/query", json={"kb": "scifact", "query": claim, "top_k": 10, "generate": False})
            assert r.status_code == 200
            before[qid] = [x["chunk_id"] for x in r.json()["results"]]
            hits += bool({x["doc_id"] for x in r.json()["results"]} & qrels[qid])
        assert hits / len(claims) >= 0.85, f"relevant doc in top 10 for {hits}/{len(claims)} claims"

    # persistence: a new process-equivalent (new app, same data dir) serves the same answers
    with live_server(settings, factory) as http:
        assert http.get("/kbs/scifact").json()["documents"] == 300
        for qid, claim in list(claims.items())[:30]:
            r = http.post("/query", json={"kb": "scifact", "query": claim, "generate": False, "top_k": 10})
            assert [x["chunk_id"] for x in r.json()["results"]] == before[qid]
