"""Evaluating a BEIR dataset through the same code path the service uses (``RagPipeline.retrieve``)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from ingestion.knowledge_base import KnowledgeBase
from ingestion.registry import KnowledgeBaseRegistry
from retrieval.beir import BeirDataset, Qrels
from retrieval.hybrid import RetrievalMode
from retrieval.metrics import Run, evaluate
from retrieval.pipeline import QueryOptions, RagPipeline


class EvalPipeline(StrEnum):
    BM25 = "bm25"
    DENSE = "dense"
    HYBRID = "hybrid"
    HYBRID_LTR = "hybrid_ltr"

    def options(self, kb: str, query: str, top_k: int) -> QueryOptions:
        mode = {
            EvalPipeline.BM25: RetrievalMode.BM25,
            EvalPipeline.DENSE: RetrievalMode.DENSE,
        }.get(self, RetrievalMode.HYBRID)
        return QueryOptions(kb, query, top_k=top_k, generate=False, rerank=self is EvalPipeline.HYBRID_LTR, mode=mode)


@dataclass(slots=True)
class EvalReport:
    dataset: str
    split: str
    pipeline: str
    queries: int
    metrics: dict[str, float]
    latencies_ms: list[float] = field(repr=False, default_factory=list)
    run: Run = field(repr=False, default_factory=dict)

    @property
    def p50_ms(self) -> float:
        return float(np.percentile(self.latencies_ms, 50)) if self.latencies_ms else 0.0

    @property
    def p95_ms(self) -> float:
        return float(np.percentile(self.latencies_ms, 95)) if self.latencies_ms else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "split": self.split,
            "pipeline": self.pipeline,
            "queries": self.queries,
            **{k: round(v, 4) for k, v in self.metrics.items()},
            "p50_ms": round(self.p50_ms, 3),
            "p95_ms": round(self.p95_ms, 3),
        }

    def table(self) -> str:
        j = self.to_json()
        return (
            f"{self.dataset} {self.split} ({self.queries} queries), pipeline {self.pipeline}\n"
            f"  nDCG@10    {j['ndcg@10']:.4f}\n  Recall@100 {j['recall@100']:.4f}\n  MRR@10     {j['mrr@10']:.4f}\n"
            f"  latency    p50 {j['p50_ms']:.2f} ms, p95 {j['p95_ms']:.2f} ms"
        )


def corpus_fingerprint(corpus_path: Path, extra: str) -> str:
    h = hashlib.sha256(extra.encode())
    with corpus_path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:12]


def ensure_corpus_kb(
    registry: KnowledgeBaseRegistry,
    name: str,
    dataset: BeirDataset,
    progress: Callable[[str, int, int], None] | None = None,
    batch_docs: int = 512,
) -> KnowledgeBase:
    """The knowledge base holding ``dataset``'s corpus; reused when it already holds all of it."""
    kb = registry.get_or_create(name)
    docs_stored, _ = kb.store.counts()
    if docs_stored == len(dataset.corpus):
        return kb
    total = len(dataset.corpus)
    for start in range(0, total, batch_docs):
        part = dataset.corpus[start : start + batch_docs]

        def on_progress(stage: str, done: int, n: int, start: int = start, part_len: int = len(part)) -> None:
            if progress and stage == "embedding" and n:
                progress("ingest", start + int(part_len * done / n), total)

        kb.ingest(part, on_progress)
    if progress:
        progress("ingest", total, total)
    return kb


def doc_run(results: list[tuple[str, float]], depth: int = 100) -> dict[str, float]:
    """Chunk results (best first) → document scores: a document ranks where its best chunk ranks."""
    out: dict[str, float] = {}
    for rank, (doc_id, _) in enumerate(results):
        if doc_id not in out:
            out[doc_id] = float(-rank)
            if len(out) >= depth:
                break
    return out


def evaluate_queries(
    pipeline: RagPipeline,
    kb_name: str,
    queries: dict[str, str],
    qrels: Qrels,
    which: EvalPipeline,
    top_k: int = 1000,
    progress: Callable[[str, int, int], None] | None = None,
) -> EvalReport:
    run: Run = {}
    latencies: list[float] = []
    qids = [q for q in qrels if q in queries]
    for i, qid in enumerate(qids):
        t = time.perf_counter()
        retrieval = pipeline.retrieve(which.options(kb_name, queries[qid], top_k))
        latencies.append((time.perf_counter() - t) * 1000)
        run[qid] = doc_run([(c.chunk.doc_id, 0.0) for c in retrieval.results])
        if progress:
            progress("queries", i + 1, len(qids))
    metrics = evaluate({q: qrels[q] for q in qids}, run)
    return EvalReport("", "", str(which), len(qids), metrics, latencies, run)
