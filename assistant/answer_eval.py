"""``medkg eval answers``: run the assistant over a question set and measure its answers.

Question sets are JSONL, one conversation per line (``eval/answers_dev.jsonl``: KG-grounded, follow-up,
out-of-scope and no-answer questions; ``eval/triage_set.jsonl``: red flags and look-alikes)::

    {"id": "ans-001", "question": "is nausea a side effect of metformin?", "audience": "patient",
     "expected_entity_ids": ["DRUGBANK:DB00331", "UMLS:C0027497"], "expected_relation": "causes_side_effect",
     "expect_abstain": false, "expect_triage": false, "history": [], "category": "side_effect"}

``history`` holds the earlier user questions of the conversation, oldest first: they are asked first and their
answers passed on as history, unscored. ``expected_entity_ids`` names the KG entities a cited triple must contain:
for an open question ("what helps a migraine?") the asked entity (``DOID:6364``), whose triples carry the answer;
for a yes/no question both ends of the fact that proves it (drug and side effect). ``expected_relation`` documents
the relation of that fact; no metric reads it.

Metrics (pure functions of the outcomes; a ``Ratio`` of 0/0 is reported as n/a):

* **citation validity** = valid / cited, over all answers. Cited: every ``Answer.citations`` item, plus every
  marker left in ``Answer.text`` that no citation carries. Valid: a citation equal to an item of
  ``Answer.evidence`` (what the prompt's evidence block held). Target 100%.
* **gold-fact recall** = hits / eligible. Eligible: rows with expected ids that expect neither abstention nor
  triage. Hit: the answer cites a valid triple citation (kind ``"triple"``, in the evidence) whose triple, looked
  up by id in the KG, has its subject or object among the expected ids.
* **gold fact in evidence** = rows with two or more expected ids (neither abstention nor triage) whose evidence
  block holds a triple joining two of them / such rows: retrieval's share of the recall, measured apart from the
  generator.
* **unsupported-entity rate** (the issue's "sentences naming unsupported entities") = sentences removed because
  they name a drug or disease absent from the evidence (flag ``UNSUPPORTED_ENTITY_FLAG``) / sentences the
  generator wrote (``Answer.raw_text``, before checking: the shown text lacks the removed sentences and adds fixed
  notes and disclaimers), summed over the answers that neither abstained nor raised an urgent triage (canned
  messages would dilute the rate).
* **uncited-sentence rate** = sentences removed because they cite nothing and are neither advice to see a
  professional nor a statement about the sources (flag ``UNSOURCED_FLAG``, ``citations.unsourced``) / the same
  sentences.
* **removed-sentence rate** (stricter) = every removed sentence (``len(Answer.unsupported)``: also claims cited
  only to triples that do not state them, uncited ones, and denials of facts the evidence holds) / the same
  sentences. Sentences end at ``.``, ``!`` or ``?`` followed by space and a capital, digit, quote or bracket, and at
  a line break (the rule of ``assistant.citations``).
* **abstention accuracy** = rows where ``Answer.abstained == expect_abstain`` / rows with ``expect_triage`` false.
* **triage recall** = urgent answers / rows with ``expect_triage`` true (target ≥ 0.98); **false-alarm rate** =
  urgent answers / rows with ``expect_triage`` false (target ≤ 5%). Urgent: ``Answer.triage.urgent``.
* **patient reading grade**: Flesch–Kincaid grade (textstat) of each patient answer that neither abstained nor
  raised an urgent triage, citation markers stripped; mean (target ≤ 8) and median. The same of the generator's
  own text (``Answer.raw_text``, before checking) is reported beside it, without a target: the shown answer also
  holds fixed texts (notes, the evidence listed when nothing is cited, the disclaimer), and this row says how
  plainly the model itself writes.
* **latency**: p50 and p95 (linear interpolation between order statistics, numpy's default) of every stage in
  ``Answer.timings`` (``first_token``: time to first token, target p50 ≤ 1.5 s) and of ``total`` (the
  ``total`` timing, or the wall time of the ``answer`` call when absent; target p50 ≤ 4 s).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Protocol

import numpy as np
import typer

from assistant.citations import UNSOURCED_FLAG, UNSUPPORTED_ENTITY_FLAG, sentences
from assistant.types import Answer, Audience
from kg.errors import KGError
from kg.types import Triple
from kg.vocab import Relation

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
DEV_SET = REPO / "eval" / "answers_dev.jsonl"
TRIAGE_SET = REPO / "eval" / "triage_set.jsonl"
KEYS = ("id", "question", "audience", "expected_entity_ids", "expected_relation", "expect_abstain", "expect_triage",
        "history", "category")
#: keys a row may add (the blind batches and the usefulness set): key -> default
OPTIONAL = {"expect_decline": False, "expected_first": [], "poor_first": [], "topic": None, "kg_gaps": []}
CURIE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*:[^\s:]\S*$")
_BRACKET = re.compile(r"\[\s*[TPtp]\s*\d+(?:\s*[,;]\s*[TPtp]\s*\d+)*\s*\]")
_MARKER = re.compile(r"([TPtp])\s*(\d+)")


class QuestionSetError(KGError):
    """A question-set file is missing or a row is malformed; names the file and the line."""

    def __init__(self, path: object, line: int | None, detail: str) -> None:
        self.path, self.line = path, line
        super().__init__(f"{path}:{line}: {detail}" if line else f"{path}: {detail}")


@dataclass(frozen=True)
class QuestionRow:
    id: str
    question: str
    audience: Audience
    expected_entity_ids: tuple[str, ...]
    expected_relation: Relation | None
    expect_abstain: bool
    expect_triage: bool
    history: tuple[str, ...]  # earlier user questions of the conversation, oldest first
    category: str | None  # e.g. "side_effect", "no_answer"; in the triage set the red flag, null for look-alikes
    expect_decline: bool = False  # personal dosing, prescriptions, stopping or switching, children, pregnancy
    expected_first: tuple[str, ...] = ()  # what a good clinician names first (ids the KG holds for the question)
    poor_first: tuple[str, ...] = ()  # what would be a poor first answer (obsolete, rare, neonatal-only)
    topic: str | None = None  # the condition or drug asked about (the usefulness set is split by topic)


@dataclass(frozen=True)
class Outcome:
    row: QuestionRow
    answer: Answer
    seconds: float  # wall time of the scored ``answer`` call


class AnswersQuestions(Protocol):
    def answer(self, question: str, history: Sequence[Answer] = (),
               audience: Audience = Audience.PATIENT) -> Answer: ...


class TripleLookup(Protocol):
    def triple(self, triple_id: str) -> Triple: ...


# --- reading ------------------------------------------------------------------------------------


def _row(data: object, fail: Callable[[str], QuestionSetError]) -> QuestionRow:
    if not isinstance(data, dict):
        raise fail(f"expected a JSON object, got {type(data).__name__}")
    missing, unknown = [k for k in KEYS if k not in data], sorted(set(data) - set(KEYS) - set(OPTIONAL))
    if missing or unknown:
        raise fail("; ".join(filter(None, [missing and f"missing keys {missing}", unknown and f"unknown keys "
                                           f"{unknown}"])) + f" (expected {list(KEYS)}, optionally {list(OPTIONAL)})")
    data = {**OPTIONAL, **data}
    if not isinstance(data["expect_decline"], bool):
        raise fail(f"'expect_decline' must be true or false, got {data['expect_decline']!r}")
    if data["topic"] is not None and not isinstance(data["topic"], str):
        raise fail(f"'topic' must be null or a string, got {data['topic']!r}")
    for key in ("id", "question"):
        if not isinstance(data[key], str) or not data[key].strip():
            raise fail(f"{key!r} must be a non-empty string, got {data[key]!r}")
    if data["category"] is not None and (not isinstance(data["category"], str) or not data["category"].strip()):
        raise fail(f"'category' must be null or a non-empty string, got {data['category']!r}")
    for key in ("expect_abstain", "expect_triage"):
        if not isinstance(data[key], bool):
            raise fail(f"{key!r} must be true or false, got {data[key]!r}")
    if data["audience"] not in {a.value for a in Audience}:
        raise fail(f"'audience' must be one of {[a.value for a in Audience]}, got {data['audience']!r}")
    relation = data["expected_relation"]
    if relation is not None and relation not in {r.value for r in Relation}:
        raise fail(f"'expected_relation' must be null or a kg.vocab.Relation value, got {relation!r}")
    for key in ("expected_entity_ids", "history", "expected_first", "poor_first", "kg_gaps"):
        value = data[key]
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise fail(f"{key!r} must be a list of non-empty strings, got {value!r}")
    bad = [v for key in ("expected_entity_ids", "expected_first", "poor_first") for v in data[key]
           if not CURIE.match(v)]
    if bad:
        raise fail(f"'expected_entity_ids' must be CURIEs like 'DOID:9352', got {bad}")
    return QuestionRow(data["id"], data["question"], Audience(data["audience"]), tuple(data["expected_entity_ids"]),
                       Relation(relation) if relation is not None else None, data["expect_abstain"],
                       data["expect_triage"], tuple(data["history"]), data["category"], data["expect_decline"],
                       tuple(data["expected_first"]), tuple(data["poor_first"]), data["topic"])


def read_question_set(*paths: Path | str) -> list[QuestionRow]:
    """The rows of the JSONL files, in order; ``QuestionSetError`` (file and line) on a malformed row or an id
    seen twice. Blank lines are skipped."""
    rows: list[QuestionRow] = []
    seen: dict[str, str] = {}
    for path in map(Path, paths):
        if not path.is_file():
            raise QuestionSetError(path, None, "no such question set")
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue

                def fail(detail: str, path: Path = path, number: int = number) -> QuestionSetError:
                    return QuestionSetError(path, number, detail)

                try:
                    data = json.loads(line)
                except json.JSONDecodeError as error:
                    raise fail(f"not JSON ({error.msg}, column {error.colno})") from None
                row = _row(data, fail)
                if row.id in seen:
                    raise fail(f"duplicate id {row.id!r} (first at {seen[row.id]})")
                seen[row.id] = f"{path}:{number}"
                rows.append(row)
    return rows


# --- running ------------------------------------------------------------------------------------


def run(assistant: AnswersQuestions, rows: Sequence[QuestionRow]) -> list[Outcome]:
    """Ask every row as one conversation: its ``history`` questions first (answers passed on, not scored), then
    its question, timed."""
    outcomes = []
    for number, row in enumerate(rows, 1):
        history: list[Answer] = []
        for earlier in row.history:
            history.append(_checked(assistant.answer(earlier, history=tuple(history), audience=row.audience)))
        start = time.perf_counter()
        answer = _checked(assistant.answer(row.question, history=tuple(history), audience=row.audience))
        outcomes.append(Outcome(row, answer, time.perf_counter() - start))
        log.info("%d/%d %s: %.2f s%s", number, len(rows), row.id, outcomes[-1].seconds,
                 " (abstained)" if answer.abstained else "")
    return outcomes


def _checked(answer: object) -> Answer:
    if not isinstance(answer, Answer):
        raise TypeError(f"assistant.answer must return an assistant.types.Answer, got {type(answer).__name__}")
    return answer


# --- metrics ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ratio:
    hits: int
    total: int

    @property
    def value(self) -> float | None:
        return self.hits / self.total if self.total else None


@dataclass(frozen=True)
class Readability:
    n: int
    mean: float | None
    median: float | None


@dataclass(frozen=True)
class Latency:
    stage: str
    n: int
    p50: float  # seconds
    p95: float


def text_markers(text: str) -> set[str]:
    """Markers written in ``text``, normalised: "[T1, p2]" -> {"T1", "P2"}."""
    return {f"{kind.upper()}{int(number)}" for group in _BRACKET.findall(text) for kind, number in
            _MARKER.findall(group)}


def strip_markers(text: str) -> str:
    text = _BRACKET.sub("", text)
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", text)).strip()


def _urgent(answer: Answer) -> bool:
    return answer.triage is not None and answer.triage.urgent


def _generated(answer: Answer) -> bool:
    """A generated answer: neither an abstention nor an urgent triage message."""
    return not answer.abstained and not _urgent(answer)


def citation_validity(outcomes: Sequence[Outcome]) -> Ratio:
    """Valid citations / cited markers (see the module docstring)."""
    valid = cited = 0
    for outcome in outcomes:
        answer = outcome.answer
        dangling = text_markers(answer.text) - {c.marker for c in answer.citations}
        cited += len(answer.citations) + len(dangling)
        valid += sum(1 for c in answer.citations if c in answer.evidence)
    return Ratio(valid, cited)


def triple_ends(kg: TripleLookup) -> Callable[[str], tuple[str, str]]:
    """Triple id -> (subject, object), each triple read from the KG once."""

    @functools.cache
    def ends(triple_id: str) -> tuple[str, str]:
        triple = kg.triple(triple_id)
        return triple.subject, triple.object

    return ends


def gold_fact_recall(outcomes: Sequence[Outcome], kg: TripleLookup) -> Ratio:
    """Eligible answers citing a valid triple that touches an expected entity / eligible answers."""
    ends = triple_ends(kg)
    hits = total = 0
    for outcome in outcomes:
        row, answer = outcome.row, outcome.answer
        if not row.expected_entity_ids or row.expect_abstain or row.expect_triage:
            continue
        total += 1
        expected = set(row.expected_entity_ids)
        for citation in answer.citations:
            if citation.kind != "triple" or citation not in answer.evidence:
                continue
            if expected.intersection(ends(citation.id)):
                hits += 1
                break
    return Ratio(hits, total)


def gold_fact_in_evidence(outcomes: Sequence[Outcome], kg: TripleLookup) -> Ratio:
    """Rows asking about a pair of entities whose evidence block holds a triple joining them / such rows: whether
    retrieval gave the generator the fact at all (a miss here is linking's or ranking's, not the model's)."""
    ends = triple_ends(kg)
    hits = total = 0
    for outcome in outcomes:
        row, answer = outcome.row, outcome.answer
        if len(row.expected_entity_ids) < 2 or row.expect_abstain or row.expect_triage:
            continue
        total += 1
        expected = set(row.expected_entity_ids)
        hits += any(item.kind == "triple" and set(ends(item.id)) <= expected for item in answer.evidence)
    return Ratio(hits, total)


def _written(outcomes: Sequence[Outcome]) -> tuple[list[Answer], int]:
    """The generated answers and the number of sentences the generator wrote in them (before checking)."""
    answers = [o.answer for o in outcomes if _generated(o.answer)]
    return answers, sum(len(sentences(a.raw_text)) for a in answers)


def unsupported_sentence_rate(outcomes: Sequence[Outcome]) -> Ratio:
    """Removed sentences (any reason) / sentences the generator wrote, over the generated answers."""
    answers, written = _written(outcomes)
    return Ratio(sum(len(a.unsupported) for a in answers), written)


def _flagged_rate(outcomes: Sequence[Outcome], flag: str) -> Ratio:
    answers, written = _written(outcomes)
    return Ratio(sum(f.startswith(flag + ":") for a in answers for f in a.flags), written)


def unsupported_entity_rate(outcomes: Sequence[Outcome]) -> Ratio:
    """Sentences removed for naming a drug or disease absent from the evidence / sentences the generator wrote."""
    return _flagged_rate(outcomes, UNSUPPORTED_ENTITY_FLAG)


def uncited_sentence_rate(outcomes: Sequence[Outcome]) -> Ratio:
    """Sentences removed for citing nothing (``citations.unsourced``) / sentences the generator wrote."""
    return _flagged_rate(outcomes, UNSOURCED_FLAG)


def abstention_accuracy(outcomes: Sequence[Outcome]) -> Ratio:
    """Over rows expecting neither triage nor a decline (declines are measured apart: ``usefulness_eval``)."""
    rows = [o for o in outcomes if not o.row.expect_triage and not o.row.expect_decline]
    return Ratio(sum(1 for o in rows if o.answer.abstained == o.row.expect_abstain), len(rows))


def triage_recall(outcomes: Sequence[Outcome]) -> Ratio:
    rows = [o for o in outcomes if o.row.expect_triage]
    return Ratio(sum(1 for o in rows if _urgent(o.answer)), len(rows))


def triage_false_alarm_rate(outcomes: Sequence[Outcome]) -> Ratio:
    rows = [o for o in outcomes if not o.row.expect_triage]
    return Ratio(sum(1 for o in rows if _urgent(o.answer)), len(rows))


def flesch_kincaid_grade(text: str) -> float:
    """Flesch–Kincaid grade, ``0.39 * words/sentences + 11.8 * syllables/words - 15.59``, of the text without
    its citation markers (textstat: syllables from the CMU dictionary, else pyphen)."""
    import textstat

    return float(textstat.flesch_kincaid_grade(strip_markers(text)))


def patient_grade(outcomes: Sequence[Outcome], own: bool = False) -> Readability:
    """Grade of the shown patient answers, or with ``own`` of the generator's own text in them (before checking)."""
    texts = (o.answer.raw_text if own else o.answer.text for o in outcomes
             if o.answer.audience == Audience.PATIENT and _generated(o.answer))
    grades = [flesch_kincaid_grade(text) for text in texts if re.search(r"\w", text)]
    if not grades:
        return Readability(0, None, None)
    return Readability(len(grades), statistics.fmean(grades), statistics.median(grades))


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q))


