"""Query speed, ours vs the LangChain recipe, measured in one process on the same corpus and query encoder.

Ours: `RagPipeline.retrieve` (tantivy BM25 + FAISS, RRF, LightGBM LTR), as `POST /query` runs it without HTTP.
LangChain: `EnsembleRetriever` over `BM25Retriever` (rank-bm25) + a FAISS vector store, weights 0.5/0.5, k=10.
Both index the same chunks with the same vectors (read from our store, not re-embedded) and encode queries
with the same embedder (ours, ONNX int8 by default), so the difference is the retrieval machinery.

    .venv/bin/python -m bench.speed [--scale-docs 100000] [--scale-queries 50]

Needs the SciFact evaluation knowledge base (built on first use, as `rag eval` does). Writes the "speed"
section of docs/benchmarks.md and bench/results/speed.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app.evaluate import ProgressBars, eval_kb_name
from app.services import build_embedder, build_services
from app.settings import Settings
from bench.langchain_baseline import rss_bytes, timed_build
from bench.report import machine_line, write_section
from bench.scale_corpus import SCALE_CACHE_DIR, build_scale_corpus
from ingestion.chunking import RecursiveChunker
from ingestion.embedder import Embedder
from ingestion.knowledge_base import KnowledgeBase, embedding_text
from ingestion.models import Document
from ingestion.registry import KnowledgeBaseRegistry
from retrieval.beir import load_dataset, load_split
from retrieval.evaluation import doc_run, ensure_corpus_kb
from retrieval.hybrid import HybridRetriever
from retrieval.metrics import evaluate
from retrieval.pipeline import QueryOptions, RagPipeline
from retrieval.reranking import LtrRerankerProvider

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"


class LookupEmbedder:
    """Documents: vectors looked up by text (precomputed); queries: the real embedder."""

    def __init__(self, real: Embedder, table: dict[str, np.ndarray]) -> None:
        self.real, self.table = real, table
        self.name, self.dim = real.name, real.dim

    def embed_documents(
        self,
        texts: Sequence[str],
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        out = np.vstack([self.table[t] for t in texts]).astype(np.float32)
        if progress:
            progress(len(texts))
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.real.embed_query(text)

    def count_tokens(self, text: str) -> int:
        return len(text.split())


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def time_ours(
    pipeline: RagPipeline, kb: str, queries: dict[str, str], rerank: bool
) -> tuple[dict[str, Any], list[float], dict[str, float]]:
    """The run, per-query wall ms, and the p50 of each stage the pipeline's trace times."""
    run, lat, stages = {}, [], {}
    pipeline.retrieve(QueryOptions(kb, next(iter(queries.values())), top_k=10, generate=False, rerank=rerank))
    for qid, text in queries.items():
        t = time.perf_counter()
        res = pipeline.retrieve(QueryOptions(kb, text, top_k=10, generate=False, rerank=rerank))
        lat.append((time.perf_counter() - t) * 1000)
        run[qid] = doc_run([(c.chunk.doc_id, 0.0) for c in res.results])
        for stage, ms in res.trace["timings_ms"].items():
            stages.setdefault(stage, []).append(ms)
    return run, lat, {k: pct(v, 50) for k, v in stages.items()}


def time_langchain(ensemble: Any, queries: dict[str, str]) -> tuple[dict[str, Any], list[float]]:
    run, lat = {}, []
    ensemble.search(next(iter(queries.values())))
    for qid, text in queries.items():
        t = time.perf_counter()
        ids = ensemble.search(text)
        lat.append((time.perf_counter() - t) * 1000)
        run[qid] = doc_run([(d.rsplit("#", 1)[0], 0.0) for d in ids])  # chunk id -> document id
    return run, lat


def chunk_corpus(kb: KnowledgeBase) -> tuple[list[Document], np.ndarray]:
    """The knowledge base's live chunks as LangChain documents (id = chunk id) and their stored vectors."""
    docs, vecs = [], []
    for sc in kb.store.live_chunks():
        c = sc.chunk
        docs.append(Document(c.chunk_id, c.text, c.title))
        vecs.append(sc.embedding)
    return docs, np.vstack(vecs)


