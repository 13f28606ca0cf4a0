"""Fast tests for generation/: citation parsing, prompt building, the HTTP client (mock transport)."""

from __future__ import annotations

import json

import httpx
import pytest

from generation.answer import (
    AnswerGenerator,
    Citation,
    Passage,
    infer_citation,
    is_no_answer,
    parse_citations,
)
from generation.client import OpenAIChatClient, ScriptedChatClient
from generation.prompts import NO_ANSWER, build_messages, format_passages, trim_text
from ingestion.errors import GenerationError, GenerationTimeout

PASSAGES = [
    Passage(1, "d1#0", "d1", "Vitamin D", "Vitamin D deficiency is linked to bone fractures in older adults."),
    Passage(2, "d2#3", "d2", "Aspirin", "Aspirin lowers the risk of heart attack by inhibiting platelets."),
    Passage(3, "d3#1", "d3", "Sleep", "Adults who sleep less than six hours show impaired memory consolidation."),
]


# --- citation parsing -------------------------------------------------------------------------


def test_single_and_grouped_markers_map_to_chunks_in_order_of_appearance() -> None:
    a = parse_citations("Aspirin prevents heart attacks [2]. Both matter [1, 2].", PASSAGES)
    assert [c.number for c in a.citations] == [2, 1]
    assert [c.chunk_id for c in a.citations] == ["d2#3", "d1#0"]
    assert a.citations[0] == Citation(2, "d2#3", "d2", "Aspirin", inferred=False)
    assert a.invalid_citations == []
    assert a.text == "Aspirin prevents heart attacks [2]. Both matter [1, 2]."


def test_range_marker_expands() -> None:
    a = parse_citations("All three agree [1-3].", PASSAGES)
    assert [c.number for c in a.citations] == [1, 2, 3]
    assert a.text == "All three agree [1, 2, 3]."


def test_en_dash_range_and_adjacent_markers() -> None:
    a = parse_citations("Claim [3][1–2].", PASSAGES)
    assert [c.number for c in a.citations] == [3, 1, 2]


def test_out_of_range_numbers_are_reported_and_removed_from_text() -> None:
    a = parse_citations("Fractures [7]. Platelets [2, 9]. Zero [0].", PASSAGES)
    assert [c.number for c in a.citations] == [2]
    assert a.invalid_citations == [7, 9, 0]
    assert a.text == "Fractures. Platelets [2]. Zero."


def test_loose_labels_small_models_write_are_normalised() -> None:
    a = parse_citations("Memory suffers [Passage 3]. See [Source 1 and 2].", PASSAGES)
    assert [c.number for c in a.citations] == [3, 1, 2]
    assert a.text == "Memory suffers [3]. See [1, 2]."


def test_non_citation_brackets_are_left_alone() -> None:
    text = "The list [a, b] and the year 2020 stay; so does [note]."
    a = parse_citations(text, PASSAGES)
    assert a.citations == [] and a.invalid_citations == []
    assert a.text == text


def test_huge_range_is_not_expanded() -> None:
    a = parse_citations("Everything [1-5000].", PASSAGES)
    assert [c.number for c in a.citations] == [1]
    assert a.invalid_citations == [5000]


def test_duplicates_are_listed_once() -> None:
    a = parse_citations("A [1]. B [1]. C [1, 1].", PASSAGES)
    assert [c.number for c in a.citations] == [1]
    assert a.text == "A [1]. B [1]. C [1]."


def test_infer_citation_picks_highest_overlap_and_requires_minimum() -> None:
    c = infer_citation("Sleeping under six hours impairs memory consolidation in adults.", PASSAGES)
    assert c is not None and c.number == 3 and c.inferred
    plural = infer_citation("Platelets are what aspirins inhibit.", PASSAGES)  # plural "s" is stripped
    assert plural is not None and plural.number == 2
    assert infer_citation("Completely unrelated words here.", PASSAGES) is None
    assert infer_citation("Aspirin works.", PASSAGES) is None  # one shared word is not enough


def test_is_no_answer() -> None:
    assert is_no_answer("I don't know.")
    assert is_no_answer("I don’t know the answer")
    assert is_no_answer("  ")
    assert not is_no_answer("Aspirin lowers risk [2].")


# --- generator with a scripted client ---------------------------------------------------------