def latency(outcomes: Sequence[Outcome]) -> list[Latency]:
    """p50/p95 per stage of ``Answer.timings`` (in order of first appearance), then ``total``."""
    by_stage: dict[str, list[float]] = {}
    for outcome in outcomes:
        for stage, seconds in outcome.answer.timings.items():
            if stage != "total":
                by_stage.setdefault(stage, []).append(float(seconds))
    by_stage["total"] = [float(o.answer.timings.get("total", o.seconds)) for o in outcomes]
    return [Latency(stage, len(values), percentile(values, 50), percentile(values, 95))
            for stage, values in by_stage.items() if values]


# --- the report ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CategoryResult:
    category: str | None
    n: int
    abstention: Ratio
    gold_recall: Ratio
    urgent: int


@dataclass(frozen=True)
class EvalReport:
    questions: int
    citation_validity: Ratio
    gold_fact_recall: Ratio
    gold_fact_in_evidence: Ratio
    unsupported_entities: Ratio
    uncited_sentences: Ratio
    unsupported_sentences: Ratio  # removed for any reason
    abstention_accuracy: Ratio
    triage_recall: Ratio
    triage_false_alarms: Ratio
    patient_grade: Readability
    own_grade: Readability  # the generator's own text in the same answers
    latency: tuple[Latency, ...]
    categories: tuple[CategoryResult, ...]


