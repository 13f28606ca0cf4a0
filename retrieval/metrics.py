"""Ranking metrics through trec_eval (pytrec_eval), the reference implementation BEIR uses."""

from __future__ import annotations

import statistics

import pytrec_eval

from retrieval.beir import Qrels

Run = dict[str, dict[str, float]]  # query id -> {doc id: score}

_MEASURES = {"ndcg_cut.10", "recall.100", "recip_rank"}


def _cut_run(run: Run, k: int) -> Run:
    out: Run = {}
    for qid, scores in run.items():
        top = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)[:k]
        out[qid] = dict(top)
    return out


def evaluate(qrels: Qrels, run: Run) -> dict[str, float]:
    """Mean nDCG@10, Recall@100 and MRR@10 over the queries of ``qrels``.

    Queries of ``qrels`` missing from ``run`` count as zero (unlike trec_eval's default, which drops them).
    """
    qrels = {q: rel for q, rel in qrels.items() if rel}
    run = {q: run.get(q, {}) for q in qrels}
    # trec_eval breaks score ties by doc id; make ranks explicit to keep our order.
    ranked: Run = {}
    for qid, scores in run.items():
        order = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
        ranked[qid] = {did: float(len(order) - i) for i, (did, _) in enumerate(order)}
    per_query = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100"}).evaluate(ranked)
    per_query_mrr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(_cut_run(ranked, 10))

    def mean(measure: str, table: dict[str, dict[str, float]]) -> float:
        return statistics.fmean(table.get(q, {}).get(measure, 0.0) for q in qrels) if qrels else 0.0

    return {
        "ndcg@10": mean("ndcg_cut_10", per_query),
        "recall@100": mean("recall_100", per_query),
        "mrr@10": mean("recip_rank", per_query_mrr),
    }
