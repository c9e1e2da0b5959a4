"""The chat app (Gradio): a thin adapter from ``Assistant.stream`` to a web page on 127.0.0.1:7860.

The page holds no logic. Per session it keeps the earlier ``Answer``s in a ``gr.State`` and passes them to
``stream`` so follow-ups resolve; it streams the generator's text, then replaces it with the final,
citation-checked ``Answer.text`` and adds the evidence (``render_evidence``) under it as a collapsible message.

Everything shown that the app did not write itself (the question, the answer, entity names, source titles) is
escaped by ``md_escape`` before it reaches the Markdown renderer, so a message such as ``<img onerror=…>`` or
``[click](http://…)`` is shown as typed, never as markup. Run it with ``python -m assistant.app``.

Nothing a person typed is logged, kept or offered for upload unless the operator opts in (``MEDKG_LOG_QUESTIONS=1``):
a failed question is logged by its request id and error type (``log_failure``), Gradio's own errors, whose
messages quote a request's values, are replaced by ones that do not (``ChatPage``), and Gradio's run history
(``/gradio_api/runs``, which keeps runs in the browser and offers to upload them to a Hugging Face bucket) is off.
"""

from __future__ import annotations

import html
import logging
import os
import re
import traceback
import uuid
from collections.abc import Iterator, Sequence
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import gradio as gr

from assistant.citations import clean_text
from assistant.types import Answer, Audience, Citation, Tier, Triage
from kg.errors import KGError

log = logging.getLogger(__name__)

TITLE = "MedKG Assistant"
DISCLAIMER = ("Answers come from a medical knowledge graph and literature, with their sources. They are not a "
              "substitute for professional medical advice; in an emergency call your local emergency number.")
#: (question, audience) pairs shown under the input; a click fills both
EXAMPLES = (
    ("what helps a migraine?", Audience.PATIENT),
    ("is nausea a side effect of metformin?", Audience.PATIENT),
    ("what are the symptoms of lupus?", Audience.PATIENT),
    ("what drugs treat high blood pressure?", Audience.PATIENT),
    ("first-line pharmacotherapy for type 2 diabetes?", Audience.CLINICIAN),
)
EVIDENCE_TITLE = "Evidence and checks"

#: characters Markdown reads as syntax; '<', '>' and '&' become HTML entities instead (see ``md_escape``)
_MARKDOWN_SYNTAX = re.compile(r"([\\`*_{}\[\]()#+\-.!|~:=$])")
_URL_SAFE = "/:?#@!$&'*+,;=%~-._"  # kept as is in a link target; anything else (spaces, ( ) [ ] < >) is %-encoded
#: set to 1 (or true, yes) to let question text (and the messages of errors, which may quote it) into the logs
LOG_QUESTIONS_ENV = "MEDKG_LOG_QUESTIONS"


class ChatAssistant(Protocol):
    """What the app needs of ``assistant.answer.Assistant``."""

    def stream(self, question: str, history: Sequence[Answer] = (),
               audience: Audience = Audience.PATIENT) -> Iterator[str | Answer]: ...


# --- rendering: Answer -> Markdown ------------------------------------------------------------------------------

def md_escape(text: str) -> str:
    """``text`` as Markdown that renders to exactly ``text``: syntax characters are backslash-escaped and ``<``,
    ``>``, ``&`` become entities, so neither HTML nor Markdown (links, emphasis, lists, headings) gets through."""
    return html.escape(_MARKDOWN_SYNTAX.sub(r"\\\1", text), quote=False)


def safe_url(url: str | None) -> str | None:
    """An http(s) URL fit for a Markdown link target, or None (other schemes such as ``javascript:`` are dropped)."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return quote(url.strip(), safe=_URL_SAFE)


def render_banner(triage: Triage) -> str:
    """What triage says must come first, as a prominent block quote: the emergency message (urgent), the safety
    net of a message that may be urgent, or the note to a message not in English. Empty otherwise."""
    if not triage.message:
        return ""
    if triage.urgent:
        category = f" ({md_escape(triage.category)})" if triage.category else ""
        return f"> 🚨 **Urgent{category}: {md_escape(triage.message)}**"
    if triage.tier is Tier.POSSIBLE:
        return f"> ⚠️ **{md_escape(triage.message)}**"
    if triage.language:
        return "> ℹ️ " + md_escape(triage.message).replace("\n\n", "\n>\n> ")
    return ""


def render_answer(answer: Answer) -> str:
    """The answer's text for the chat: the emergency banner first when urgent, then the checked text."""
    text = answer.text
    banner = render_banner(answer.triage) if answer.triage else ""
    if banner and answer.triage.message and text.startswith(answer.triage.message):
        text = text[len(answer.triage.message):].strip()  # the banner already says it
    return "\n\n".join(part for part in (banner, md_escape(text)) if part)


