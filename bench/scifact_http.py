"""SciFact through the running service's HTTP API: ingest all 5,183 documents with POST /ingest, then score the
300 test claims with retrieval-only POST /query (nDCG@10, Recall@100, MRR@10, latency).

    make run                                   # in one terminal (or: rag serve)
    .venv/bin/python -m bench.scifact_http     # in another; --url to target another server

Writes the "scifact-http" section of docs/benchmarks.md (unless --no-write) and prints JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import httpx
import numpy as np
from tqdm import tqdm

from bench.report import machine_line, write_section
from retrieval.beir import load_dataset, load_split
from retrieval.evaluation import doc_run
from retrieval.metrics import evaluate

DEFAULT_DATASET = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "scifact"


def ingest(http: httpx.Client, kb: str, dataset_dir: Path, batch: int) -> tuple[float, int, int]:
    docs = load_dataset(dataset_dir).corpus
    if http.get(f"/kbs/{kb}").status_code == 200:
        http.delete(f"/kbs/{kb}").raise_for_status()  # measure a cold ingest
    chunks = 0
    t = time.perf_counter()
    with tqdm(total=len(docs), desc="ingest", unit="doc") as bar:
        for start in range(0, len(docs), batch):
            part = docs[start : start + batch]
            body = {"kb": kb, "documents": [{"id": d.id, "title": d.title, "text": d.text} for d in part]}
            r = http.post("/ingest", json=body)
            r.raise_for_status()
            chunks += r.json()["chunks_added"]
            bar.update(len(part))
    return time.perf_counter() - t, len(docs), chunks


def score(http: httpx.Client, kb: str, dataset_dir: Path, rerank: bool) -> dict[str, float]:
    data = load_dataset(dataset_dir)
    qrels = load_split(dataset_dir, "test")
    run, latencies = {}, []
    for qid in tqdm(list(qrels), desc=f"queries (rerank={rerank})", unit="q"):
        body = {"kb": kb, "query": data.queries[qid], "top_k": 100, "generate": False, "rerank": rerank}
        t = time.perf_counter()
        r = http.post("/query", json=body)
        latencies.append((time.perf_counter() - t) * 1000)
        r.raise_for_status()
        run[qid] = doc_run([(x["doc_id"], x["score"]) for x in r.json()["results"]])
    metrics = evaluate(qrels, run)
    return {
        **metrics,
        "http_p50_ms": float(np.percentile(latencies, 50)),
        "http_p95_ms": float(np.percentile(latencies, 95)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    ap.add_argument("--kb", default="scifact")
    ap.add_argument("--batch", type=int, default=256, help="documents per POST /ingest")
    ap.add_argument("--skip-ingest", action="store_true", help="score an already ingested knowledge base")
    ap.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = ap.parse_args()
    with httpx.Client(base_url=args.url, timeout=600) as http:
        http.get("/ready").raise_for_status()
        result: dict[str, object] = {}
        if not args.skip_ingest:
            seconds, n_docs, n_chunks = ingest(http, args.kb, args.dataset, args.batch)
            result["ingest"] = {
                "seconds": round(seconds, 1),
                "documents": n_docs,
                "chunks": n_chunks,
                "docs_per_s": round(n_docs / seconds, 1),
            }
        result["hybrid"] = score(http, args.kb, args.dataset, rerank=False)
        has_ltr = http.get(f"/kbs/{args.kb}").json().get("reranker") is not None
        if has_ltr:
            result["hybrid_ltr"] = score(http, args.kb, args.dataset, rerank=True)
    print(json.dumps(result, indent=2))
    if args.no_write:
        return
    rows = []
    for name in ("hybrid", "hybrid_ltr"):
        m = result.get(name)
        if isinstance(m, dict):
            rows.append(
                f"| {name} | {m['ndcg@10']:.4f} | {m['recall@100']:.4f} | {m['mrr@10']:.4f} | "
                f"{m['http_p50_ms']:.1f} | {m['http_p95_ms']:.1f} |"
            )
    ing = result.get("ingest")
    ingest_line = (
        f"Ingest over HTTP: {ing['documents']} documents → {ing['chunks']} chunks in {ing['seconds']} s "
        f"({ing['docs_per_s']} docs/s, batches of {args.batch})."
        if isinstance(ing, dict)
        else ""
    )
    write_section(
        "scifact-http",
        "\n".join(
            [
                "## SciFact over HTTP (`python -m bench.scifact_http` against `make run`)",
                "",
                f"{machine_line()}. Retrieval only (`generate: false`), 300 test claims, "
                "documents ranked by their best chunk.",
                "",
                ingest_line,
                "",
                "| pipeline | nDCG@10 | Recall@100 | MRR@10 | HTTP p50 ms | HTTP p95 ms |",
                "|---|---|---|---|---|---|",
                *rows,
            ]
        ),
    )


if __name__ == "__main__":
    main()
