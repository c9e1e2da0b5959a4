"""The answer-evaluation harness: every metric on hand-built answers, the question-set reader, ``run`` with a
scripted assistant, the command on the fixture KG, and the committed development set."""

from __future__ import annotations

import json
import re
import sys
import types
from collections import Counter
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from assistant import answer_eval as ae
from assistant.types import Answer, Audience, Citation, Tier, Triage
from kg.errors import UnknownTripleError
from kg.subgraph import neighbourhood
from kg.vocab import Relation

METFORMIN, NAUSEA, T2D, MIGRAINE = "DRUGBANK:DB00331", "UMLS:C0027497", "DOID:9352", "DOID:6364"


def row(id_: str = "q-1", expected: tuple[str, ...] = (), abstain: bool = False, triage: bool = False,
        audience: Audience = Audience.PATIENT, category: str = "side_effect", history: tuple[str, ...] = ()):
    return ae.QuestionRow(id_, "question?", audience, expected, None, abstain, triage, history, category)


def citation(marker: str, id_: str = "t", kind: str = "triple") -> Citation:
    return Citation(marker, kind, id_, f"text of {id_}", "SIDER 4.1", "CC BY-NC-SA 4.0")


def answer(text: str = "An answer.", citations=(), evidence=(), audience: Audience = Audience.PATIENT,
           abstained: bool = False, urgent: bool = False, unsupported=(), timings=None, raw_text=None,
           flags=()) -> Answer:
    return Answer("question?", audience, text, tuple(citations), tuple(evidence), abstained=abstained,
                  triage=Triage(Tier.EMERGENCY if urgent else Tier.NONE, "cardiac" if urgent else None),
                  unsupported=tuple(unsupported),
                  timings=timings or {}, raw_text=text if raw_text is None else raw_text, flags=tuple(flags))


def outcome(answer_: Answer, row_: ae.QuestionRow | None = None, seconds: float = 1.0) -> ae.Outcome:
    return ae.Outcome(row_ or row(), answer_, seconds)


# --- citation validity ------------------------------------------------------------------------


def test_citation_validity_all_resolved():
    t1, p1 = citation("T1", "a"), citation("P1", "doc#0", "passage")
    result = ae.citation_validity([outcome(answer("Yes [T1][P1].", [t1, p1], [t1, p1, citation("T2", "b")]))])
    assert (result.hits, result.total, result.value) == (2, 2, 1.0)


def test_forged_citation_not_in_evidence_lowers_validity():
    t1 = citation("T1", "a")
    forged = citation("T2", "made-up")
    result = ae.citation_validity([outcome(answer("Yes [T1][T2].", [t1, forged], [t1]))])
    assert (result.hits, result.total) == (1, 2)
    assert result.value < 1


def test_marker_left_in_text_without_citation_counts_as_invalid():
    t1 = citation("T1", "a")
    result = ae.citation_validity([outcome(answer("Yes [T1, T7].", [t1], [t1]))])
    assert (result.hits, result.total) == (1, 2)


def test_citation_validity_without_citations_is_undefined():
    assert ae.citation_validity([outcome(answer("No markers here."))]).value is None


def test_text_markers_and_stripping():
    assert ae.text_markers("a [T1] b [t2, P3] c [X1] [T 4]") == {"T1", "T2", "P3", "T4"}
    assert ae.strip_markers("Metformin can cause nausea [T1][P2]. It helps [T3, T4] .") == \
        "Metformin can cause nausea. It helps."


# --- gold-fact recall (fixture KG) --------------------------------------------------------------


@pytest.fixture(scope="module")
def metformin_triples(kg):
    triples = neighbourhood(kg, [METFORMIN], [Relation.CAUSES_SIDE_EFFECT, Relation.TREATS], budget=50).triples
    nausea = next(t for t in triples if t.object == NAUSEA)
    treats = next(t for t in triples if t.predicate == Relation.TREATS and t.object == T2D)
    return nausea, treats


