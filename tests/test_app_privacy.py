"""The chat app keeps what a person typed out of the logs and out of Gradio's run history (issue 20, points 5 and 6).

A page is served on a free port and driven over HTTP down every error path: a pipeline that fails with the question
in its error's message (an expected ``KGError`` and an unexpected ``ValueError``), a request with the wrong number of
inputs, a request whose chat history the Chatbot cannot read, and a normal question. Everything logged (all loggers,
at DEBUG), printed on stdout or stderr (Gradio prints tracebacks) or warned is then searched for the question.
"""

from __future__ import annotations

import json
import logging
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from assistant.app import LOG_QUESTIONS_ENV, build_app, log_questions_enabled, stream_reply
from assistant.types import Answer, Audience
from kg.errors import UnknownEntityError

SECRET = "zebraQuestion7731"  # no Markdown syntax in it: shown and logged, it reads the same escaped or not
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing")  # gradio's own use of pandas 3


class QuotingAssistant:
    """Implements ``Assistant.stream`` and fails the way real stages do, quoting the question in the error's message:
    a question starting "unknown" raises ``UnknownEntityError`` (an expected ``KGError``), one starting "crash" a
    ``ValueError`` (unexpected; ``generation.py`` raises one that quotes a malformed chat message). Any other question
    is answered with a text that repeats it, so the answer's text is searched for as well."""

    def stream(self, question, history=(), audience=Audience.PATIENT):
        yield "Drafting "
        if question.startswith("unknown"):
            raise UnknownEntityError(question)
        if question.startswith("crash"):
            raise ValueError(f"message 0 must be a chat message, not {{'content': {question!r}}}")
        yield Answer(question, audience, f"You asked about {question}.")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(app) -> Iterator[str]:
    """Launch ``app`` on a free local port; yield the root URL; close it."""
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()