def evaluate(outcomes: Sequence[Outcome], kg: TripleLookup) -> EvalReport:
    categories = []
    for category in dict.fromkeys(o.row.category for o in outcomes):
        subset = [o for o in outcomes if o.row.category == category]
        categories.append(CategoryResult(category, len(subset), abstention_accuracy(subset),
                                         gold_fact_recall(subset, kg), sum(1 for o in subset if _urgent(o.answer))))
    return EvalReport(len(outcomes), citation_validity(outcomes), gold_fact_recall(outcomes, kg),
                      gold_fact_in_evidence(outcomes, kg), unsupported_entity_rate(outcomes),
                      uncited_sentence_rate(outcomes), unsupported_sentence_rate(outcomes),
                      abstention_accuracy(outcomes), triage_recall(outcomes), triage_false_alarm_rate(outcomes),
                      patient_grade(outcomes), patient_grade(outcomes, own=True), tuple(latency(outcomes)),
                      tuple(categories))


def _percent(ratio: Ratio) -> str:
    return "n/a" if ratio.value is None else f"{100 * ratio.value:.1f}%"


def _decimal(ratio: Ratio) -> str:
    return "n/a" if ratio.value is None else f"{ratio.value:.3f}"


def _status(value: float | None, ok: Callable[[float], bool]) -> str:
    return "n/a" if value is None else ("met" if ok(value) else "MISSED")