def test_gold_fact_recall_counts_a_cited_triple_touching_an_expected_entity(kg, metformin_triples):
    nausea, treats = metformin_triples
    t1, t2 = citation("T1", nausea.id), citation("T2", treats.id)
    evidence = [t1, t2]
    outcomes = [
        outcome(answer("Yes [T1].", [t1], evidence), row("a", (METFORMIN, NAUSEA))),  # hit: both ends expected
        outcome(answer("It treats diabetes [T2].", [t2], evidence), row("b", (T2D,))),  # hit: the object
        outcome(answer("Nausea [T1].", [t1], evidence), row("c", (MIGRAINE,))),  # miss: unrelated triple
        outcome(answer("No citation.", [], evidence), row("d", (METFORMIN,))),  # miss: nothing cited
        outcome(answer("Abstained.", abstained=True), row("e", (METFORMIN,), abstain=True)),  # not eligible
        outcome(answer("Call 911."), row("f", (METFORMIN,), triage=True)),  # not eligible
        outcome(answer("Hi."), row("g")),  # not eligible: no expected ids
    ]
    result = ae.gold_fact_recall(outcomes, kg)
    assert (result.hits, result.total) == (2, 4)


def test_gold_fact_recall_ignores_forged_and_passage_citations(kg, metformin_triples):
    nausea, _ = metformin_triples
    forged = citation("T1", nausea.id)  # the right triple, but not in the evidence the prompt held
    passage = citation("P1", "medquad:x#0", "passage")
    outcomes = [outcome(answer("Yes [T1][P1].", [forged, passage], [passage]), row("a", (METFORMIN,)))]
    assert ae.gold_fact_recall(outcomes, kg).hits == 0


def test_gold_fact_in_evidence_needs_the_triple_joining_the_expected_pair(kg, metformin_triples):
    nausea, treats = metformin_triples
    t1, t2 = citation("T1", nausea.id), citation("T2", treats.id)
    outcomes = [
        outcome(answer("No.", [], [t2, t1]), row("a", (METFORMIN, NAUSEA))),  # hit: T1 joins them, uncited
        outcome(answer("Yes [T2].", [t2], [t2]), row("b", (METFORMIN, NAUSEA))),  # miss: only metformin's other fact
        outcome(answer("Yes.", [], [t1]), row("c", (METFORMIN,))),  # not eligible: one expected id
        outcome(answer("Abstained.", abstained=True), row("d", (METFORMIN, NAUSEA), abstain=True)),  # not eligible
    ]
    result = ae.gold_fact_in_evidence(outcomes, kg)
    assert (result.hits, result.total) == (1, 2)


def test_gold_fact_recall_raises_on_a_triple_the_kg_does_not_hold(kg):
    ghost = citation("T1", "0000000000000000")
    with pytest.raises(UnknownTripleError):
        ae.gold_fact_recall([outcome(answer("x [T1].", [ghost], [ghost]), row("a", (METFORMIN,)))], kg)


# --- unsupported sentences, abstention, triage --------------------------------------------------


def test_sentences_split_at_ends_followed_by_a_capital():
    text = "Metformin can cause nausea [T1]. It may also cause diarrhoea, e.g. in week one. Ask your doctor!"
    assert ae.sentences(text) == ["Metformin can cause nausea [T1].",
                                  "It may also cause diarrhoea, e.g. in week one.", "Ask your doctor!"]
    assert ae.sentences("Evidence:\n[T1] Metformin — causes side effect — Nausea\nAsk a doctor.") == [
        "Evidence:", "[T1] Metformin — causes side effect — Nausea", "Ask a doctor."]  # a line is a sentence


def test_unsupported_sentence_rate_over_generated_answers():
    # the shown text lost the removed sentence and gained a note and a disclaimer: the rate counts what was written
    generated = answer("One [T1]. Three. Four. (I left out 1 sentence.) See a doctor.",
                       unsupported=["Two names zorblatine."], raw_text="One [T1]. Two names zorblatine. Three. Four.")
    abstained = answer("I cannot answer that. Please ask a doctor.", abstained=True)
    urgent = answer("Call emergency services now. Do not wait.", urgent=True)
    result = ae.unsupported_sentence_rate([outcome(generated), outcome(abstained), outcome(urgent)])
    assert (result.hits, result.total) == (1, 4)