def test_generate_parses_model_citations_without_inference() -> None:
    client = ScriptedChatClient(["Aspirin lowers heart attack risk [2]."])
    answer = AnswerGenerator(client).generate("What does aspirin do?", PASSAGES)
    assert [(c.number, c.inferred) for c in answer.citations] == [(2, False)]
    assert client.calls[0][-1] == {"role": "user", "content": "What does aspirin do?"}


def test_generate_infers_a_visible_citation_when_model_cites_nothing() -> None:
    client = ScriptedChatClient(["Aspirin lowers the risk of heart attack by inhibiting platelets."])
    answer = AnswerGenerator(client).generate("aspirin?", PASSAGES)
    assert [(c.number, c.inferred) for c in answer.citations] == [(2, True)]
    assert "[" not in answer.text  # no marker is invented in the text
    strict = AnswerGenerator(ScriptedChatClient([answer.text]), infer_missing_citations=False)
    assert strict.generate("aspirin?", PASSAGES).citations == []


def test_abstention_gets_no_inferred_citation() -> None:
    answer = AnswerGenerator(ScriptedChatClient([NO_ANSWER])).generate("Who won in 1990?", PASSAGES)
    assert answer.citations == [] and answer.text == NO_ANSWER


def test_no_passages_abstains_without_calling_the_model() -> None:
    client = ScriptedChatClient(["should not be used"])
    assert AnswerGenerator(client).generate("q", []).text == NO_ANSWER
    assert client.calls == []


def test_stream_yields_deltas_then_exposes_parsed_answer() -> None:
    reply = "Short sleep impairs memory [3]. Fractures relate to vitamin D [1] [8]."
    stream = AnswerGenerator(ScriptedChatClient([reply])).stream("q", PASSAGES)
    with pytest.raises(RuntimeError):
        _ = stream.answer
    deltas = list(stream)
    assert len(deltas) > 3 and "".join(deltas) == reply
    assert [c.number for c in stream.answer.citations] == [3, 1]
    assert stream.answer.invalid_citations == [8]


# --- prompt -----------------------------------------------------------------------------------


def test_build_messages_puts_numbered_passages_in_system_turn_and_question_last() -> None:
    messages = build_messages("  Does aspirin help? ", PASSAGES, context_chars=2000)
    assert [m["role"] for m in messages] == ["system", "user"]
    system = messages[0]["content"]
    assert system.index("[1] Vitamin D\n") < system.index("[2] Aspirin\n") < system.index("[3] Sleep\n")
    assert "like [1]" in system and NO_ANSWER in system
    assert messages[1]["content"] == "Does aspirin help?"


def test_build_messages_respects_context_budget() -> None:
    long = [Passage(i, f"d{i}#0", f"d{i}", f"T{i}", "word " * 2000) for i in range(1, 6)]
    small = build_messages("q", long, context_chars=1000)[0]["content"]
    large = build_messages("q", long, context_chars=4000)[0]["content"]
    assert len(large) - len(small) == pytest.approx(3000, abs=60)


def test_budget_trims_passages_and_total_stays_within_budget() -> None:
    long = [Passage(i, f"d{i}#0", f"d{i}", f"T{i}", "word " * 2000) for i in range(1, 6)]
    block = format_passages(long, context_chars=1000)
    assert len(block) <= 1000
    assert all(f"[{i}] T{i}" in block for i in range(1, 6))
    assert block.count("…") == 5


def test_short_passages_leave_room_for_later_ones() -> None:
    mixed = [Passage(1, "a#0", "a", "A", "tiny"), Passage(2, "b#0", "b", "B", "x " * 1000)]
    block = format_passages(mixed, context_chars=600)
    assert "[1] A\ntiny" in block and len(block) <= 600
    assert len(block.split("[2] B\n")[1]) > 400  # got most of passage 1's unused share


def test_passages_without_room_are_dropped_not_stubbed() -> None:
    many = [Passage(i, f"d{i}#0", f"d{i}", f"Title {i}", "text " * 50) for i in range(1, 11)]
    block = format_passages(many, context_chars=300)
    assert len(block) <= 300 and "[1] Title 1" in block and "[10]" not in block


def test_trim_text_cuts_at_word_boundary() -> None:
    assert trim_text("alpha beta   gamma", 100) == "alpha beta gamma"
    cut = trim_text("alpha beta gamma delta", 13)
    assert cut == "alpha beta…" and len(cut) <= 13


