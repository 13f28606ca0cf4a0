"""The LangChain hybrid-retrieval recipe users would otherwise copy, as a benchmark baseline.

``EnsembleRetriever`` (weighted reciprocal rank fusion, c=60, weights [0.5, 0.5]) over LangChain's
``BM25Retriever`` (rank-bm25 ``BM25Okapi``, default whitespace tokenizer) and a FAISS vector store
(flat inner product over normalised all-MiniLM-L6-v2 vectors), each retriever returning k documents.
Documents are embedded and indexed as title, newline, text; the ensemble dedupes by doc id
(``id_key="id"``), not page content, so equal texts are not merged. ``search`` returns the top k fused ids.

Embedding cost is not what we compare, so the document vectors can be passed in precomputed and the
query encoder is injected: with the same encoder on both sides, the benchmark measures retrieval
overhead. ``EmbeddingMode`` picks how much encoding work a search includes:

* ``precomputed`` -- document and query vectors are looked up (pure retrieval overhead);
* ``live_query``  -- document vectors precomputed, each query encoded by MiniLM during the search;
* ``end_to_end``  -- LangChain embeds the documents itself (``FAISS.from_documents``) and each query.

Run ``python -m bench.langchain_baseline`` to print the SciFact and at-scale numbers as JSON.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from langchain_classic.retrievers import EnsembleRetriever
from langchain_community.retrievers import BM25Retriever
from langchain_community.vectorstores import FAISS
from langchain_community.vectorstores.utils import DistanceStrategy
from langchain_core.documents import Document as LcDocument
from langchain_core.embeddings import Embeddings

from bench.scale_corpus import SCIFACT_EMBEDDINGS_DIR, embedding_text, load_precomputed
from ingestion.embedder import Embedder, EmbeddingBackend, SentenceTransformerEmbedder
from ingestion.errors import InvalidInputError
from ingestion.models import Document
from retrieval.beir import load_dataset, load_split
from retrieval.metrics import Run, evaluate

QueryEncoder = Callable[[str], np.ndarray]
TextEncoder = Callable[[list[str]], np.ndarray]  # e.g. Embedder.embed_documents


class EmbeddingMode(StrEnum):
    PRECOMPUTED = "precomputed"
    LIVE_QUERY = "live_query"
    END_TO_END = "end_to_end"


class CallableEmbeddings(Embeddings):
    """A LangChain ``Embeddings`` over plain encoder functions (no hub download, no extra wrapper package)."""

    def __init__(self, embed_query: QueryEncoder, embed_texts: TextEncoder | None = None) -> None:
        self._embed_query = embed_query
        self._embed_texts = embed_texts

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if self._embed_texts is None:
            raise InvalidInputError("this Embeddings was built without a document encoder")
        return np.asarray(self._embed_texts(texts), dtype=np.float32).tolist()

    def embed_query(self, text: str) -> list[float]:
        return np.asarray(self._embed_query(text), dtype=np.float32).tolist()


def torch_minilm() -> Embedder:
    """The packaged all-MiniLM-L6-v2 on torch (normalised vectors), the encoder of the typical recipe."""
    return SentenceTransformerEmbedder("all-MiniLM-L6-v2", backend=EmbeddingBackend.TORCH)


class LangChainEnsemble:
    """A built ensemble; ``search`` runs the full LangChain retriever and returns doc ids, best first."""

    def __init__(self, retriever: EnsembleRetriever, k: int) -> None:
        self.retriever = retriever
        self.k = k

    def search(self, query: str) -> list[str]:
        docs = self.retriever.invoke(query)
        return [d.metadata["id"] for d in docs[: self.k]]


def build_ensemble(
    documents: Sequence[Document],
    embeddings: np.ndarray | None,
    embed_query: QueryEncoder,
    k: int = 10,
    *,
    embed_texts: TextEncoder | None = None,
) -> LangChainEnsemble:
    """Build the BM25 + FAISS ensemble over ``documents``.

    ``embeddings`` are the documents' vectors (rows in document order); when ``None``, LangChain embeds
    the texts itself through ``embed_texts`` (the end-to-end path). Queries always go through
    ``embed_query`` inside the FAISS retriever.
    """
    if not documents:
        raise InvalidInputError("cannot build an ensemble over no documents")
    if k < 1:
        raise InvalidInputError(f"k must be >= 1, got {k}")
    texts = [embedding_text(d) for d in documents]
    metadatas: list[dict[str, Any]] = [{"id": d.id} for d in documents]
    ids = [d.id for d in documents]
    lc_embeddings = CallableEmbeddings(embed_query, embed_texts)
    store_kwargs: dict[str, Any] = {"distance_strategy": DistanceStrategy.MAX_INNER_PRODUCT}
    if embeddings is None:
        if embed_texts is None:
            raise InvalidInputError("give either precomputed embeddings or embed_texts")
        lc_docs = [LcDocument(page_content=t, metadata=m, id=i) for t, m, i in zip(texts, metadatas, ids, strict=True)]
        store = FAISS.from_documents(lc_docs, lc_embeddings, **store_kwargs)
    else:
        vectors = np.asarray(embeddings, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(documents):
            raise InvalidInputError(f"embeddings shape {vectors.shape} does not match {len(documents)} documents")
        store = FAISS.from_embeddings(
            text_embeddings=list(zip(texts, vectors, strict=True)),
            embedding=lc_embeddings,
            metadatas=metadatas,
            ids=ids,
            **store_kwargs,
        )
    bm25 = BM25Retriever.from_texts(texts, metadatas=metadatas, ids=ids, k=k)
    dense = store.as_retriever(search_kwargs={"k": k})
    return LangChainEnsemble(EnsembleRetriever(retrievers=[bm25, dense], weights=[0.5, 0.5], id_key="id"), k)


@dataclass(frozen=True, slots=True)
class LangChainResult:
    mode: str
    n_docs: int
    n_queries: int
    k: int
    build_s: float
    p50_ms: float
    p95_ms: float
    index_rss_mb: float
    metrics: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rss_bytes() -> int:
    """Resident set size of this process (Linux ``/proc``)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise OSError("VmRSS not found in /proc/self/status")


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def timed_build(
    documents: Sequence[Document],
    embeddings: np.ndarray | None,
    embed_query: QueryEncoder,
    k: int,
    embed_texts: TextEncoder | None = None,
) -> tuple[LangChainEnsemble, float, int]:
    """``build_ensemble`` plus its wall time (s) and the process RSS growth it caused (bytes)."""
    gc.collect()
    before = rss_bytes()
    t0 = time.perf_counter()
    ensemble = build_ensemble(documents, embeddings, embed_query, k, embed_texts=embed_texts)
    build_s = time.perf_counter() - t0
    gc.collect()
    return ensemble, build_s, rss_bytes() - before


