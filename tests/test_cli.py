"""`rag eval` and `rag train` end to end on a small BEIR dataset (SciFact subset), with the real MiniLM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main
from retrieval.beir import load_dataset, load_split

pytestmark = pytest.mark.slow


@pytest.fixture
def tiny_beir(tmp_path: Path, scifact_dir: Path) -> Path:
    """150 SciFact documents and the train claims whose relevant documents are all among them."""
    data = load_dataset(scifact_dir)
    qrels = load_split(scifact_dir, "train")
    wanted: list[str] = []
    for rel in list(qrels.values())[:80]:
        wanted += [d for d in rel if d not in wanted]
    ids = set(wanted[:100])
    docs = [d for d in data.corpus if d.id in ids] + [d for d in data.corpus if d.id not in ids][:50]
    keep = {q: rel for q, rel in qrels.items() if set(rel) <= ids}
    out = tmp_path / "tiny"
    (out / "qrels").mkdir(parents=True)
    with (out / "corpus.jsonl").open("w") as fh:
        for d in docs:
            fh.write(json.dumps({"_id": d.id, "title": d.title, "text": d.text}) + "\n")
    with (out / "queries.jsonl").open("w") as fh:
        for q in keep:
            fh.write(json.dumps({"_id": q, "text": data.queries[q]}) + "\n")
    for split in ("train", "test"):
        lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{s}" for q, rel in keep.items() for d, s in rel.items()]
        (out / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return out


def test_eval_then_train_and_attach(
    tiny_beir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import MODEL_CACHE

    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAG_MODEL_CACHE_DIR", str(MODEL_CACHE))
    assert main(["eval", "--dataset", str(tiny_beir), "--split", "test", "--pipeline", "hybrid", "--json"]) == 0
    hybrid = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(hybrid) >= {"ndcg@10", "recall@100", "mrr@10", "p50_ms", "p95_ms"}
    assert hybrid["ndcg@10"] > 0.5 and hybrid["queries"] >= 20

    kbs = list((tmp_path / "data" / "kbs").iterdir())
    assert len(kbs) == 1  # the corpus knowledge base, reused below
    assert main(["train", "--dataset", str(tiny_beir), "--split", "train", "--folds", "2"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kb"] == kbs[0].name and summary["queries"] >= 20
    assert summary["cv"]["folds"] == 2 and summary["schema"].startswith("hybrid-ltr/")
    assert (kbs[0] / "ltr" / "ltr.txt").exists() and (kbs[0] / "ltr" / "ltr_schema.json").exists()

    assert main(["eval", "--dataset", str(tiny_beir), "--split", "test", "--pipeline", "hybrid_ltr", "--json"]) == 0
    ltr = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert ltr["pipeline"] == "hybrid_ltr" and 0.0 < ltr["ndcg@10"] <= 1.0
    assert len(list((tmp_path / "data" / "kbs").iterdir())) == 1  # nothing re-ingested