def test_unsupported_entity_rate_counts_only_sentences_naming_what_the_evidence_lacks(kg):
    written = "Metformin can cause nausea [T1]. Zorblatine treats it [T2]. No, it cannot cause nausea. Ask a doctor."
    flags = ["unsupported sentence removed: Zorblatine treats it [T2].",
             "contradicted sentence removed: No, it cannot cause nausea. (T1 states it)"]
    removed = ["Zorblatine treats it [T2].", "No, it cannot cause nausea."]
    generated = answer("Metformin can cause nausea [T1]. Ask a doctor. (I left out 2 sentences.)",
                       unsupported=removed, raw_text=written, flags=flags)
    urgent = answer("Call emergency services now.", urgent=True,
                    flags=["unsupported sentence removed: not counted, a fixed message"])
    outcomes = [outcome(generated), outcome(urgent)]
    entity, removed_any = ae.unsupported_entity_rate(outcomes), ae.unsupported_sentence_rate(outcomes)
    assert (entity.hits, entity.total) == (1, 4) and (removed_any.hits, removed_any.total) == (2, 4)
    assert "unsupported-entity rate" in ae.format_report(ae.evaluate(outcomes, kg))


def test_uncited_sentence_rate_counts_only_sentences_removed_for_citing_nothing(kg):
    flags = ["uncited sentence removed: It lasts 14 days.", "unsupported sentence removed: Zorblatine helps."]
    generated = answer("Metformin can cause nausea [T1].", unsupported=["It lasts 14 days.", "Zorblatine helps."],
                       raw_text="Metformin can cause nausea [T1]. It lasts 14 days. Zorblatine helps.", flags=flags)
    result = ae.uncited_sentence_rate([outcome(generated)])
    assert (result.hits, result.total) == (1, 3)
    assert re.search(r"uncited-sentence rate\s+33\.3%\s+1/3", ae.format_report(ae.evaluate([outcome(generated)], kg)))


def test_abstention_accuracy_leaves_out_triage_rows():
    outcomes = [
        outcome(answer(abstained=True), row("a", abstain=True)),  # right
        outcome(answer(), row("b", (METFORMIN,))),  # right
        outcome(answer(), row("c", abstain=True)),  # wrong: answered an unanswerable question
        outcome(answer(abstained=True), row("d", (METFORMIN,))),  # wrong: abstained on an answerable one
        outcome(answer(abstained=True), row("e", triage=True)),  # not counted
    ]
    result = ae.abstention_accuracy(outcomes)
    assert (result.hits, result.total) == (2, 4)


def test_triage_recall_and_false_alarm_rate():
    outcomes = [
        outcome(answer(urgent=True), row("a", triage=True)),
        outcome(answer(urgent=True), row("b", triage=True)),
        outcome(answer(), row("c", triage=True)),  # missed red flag
        outcome(answer(urgent=True), row("d")),  # false alarm
        outcome(answer(), row("e")),
        outcome(answer(), row("f")),
        outcome(Answer("q", Audience.PATIENT, "no triage ran"), row("g")),  # triage None: not urgent
    ]
    recall, alarms = ae.triage_recall(outcomes), ae.triage_false_alarm_rate(outcomes)
    assert (recall.hits, recall.total) == (2, 3)
    assert (alarms.hits, alarms.total) == (1, 4)


# --- readability --------------------------------------------------------------------------------


def fk(words: int, sentences: int, syllables: int) -> float:
    return 0.39 * words / sentences + 11.8 * syllables / words - 15.59


def test_flesch_kincaid_grade_is_the_textbook_formula_without_markers():
    assert ae.flesch_kincaid_grade("The cat sat on the mat.") == pytest.approx(fk(6, 1, 6))
    assert ae.flesch_kincaid_grade("The cat sat on the mat [T1]. The dog ran [P2].") == pytest.approx(fk(9, 2, 9))


def test_patient_grade_mean_and_median_over_generated_patient_answers():
    easy, harder = "The cat sat on the mat.", "The cat sat on the mat. The dog ran."
    outcomes = [
        outcome(answer(easy)), outcome(answer(easy)), outcome(answer(harder)),
        outcome(answer("Pharmacokinetic considerations necessitate individualised titration.",
                       audience=Audience.CLINICIAN)),  # clinician: left out
        outcome(answer("Unfortunately, comprehensive documentation is unavailable.", abstained=True)),
        outcome(answer("Telephone emergency services immediately.", urgent=True)),
    ]
    result = ae.patient_grade(outcomes)
    grades = [fk(6, 1, 6), fk(6, 1, 6), fk(9, 2, 9)]
    assert result.n == 3
    assert result.mean == pytest.approx(sum(grades) / 3)
    assert result.median == pytest.approx(fk(6, 1, 6))
    assert ae.patient_grade([]).mean is None
    # the generator's own text, before checking, of the same answers
    own = ae.patient_grade([outcome(answer(easy, raw_text=harder)), outcome(answer(harder, abstained=True))],
                           own=True)
    assert (own.n, own.mean) == (1, pytest.approx(fk(9, 2, 9)))


