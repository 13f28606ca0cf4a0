"""``rag eval``: build (or reuse) a knowledge base from a BEIR corpus and score a pipeline on a split."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tqdm import tqdm

from app.services import build_services
from app.settings import Settings
from ingestion.knowledge_base import KnowledgeBase
from ingestion.registry import KnowledgeBaseRegistry
from retrieval.beir import BeirDataset, load_dataset, load_split
from retrieval.evaluation import (
    EvalPipeline,
    EvalReport,
    corpus_fingerprint,
    ensure_corpus_kb,
    evaluate_queries,
)


def eval_kb_name(settings: Settings, dataset_dir: Path) -> str:
    """A cache key: same corpus, embedding model and chunking → same knowledge base, reused."""
    extra = f"{settings.embedding_model}|{settings.chunk_size}|{settings.chunk_overlap}"
    return f"eval-{dataset_dir.resolve().name}-{corpus_fingerprint(dataset_dir / 'corpus.jsonl', extra)}"


class ProgressBars:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bars: dict[str, tqdm] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        bar = self.bars.get(stage)
        if bar is not None and done < bar.n:  # the stage started over (next pipeline)
            bar.close()
            bar = None
        if bar is None:
            bar = self.bars[stage] = tqdm(total=total, desc=stage, unit="doc" if stage == "ingest" else "query")
        bar.n = done
        bar.refresh()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def open_eval_kb(
    settings: Settings,
    registry: KnowledgeBaseRegistry,
    dataset: BeirDataset,
    dataset_dir: Path,
    kb_name: str | None,
    progress: ProgressBars,
) -> KnowledgeBase:
    """``kb_name`` if given, else the cached knowledge base of the dataset's corpus (built on first use)."""
    if kb_name:
        return registry.get(kb_name)
    return ensure_corpus_kb(registry, eval_kb_name(settings, dataset_dir), dataset, progress)


def run_evals(
    settings: Settings,
    dataset_dir: Path,
    split: str = "test",
    pipelines: list[str] | None = None,
    kb_name: str | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> list[EvalReport]:
    """Score each of ``pipelines`` (default: all four) on one knowledge base built from the dataset's corpus."""
    dataset = load_dataset(dataset_dir)
    qrels = load_split(dataset_dir, split)
    if limit:
        qrels = dict(list(qrels.items())[:limit])
    settings = settings.model_copy(update={"max_top_k": 1000})
    services = build_services(settings)
    bars = ProgressBars(progress)
    reports = []
    try:
        kb = open_eval_kb(settings, services.registry, dataset, dataset_dir, kb_name, bars)
        for name in pipelines or [p.value for p in EvalPipeline]:
            report = evaluate_queries(
                services.pipeline, kb.name, dataset.queries, qrels, EvalPipeline(name), progress=bars
            )
            reports.append(dataclasses.replace(report, dataset=dataset.name, split=split))
    finally:
        bars.close()
        services.close()
    return reports


def run_eval(
    settings: Settings,
    dataset_dir: Path,
    split: str = "test",
    pipeline: str = "hybrid_ltr",
    kb_name: str | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> EvalReport:
    return run_evals(settings, dataset_dir, split, [pipeline], kb_name, limit, progress)[0]