def _notice(answer: Answer) -> str:
    if answer.triage is not None and not answer.triage.in_scope:
        return "> ℹ️ **Outside what this assistant covers:** it answers health and medicine questions only."
    if answer.abstained:
        return ("> ℹ️ **Not answered from the sources:** the knowledge graph and literature do not cover this "
                "question, so no answer was generated.")
    return ""


def _checks(answer: Answer) -> list[str]:
    lines = [f"- Removed, not supported by the evidence: “{md_escape(sentence)}”" for sentence in answer.unsupported]
    # a flag that repeats a removed sentence is already listed above
    lines += [f"- {md_escape(flag)}" for flag in answer.flags
              if not any(sentence in flag for sentence in answer.unsupported)]
    return lines


def _citation_line(citation: Citation) -> str:
    url = safe_url(citation.url)
    label = f"[{md_escape(citation.text)}]({url})" if url else md_escape(citation.text)
    return (f"- **{md_escape(citation.marker)}** {label} — source: {md_escape(citation.source)} · "
            f"licence: {md_escape(citation.licence)}")


def _section(heading: str, lines: Sequence[str]) -> str:
    return f"**{heading}**\n" + "\n".join(lines) if lines else ""


def render_evidence(answer: Answer) -> str:
    """What the answer rests on, as Markdown, most urgent first: the triage banner, the scope or abstention
    notice, the checks (removed sentences, flags), the linked entities (text → id, type), the cited facts and
    passages with source, licence and link, and the evidence that was given but not cited. Empty if none."""
    entities = dict.fromkeys(f"- {md_escape(m.text)} → {md_escape(m.entity_id)} ({md_escape(m.entity_type)})"
                             for m in answer.entities)
    facts = [_citation_line(c) for c in answer.citations if c.kind == "triple"]
    passages = [_citation_line(c) for c in answer.citations if c.kind != "triple"]
    uncited = [_citation_line(c) for c in answer.evidence if c not in answer.citations]
    parts = (render_banner(answer.triage) if answer.triage else "", _notice(answer),
             _section("Checks", _checks(answer)), _section("Linked entities", list(entities)),
             _section("Cited facts", facts), _section("Cited passages", passages),
             _section("Also given as evidence, not cited", uncited))
    return "\n\n".join(part for part in parts if part)


def _evidence_summary(answer: Answer) -> str:
    """A short line beside the evidence title, e.g. "1 cited fact · 2 linked entities · 1 check"."""
    facts = sum(c.kind == "triple" for c in answer.citations)
    counts = ((facts, "cited fact", "cited facts"), (len(answer.citations) - facts, "cited passage", "cited passages"),
              (len(answer.entities), "linked entity", "linked entities"), (len(_checks(answer)), "check", "checks"))
    return " · ".join(f"{n} {one if n == 1 else many}" for n, one, many in counts if n) or "nothing cited"


# --- logging without the question -----------------------------------------------------------------------------

def log_questions_enabled() -> bool:
    """Whether the operator let question text into the logs (``MEDKG_LOG_QUESTIONS=1``); off by default."""
    return os.environ.get(LOG_QUESTIONS_ENV, "").strip().lower() in ("1", "true", "yes")


def new_request_id() -> str:
    """A short random id that ties a log line to what the person was shown, e.g. ``"3f9c2a1b"``."""
    return uuid.uuid4().hex[:8]