# --- latency ------------------------------------------------------------------------------------


def test_latency_percentiles_per_stage_and_total():
    outcomes = [outcome(answer(timings={"triage": 0.001, "generate": g, "total": g + 0.5}), seconds=99.0)
                for g in (1.0, 2.0, 3.0, 4.0, 5.0)]
    outcomes[0] = outcome(answer(timings={"triage": 0.001, "generate": 1.0, "first_token": 0.4, "total": 1.5}))
    outcomes.append(outcome(answer(timings={"triage": 0.002}), seconds=10.0))  # no total timing: wall time
    by_stage = {item.stage: item for item in ae.latency(outcomes)}
    assert list(by_stage) == ["triage", "generate", "first_token", "total"]
    generate = by_stage["generate"]
    assert (generate.n, generate.p50, generate.p95) == (5, 3.0, pytest.approx(4.8))  # rank 0.95 * 4 = 3.8
    assert (by_stage["first_token"].n, by_stage["first_token"].p50) == (1, 0.4)
    total = by_stage["total"]  # 1.5, 2.5, 3.5, 4.5, 5.5 and 10.0
    assert total.n == 6
    assert total.p50 == pytest.approx(4.0)
    assert total.p95 == pytest.approx(5.5 + 0.75 * 4.5)


def test_percentile_matches_linear_interpolation():
    assert ae.percentile([10, 20, 30, 40], 50) == 25
    assert ae.percentile([10, 20, 30, 40], 95) == pytest.approx(38.5)


# --- the report ---------------------------------------------------------------------------------


def test_format_report_shows_values_targets_and_status(kg, metformin_triples):
    nausea, _ = metformin_triples
    t1 = citation("T1", nausea.id)
    outcomes = [
        outcome(answer("Metformin can cause nausea [T1].", [t1], [t1],
                       timings={"first_token": 0.8, "generate": 2.0, "total": 3.0}),
                row("a", (METFORMIN, NAUSEA))),
        outcome(answer("Call emergency services.", urgent=True, timings={"total": 0.01}),
                row("b", triage=True, category="cardiac")),
        outcome(answer("I can only help with health questions.", abstained=True, timings={"total": 0.2}),
                row("c", abstain=True, category="out_of_scope")),
    ]
    report = ae.evaluate(outcomes, kg)
    text = ae.format_report(report)
    assert report.citation_validity.value == 1.0 and report.gold_fact_recall.value == 1.0
    assert re.search(r"citation validity\s+100\.0%\s+1/1\s+= 100%\s+met", text)
    assert re.search(r"triage recall\s+1\.000\s+1/1\s+>= 0\.98\s+met", text)
    assert re.search(r"triage false-alarm rate\s+0\.0%\s+0/2\s+<= 5%\s+met", text)
    assert re.search(r"patient FK grade, mean .*<= 8", text)
    assert re.search(r"generator's own text, mean\s+\S+\s+n=1", text)
    assert re.search(r"first_token\s+1\s+0\.800\s+0\.800\s+p50 <= 1\.5\s+met", text)
    assert re.search(r"total\s+3 .*p50 <= 4\.0\s+met", text)
    assert [c.category for c in report.categories] == ["side_effect", "cardiac", "out_of_scope"]


def test_format_report_flags_a_missed_target(kg):
    forged = citation("T1", "x")
    report = ae.evaluate([outcome(answer("x [T1].", [forged], []))], kg)
    assert re.search(r"citation validity\s+0\.0%\s+0/1\s+= 100%\s+MISSED", ae.format_report(report))


# --- reading question sets ----------------------------------------------------------------------

GOOD = {"id": "x-1", "question": "is nausea a side effect of metformin?", "audience": "patient",
        "expected_entity_ids": [METFORMIN, NAUSEA], "expected_relation": "causes_side_effect",
        "expect_abstain": False, "expect_triage": False, "history": [], "category": "side_effect"}