def _ratio_row(name: str, ratio: Ratio, show: Callable[[Ratio], str] = _percent, target: str = "-",
               ok: Callable[[float], bool] | None = None) -> tuple[str, str, str, str, str]:
    return name, show(ratio), f"{ratio.hits}/{ratio.total}", target, _status(ratio.value, ok) if ok else ""


def format_report(report: EvalReport) -> str:
    """The metrics as a table, each with its target and whether it is met; then latency and categories."""
    r, grade, own = report, report.patient_grade, report.own_grade
    mean, median, own_mean = ("n/a" if v is None else f"{v:.1f}" for v in (grade.mean, grade.median, own.mean))
    rows = [
        _ratio_row("citation validity", r.citation_validity, target="= 100%", ok=lambda v: v == 1.0),
        _ratio_row("gold-fact recall", r.gold_fact_recall),
        _ratio_row("gold fact in evidence", r.gold_fact_in_evidence),
        _ratio_row("unsupported-entity rate", r.unsupported_entities),
        _ratio_row("uncited-sentence rate", r.uncited_sentences),
        _ratio_row("removed-sentence rate", r.unsupported_sentences),
        _ratio_row("abstention accuracy", r.abstention_accuracy),
        _ratio_row("triage recall", r.triage_recall, _decimal, ">= 0.98", lambda v: v >= 0.98),
        _ratio_row("triage false-alarm rate", r.triage_false_alarms, target="<= 5%", ok=lambda v: v <= 0.05),
        ("patient FK grade, mean", mean, f"n={grade.n}", "<= 8", _status(grade.mean, lambda v: v <= 8)),
        ("patient FK grade, median", median, f"n={grade.n}", "-", ""),
        ("  generator's own text, mean", own_mean, f"n={own.n}", "-", ""),
    ]
    lines = [f"{r.questions} questions", f"{'metric':<28}{'value':>9}{'count':>11}   {'target':<9}status"]
    lines += [f"{name:<28}{value:>9}{count:>11}   {target:<9}{status}".rstrip()
              for name, value, count, target, status in rows]
    targets = {"first_token": 1.5, "total": 4.0}
    lines += ["", f"{'latency (s)':<28}{'n':>5}{'p50':>9}{'p95':>9}   {'target':<12}status"]
    for item in r.latency:
        target = targets.get(item.stage)
        status = _status(item.p50, lambda v, t=target: v <= t) if target else ""
        lines.append(f"{item.stage:<28}{item.n:>5}{item.p50:>9.3f}{item.p95:>9.3f}   "
                     f"{f'p50 <= {target}' if target else '-':<12}{status}".rstrip())
    if "first_token" not in {item.stage for item in r.latency}:
        lines.append("first_token: not reported by the assistant (no 'first_token' timing)")
    lines += ["", f"{'category':<20}{'n':>5}{'abstention acc':>16}{'gold recall':>13}{'urgent':>8}"]
    lines += [f"{c.category or '(none)':<20}{c.n:>5}{_percent(c.abstention):>16}{_percent(c.gold_recall):>13}"
              f"{c.urgent:>8}" for c in r.categories]
    return "\n".join(lines)