def log_failure(request_id: str, question: str, error: Exception, *, expected: bool, log_questions: bool) -> None:
    """Log a question that could not be answered: a WARNING for an ``expected`` failure (a ``KGError``), an ERROR
    with the stack otherwise. By default the line names the request id, the error's type and, when unexpected, the
    stack as files, lines and code, never the question nor the error's message, which may quote it
    (``UnknownEntityError`` does). With ``log_questions`` the question and the whole error are logged."""
    level = logging.WARNING if expected else logging.ERROR
    kind = type(error).__name__
    if log_questions:
        log.log(level, "request %s: could not answer %r: %s: %s", request_id, question, kind, error,
                exc_info=None if expected else error)
        return
    stack = "" if expected else "\n" + "".join(traceback.format_tb(error.__traceback__)).rstrip()
    log.log(level, "request %s: could not answer: %s (question and message not logged; %s=1 logs them)%s",
            request_id, kind, LOG_QUESTIONS_ENV, stack)


# --- the streaming handler ------------------------------------------------------------------------------------

#: over the text as it is generated: the checks that follow may remove sentences of it
DRAFT = "*Draft, being checked against the evidence…*\n\n"


def stream_reply(assistant: ChatAssistant, question: str, chat: list, answers: list[Answer], audience: str, *,
                 request_id: str = "-", log_questions: bool = False) -> Iterator[tuple[list, list[Answer]]]:
    """Yield ``(chat messages, answers)`` as the answer streams: first the growing generated text, marked as a draft
    being checked (``DRAFT``: the checks may remove sentences of it), then the final checked ``Answer.text`` in its
    place, followed by its evidence as a collapsible message. ``answers``
    (the session's earlier ``Answer``s) is passed to ``stream`` as history and extended by the new one.
    An expected failure (``KGError``) is shown in the chat and logged by ``log_failure`` under ``request_id``."""
    question = clean_text(question).strip()  # a lone surrogate could not be encoded in the reply to the browser
    if not question:
        yield chat, answers
        return
    asked = [*chat, {"role": "user", "content": md_escape(question)}]  # each yield gets a fresh list
    yield [*asked, {"role": "assistant", "content": "…"}], answers
    streamed, final = "", None
    try:
        for piece in assistant.stream(question, history=tuple(answers), audience=Audience(audience)):
            if isinstance(piece, Answer):
                final = piece
                break
            streamed += piece
            yield [*asked, {"role": "assistant", "content": DRAFT + md_escape(streamed) + "▌"}], answers
    except KGError as error:  # an expected failure (a missing artefact, ...): say so in the chat, keep the session
        log_failure(request_id, question, error, expected=True, log_questions=log_questions)
        failure = f"⚠️ The assistant could not answer: {md_escape(str(error))} (request {md_escape(request_id)})"
        yield [*asked, {"role": "assistant", "content": failure}], answers
        return
    if final is None:
        raise RuntimeError("Assistant.stream ended without an Answer")
    chat = [*asked, {"role": "assistant", "content": render_answer(final)}]
    evidence = render_evidence(final)
    if evidence:
        chat.append({"role": "assistant", "content": evidence,
                     "metadata": {"title": EVIDENCE_TITLE, "log": _evidence_summary(final)}})
    yield chat, [*answers, final]


# --- the page's privacy ---------------------------------------------------------------------------------------