def time_queries(ensemble: LangChainEnsemble, queries: dict[str, str]) -> tuple[Run, list[float]]:
    """Run every query once (after one warm-up); the run (rank-derived scores) and per-query ms."""
    run: Run = {}
    latencies: list[float] = []
    ensemble.search(next(iter(queries.values())))
    for qid, text in queries.items():
        t0 = time.perf_counter()
        ranked = ensemble.search(text)
        latencies.append((time.perf_counter() - t0) * 1000)
        run[qid] = {did: float(len(ranked) - i) for i, did in enumerate(ranked)}
    return run, latencies


def evaluate_langchain(
    dataset_dir: Path,
    split: str = "test",
    k: int = 10,
    mode: EmbeddingMode = EmbeddingMode.PRECOMPUTED,
    *,
    embeddings_dir: Path = SCIFACT_EMBEDDINGS_DIR,
    encoder: Embedder | None = None,
) -> LangChainResult:
    """nDCG@10 / Recall@100 / MRR@10 and p50/p95 ms per query of the LangChain ensemble on a BEIR split.

    With only k results per query, Recall@100 equals Recall@k.
    """
    mode = EmbeddingMode(mode)
    dataset = load_dataset(Path(dataset_dir))
    qrels = load_split(Path(dataset_dir), split)
    queries = {qid: dataset.queries[qid] for qid in qrels if qid in dataset.queries}
    if not queries:
        raise InvalidInputError(f"split {split!r} has no queries in {dataset_dir}")
    doc_vectors: np.ndarray | None = None
    embed_texts: TextEncoder | None = None
    if mode is EmbeddingMode.PRECOMPUTED:
        pre = load_precomputed(embeddings_dir)
        doc_vectors = pre.doc_matrix([d.id for d in dataset.corpus])
        by_qid = pre.query_vectors()
        by_text = {text: by_qid[qid] for qid, text in queries.items()}
        embed_query: QueryEncoder = by_text.__getitem__
    else:
        encoder = encoder or torch_minilm()
        embed_query = encoder.embed_query
        if mode is EmbeddingMode.LIVE_QUERY:
            doc_vectors = load_precomputed(embeddings_dir).doc_matrix([d.id for d in dataset.corpus])
        else:
            embed_texts = encoder.embed_documents
    ensemble, build_s, rss = timed_build(dataset.corpus, doc_vectors, embed_query, k, embed_texts)
    run, latencies = time_queries(ensemble, queries)
    return LangChainResult(
        mode=str(mode),
        n_docs=len(dataset.corpus),
        n_queries=len(queries),
        k=k,
        build_s=round(build_s, 3),
        p50_ms=round(statistics.median(latencies), 2),
        p95_ms=round(percentile(latencies, 95), 2),
        index_rss_mb=round(rss / 2**20, 1),
        metrics={m: round(v, 4) for m, v in evaluate(qrels, run).items()},
    )