def scifact_run(settings: Settings, dataset_dir: Path) -> dict[str, Any]:
    data = load_dataset(dataset_dir)
    qrels = load_split(dataset_dir, "test")
    queries = {q: data.queries[q] for q in qrels}
    services = build_services(settings)
    try:
        kb = ensure_corpus_kb(services.registry, eval_kb_name(settings, dataset_dir), data, ProgressBars(True))
        out: dict[str, Any] = {"chunks": len(kb.chunks), "queries": len(queries)}
        enc = [0.0] * 50
        for i, text in enumerate(list(queries.values())[:50]):
            t = time.perf_counter()
            services.embedder.embed_query(text)
            enc[i] = (time.perf_counter() - t) * 1000
        out["encode_p50_ms"] = pct(enc, 50)
        for name, rerank in (("ours_hybrid", False), ("ours_hybrid_ltr", True)):
            run, lat, stages = time_ours(services.pipeline, kb.name, queries, rerank)
            out[name] = {"p50_ms": pct(lat, 50), "p95_ms": pct(lat, 95), **evaluate(qrels, run), "stage_p50_ms": stages}
        docs, vecs = chunk_corpus(kb)
        ensemble, build_s, _ = timed_build(docs, vecs, services.embedder.embed_query, 10)
        run, lat = time_langchain(ensemble, queries)
        out["langchain"] = {
            "p50_ms": pct(lat, 50),
            "p95_ms": pct(lat, 95),
            "build_s": build_s,
            **evaluate(qrels, run),
        }
    finally:
        services.close()
    return out


def scale_run(settings: Settings, n_docs: int, n_queries: int, dataset_dir: Path, cache: Path) -> dict[str, Any]:
    data = load_dataset(dataset_dir)
    queries = dict(list({q: data.queries[q] for q in load_split(dataset_dir, "test")}.items())[:n_queries])
    real = build_embedder(settings)
    docs, vectors = build_scale_corpus(
        n_docs,
        0,
        cache / "scale",
        dataset_dir=dataset_dir,
        embeddings_dir=_doc_embeddings(settings, dataset_dir, cache),
    )
    table = {embedding_text(d.title, d.text): v for d, v in zip(docs, vectors, strict=True)}
    embedder = LookupEmbedder(real, table)
    out: dict[str, Any] = {"documents": len(docs), "queries": len(queries)}
    with tempfile.TemporaryDirectory() as tmp:
        # one chunk per document, so every chunk has its precomputed vector
        registry = KnowledgeBaseRegistry(Path(tmp), embedder, lambda: RecursiveChunker(4096, 0, embedder.count_tokens))
        gc.collect()
        before = rss_bytes()
        t = time.perf_counter()
        kb = registry.get_or_create("scale")
        for start in range(0, len(docs), 5000):
            kb.ingest(docs[start : start + 5000])
        out["ours_build_s"] = time.perf_counter() - t
        gc.collect()
        out["chunks"] = len(kb.chunks)
        out["ours_rss_per_chunk_kb"] = (rss_bytes() - before) / len(kb.chunks) / 1024
        pipeline = RagPipeline(
            registry,
            HybridRetriever(embedder, settings.candidates_per_retriever, settings.rrf_k),
            LtrRerankerProvider(settings.reranker_model_dir, settings.rerank_threads, settings.rerank_depth),
        )
        for name, rerank in (("ours_hybrid", False), ("ours_hybrid_ltr", True)):
            _, lat, _ = time_ours(pipeline, "scale", queries, rerank)
            out[name] = {"p50_ms": pct(lat, 50), "p95_ms": pct(lat, 95)}
        ensemble, build_s, rss = timed_build(docs, vectors, real.embed_query, 10)
        out["langchain_build_s"] = build_s
        out["langchain_rss_per_chunk_kb"] = rss / len(docs) / 1024
        _, lat = time_langchain(ensemble, queries)
        out["langchain"] = {"p50_ms": pct(lat, 50), "p95_ms": pct(lat, 95)}
        registry.close()
    return out


