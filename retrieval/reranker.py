"""The learning-to-rank reranker: a LightGBM LambdaRank model over ``retrieval.features``.

A model directory holds ``ltr.txt`` (``Booster.save_model`` text) and ``ltr_schema.json`` (the
``FeatureSchema`` it was trained with). Loading checks that schema against the code's: a model trained on
another feature layout would silently score garbage, so a mismatch raises ``ModelSchemaMismatch``.
The default model, trained on SciFact train qrels with
``rag train --dataset <scifact> --split train --no-attach --output retrieval/models``, ships in ``retrieval/models``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import lightgbm as lgb
import numpy as np

from ingestion.errors import ModelSchemaMismatch, StorageError
from retrieval.candidates import Candidate
from retrieval.features import FEATURE_SCHEMA, FeatureExtractor, FeatureSchema, TermStats

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "models"
MODEL_FILE = "ltr.txt"
SCHEMA_FILE = "ltr_schema.json"


class LtrReranker:
    """Scores candidates with a LambdaRank booster and reorders them."""

    def __init__(self, booster: lgb.Booster, schema: FeatureSchema = FEATURE_SCHEMA, num_threads: int = 1) -> None:
        if booster.num_feature() != len(schema.features):
            raise ModelSchemaMismatch(
                f"model has {booster.num_feature()} features, schema {schema.tag} names {len(schema.features)}"
            )
        self.booster = booster
        # more threads help an idle machine, but their spinning slows the query encoder under load
        self.num_threads = num_threads
        self.schema = schema
        self.extractor = FeatureExtractor(schema)

    @classmethod
    def load(
        cls, directory: Path | None = None, expected: FeatureSchema = FEATURE_SCHEMA, num_threads: int = 1
    ) -> LtrReranker:
        """Load the model in ``directory`` (default: the packaged one); its schema must equal ``expected``."""
        directory = Path(directory) if directory is not None else DEFAULT_MODEL_DIR
        model_path, schema_path = directory / MODEL_FILE, directory / SCHEMA_FILE
        try:
            schema = FeatureSchema.from_json(json.loads(schema_path.read_text(encoding="utf-8")))
            booster = lgb.Booster(model_str=model_path.read_text(encoding="utf-8"))
        except (OSError, ValueError, lgb.basic.LightGBMError) as exc:
            raise StorageError(f"cannot read reranker model from {directory}: {exc}") from exc
        if schema != expected:
            detail = ""
            if schema.version == expected.version and schema.name == expected.name:
                got, want = list(schema.features), list(expected.features)
                detail = f" (same version, different features: {got} vs {want})"
            raise ModelSchemaMismatch(
                f"reranker model in {directory} was trained with feature schema {schema.tag}, "
                f"but the code expects {expected.tag}{detail}; retrain it with `rag train`"
            )
        return cls(booster, schema, num_threads)

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self.booster.save_model(str(directory / MODEL_FILE))
            (directory / SCHEMA_FILE).write_text(json.dumps(self.schema.to_json(), indent=2) + "\n", "utf-8")
        except OSError as exc:
            raise StorageError(f"cannot write reranker model to {directory}: {exc}") from exc

    def score(self, features: np.ndarray) -> np.ndarray:
        """Model scores of a (n, n_features) matrix; higher is more relevant."""
        if len(features) == 0:
            return np.zeros(0, dtype=np.float64)
        x = np.ascontiguousarray(features, dtype=np.float32)
        return np.asarray(self.booster.predict(x, num_threads=self.num_threads), dtype=np.float64)

    def rerank(self, query: str, candidates: Sequence[Candidate], stats: TermStats) -> list[Candidate]:
        """Candidates sorted by model score (ties keep the incoming order); sets rerank_score/rerank_rank."""
        scores = self.score(self.extractor.extract(query, candidates, stats))
        order = np.argsort(-scores, kind="stable")
        ranked = []
        for rank, i in enumerate(order.tolist(), 1):
            c = candidates[i]
            c.rerank_score, c.rerank_rank = float(scores[i]), rank
            ranked.append(c)
        return ranked
