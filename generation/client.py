"""Chat-completion clients: the OpenAI-compatible HTTP client and a scripted stand-in for tests.

Works against any server speaking ``POST {base_url}/chat/completions`` — the bundled
``llama_cpp.server`` (default, CPU) or vLLM (GPU). Every wait is bounded: ``connect_timeout_s`` for
opening the connection and ``timeout_s`` for each wait on the server (writing the request, each read
of the response, and the stream as a whole).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import httpx

from ingestion.errors import GenerationError, GenerationTimeout

Messages = list[dict[str, str]]


class ChatClient(Protocol):
    def complete(self, messages: Messages, *, max_tokens: int, temperature: float) -> str: ...

    def stream(self, messages: Messages, *, max_tokens: int, temperature: float) -> Iterator[str]: ...


def _server_message(response: httpx.Response) -> str:
    """The error text a server put in its body (OpenAI ``error.message``, FastAPI ``detail``, or raw)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500].strip() or response.reason_phrase
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:500]
        if err:
            return str(err)[:500]
        if body.get("detail"):
            return str(body["detail"])[:500]
    return json.dumps(body)[:500]


class OpenAIChatClient:
    """Client for an OpenAI-compatible chat-completions endpoint (``base_url`` ends in ``/v1``)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        connect_timeout_s: float = 3.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout_s = timeout_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            headers=headers,
            transport=transport,
        )

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OpenAIChatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def health(self, timeout_s: float = 2.0) -> bool:
        """True when ``GET {base_url}/models`` answers 200 within ``timeout_s``."""
        try:
            return self._http.get(f"{self.base_url}/models", timeout=timeout_s).status_code == 200
        except httpx.HTTPError:
            return False

    def _payload(self, messages: Messages, max_tokens: int, temperature: float, stream: bool) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": stream,
        }

    def _transport_error(self, exc: httpx.TransportError) -> GenerationError:
        if isinstance(exc, httpx.TimeoutException):
            return GenerationTimeout(f"LLM server at {self.url} timed out after {self.timeout_s:g}s ({exc!r})")
        if isinstance(exc, httpx.ConnectError):
            return GenerationTimeout(f"LLM server at {self.url} is unreachable ({exc})")
        return GenerationError(f"LLM server at {self.url} failed: {exc!r}")

    def _check_status(self, response: httpx.Response) -> None:
        if response.status_code >= 400:
            if not response.is_closed:
                response.read()
            raise GenerationError(
                f"LLM server at {self.url} returned HTTP {response.status_code}: {_server_message(response)}"
            )

    def complete(self, messages: Messages, *, max_tokens: int, temperature: float) -> str:
        payload = self._payload(messages, max_tokens, temperature, stream=False)
        try:
            response = self._http.post(self.url, json=payload)
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from exc
        self._check_status(response)
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise GenerationError(
                f"LLM server at {self.url} sent a malformed completion: {response.text[:300]!r}"
            ) from exc
        if content is not None and not isinstance(content, str):
            raise GenerationError(f"LLM server at {self.url} sent non-text content: {content!r:.300}")
        return content or ""

    def stream(self, messages: Messages, *, max_tokens: int, temperature: float) -> Iterator[str]:
        """Yield text deltas from a server-sent-event stream until ``data: [DONE]``."""
        payload = self._payload(messages, max_tokens, temperature, stream=True)
        deadline = time.monotonic() + self.timeout_s
        try:
            with self._http.stream("POST", self.url, json=payload) as response:
                self._check_status(response)
                finished = False
                for line in response.iter_lines():
                    if time.monotonic() > deadline:
                        raise GenerationTimeout(
                            f"LLM server at {self.url} timed out: stream still open after {self.timeout_s:g}s"
                        )
                    if not line.startswith("data:"):
                        continue  # blank separators, comments (": ping"), "event:" lines
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    delta, done = self._parse_event(data)
                    finished = finished or done
                    if delta:
                        yield delta
                if not finished:
                    raise GenerationError(f"LLM server at {self.url} closed the stream before it finished")
        except httpx.TransportError as exc:
            raise self._transport_error(exc) from exc

    def _parse_event(self, data: str) -> tuple[str, bool]:
        try:
            event = json.loads(data)
        except ValueError as exc:
            raise GenerationError(f"LLM server at {self.url} sent a malformed stream event: {data[:300]!r}") from exc
        if isinstance(event, dict) and "error" in event:
            err = event["error"]
            message = err.get("message", err) if isinstance(err, dict) else err
            raise GenerationError(f"LLM server at {self.url} reported an error mid-stream: {message}")
        try:
            choice = event["choices"][0]
            content = choice.get("delta", {}).get("content") or ""
            return str(content), choice.get("finish_reason") is not None
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise GenerationError(f"LLM server at {self.url} sent an unexpected stream event: {data[:300]!r}") from exc


Reply = str | Callable[[Messages], str]


class ScriptedChatClient:
    """Deterministic stand-in for fast tests: returns scripted replies in order and records calls.

    ``replies`` are strings or functions of the messages; the last one repeats once the script runs
    out. ``stream`` yields the reply in small word-sized deltas.
    """

    def __init__(self, replies: Sequence[Reply]) -> None:
        if not replies:
            raise ValueError("ScriptedChatClient needs at least one reply")
        self.replies = list(replies)
        self.calls: list[Messages] = []

    def _next(self, messages: Messages) -> str:
        self.calls.append(messages)
        reply = self.replies[min(len(self.calls), len(self.replies)) - 1]
        return reply(messages) if callable(reply) else reply

    def complete(self, messages: Messages, *, max_tokens: int, temperature: float) -> str:
        return self._next(messages)

    def stream(self, messages: Messages, *, max_tokens: int, temperature: float) -> Iterator[str]:
        yield from re.findall(r"\S+\s*|\s+", self._next(messages))

    def health(self) -> bool:
        return True
