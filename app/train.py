"""``rag train``: fit a LambdaRank reranker on BEIR-format qrels through the service's own retriever and
attach it to a knowledge base (``<kb>/ltr/``), where ``POST /query`` picks it up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.evaluate import ProgressBars, open_eval_kb
from app.services import build_services
from app.settings import Settings
from retrieval.beir import load_dataset, load_split
from retrieval.features import FEATURE_SCHEMA, FeatureExtractor
from retrieval.ltr_data import collect_groups
from retrieval.ltr_training import RankerParams, cross_validate, train_ranker
from retrieval.reranker import LtrReranker
from retrieval.reranking import KB_MODEL_SUBDIR


def train_for_kb(
    settings: Settings,
    dataset_dir: Path,
    split: str = "train",
    kb_name: str | None = None,
    seed: int = 0,
    attach: bool = True,
    output: Path | None = None,
    folds: int = 5,
    early_stopping_rounds: int = 0,
) -> dict[str, Any]:
    dataset = load_dataset(dataset_dir)
    qrels = load_split(dataset_dir, split)
    services = build_services(settings)
    bars = ProgressBars(True)
    try:
        kb = open_eval_kb(settings, services.registry, dataset, dataset_dir, kb_name, bars)
        groups = collect_groups(
            services.pipeline.retriever, kb, dataset.queries, qrels, FeatureExtractor(FEATURE_SCHEMA), bars
        )
        params = RankerParams(early_stopping_rounds=early_stopping_rounds)
        cv = cross_validate(groups, params, seed=seed, folds=folds) if folds >= 2 else None
        booster, report = train_ranker(groups, params, seed=seed)
        model = LtrReranker(booster, FEATURE_SCHEMA)
        saved = []
        if attach:
            model.save(kb.directory / KB_MODEL_SUBDIR)
            saved.append(str(kb.directory / KB_MODEL_SUBDIR))
        if output is not None:
            model.save(output)
            saved.append(str(output))
    finally:
        bars.close()
        services.close()
    return {
        "kb": kb.name,
        "split": split,
        "queries": len(groups),
        "schema": FEATURE_SCHEMA.tag,
        "best_rounds": report.best_rounds,
        "valid_ndcg@10": round(report.valid_ndcg10, 4),
        "cv": None
        if cv is None
        else {
            "folds": folds,
            "retrieval_ndcg@10": round(cv.mean_base, 4),
            "ltr_ndcg@10": round(cv.mean_ltr, 4),
        },
        "saved_to": saved,
    }