def scale_benchmark(
    n_docs: int = 100_000,
    n_queries: int = 50,
    k: int = 10,
    seed: int = 0,
    *,
    dataset_dir: Path,
    cache_dir: Path,
    embeddings_dir: Path = SCIFACT_EMBEDDINGS_DIR,
) -> dict[str, float]:
    """Build time, p50/p95 ms per query (precomputed query vectors) and RSS per chunk at ``n_docs``."""
    from bench.scale_corpus import build_scale_corpus

    docs, vectors = build_scale_corpus(n_docs, seed, cache_dir, dataset_dir=dataset_dir, embeddings_dir=embeddings_dir)
    pre = load_precomputed(embeddings_dir)
    dataset = load_dataset(Path(dataset_dir))
    qids = sorted(load_split(Path(dataset_dir), "test"))[:n_queries]
    by_qid = pre.query_vectors()
    queries = {qid: dataset.queries[qid] for qid in qids}
    by_text = {dataset.queries[qid]: by_qid[qid] for qid in qids}
    ensemble, build_s, rss = timed_build(docs, vectors, by_text.__getitem__, k)
    _, latencies = time_queries(ensemble, queries)
    return {
        "n_docs": len(docs),
        "n_queries": len(queries),
        "k": k,
        "build_s": round(build_s, 2),
        "p50_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "index_rss_mb": round(rss / 2**20, 1),
        "rss_bytes_per_chunk": round(rss / len(docs)),
    }


if __name__ == "__main__":
    import argparse
    import json

    from bench.scale_corpus import SCALE_CACHE_DIR, SCIFACT_DIR

    parser = argparse.ArgumentParser(description="LangChain EnsembleRetriever baseline numbers, as JSON")
    parser.add_argument("--dataset-dir", type=Path, default=SCIFACT_DIR)
    parser.add_argument("--embeddings-dir", type=Path, default=SCIFACT_EMBEDDINGS_DIR)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--modes", nargs="*", default=["precomputed", "live_query"], choices=list(EmbeddingMode))
    parser.add_argument("--scale-docs", type=int, default=100_000, help="0 skips the at-scale run")
    parser.add_argument("--scale-queries", type=int, default=50)
    parser.add_argument("--scale-cache-dir", type=Path, default=SCALE_CACHE_DIR)
    parser.add_argument("--torch-threads", type=int, default=0, help="torch intra-op threads (0: torch default)")
    args = parser.parse_args()
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)

    report: dict[str, Any] = {}
    shared_encoder = torch_minilm() if set(args.modes) - {"precomputed"} else None
    for name in args.modes:
        result = evaluate_langchain(
            args.dataset_dir,
            "test",
            args.k,
            EmbeddingMode(name),
            embeddings_dir=args.embeddings_dir,
            encoder=shared_encoder,
        )
        report[f"scifact_{name}"] = result.to_dict()
    if args.scale_docs:
        report["scale"] = scale_benchmark(
            args.scale_docs,
            args.scale_queries,
            args.k,
            dataset_dir=args.dataset_dir,
            cache_dir=args.scale_cache_dir,
            embeddings_dir=args.embeddings_dir,
        )
    print(json.dumps(report, indent=2))
