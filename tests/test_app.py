"""The chat app: evidence rendering and escaping, the streaming handler driven by a scripted assistant, and the
page (built, and served once on a free port)."""

from __future__ import annotations

import html
import socket
import time
import urllib.request
from dataclasses import replace

import gradio as gr
import pytest
from markdown_it import MarkdownIt

from assistant.app import DRAFT, EVIDENCE_TITLE, build_app, md_escape, render_answer, render_evidence, stream_reply
from assistant.types import Answer, Audience, Citation, EntityMention, Tier, Triage
from kg.errors import KGError

FACT = Citation("T1", "triple", "t-abc", "metformin — causes side effect — nausea", "SIDER", "CC BY-NC-SA 4.0")
PASSAGE = Citation("P1", "passage", "medquad:12#0", "Metformin", "MedQuAD/MedlinePlus", "CC BY 4.0",
                   "https://medlineplus.gov/druginfo/meds/a696005.html")
UNCITED = Citation("T2", "triple", "t-def", "metformin — treats — type 2 diabetes", "Hetionet", "CC0")
METFORMIN = EntityMention(0, 9, "metformin", "DRUGBANK:DB00331", "compound", 1.0, "metformin", "exact")
NAUSEA = EntityMention(24, 30, "nausea", "UMLS:C0027497", "side_effect", 0.9, "nausea", "exact")
ANSWER = Answer("is nausea a side effect of metformin?", Audience.PATIENT,
                "Yes, nausea is a common side effect of metformin [T1] [P1].", citations=(FACT, PASSAGE),
                evidence=(FACT, PASSAGE, UNCITED), entities=(METFORMIN, NAUSEA))
HOSTILE = ("<script>alert(1)</script> <img src=x onerror=alert(1)> [click](http://evil.example) "
           "**bold** # heading `code` $$x$$ https://evil.example www.evil.example & &amp; \\*")
URGENT = Answer("crushing chest pain and my left arm is numb", Audience.PATIENT,
                "Call your local emergency number now.", flags=("triage: cardiac",),
                triage=Triage(Tier.EMERGENCY, "cardiac", "Call your local emergency number now.",
                              "crushing chest pain"))


def rendered_text(markdown: str) -> str:
    """What a CommonMark renderer makes of ``markdown``, tags stripped of their paragraph wrapper."""
    return MarkdownIt("commonmark").enable("table").render(markdown).strip().removeprefix("<p>").removesuffix("</p>")


# --- rendering ------------------------------------------------------------------------------------------------

def test_evidence_lists_entities_citations_with_source_and_licence():
    md = render_evidence(ANSWER)
    assert "metformin → DRUGBANK\\:DB00331 (compound)" in md
    assert "**T1** metformin — causes side effect — nausea — source: SIDER · licence: CC BY\\-NC\\-SA 4\\.0" in md
    assert "[Metformin](https://medlineplus.gov/druginfo/meds/a696005.html)" in md
    assert "MedQuAD/MedlinePlus · licence: CC BY 4\\.0" in md
    # cited facts come before passages, and uncited evidence is listed apart, after them
    assert md.index("Cited facts") < md.index("Cited passages") < md.index("not cited") < md.index("**T2**")
    assert "🚨" not in md and "Checks" not in md


@pytest.mark.parametrize("text", [HOSTILE, "1. not a list", "- nor this", "> nor a quote", "a | b\n--|--\nc | d",
                                  "line one\n===", "_x_ ~~y~~ [T1]: http://x"])
def test_md_escape_renders_exactly_the_text(text):
    assert rendered_text(md_escape(text)) == html.escape(text, quote=False)


def test_hostile_user_and_source_text_is_escaped_everywhere():
    hostile = Citation("P1", "passage", "p#0", HOSTILE, HOSTILE, HOSTILE, "javascript:alert(1)")
    answer = Answer(HOSTILE, Audience.PATIENT, HOSTILE, citations=(hostile,), evidence=(hostile,),
                    entities=(replace(METFORMIN, text=HOSTILE, entity_id=HOSTILE),), flags=(HOSTILE,),
                    unsupported=(HOSTILE,))
    for md in (render_evidence(answer), render_answer(answer)):
        page = MarkdownIt("commonmark").render(md)
        assert "<script" not in page and "<img" not in page and "<a " not in page and "<strong>bold" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "javascript" not in render_evidence(answer).split("**P1**")[1].split("—")[0]


