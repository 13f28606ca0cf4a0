"""End-to-end generation with the real llama.cpp server and SmolLM2-135M-Instruct (slow).

The ``llm_server`` fixture comes from ``tests/llm_fixture.py`` (imported by ``tests/conftest.py``;
without that conftest run ``pytest -p tests.llm_fixture tests/test_llm_server.py``).
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from generation.answer import AnswerGenerator, Passage
from generation.client import OpenAIChatClient
from generation.llm_server import LlamaServer, default_model_path, free_port
from generation.prompts import build_messages
from ingestion.errors import GenerationError, GenerationTimeout

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]

# Retrieval ranks the best passage first; the answer-bearing passage is first here too.
PASSAGES = [
    Passage(
        1,
        "insulin#1",
        "insulin",
        "Insulin",
        "Insulin is a hormone made by the beta cells of the pancreas. It lets cells take up glucose from the blood.",
    ),
    Passage(
        2,
        "eiffel#0",
        "eiffel",
        "Eiffel Tower",
        "The Eiffel Tower is a wrought-iron lattice tower in Paris, France. It was completed in 1889 "
        "and is 330 metres tall.",
    ),
    Passage(
        3,
        "nile#2",
        "nile",
        "Nile",
        "The Nile is a major river in northeastern Africa. It flows north into the Mediterranean Sea "
        "and is about 6,650 kilometres long.",
    ),
]
QUESTION = "Which organ makes insulin?"


@pytest.fixture(scope="module")
def client(llm_server: LlamaServer) -> Iterator[OpenAIChatClient]:
    with OpenAIChatClient(llm_server.base_url, llm_server.model, timeout_s=120) as c:
        yield c


def test_default_model_is_the_packaged_gguf() -> None:
    path = default_model_path()
    assert path.suffix == ".gguf" and path.stat().st_size > 10_000_000


def test_server_is_healthy(client: OpenAIChatClient) -> None:
    assert client.health()


def test_grounded_answer_has_valid_citations(client: OpenAIChatClient) -> None:
    answer = AnswerGenerator(client, max_tokens=96).generate(QUESTION, PASSAGES)
    assert answer.text.strip()
    assert "pancrea" in answer.text.lower()
    assert answer.citations, f"no citation in {answer.text!r}"
    by_number = {p.number: p for p in PASSAGES}
    for c in answer.citations:
        assert 1 <= c.number <= len(PASSAGES)
        assert c.chunk_id == by_number[c.number].chunk_id and c.doc_id == by_number[c.number].doc_id
    assert 1 in [c.number for c in answer.citations]


def test_stream_concatenates_to_the_complete_answer(client: OpenAIChatClient) -> None:
    messages = build_messages(QUESTION, PASSAGES)
    complete = client.complete(messages, max_tokens=64, temperature=0.0)
    deltas = list(client.stream(messages, max_tokens=64, temperature=0.0))
    assert len(deltas) > 3
    assert "".join(deltas) == complete

    stream = AnswerGenerator(client, max_tokens=64).stream(QUESTION, PASSAGES)
    streamed = "".join(stream)
    assert streamed.strip() and stream.answer.text.strip()
    assert all(1 <= c.number <= 3 for c in stream.answer.citations)


def test_closed_port_fails_fast_with_generation_timeout() -> None:
    port = free_port()  # nothing listens here
    client = OpenAIChatClient(f"http://127.0.0.1:{port}/v1", "m", timeout_s=30, connect_timeout_s=2)
    start = time.monotonic()
    with pytest.raises(GenerationTimeout, match="unreachable"):
        client.complete([{"role": "user", "content": "hi"}], max_tokens=8, temperature=0)
    assert time.monotonic() - start < 5
    assert not client.health()


class _SleepyHandler(http.server.BaseHTTPRequestHandler):
    release = threading.Event()

    def do_POST(self) -> None:
        self.release.wait(timeout=10)  # far longer than the client's timeout

    def log_message(self, *args: object) -> None:
        return


def test_server_slower_than_the_timeout_raises_generation_timeout() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SleepyHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        client = OpenAIChatClient(url, "m", timeout_s=1.0, connect_timeout_s=1.0)
        for call in (
            lambda: client.complete([], max_tokens=8, temperature=0),
            lambda: list(client.stream([], max_tokens=8, temperature=0)),
        ):
            start = time.monotonic()
            with pytest.raises(GenerationTimeout, match="timed out"):
                call()
            assert time.monotonic() - start < 4
    finally:
        _SleepyHandler.release.set()
        server.shutdown()
        server.server_close()


def test_server_that_cannot_load_its_model_fails_clearly(tmp_path: Path) -> None:
    bogus = tmp_path / "not-a-model.gguf"
    bogus.write_bytes(b"this is not a gguf file")
    server = LlamaServer(model_path=bogus, port=free_port(), log_path=tmp_path / "log", startup_timeout_s=60)
    start = time.monotonic()
    with pytest.raises(GenerationError, match="exited with code") as info, server:
        pass
    assert time.monotonic() - start < 60
    assert not isinstance(info.value, GenerationTimeout)
    assert not server.running


def test_server_dies_with_a_killed_parent(tmp_path: Path) -> None:
    """A parent killed without running stop() (SIGKILL) must not leave the server orphaned."""
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from generation.llm_server import LlamaServer, free_port\n"
        f"s = LlamaServer(port=free_port(), log_path=Path({str(tmp_path / 'log')!r}))\n"
        "s.start(); s.wait_ready()\n"
        "print(s._process.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert parent.stdout is not None
        server_pid = int(parent.stdout.readline())
        os.kill(server_pid, 0)  # alive
        parent.kill()
        parent.wait(timeout=10)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _alive(server_pid):
            time.sleep(0.2)
        assert not _alive(server_pid)
    finally:
        if parent.poll() is None:
            parent.kill()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie awaiting its reaper counts as gone
        return fh.read().split(")")[-1].split()[0] != "Z"