def _doc_embeddings(settings: Settings, dataset_dir: Path, cache: Path) -> Path:
    """SciFact document vectors for the synthetic corpus: each document's first chunk, from our store."""
    target = cache / "scifact_doc_vectors"
    if (target / "docs.npy").exists():
        return target
    services = build_services(settings)
    try:
        data = load_dataset(dataset_dir)
        kb = ensure_corpus_kb(services.registry, eval_kb_name(settings, dataset_dir), data)
        first: dict[str, np.ndarray] = {}
        for sc in kb.store.live_chunks():
            if sc.chunk.position == 0:
                first[sc.chunk.doc_id] = sc.embedding
        ids = [d.id for d in data.corpus]
        target.mkdir(parents=True, exist_ok=True)
        np.save(target / "docs.npy", np.vstack([first[i] for i in ids]))
        (target / "doc_ids.json").write_text(json.dumps(ids))
        np.save(target / "queries.npy", np.zeros((0, kb.embedder.dim), np.float32))
        (target / "query_ids.json").write_text("[]")
    finally:
        services.close()
    return target


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", type=Path, default=SHARED / "scifact")
    ap.add_argument("--scale-docs", type=int, default=100_000, help="0 skips the at-scale run")
    ap.add_argument("--scale-queries", type=int, default=50)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    settings = Settings()
    cache = SCALE_CACHE_DIR.parent
    result: dict[str, Any] = {"scifact": scifact_run(settings, args.dataset)}
    if args.scale_docs:
        result["scale"] = scale_run(settings, args.scale_docs, args.scale_queries, args.dataset, cache)
    print(json.dumps(result, indent=2))
    if args.no_write:
        return
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "speed.json").write_text(json.dumps(result, indent=2))
    write_section("speed", render(result, settings))


def render(r: dict[str, Any], settings: Settings) -> str:
    s = r["scifact"]
    lc = s["langchain"]
    lines = [
        "## Query speed vs LangChain (`python -m bench.speed`)",
        "",
        f"{machine_line()}. One process, same chunks, same vectors, same query encoder "
        f"(`{settings.embedding_backend}`, single-query p50 {s['encode_p50_ms']:.2f} ms, included in every "
        "number below). LangChain: `EnsembleRetriever([BM25Retriever (rank-bm25), FAISS store], "
        "weights 0.5/0.5)`, k=10.",
        "",
        f"### SciFact: {s['chunks']} chunks, {s['queries']} test queries",
        "",
        "| pipeline | p50 ms | p95 ms | nDCG@10 (top-10 chunks) | LangChain p50 / ours p50 |",
        "|---|---|---|---|---|",
    ]
    for name in ("ours_hybrid", "ours_hybrid_ltr", "langchain"):
        m = s[name]
        ratio = lc["p50_ms"] / m["p50_ms"]
        lines.append(f"| {name} | {m['p50_ms']:.2f} | {m['p95_ms']:.2f} | {m['ndcg@10']:.4f} | {ratio:.1f}× |")
    stages = s["ours_hybrid_ltr"]["stage_p50_ms"]
    lines += [
        "",
        "Where the time of ours_hybrid_ltr goes (p50 per stage, ms, from each query's trace): "
        + ", ".join(f"{k} {v:.2f}" for k, v in stages.items() if k != "retrieval_total")
        + ".",
    ]
    if "scale" in r:
        c = r["scale"]
        lc = c["langchain"]
        lines += [
            "",
            f"### At scale: {c['chunks']:,} chunks (SciFact + synthetic documents recombined from SciFact sentences, "
            f"vectors derived from their sources'), {c['queries']} queries",
            "",
            "| pipeline | p50 ms | p95 ms | LangChain p50 / ours p50 | build s | RSS per chunk KB |",
            "|---|---|---|---|---|---|",
        ]
        for name in ("ours_hybrid", "ours_hybrid_ltr", "langchain"):
            m = c[name]
            build = c["langchain_build_s"] if name == "langchain" else c["ours_build_s"]
            mem = c["langchain_rss_per_chunk_kb"] if name == "langchain" else c["ours_rss_per_chunk_kb"]
            lines.append(
                f"| {name} | {m['p50_ms']:.1f} | {m['p95_ms']:.1f} | {lc['p50_ms'] / m['p50_ms']:.1f}× | "
                f"{build:.1f} | {mem:.2f} |"
            )
        lines += [
            "",
            "Our build time is the whole ingest (SQLite commit, tantivy, FAISS, term statistics) with the "
            "vectors precomputed; LangChain's is building its BM25 and FAISS stores from the same vectors.",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
