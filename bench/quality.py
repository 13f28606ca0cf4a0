"""Retrieval quality through the service's code path (`rag eval`): bm25, dense, hybrid (RRF), hybrid+LTR on
SciFact test beside published numbers, and the LTR default's robustness on a set it was not trained on.

    .venv/bin/python -m bench.quality [--datasets DIR ...]

Writes the "quality" section of docs/benchmarks.md and bench/results/quality.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from app.evaluate import run_evals
from app.settings import Settings
from bench.report import machine_line, write_section

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
PUBLISHED = {  # SciFact test nDCG@10: BEIR paper (Thakur et al. 2021), MTEB for MiniLM
    "BM25 (Elasticsearch), published": 0.665,
    "BM25 + MiniLM cross-encoder, published": 0.688,
    "all-MiniLM-L6-v2, published": 0.645,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", type=Path, default=[SHARED / "scifact", SHARED / "hotpotqa_dev200"])
    ap.add_argument("--split", default="test")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    settings = Settings()
    results: dict[str, list[dict[str, object]]] = {}
    for d in args.datasets:
        results[d.name] = [r.to_json() for r in run_evals(settings, d, args.split)]
    print(json.dumps(results, indent=2))
    if args.no_write:
        return
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "quality.json").write_text(json.dumps(results, indent=2))
    lines = [
        "## Retrieval quality (`python -m bench.quality`, the same code path as `rag eval`)",
        "",
        f"{machine_line()}. Embeddings: packaged all-MiniLM-L6-v2, backend `{settings.embedding_backend}`; "
        f"chunks of {settings.chunk_size} tokens (overlap {settings.chunk_overlap}); a document ranks where its best "
        "chunk ranks. The LTR model is the packaged default, trained on SciFact **train** qrels only.",
        "",
    ]
    for name, rows in results.items():
        lines += [
            f"### {name} ({args.split})",
            "",
            "| pipeline | nDCG@10 | Recall@100 | MRR@10 | p50 ms | p95 ms |",
            "|---|---|---|---|---|---|",
        ]
        for r in rows:
            lines.append(
                f"| {r['pipeline']} | {r['ndcg@10']:.4f} | {r['recall@100']:.4f} | {r['mrr@10']:.4f} | "
                f"{r['p50_ms']:.2f} | {r['p95_ms']:.2f} |"
            )
        if name == "scifact":
            lines += [f"| {k} | {v:.3f} | | | | |" for k, v in PUBLISHED.items()]
        by = {r["pipeline"]: r["ndcg@10"] for r in rows}
        if "hybrid" in by and "hybrid_ltr" in by:
            delta = float(by["hybrid_ltr"]) - float(by["hybrid"])  # type: ignore[arg-type]
            lines += ["", f"hybrid+LTR − hybrid: {delta:+.4f} nDCG@10."]
        lines.append("")
    write_section("quality", "\n".join(lines))


if __name__ == "__main__":
    main()