def write(path: Path, *rows: dict | str) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_reader_parses_rows(tmp_path):
    follow_up = {**GOOD, "id": "x-2", "question": "and its side effects?", "expected_entity_ids": [],
                 "expected_relation": None, "history": ["what is metformin for?"], "audience": "clinician"}
    rows = ae.read_question_set(write(tmp_path / "q.jsonl", GOOD, "", follow_up))
    assert [r.id for r in rows] == ["x-1", "x-2"]
    assert rows[0].expected_entity_ids == (METFORMIN, NAUSEA)
    assert rows[0].expected_relation is Relation.CAUSES_SIDE_EFFECT
    assert rows[1].audience is Audience.CLINICIAN and rows[1].expected_relation is None
    assert rows[1].history == ("what is metformin for?",)


@pytest.mark.parametrize(("change", "message"), [
    ({"category": ""}, "'category' must be null or a non-empty string"),
    ({"question": None}, "'question' must be a non-empty string"),
    ({"audience": "doctor"}, "'audience' must be one of"),
    ({"expected_relation": "cures"}, "'expected_relation' must be null or a kg.vocab.Relation"),
    ({"expected_entity_ids": ["metformin"]}, "must be CURIEs"),
    ({"expected_entity_ids": "DOID:9352"}, "'expected_entity_ids' must be a list"),
    ({"history": [""]}, "'history' must be a list of non-empty strings"),
    ({"expect_abstain": "no"}, "'expect_abstain' must be true or false"),
    ({"extra": 1}, "unknown keys ['extra']"),
])
def test_reader_names_file_line_and_problem(tmp_path, change, message):
    path = write(tmp_path / "bad.jsonl", {**GOOD, "id": "ok"}, {**GOOD, **change})
    with pytest.raises(ae.QuestionSetError) as error:
        ae.read_question_set(path)
    assert str(error.value).startswith(f"{path}:2: ")
    assert message in str(error.value)
    assert error.value.line == 2


def test_reader_reports_missing_keys_bad_json_duplicates_and_missing_files(tmp_path):
    missing = {k: v for k, v in GOOD.items() if k != "history"}
    with pytest.raises(ae.QuestionSetError, match=r"m\.jsonl:1: missing keys \['history'\]"):
        ae.read_question_set(write(tmp_path / "m.jsonl", missing))
    with pytest.raises(ae.QuestionSetError, match=r"j\.jsonl:2: not JSON"):
        ae.read_question_set(write(tmp_path / "j.jsonl", GOOD, "{not json"))
    with pytest.raises(ae.QuestionSetError, match=r"j2\.jsonl:1: expected a JSON object"):
        ae.read_question_set(write(tmp_path / "j2.jsonl", "[1, 2]"))
    first, second = write(tmp_path / "a.jsonl", GOOD), write(tmp_path / "b.jsonl", GOOD)
    with pytest.raises(ae.QuestionSetError, match=r"b\.jsonl:1: duplicate id 'x-1' \(first at .*a\.jsonl:1\)"):
        ae.read_question_set(first, second)
    with pytest.raises(ae.QuestionSetError, match="no such question set"):
        ae.read_question_set(tmp_path / "absent.jsonl")


# --- running ------------------------------------------------------------------------------------