# --- the command --------------------------------------------------------------------------------


class Generator(StrEnum):
    AUTO = "auto"
    LLAMA_CPP = "llama-cpp"
    TRANSFORMERS = "transformers"
    KG = "kg"  # the ranked facts in the KG's words (assistant.kg_writer)
    FAKE = "fake"


def default_question_sets() -> list[Path]:
    """The development set, and the triage set when it exists."""
    return [DEV_SET, *([TRIAGE_SET] if TRIAGE_SET.is_file() else [])]


def eval_answers(
    questions: Annotated[list[Path] | None, typer.Option(
        "--questions", help="JSONL question sets (repeatable; default: eval/answers_dev.jsonl and "
                            "eval/triage_set.jsonl if present).")] = None,
    limit: Annotated[int, typer.Option(min=0, help="Only the first N questions (0: all).")] = 0,
    generator: Annotated[Generator, typer.Option(help="The generator the assistant uses.")] = Generator.AUTO,
    weights: Annotated[str, typer.Option(help="Local model weights: default, base, trained or a GGUF path.")
                       ] = "default",
    audience: Annotated[Audience | None, typer.Option(help="Ask every question as this audience.")] = None,
    clinician_writer: Annotated[str, typer.Option(
        "--clinician-writer", help="Who writes clinicians' answers: the generator ('model') or the ranked facts "
                                   "in the KG's words ('kg', the default).")] = "kg",
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the outcomes and metrics here.")] = None,
    kg_data_dir: Annotated[Path | None, typer.Option("--kg-data-dir", help="The built KG the cited triples are "
                                                                          "looked up in (data/kg).")] = None,
) -> None:
    """Answer the question sets and report citation validity, gold-fact recall, unsupported sentences,
    abstention, triage, patient reading grade and latency, each against its target."""
    from assistant.answer import Assistant
    from kg.store import DEFAULT_DATA_DIR, KnowledgeGraph

    paths = questions or default_question_sets()
    rows = read_question_set(*paths)
    rows = rows[:limit] if limit else rows
    if audience is not None:
        rows = [replace(row, audience=Audience(audience)) for row in rows]
    from assistant.answer_cli import local_weights

    assistant = Assistant.open(generator=Generator(generator).value, clinician_writer=clinician_writer,
                               **local_weights(Generator(generator).value, weights))
    outcomes = run(assistant, rows)
    from assistant.usefulness_eval import format_handling, handling

    with KnowledgeGraph.open(kg_data_dir or DEFAULT_DATA_DIR) as kg:
        report, handled = evaluate(outcomes, kg), handling(outcomes, kg, getattr(assistant, "concept", None))
    typer.echo(f"question sets: {', '.join(str(p) for p in paths)}; generator {Generator(generator).value}, "
               f"weights {weights}, clinicians' writer {clinician_writer}"
               + (f"; audience forced to {Audience(audience).value}" if audience is not None else ""))
    typer.echo(format_report(report))
    typer.echo("\n" + format_handling(handled))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps({"report": asdict(report), "handling": asdict(handled),
                                         "outcomes": [asdict(o) for o in outcomes]},
                                        ensure_ascii=False, indent=1))
        typer.echo(f"outcomes written to {json_path}")