def call(url: str, endpoint: str, data: list, session: str = "privacy-test") -> tuple[str, object]:
    """POST ``data`` as-is to Gradio's ``/call/ENDPOINT`` in ``session`` (plain HTTP, no client to check it) and read
    the event stream to its end: the last event's name ("complete", "error") and data."""
    with httpx.Client(base_url=url + "gradio_api", timeout=20) as http:
        joined = http.post(f"/call/{endpoint}", json={"data": data, "session_hash": session})
        joined.raise_for_status()
        event = last = None
        with http.stream("GET", f"/call/{endpoint}/{joined.json()['event_id']}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line.removeprefix("event:").strip()
                elif line.startswith("data:"):
                    last = json.loads(line.removeprefix("data:"))
    return event, last


def ask(url: str, question: str) -> str:
    """Ask ``question`` the way the page does (take it, then stream the reply in the same session): the text of the
    chat's last message, or the error shown."""
    assert call(url, "_take_question", [question])[0] == "complete"
    event, data = call(url, "reply", [[], "patient"])
    return data[0][-1]["content"][0]["text"] if event == "complete" else data["error"]


def drive_every_path(url: str) -> dict[str, str]:
    """Drive the served page down each path; what the person was shown on each."""
    return {"answered": ask(url, SECRET), "expected": ask(url, f"unknown {SECRET}"),
            "unexpected": ask(url, f"crash {SECRET}"),
            "too few inputs": json.dumps(call(url, "reply", [SECRET])),
            "unreadable history": json.dumps(call(url, "reply", [[{"role": "user", "content": {"x": SECRET}}],
                                                                 "patient"]))}


def everything_written(caplog, capfd, recwarn) -> str:
    """All that was logged (records and their tracebacks), printed on stdout and stderr, and warned."""
    out, err = capfd.readouterr()
    return "\n".join([caplog.text, *(r.getMessage() for r in caplog.records), out, err,
                      *(str(w.message) for w in recwarn)])


@pytest.mark.integration
def test_no_question_text_reaches_the_logs_on_any_path(caplog, capfd, recwarn, monkeypatch):
    monkeypatch.delenv(LOG_QUESTIONS_ENV, raising=False)
    caplog.set_level(logging.DEBUG)
    with serving(build_app(QuotingAssistant())) as url:
        shown = drive_every_path(url)
    written = everything_written(caplog, capfd, recwarn)

    # each path was taken: the question reached the pipeline and its answer or failure came back to the person
    assert shown["answered"] == f"You asked about {SECRET}\\."
    assert "unknown entity" in shown["expected"] and SECRET in shown["expected"]
    assert shown["unexpected"].startswith("The assistant failed on this question (request ")
    for path in ("too few inputs", "unreadable history"):
        assert shown[path].startswith('["error"') and SECRET not in shown[path]
    assert SECRET not in written
    # ... and was logged by request id and error type instead
    expected_id = re.search(r"request (\w+)", shown["expected"]).group(1)
    unexpected_id = re.search(r"request (\w+)", shown["unexpected"]).group(1)
    assert f"request {expected_id}: could not answer: UnknownEntityError" in written
    assert f"request {unexpected_id}: could not answer: ValueError" in written
    assert "reply: refused a request's inputs (1 given, 4 expected): ValueError" in written
    assert "reply: refused a request's inputs (4 given, 4 expected): ValidationError" in written


@pytest.mark.integration
def test_with_the_operator_opt_in_the_question_is_logged(caplog, capfd, monkeypatch):
    """The other side of the test above: the searches there can find the question when it is written."""
    monkeypatch.setenv(LOG_QUESTIONS_ENV, "1")
    caplog.set_level(logging.DEBUG)
    with serving(build_app(QuotingAssistant())) as url:
        drive_every_path(url)
    err = capfd.readouterr().err
    logged = caplog.text
    assert f"could not answer 'unknown {SECRET}': UnknownEntityError" in logged
    assert f"could not answer 'crash {SECRET}': ValueError" in logged and "Traceback" in logged
    assert f'Received inputs:\n    ["{SECRET}"]' in err  # Gradio's own message, printed as it would be without the app


@pytest.mark.integration
def test_run_history_is_off_and_nothing_is_offered_for_upload(monkeypatch):
    monkeypatch.setenv("GRADIO_RUN_HISTORY", "True")  # Gradio's own switch cannot turn it back on
    app = build_app(QuotingAssistant())
    with serving(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        assert http.get("/").status_code == 200
        assert http.get("/gradio_api/runs").status_code == 404
        assert http.get("/gradio_api/runs/").status_code == 404
        assert http.post("/gradio_api/run-history/connect", json={}).status_code in (404, 405)
        config = http.get("/config").json()
    assert config["run_history"] is False  # the page records no run in the browser
    assert "runs" not in config["footer_links"]
    assert app.analytics_enabled is False


def test_an_expected_failure_is_logged_by_request_id_unless_the_operator_opts_in(caplog):
    bot = QuotingAssistant()
    with caplog.at_level(logging.DEBUG):
        chat, _ = list(stream_reply(bot, f"unknown {SECRET}", [], [], "patient", request_id="abc123"))[-1]
    assert "(request abc123)" in chat[-1]["content"]
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == ["request abc123: could not answer: "
                                                                       "UnknownEntityError"]
    assert SECRET not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        list(stream_reply(bot, f"unknown {SECRET}", [], [], "patient", request_id="abc123", log_questions=True))
    assert f"request abc123: could not answer 'unknown {SECRET}'" in caplog.text


@pytest.mark.parametrize(("value", "enabled"), [(None, False), ("", False), ("0", False), ("no", False),
                                                ("1", True), ("true", True), ("YES", True)])
def test_the_opt_in_is_read_from_the_environment(monkeypatch, value, enabled):
    if value is None:
        monkeypatch.delenv(LOG_QUESTIONS_ENV, raising=False)
    else:
        monkeypatch.setenv(LOG_QUESTIONS_ENV, value)
    assert log_questions_enabled() is enabled  # build_app reads it: the two served tests above set it either way
