"""Reading datasets in BEIR format (corpus.jsonl, queries.jsonl, qrels/<split>.tsv)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingestion.errors import InvalidInputError
from ingestion.models import Document

Qrels = dict[str, dict[str, int]]  # query id -> {doc id: relevance}


@dataclass(slots=True)
class BeirDataset:
    name: str
    corpus: list[Document]
    queries: dict[str, str]
    query_metadata: dict[str, dict[str, Any]] = field(default_factory=dict)


def load_corpus(path: Path) -> list[Document]:
    docs = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            row = json.loads(line)
            docs.append(
                Document(
                    id=str(row["_id"]),
                    title=row.get("title") or "",
                    text=row.get("text") or "",
                    metadata=row.get("metadata") or {},
                )
            )
    return docs


def load_queries(path: Path) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    queries: dict[str, str] = {}
    meta: dict[str, dict[str, Any]] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            row = json.loads(line)
            queries[str(row["_id"])] = row["text"]
            meta[str(row["_id"])] = row.get("metadata") or {}
    return queries, meta


def load_qrels(path: Path) -> Qrels:
    qrels: Qrels = {}
    with path.open(encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t")
        for i, row in enumerate(reader):
            if not row or (i == 0 and not row[-1].strip().lstrip("-").isdigit()):
                continue  # header line
            qid, did, score = row[0], row[1], int(row[2])
            qrels.setdefault(qid, {})[did] = score
    return qrels


def load_dataset(directory: Path) -> BeirDataset:
    directory = Path(directory)
    corpus_path, queries_path = directory / "corpus.jsonl", directory / "queries.jsonl"
    for p in (corpus_path, queries_path):
        if not p.is_file():
            raise InvalidInputError(f"not a BEIR dataset: {p} is missing")
    queries, meta = load_queries(queries_path)
    return BeirDataset(directory.name, load_corpus(corpus_path), queries, meta)


def load_split(directory: Path, split: str) -> Qrels:
    path = Path(directory) / "qrels" / f"{split}.tsv"
    if not path.is_file():
        raise InvalidInputError(f"no qrels for split {split!r}: {path} is missing")
    return load_qrels(path)