# --- HTTP client against a mock transport -----------------------------------------------------


def _client(handler: httpx.MockTransport, **kw: object) -> OpenAIChatClient:
    return OpenAIChatClient("http://llm.test/v1", "m", transport=handler, **kw)  # type: ignore[arg-type]


def test_complete_sends_openai_payload_and_returns_content() -> None:
    seen: dict[str, object] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["url"] = str(request.url)
        seen["auth"] = request.headers.get("authorization")
        seen["body"] = json.loads(request.content)
        return httpx.Response(200, json={"choices": [{"message": {"role": "assistant", "content": "Hi [1]"}}]})

    client = OpenAIChatClient("http://llm.test/v1/", "m", api_key="k", transport=httpx.MockTransport(handler))
    out = client.complete([{"role": "user", "content": "q"}], max_tokens=7, temperature=0.0)
    assert out == "Hi [1]"
    assert seen["url"] == "http://llm.test/v1/chat/completions"
    assert seen["auth"] == "Bearer k"
    assert seen["body"] == {
        "model": "m",
        "messages": [{"role": "user", "content": "q"}],
        "max_tokens": 7,
        "temperature": 0.0,
        "stream": False,
    }


def _sse(*events: str) -> bytes:
    return "".join(f"data: {e}\n\n" for e in events).encode()


def _chunk(content: str | None, finish: str | None = None) -> str:
    delta = {} if content is None else {"content": content}
    return json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def test_stream_parses_sse_until_done() -> None:
    body = _sse(_chunk(None), _chunk("Hel"), _chunk("lo [1]"), _chunk(None, "stop"), "[DONE]", _chunk("late"))
    transport = httpx.MockTransport(
        lambda r: httpx.Response(200, content=b": ping\n\n" + body, headers={"content-type": "text/event-stream"})
    )
    deltas = list(_client(transport).stream([], max_tokens=5, temperature=0))
    assert deltas == ["Hel", "lo [1]"]


def test_stream_cut_off_before_finishing_is_an_error() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200, content=_sse(_chunk("Hel"))))
    with pytest.raises(GenerationError, match="closed the stream"):
        list(_client(transport).stream([], max_tokens=5, temperature=0))


def test_stream_error_event_and_malformed_event() -> None:
    err = httpx.MockTransport(lambda r: httpx.Response(200, content=_sse('{"error": {"message": "ctx full"}}')))
    with pytest.raises(GenerationError, match="ctx full"):
        list(_client(err).stream([], max_tokens=5, temperature=0))
    bad = httpx.MockTransport(lambda r: httpx.Response(200, content=_sse("{not json")))
    with pytest.raises(GenerationError, match="malformed stream event"):
        list(_client(bad).stream([], max_tokens=5, temperature=0))


def test_http_500_raises_generation_error_with_status_and_message() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(500, json={"error": {"message": "model crashed"}}))
    with pytest.raises(GenerationError, match=r"HTTP 500: model crashed") as info:
        _client(transport).complete([], max_tokens=5, temperature=0)
    assert not isinstance(info.value, GenerationTimeout)
    with pytest.raises(GenerationError, match=r"HTTP 500: model crashed"):
        list(_client(transport).stream([], max_tokens=5, temperature=0))


def test_malformed_json_raises_generation_error() -> None:
    for response in (httpx.Response(200, content=b"<html>oops"), httpx.Response(200, json={"choices": []})):
        transport = httpx.MockTransport(lambda r, resp=response: resp)
        with pytest.raises(GenerationError, match="malformed completion"):
            _client(transport).complete([], max_tokens=5, temperature=0)


def test_transport_failures_map_to_generation_timeout() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)

    with pytest.raises(GenerationTimeout, match=r"http://llm.test/v1/chat/completions is unreachable"):
        _client(httpx.MockTransport(refuse)).complete([], max_tokens=5, temperature=0)
    with pytest.raises(GenerationTimeout, match="timed out"):
        list(_client(httpx.MockTransport(slow)).stream([], max_tokens=5, temperature=0))


def test_health() -> None:
    ok = httpx.MockTransport(lambda r: httpx.Response(200 if r.url.path == "/v1/models" else 404, json={}))
    assert _client(ok).health()
    assert not _client(httpx.MockTransport(lambda r: httpx.Response(503))).health()

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    assert not _client(httpx.MockTransport(refuse)).health()
