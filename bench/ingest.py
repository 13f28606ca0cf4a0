"""Ingest cost: SciFact end to end (POST /ingest in batches → searchable) against embedding the same chunks
alone with the same embedder, in one run. The ratio is what ingestion adds on top of the model.

    .venv/bin/python -m bench.ingest [--docs N] [--batch 256]

Writes the "ingest" section of docs/benchmarks.md and bench/results/ingest.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from app.main import create_app
from app.services import build_embedder, build_services
from app.settings import Settings
from bench.report import machine_line, write_section
from ingestion.knowledge_base import embedding_text
from retrieval.beir import load_dataset

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"


def run(dataset_dir: Path, n_docs: int | None, batch: int) -> dict[str, Any]:
    docs = load_dataset(dataset_dir).corpus[:n_docs]
    base = Settings()
    embedder = build_embedder(base)
    embedder.embed_documents(["warm up"] * 8)
    with tempfile.TemporaryDirectory() as tmp:
        settings = base.model_copy(update={"data_dir": Path(tmp), "model_cache_dir": base.models_dir})
        app = create_app(settings, lambda s: build_services(s, embedder=embedder))
        with TestClient(app) as http:
            timings: dict[str, float] = {}
            t = time.perf_counter()
            for start in range(0, len(docs), batch):
                body = {
                    "kb": "bench",
                    "documents": [{"id": d.id, "title": d.title, "text": d.text} for d in docs[start : start + batch]],
                }
                r = http.post("/ingest", json=body)
                r.raise_for_status()
                for k, v in r.json()["timings_ms"].items():
                    timings[k] = timings.get(k, 0.0) + v / 1000
            ingest_s = time.perf_counter() - t
            probe = http.post("/query", json={"kb": "bench", "query": docs[-1].title, "generate": False, "top_k": 10})
            assert docs[-1].id in {x["doc_id"] for x in probe.json()["results"]}, "last batch not searchable"
            kb = app.state.services.registry.get("bench")
            texts = [embedding_text(sc.chunk.title, sc.chunk.text) for sc in kb.store.live_chunks(embeddings=False)]
    t = time.perf_counter()
    for start in range(0, len(texts), 1024):
        embedder.embed_documents(texts[start : start + 1024])
    embed_s = time.perf_counter() - t
    return {
        "documents": len(docs),
        "chunks": len(texts),
        "batch": batch,
        "ingest_s": ingest_s,
        "embed_only_s": embed_s,
        "ratio": ingest_s / embed_s,
        "stage_s": timings,
        "backend": str(base.embedding_backend),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", type=Path, default=SHARED / "scifact")
    ap.add_argument("--docs", type=int, default=None, help="only the first N documents")
    ap.add_argument("--batch", type=int, default=256, help="documents per POST /ingest")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    r = run(args.dataset, args.docs, args.batch)
    print(json.dumps(r, indent=2))
    if args.no_write:
        return
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "ingest.json").write_text(json.dumps(r, indent=2))
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in r["stage_s"].items())
    write_section(
        "ingest",
        "\n".join(
            [
                "## Ingest cost (`python -m bench.ingest`)",
                "",
                f"{machine_line()}. SciFact, {r['documents']} documents → {r['chunks']} chunks, "
                f"POST /ingest in batches of "
                f"{r['batch']} (in-process ASGI client), embedder `{r['backend']}`.",
                "",
                "| end to end (upload → searchable) | embedding the same chunks alone | ratio |",
                "|---|---|---|",
                f"| {r['ingest_s']:.1f} s | {r['embed_only_s']:.1f} s | {r['ratio']:.2f}× |",
                "",
                f"Inside ingest, per stage: {stages}.",
            ]
        ),
    )


if __name__ == "__main__":
    main()
