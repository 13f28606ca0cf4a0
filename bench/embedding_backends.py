"""Compare the embedding backends (torch fp32, ONNX fp32, ONNX int8) on SciFact.

For each backend: documents/s over 600 abstracts, single-query latency over 200 queries, dense-only
nDCG@10 / Recall@100 on the SciFact test split (exact inner-product search over all 5,183 documents) and
the mean cosine of its vectors to torch fp32's. Writes the "embedding-backends" section of
docs/benchmarks.md and bench/results/embedding_backends.json.

    .venv/bin/python -m bench.embedding_backends [--dump-dir .cache/bench/scifact_minilm]

``--dump-dir`` also saves torch fp32 vectors of the whole corpus and all queries there
(doc_ids.json, docs.npy, query_ids.json, queries.npy); ``--reuse-dump`` loads them back instead of
re-embedding the corpus with torch (the 600-document speed run is still measured).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import machine_line, write_section
from ingestion.embedder import EmbeddingBackend, SentenceTransformerEmbedder
from retrieval.beir import load_dataset, load_split
from retrieval.metrics import evaluate

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "scifact"
RESULTS_JSON = ROOT / "bench" / "results" / "embedding_backends.json"
SPEED_DOCS = 600
LATENCY_QUERIES = 200


def _save_atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    write(tmp)
    tmp.replace(path)


def save_dump(directory: Path, doc_ids: list[str], docs: np.ndarray, qids: list[str], queries: np.ndarray) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, ids in (("doc_ids.json", doc_ids), ("query_ids.json", qids)):
        _save_atomic(directory / name, lambda p, ids=ids: p.write_text(json.dumps(ids), encoding="utf-8"))
    for name, arr in (("docs.npy", docs), ("queries.npy", queries)):
        _save_atomic(directory / name, lambda p, arr=arr: np.save(p.open("wb"), arr))


def load_dump(directory: Path) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    return (
        json.loads((directory / "doc_ids.json").read_text(encoding="utf-8")),
        np.load(directory / "docs.npy"),
        json.loads((directory / "query_ids.json").read_text(encoding="utf-8")),
        np.load(directory / "queries.npy"),
    )


def dense_run(query_vecs: np.ndarray, qids: list[str], doc_vecs: np.ndarray, doc_ids: list[str], k: int = 100):
    scores = query_vecs @ doc_vecs.T
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    return {qid: {doc_ids[j]: float(scores[i, j]) for j in top[i]} for i, qid in enumerate(qids)}


def load_all(backends: list[EmbeddingBackend], cache_dir: Path) -> dict[EmbeddingBackend, Any]:
    out = {}
    for backend in backends:
        t0 = time.perf_counter()
        emb = SentenceTransformerEmbedder(backend=backend, cache_dir=cache_dir)
        out[backend] = (emb, time.perf_counter() - t0)
        print(f"[{backend}] loaded in {out[backend][1]:.1f}s (exports={emb.exports})", flush=True)
    return out


def speed(embedders: dict[EmbeddingBackend, Any], texts: list[str], queries: list[str]) -> dict[str, dict]:
    """Docs/s and query latency, interleaving the backends so that load from other processes hits all."""
    rounds, per_round = 3, SPEED_DOCS // 3
    doc_time = dict.fromkeys(embedders, 0.0)
    latencies: dict[EmbeddingBackend, list[float]] = {b: [] for b in embedders}
    for emb, _ in embedders.values():  # warm-up
        emb.embed_documents(texts[:8])
        for q in queries[:10]:
            emb.embed_query(q)
    for r in range(rounds):
        chunk = texts[r * per_round : (r + 1) * per_round]
        for backend, (emb, _) in embedders.items():
            t0 = time.perf_counter()
            emb.embed_documents(chunk)
            doc_time[backend] += time.perf_counter() - t0
    order = list(embedders)
    for i, q in enumerate(queries[:LATENCY_QUERIES]):
        for backend in order[i % len(order) :] + order[: i % len(order)]:
            t0 = time.perf_counter()
            embedders[backend][0].embed_query(q)
            latencies[backend].append((time.perf_counter() - t0) * 1000)
    out = {}
    for backend in embedders:
        lat = latencies[backend]
        out[str(backend)] = {
            "docs_per_s": rounds * per_round / doc_time[backend],
            "query_p50_ms": statistics.median(lat),
            "query_p90_ms": float(np.percentile(lat, 90)),
        }
        print(f"[{backend}] {out[str(backend)]}", flush=True)
    return out


def quality(backend: EmbeddingBackend, emb: Any, args: argparse.Namespace, data: dict[str, Any]) -> dict[str, Any]:
    dump = args.dump_dir
    texts, queries = data["texts"], data["query_texts"]
    if backend is EmbeddingBackend.TORCH and args.reuse_dump and dump and (dump / "docs.npy").is_file():
        doc_ids, docs, all_qids, all_q = load_dump(dump)
        assert doc_ids == data["doc_ids"] and all_qids == data["all_qids"]
    else:
        docs, all_q = emb.embed_documents(texts), emb.embed_documents(queries)
        if backend is EmbeddingBackend.TORCH and dump:
            save_dump(dump, data["doc_ids"], docs, data["all_qids"], all_q)
            print(f"[torch] saved fp32 vectors to {dump}", flush=True)
    qpos = {qid: i for i, qid in enumerate(data["all_qids"])}
    test_qids = [q for q in data["qrels"] if q in qpos]
    run = dense_run(all_q[[qpos[q] for q in test_qids]], test_qids, docs, data["doc_ids"])
    metrics = evaluate(data["qrels"], run)
    print(f"[{backend}] {metrics}", flush=True)
    return {**metrics, "_docs": docs, "_queries": all_q}


def markdown(rows: list[dict[str, Any]], loadavg: tuple[float, float]) -> str:
    lines = [
        "## Embedding backends (all-MiniLM-L6-v2, SciFact)",
        "",
        f"{machine_line()}. `python -m bench.embedding_backends`. Docs/s over {SPEED_DOCS} abstracts"
        f" (title + text); query latency over {LATENCY_QUERIES} single queries; dense-only exact"
        " inner-product search over all 5,183 documents, 300 test queries; cosine = mean cosine of"
        " document vectors to torch fp32. Backends are timed interleaved; the machine is shared (1-min load"
        f" average {loadavg[0]:.1f} before, {loadavg[1]:.1f} after), so absolute times are pessimistic.",
        "",
        "| backend | docs/s | query p50 ms | query p90 ms | nDCG@10 | Recall@100 | MRR@10 | cosine to fp32 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['backend']} | {r['docs_per_s']:.1f} | {r['query_p50_ms']:.2f} | {r['query_p90_ms']:.2f}"
            f" | {r['ndcg@10']:.4f} | {r['recall@100']:.4f} | {r['mrr@10']:.4f} | {r['cosine_to_fp32']:.4f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "rag-service")
    parser.add_argument("--dump-dir", type=Path, default=None)
    parser.add_argument("--reuse-dump", action="store_true")
    parser.add_argument("--backends", default=",".join(b.value for b in EmbeddingBackend))
    parser.add_argument("--skip-speed", action="store_true", help="quality only (e.g. to write --dump-dir)")
    parser.add_argument("--no-report", action="store_true", help="print only; write neither docs nor JSON")
    args = parser.parse_args()

    ds = load_dataset(args.data)
    all_qids = sorted(ds.queries, key=lambda q: int(q) if q.isdigit() else q)
    data: dict[str, Any] = {
        "doc_ids": [d.id for d in ds.corpus],
        "texts": [f"{d.title}\n{d.text}" for d in ds.corpus],
        "all_qids": all_qids,
        "query_texts": [ds.queries[q] for q in all_qids],
        "qrels": load_split(args.data, "test"),
    }
    backends = [EmbeddingBackend(b) for b in args.backends.split(",")]
    if EmbeddingBackend.TORCH in backends:  # torch first: it is the reference for the cosine column
        backends.remove(EmbeddingBackend.TORCH)
        backends.insert(0, EmbeddingBackend.TORCH)
    load_before = os.getloadavg()[0]
    embedders = load_all(backends, args.cache_dir)
    speeds = speed(embedders, data["texts"], data["query_texts"]) if not args.skip_speed else {}
    rows = []
    for b, (emb, load_s) in embedders.items():
        row = {"backend": str(b), "load_s": load_s, "exported": emb.exports, **speeds.get(str(b), {})}
        rows.append({**row, **quality(b, emb, args, data)})
    load_after = os.getloadavg()[0]
    ref = rows[0]["_docs"] if rows[0]["backend"] == EmbeddingBackend.TORCH else None
    for r in rows:
        r["cosine_to_fp32"] = float(np.mean(np.sum(r["_docs"] * ref, axis=1))) if ref is not None else float("nan")
        r["query_cosine_to_fp32"] = (
            float(np.mean(np.sum(r["_queries"] * rows[0]["_queries"], axis=1))) if ref is not None else float("nan")
        )
    clean = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    print(json.dumps(clean, indent=2))
    if not args.no_report:
        RESULTS_JSON.parent.mkdir(parents=True, exist_ok=True)
        RESULTS_JSON.write_text(
            json.dumps(
                {"machine": machine_line(), "loadavg_1min": [load_before, load_after], "rows": clean},
                indent=2,
            )
            + "\n"
        )
        write_section("embedding-backends", markdown(clean, (load_before, load_after)))


if __name__ == "__main__":
    main()
