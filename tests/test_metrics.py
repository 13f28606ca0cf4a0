"""The metrics wrapper (trec_eval through pytrec_eval) against values computed by hand."""

from __future__ import annotations

import math

import pytest

from retrieval.evaluation import doc_run
from retrieval.metrics import evaluate


def test_hand_computed_ndcg_mrr_recall() -> None:
    qrels = {"q1": {"a": 1, "b": 2}, "q2": {"z": 1}}
    run = {"q1": {"x": 3.0, "b": 2.0, "a": 1.0}, "q2": {"y": 1.0}}
    # q1: ranks x(0), b(2), a(1) -> DCG = 2/log2(3) + 1/log2(4); ideal = 2/log2(2) + 1/log2(3)
    dcg = 2 / math.log2(3) + 1 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    m = evaluate(qrels, run)
    assert m["ndcg@10"] == pytest.approx((dcg / idcg + 0.0) / 2, abs=1e-4)
    assert m["mrr@10"] == pytest.approx((1 / 2 + 0.0) / 2)
    assert m["recall@100"] == pytest.approx((1.0 + 0.0) / 2)


def test_queries_missing_from_the_run_count_as_zero() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    assert evaluate(qrels, {"q1": {"a": 1.0}})["ndcg@10"] == pytest.approx(0.5)


def test_order_is_kept_even_with_tied_scores() -> None:
    qrels = {"q": {"b": 1}}
    assert evaluate(qrels, {"q": {"a": 1.0, "b": 1.0}})["mrr@10"] == pytest.approx(0.5)


def test_doc_run_ranks_a_document_by_its_best_chunk() -> None:
    run = doc_run([("d1", 0.0), ("d2", 0.0), ("d1", 0.0), ("d3", 0.0)])
    assert sorted(run, key=lambda d: -run[d]) == ["d1", "d2", "d3"]