class ChatPage(gr.Blocks):
    """``gr.Blocks`` that keeps what a person typed out of Gradio's logs and run history.

    Gradio prints the exception of a failed request on stderr (``traceback.print_exc`` in ``queueing.py`` and
    ``routes.py``), and its own messages quote the request's values: ``Blocks.validate_inputs`` lists the inputs
    received when there are too few, ``Blocks._format_processing_error`` and pydantic's validation errors show the
    value a component could not read or write. Unless ``log_questions``, such an error is logged here by the
    handler's name, the counts and the error's type, and replaced by a ``gr.Error`` that Gradio shows but does not
    print. ``launch`` turns Gradio's run history off unless asked for by name: it would keep each run in the browser,
    offer to upload runs to a Hugging Face bucket, and serve them at ``/gradio_api/runs``."""

    def __init__(self, *args: Any, log_questions: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log_questions = log_questions

    def launch(self, *args: Any, run_history: bool = False, **kwargs: Any) -> Any:
        return super().launch(*args, run_history=run_history, **kwargs)

    async def preprocess_data(self, block_fn: Any, inputs: list[Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().preprocess_data(block_fn, inputs, *args, **kwargs)
        except Exception as error:
            if self.log_questions:
                raise
            log.warning("%s: refused a request's inputs (%d given, %d expected): %s", block_fn.name, len(inputs),
                        len(block_fn.inputs), type(error).__name__)
            raise gr.Error("The request's inputs could not be read.", print_exception=False) from error

    async def postprocess_data(self, block_fn: Any, predictions: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().postprocess_data(block_fn, predictions, *args, **kwargs)
        except Exception as error:
            if self.log_questions:
                raise
            log.error("%s: could not show its outputs: %s", block_fn.name, type(error).__name__)
            raise gr.Error("The reply could not be shown.", print_exception=False) from error


# --- layout ---------------------------------------------------------------------------------------------------

def _take_question(text: str) -> tuple[gr.Textbox, str]:
    """Empty and lock the input box while the answer streams; pass the text on."""
    return gr.Textbox(value="", interactive=False), text


def _unlock() -> gr.Textbox:
    return gr.Textbox(interactive=True)


def _clear() -> tuple[list, list[Answer]]:
    return [], []


def build_app(assistant: ChatAssistant, *, log_questions: bool | None = None) -> ChatPage:
    """The chat page around ``assistant``; nothing is launched. ``log_questions`` (default: ``MEDKG_LOG_QUESTIONS``)
    lets question text into the logs."""
    if log_questions is None:
        log_questions = log_questions_enabled()

    def reply(question: str, chat: list, answers: list[Answer], audience: str) -> Iterator[tuple[list, list]]:
        request_id = new_request_id()
        try:
            yield from stream_reply(assistant, question, chat, answers, audience, request_id=request_id,
                                    log_questions=log_questions)
        except Exception as error:  # unexpected: Gradio would print it, and its message may quote the question
            log_failure(request_id, question, error, expected=False, log_questions=log_questions)
            raise gr.Error(f"The assistant failed on this question (request {request_id}).",
                           print_exception=False) from error

    with ChatPage(title=TITLE, analytics_enabled=False, log_questions=log_questions) as app:
        answers = gr.State([])  # this session's earlier Answers, passed to stream() as history
        pending = gr.State("")  # the question being answered
        gr.Markdown(f"# {TITLE}\n{DISCLAIMER}")
        with gr.Row():
            with gr.Column(scale=4):
                chatbot = gr.Chatbot(label="Conversation", height=560, latex_delimiters=[], allow_tags=False,
                                     buttons=["copy", "copy_all"], feedback_options=None,
                                     placeholder="Ask about a disease, a symptom or a medicine.")
                question = gr.Textbox(label="Question", show_label=False, placeholder="Type a question and press Enter",
                                      submit_btn="Ask", autofocus=True)
            with gr.Column(scale=1, min_width=220):
                audience = gr.Radio([("Patient", Audience.PATIENT.value), ("Clinician", Audience.CLINICIAN.value)],
                                    value=Audience.PATIENT.value, label="Answer for")
                clear = gr.Button("Clear conversation", variant="secondary")
                gr.Examples([[text, who.value] for text, who in EXAMPLES], inputs=[question, audience],
                            label="Examples")

        taken = question.submit(_take_question, question, [question, pending], queue=False)
        # one generator behind the page: answers are produced one at a time, other sessions wait in the queue
        answered = taken.then(reply, [pending, chatbot, answers, audience], [chatbot, answers], concurrency_limit=1)
        answered.then(_unlock, None, question, queue=False)
        cleared = clear.click(_clear, None, [chatbot, answers], queue=False, cancels=[answered])
        cleared.then(_unlock, None, question, queue=False)
        chatbot.clear(_clear, None, [chatbot, answers], queue=False, cancels=[answered])  # the chat's own bin icon
    return app


def main(host: str = "127.0.0.1", port: int = 7860, generator: str = "auto", locale: str | None = None) -> None:
    """Open the assistant on the built artefacts and serve the chat on http://HOST:PORT (blocks until stopped).
    ``locale`` picks the emergency and crisis numbers (``prompts/locales.toml``). Gradio's run history is off
    (``ChatPage.launch``); question text reaches the logs only with ``MEDKG_LOG_QUESTIONS=1``."""
    from assistant.answer import Assistant  # the pipeline (and its models) load only when the app starts

    build_app(Assistant.open(generator, locale=locale)).launch(server_name=host, server_port=port)


if __name__ == "__main__":
    import sys

    import typer

    try:
        typer.run(main)
    except KGError as error:  # a missing or mismatched artefact: one line naming the command that builds it
        sys.exit(f"error: {error}")
