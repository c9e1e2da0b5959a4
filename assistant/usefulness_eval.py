"""Usefulness and handling metrics over the answers harness's outcomes, and ``medkg eval usefulness``.

``medkg eval answers`` reports these beside citation validity and gold-fact recall; ``medkg eval usefulness``
runs the usefulness set (``eval/usefulness/*.jsonl``: common questions about the conditions and the most
prescribed drugs of general practice, each row listing what a good clinician names first and what would be a
poor first answer) and reports them per half: the set is split by topic (``split``) so that ranking is tuned on
one half and reported on the other.

* **named items** of an answer: the other end (not an asked entity) of each triple it cites, in the order the
  text first cites them; an answer that cites nothing shows its evidence as a list, so then the evidence's
  triples in order. **first-hit** = answers naming an ``expected_first`` item / rows with ``expected_first``;
  **lead** = answers whose first named item is one; **poor-first** = answers whose first named item is a
  ``poor_first`` one; **poor named** = answers naming a ``poor_first`` item among their first three.
* **expected-entity recall** = expected ids the question's linking found (``Answer.seeds`` and linked mentions,
  each with its cross-referenced records, ``KnowledgeGraph.same_concept``) / expected ids, over rows that expect an
  answer; **by concept** also counts a same-named record or an equivalent drug class (``Assistant.concept``).
* **false refusals** = rows expecting an answer (no abstention, decline or triage) that abstained / such rows.
* **personal advice declined** = rows with ``expect_decline`` whose answer carries a ``declined`` flag / such
  rows; **false declines** = other rows declined / other rows.
* **follow-ups** = gold-fact recall over rows with a ``history``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import typer

from assistant.answer_eval import (
    Outcome,
    QuestionRow,
    Ratio,
    TripleLookup,
    gold_fact_recall,
    read_question_set,
    triple_ends,
)
from assistant.types import DECLINED_FLAG, Answer

USEFULNESS_DIR = Path(__file__).resolve().parent.parent / "eval" / "usefulness"


def split(row: QuestionRow) -> str:
    """"tune" or "held-out", by a hash of the row's topic (of its id when it has none): every row of a topic
    falls on the same side."""
    key = (row.topic or row.id).strip().lower()
    return "tune" if hashlib.sha256(key.encode()).digest()[0] % 2 == 0 else "held-out"


def named_items(answer: Answer, asked: Sequence[str], ends: Callable[[str], tuple[str, str]]) -> list[str]:
    """The entities the answer names as its items, in order (see the module docstring)."""
    cited = [c for c in answer.citations if c.kind == "triple" and c in answer.evidence]
    if not cited and not answer.abstained:
        cited = [c for c in answer.evidence if c.kind == "triple"]
    asked_set, items = set(asked), []
    for citation in cited:
        pair = ends(citation.id)
        others = [e for e in pair if e not in asked_set] if asked_set.intersection(pair) else list(pair)
        items += [e for e in others if e not in items]
    return items


def _declined(answer: Answer) -> bool:
    return any(flag.startswith(DECLINED_FLAG) for flag in answer.flags)


def _expects_answer(row: QuestionRow) -> bool:
    return not (row.expect_abstain or row.expect_decline or row.expect_triage)


@dataclass(frozen=True)
class Usefulness:
    first_hit: Ratio
    lead: Ratio
    poor_first: Ratio
    poor_named: Ratio


def usefulness(outcomes: Sequence[Outcome], kg: TripleLookup) -> Usefulness:
    ends = triple_ends(kg)
    rows = [o for o in outcomes if o.row.expected_first]
    hit = lead = poor = poor_named = 0
    for outcome in rows:
        items = named_items(outcome.answer, outcome.row.expected_entity_ids, ends)
        good, bad = set(outcome.row.expected_first), set(outcome.row.poor_first)
        hit += bool(good.intersection(items))
        lead += bool(items) and items[0] in good
        poor += bool(items) and items[0] in bad
        poor_named += bool(bad.intersection(items[:3]))
    n = len(rows)
    return Usefulness(Ratio(hit, n), Ratio(lead, n), Ratio(poor, n), Ratio(poor_named, n))


def expected_entity_recall(outcomes: Sequence[Outcome], same_concept: Callable[[str], Sequence[str]]) -> Ratio:
    found = total = 0
    for outcome in outcomes:
        if not _expects_answer(outcome.row):
            continue
        answer = outcome.answer
        linked = set(answer.seeds) | {m.entity_id for m in answer.entities}
        linked |= {other for e in list(linked) for other in same_concept(e)}
        for expected in outcome.row.expected_entity_ids:
            total += 1
            found += expected in linked
    return Ratio(found, total)


def false_refusals(outcomes: Sequence[Outcome]) -> Ratio:
    rows = [o for o in outcomes if _expects_answer(o.row)]
    return Ratio(sum(o.answer.abstained for o in rows), len(rows))


def declined(outcomes: Sequence[Outcome], expected: bool = True) -> Ratio:
    rows = [o for o in outcomes if o.row.expect_decline == expected and not o.row.expect_triage]
    return Ratio(sum(_declined(o.answer) for o in rows), len(rows))


@dataclass(frozen=True)
class HandlingReport:
    expected_entity_recall: Ratio
    expected_concept_recall: Ratio  # the same, an expected id counting as linked when a record of its concept is
    false_refusals: Ratio
    declined: Ratio
    false_declines: Ratio
    follow_ups: Ratio
    usefulness: Usefulness


def handling(outcomes: Sequence[Outcome], kg, concept: Callable[[str], Sequence[str]] | None = None) -> HandlingReport:
    """``concept``: an entity's records in other sources and same-named classes (``Assistant.concept``); the KG
    holds one concept as several records (HPO's Diarrhea, SIDER's Diarrhoea, DO's diarrhea), so expected-entity
    recall is also reported by concept."""
    follow_ups = [o for o in outcomes if o.row.history]
    by_concept = expected_entity_recall(outcomes, concept or kg.same_concept)
    return HandlingReport(expected_entity_recall(outcomes, kg.same_concept), by_concept, false_refusals(outcomes),
                          declined(outcomes), declined(outcomes, expected=False), gold_fact_recall(follow_ups, kg),
                          usefulness(outcomes, kg))


def _line(name: str, ratio: Ratio, target: str = "-", ok: Callable[[float], bool] | None = None) -> str:
    value = "n/a" if ratio.value is None else f"{100 * ratio.value:.1f}%"
    status = "" if ok is None or ratio.value is None else ("met" if ok(ratio.value) else "MISSED")
    return f"{name:<28}{value:>9}{f'{ratio.hits}/{ratio.total}':>11}   {target:<9}{status}".rstrip()


def format_handling(report: HandlingReport) -> str:
    u = report.usefulness
    return "\n".join([
        _line("expected-entity recall", report.expected_entity_recall, ">= 92%", lambda v: v >= 0.92),
        _line("  by concept", report.expected_concept_recall),
        _line("false refusals", report.false_refusals, "<= 3%", lambda v: v <= 0.03),
        _line("personal advice declined", report.declined, "= 100%", lambda v: v == 1.0),
        _line("false declines", report.false_declines),
        _line("follow-ups (gold recall)", report.follow_ups, ">= 80%", lambda v: v >= 0.80),
        _line("usefulness: first-hit", u.first_hit, ">= 90%", lambda v: v >= 0.90),
        _line("usefulness: lead", u.lead, ">= 80%", lambda v: v >= 0.80),
        _line("usefulness: poor-first", u.poor_first, "<= 5%", lambda v: v <= 0.05),
        _line("usefulness: poor in top 3", u.poor_named),
    ])


def eval_usefulness(
    questions: Annotated[list[Path] | None, typer.Option(
        "--questions", help="JSONL usefulness sets (default: every eval/usefulness/*.jsonl).")] = None,
    half: Annotated[str, typer.Option(help="Which topics: tune, held-out or all.")] = "all",
    generator: Annotated[str, typer.Option(help="auto, llama-cpp, transformers or fake.")] = "auto",
    weights: Annotated[str, typer.Option(help="Local model weights: default, base, trained or a GGUF path.")
                       ] = "default",
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the outcomes and metrics here.")] = None,
) -> None:
    """Ask the usefulness set and report first-hit, lead and poor-first rates per half (tune / held-out topics),
    with the answers harness's handling metrics."""
    from assistant.answer import Assistant
    from assistant.answer_cli import local_weights
    from assistant.answer_eval import evaluate, format_report, run

    if half not in ("tune", "held-out", "all"):
        raise typer.BadParameter("--half must be tune, held-out or all")
    paths = questions or sorted(USEFULNESS_DIR.glob("*.jsonl"))
    if not paths:
        raise typer.BadParameter(f"no usefulness set under {USEFULNESS_DIR}")
    rows = [r for r in read_question_set(*paths) if half == "all" or split(r) == half]
    assistant = Assistant.open(generator=generator, **local_weights(generator, weights))
    outcomes = run(assistant, rows)
    kg = assistant.kg
    typer.echo(f"usefulness sets: {', '.join(map(str, paths))}; topics: {half}; generator {generator}")
    for name in ("tune", "held-out"):
        part = [o for o in outcomes if split(o.row) == name]
        if part:
            topics = len({o.row.topic for o in part})
            typer.echo(f"\n== {name}: {len(part)} questions, {topics} topics")
            typer.echo(format_handling(handling(part, kg, assistant.concept)))
    typer.echo("\n== all rows")
    typer.echo(format_report(evaluate(outcomes, kg)))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps({"outcomes": [asdict(o) for o in outcomes]}, ensure_ascii=False, indent=1))