def test_triage_banner_comes_first_and_is_not_repeated_in_the_answer():
    md = render_evidence(URGENT)
    assert md.startswith("> 🚨 **Urgent (cardiac): Call your local emergency number now\\.**")
    assert "triage\\: cardiac" in md  # the flag follows under the checks
    shown = render_answer(URGENT)
    assert shown.startswith("> 🚨") and shown.count("emergency number") == 1


def test_abstention_scope_and_removed_sentences_are_shown():
    abstained = Answer("what is zzyzx?", Audience.PATIENT, "My sources don't cover this.", abstained=True,
                       flags=("no_evidence",), triage=Triage())
    assert "Not answered from the sources" in render_evidence(abstained)
    off_topic = replace(abstained, triage=Triage(in_scope=False))
    assert "Outside what this assistant covers" in render_evidence(off_topic)
    removed = replace(ANSWER, unsupported=("Asthma is treated by it.",),
                      flags=("unsupported sentence removed: Asthma is treated by it.", "uncited"))
    md = render_evidence(removed)
    assert "Removed, not supported by the evidence: “Asthma is treated by it\\.”" in md
    assert md.count("Asthma") == 1 and "- uncited" in md
    assert render_evidence(Answer("hi", Audience.PATIENT, "Hello.")) == ""


# --- the streaming handler ------------------------------------------------------------------------------------

class ScriptedAssistant:
    """Implements ``Assistant.stream``: yields ``pieces``, then ``answer`` for the question asked (or raises)."""

    def __init__(self, pieces: tuple[str, ...], answer: Answer | None, error: Exception | None = None) -> None:
        self.pieces, self.answer, self.error = pieces, answer, error
        self.calls: list[tuple[str, tuple[Answer, ...], Audience]] = []

    def stream(self, question, history=(), audience=Audience.PATIENT):
        self.calls.append((question, tuple(history), audience))
        yield from self.pieces
        if self.error:
            raise self.error
        if self.answer:
            yield replace(self.answer, question=question, audience=audience)


def test_handler_streams_pieces_then_shows_the_checked_answer_and_its_evidence():
    bot = ScriptedAssistant(("Yes, ", "nausea [T1] [T7]"), ANSWER)
    steps = list(stream_reply(bot, "  is <b>nausea</b> a side effect?  ", [], [], "clinician"))
    assert bot.calls == [("is <b>nausea</b> a side effect?", (), Audience.CLINICIAN)]
    chats = [chat for chat, _ in steps]
    assert chats[0][0] == {"role": "user", "content": "is &lt;b&gt;nausea&lt;/b&gt; a side effect?"}
    assert [c[1]["content"] for c in chats[1:3]] == [DRAFT + "Yes, ▌", DRAFT + "Yes, nausea \\[T1\\] \\[T7\\]▌"]
    final_chat, answers = steps[-1]
    assert final_chat[1] == {"role": "assistant", "content": render_answer(answers[0])}  # streamed text replaced
    assert "T7" not in final_chat[1]["content"]
    assert final_chat[2]["metadata"]["title"] == EVIDENCE_TITLE
    assert final_chat[2]["content"] == render_evidence(answers[0])
    assert final_chat[2]["metadata"]["log"] == "1 cited fact · 1 cited passage · 2 linked entities"
    assert [a.question for a in answers] == ["is <b>nausea</b> a side effect?"]
    assert all(answers == [] for _, answers in steps[:-1])  # the state grows only with a final Answer


def test_handler_passes_earlier_answers_as_history_for_follow_ups():
    bot = ScriptedAssistant(("ok",), ANSWER)
    chat, answers = list(stream_reply(bot, "is nausea a side effect of metformin?", [], [], "patient"))[-1]
    chat, answers = list(stream_reply(bot, "what about its other side effects?", chat, answers, "patient"))[-1]
    assert [len(history) for _, history, _ in bot.calls] == [0, 1]
    assert bot.calls[1][1][0].question == "is nausea a side effect of metformin?"
    assert len(answers) == 2 and [m["role"] for m in chat] == ["user", "assistant", "assistant"] * 2


def test_handler_ignores_an_empty_question():
    bot = ScriptedAssistant((), ANSWER)
    assert list(stream_reply(bot, "   ", [], [], "patient")) == [([], [])]
    assert bot.calls == []


def test_handler_shows_an_expected_error_in_the_chat_and_keeps_the_session():
    earlier = [ANSWER]
    bot = ScriptedAssistant(("partial",), None, KGError("no knowledge graph at data/kg: build it with <x>"))
    chat, answers = list(stream_reply(bot, "what helps a migraine?", [], earlier, "patient"))[-1]
    assert answers == earlier
    assert chat[-1]["content"].startswith("⚠️ The assistant could not answer") and "&lt;x&gt;" in chat[-1]["content"]