class ScriptedAssistant:
    """Answers "answer to <question>" and records every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[str, ...], Audience]] = []

    def answer(self, question, history=(), audience=Audience.PATIENT):
        self.calls.append((question, tuple(a.text for a in history), audience))
        return Answer(question, audience, f"answer to {question}", timings={"total": 0.1})


def test_run_asks_the_history_first_and_scores_the_last_question():
    follow_up = ae.QuestionRow("a", "what about its side effects?", Audience.CLINICIAN, (), None, False, False,
                               ("what is metformin for?", "is it safe?"), "follow_up")
    rows = [follow_up, row("b")]
    assistant = ScriptedAssistant()
    outcomes = ae.run(assistant, rows)
    assert assistant.calls == [
        ("what is metformin for?", (), Audience.CLINICIAN),
        ("is it safe?", ("answer to what is metformin for?",), Audience.CLINICIAN),
        ("what about its side effects?", ("answer to what is metformin for?", "answer to is it safe?"),
         Audience.CLINICIAN),
        ("question?", (), Audience.PATIENT),
    ]
    assert [o.answer.text for o in outcomes] == ["answer to what about its side effects?", "answer to question?"]
    assert [o.row.id for o in outcomes] == ["a", "b"] and all(o.seconds >= 0 for o in outcomes)


def test_run_rejects_an_assistant_that_does_not_return_an_answer():
    class Broken:
        def answer(self, question, history=(), audience=Audience.PATIENT):
            return "just text"

    with pytest.raises(TypeError, match="must return an assistant.types.Answer"):
        ae.run(Broken(), [row()])


def test_eval_answers_command_on_the_fixture_kg(tmp_path, monkeypatch, built_kg):
    opened = {}

    class FakeAssistant(ScriptedAssistant):
        @classmethod
        def open(cls, generator="auto", **kwargs):
            opened["generator"] = generator
            return cls()

    monkeypatch.setitem(sys.modules, "assistant.answer", types.SimpleNamespace(Assistant=FakeAssistant))
    questions = write(tmp_path / "q.jsonl", GOOD, {**GOOD, "id": "x-2"}, {**GOOD, "id": "x-3"})
    app = typer.Typer()
    app.command()(ae.eval_answers)
    out = tmp_path / "out" / "outcomes.json"
    result = CliRunner().invoke(app, ["--questions", str(questions), "--limit", "2", "--generator", "fake",
                                      "--audience", "clinician", "--json", str(out),
                                      "--kg-data-dir", str(built_kg[0])])
    assert result.exit_code == 0, result.output
    assert opened == {"generator": "fake"}
    assert "2 questions" in result.output and "citation validity" in result.output
    dumped = json.loads(out.read_text())
    assert [o["row"]["id"] for o in dumped["outcomes"]] == ["x-1", "x-2"]
    assert {o["answer"]["audience"] for o in dumped["outcomes"]} == {"clinician"}
    assert dumped["report"]["gold_fact_recall"] == {"hits": 0, "total": 2}


# --- the committed development set ------------------------------------------------------------


@pytest.fixture(scope="module")
def dev_set() -> list[ae.QuestionRow]:
    return ae.read_question_set(ae.DEV_SET)  # validates keys, types, relations, CURIE format, unique ids


def test_dev_set_meets_the_counts(dev_set):
    categories = Counter(r.category for r in dev_set)
    grounded = [r for r in dev_set if r.expected_entity_ids and not r.expect_abstain]
    assert len(dev_set) >= 150
    assert len(grounded) >= 100
    assert sum(1 for r in grounded if r.history) >= 15
    assert categories["out_of_scope"] >= 15 and categories["no_answer"] >= 15
    assert {Audience.PATIENT, Audience.CLINICIAN} <= {r.audience for r in dev_set}
    assert {Audience.PATIENT, Audience.CLINICIAN} <= {r.audience for r in grounded}


def test_dev_set_rows_are_consistent(dev_set):
    assert all(re.fullmatch(r"ans-\d{3}", r.id) for r in dev_set)
    assert all(re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]*:\S+", i) for r in dev_set for i in r.expected_entity_ids)
    assert not any(r.expect_triage for r in dev_set)  # red flags live in eval/triage_set.jsonl
    for r in dev_set:
        abstains = r.category in ("out_of_scope", "no_answer")
        assert r.expect_abstain == abstains, r.id
        assert bool(r.expected_entity_ids) == (not abstains), r.id
        assert (r.expected_relation is None) == abstains, r.id
    assert len({r.question.lower() for r in dev_set}) == len(dev_set)


def test_default_question_sets_read_together():
    rows = ae.read_question_set(*ae.default_question_sets())
    assert len(rows) >= 150


@pytest.mark.slow
def test_dev_set_facts_hold_in_the_full_kg(dev_set):
    """Every expected fact is an edge of the full KG: the first id has an edge of the expected relation to every
    other expected id, or, alone, at least one edge of that relation."""
    from kg.adjacency import RELATIONS
    from kg.store import KnowledgeGraph

    with KnowledgeGraph.open() as full:  # not built: StoreMissingError names `medkg kg build`, like every slow test
        adjacency, index = full.adjacency, full.adjacency_index
        for r in dev_set:
            if not r.expected_entity_ids:
                continue
            for entity_id in r.expected_entity_ids:
                full.entity(entity_id)
            node = index[r.expected_entity_ids[0]]
            lo, hi = adjacency.indptr[node], adjacency.indptr[node + 1]
            edges = {(str(adjacency.ids[n]), RELATIONS[k]) for n, k in
                     zip(adjacency.neighbour[lo:hi], adjacency.relation[lo:hi], strict=True)}
            if len(r.expected_entity_ids) == 1:
                assert any(k == r.expected_relation for _, k in edges), r.id
            for other in r.expected_entity_ids[1:]:
                assert (other, r.expected_relation) in edges, r.id