def test_handler_fails_loudly_when_the_stream_has_no_answer():
    with pytest.raises(RuntimeError, match="without an Answer"):
        list(stream_reply(ScriptedAssistant(("text",), None), "what helps a migraine?", [], [], "patient"))


def test_handler_drives_the_real_pipeline_with_a_fake_generator(kg, fake_triager):
    from assistant.answer import Assistant
    from assistant.generation import FakeGenerator
    from assistant.linking import Linker

    bot = Assistant(kg, Linker(kg), None, FakeGenerator(), fake_triager)
    chat, answers = list(stream_reply(bot, "is nausea a side effect of metformin?", [], [], "patient"))[-1]
    assert "Nausea" in chat[1]["content"] and "source: SIDER" in chat[2]["content"]
    assert "metformin → DRUGBANK\\:DB00331 (compound)" in chat[2]["content"]
    chat, answers = list(stream_reply(bot, "what about its other side effects?", chat, answers, "patient"))[-1]
    assert len(answers) == 2 and answers[1].citations  # the follow-up resolved through the history
    assert all(c.text.startswith("Metformin") for c in answers[1].citations)
    chat, _ = list(stream_reply(bot, "I have crushing chest pain and can't breathe", chat, answers, "patient"))[-1]
    assert chat[-2]["content"].startswith("> 🚨 **Urgent") and chat[-1]["content"].startswith("> 🚨 **Urgent")


def test_urgent_answer_shows_the_banner_first_in_the_chat():
    bot = ScriptedAssistant(("Call your local emergency number now.",), URGENT)
    chat, _ = list(stream_reply(bot, "crushing chest pain", [], [], "patient"))[-1]
    assert chat[1]["content"].startswith("> 🚨 **Urgent")
    assert chat[2]["content"].startswith("> 🚨 **Urgent")


# --- the page -------------------------------------------------------------------------------------------------

def components(app: gr.Blocks, kind: type) -> list:
    return [block for block in app.blocks.values() if isinstance(block, kind)]


def test_build_app_lays_out_chat_audience_examples_disclaimer_and_clear():
    app = build_app(ScriptedAssistant((), ANSWER))
    assert isinstance(app, gr.Blocks)
    assert [r.value for r in components(app, gr.Radio)] == ["patient"]
    assert len(components(app, gr.Chatbot)) == 1 and len(components(app, gr.State)) == 2
    assert any("emergency number" in (m.value or "") for m in components(app, gr.Markdown))
    assert any(b.value == "Clear conversation" for b in components(app, gr.Button))
    dataset = components(app, gr.Dataset)[0]
    assert ["first-line pharmacotherapy for type 2 diabetes?", "clinician"] in dataset.raw_samples


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_page_is_served_on_a_local_port():
    app = build_app(ScriptedAssistant((), ANSWER))
    port = free_port()
    started = time.perf_counter()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert response.status == 200 and "MedKG Assistant" in response.read().decode()
    finally:
        app.close()
    assert time.perf_counter() - started < 10


@pytest.mark.integration
@pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing")  # gradio's own use of pandas 3
def test_a_question_streams_through_the_served_page_and_the_session_keeps_its_answers():
    """The real event chain over HTTP: take the question, stream the reply, then a follow-up in the same session."""
    from gradio_client import Client

    bot = ScriptedAssistant(("Yes, ", "nausea [T1]"), ANSWER)
    app = build_app(bot)
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        client.predict("is <b>nausea</b> a side effect?", api_name="/_take_question")
        job = client.submit([], "clinician", api_name="/reply")
        updates = [chat[-1]["content"][0]["text"] for chat in job]
        chat = job.result()
        assert DRAFT + "Yes, nausea \\[T1\\]▌" in updates  # streamed, marked a draft, before the final text
        assert chat[1]["content"][0]["text"] == render_answer(replace(ANSWER, audience=Audience.CLINICIAN))
        assert chat[2]["metadata"]["title"] == EVIDENCE_TITLE
        client.predict("what about its other side effects?", api_name="/_take_question")
        client.submit(chat, "patient", api_name="/reply").result()
    finally:
        app.close()
    assert [(q, len(history), who) for q, history, who in bot.calls] == [
        ("is <b>nausea</b> a side effect?", 0, Audience.CLINICIAN), ("what about its other side effects?", 1,
                                                                     Audience.PATIENT)]
