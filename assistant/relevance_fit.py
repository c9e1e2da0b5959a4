"""``medkg relevance fit``: fit the relevance model (``assistant.relevance``) on what clinicians name first.

Each question with ``expected_first`` items (the usefulness set, and the blind answer batches already scored at
first sight) is prepared as the assistant prepares it (triage, linking, the asked relations; no generation), and
every candidate fact its ranking considered becomes a row: its features, positive when its other end is an
expected-first item (or a record of the same concept), a negative counted ``POOR_WEIGHT`` times when it is a poor
first answer. One logistic regression (scikit-learn) over features in one block per question kind (``GROUP``)
gives each kind its own weights on one scale, so a bare disease name's treatments and symptoms still compare.

Measured on the held-out half of the usefulness set's topics (never trained on) and by leaving each blind batch
out in turn, against the hand-set ``Weights`` in the same run: **hit@3** (an expected-first item among the
first three distinct items of the main seed's ranking), **lead** (the first is one) and **poor** (the first is
a poor first answer). Those are ranking figures; ``medkg eval usefulness`` measures the answers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from assistant.answer_eval import QuestionRow, read_question_set
from assistant.first_named import TABLE_PATH, FirstNamed
from assistant.relevance import FEATURES, GROUP, MODEL_PATH, OTHER_GROUP, Relevance, RelevanceModel, Scored, Weights
from assistant.usefulness_eval import USEFULNESS_DIR, split

BLIND_DIR = USEFULNESS_DIR.parent / "answers_blind"
#: the blind batches the committed model was fitted on: only batches whose first-sight score is recorded
#: (``eval/answers_blind/first_sight.md``) may train
SCORED_BATCHES = tuple(f"batch_{n}" for n in range(1, 19))
POOR_WEIGHT = 5.0
KINDS = tuple(dict.fromkeys([*GROUP.values(), OTHER_GROUP]))


@dataclass(frozen=True)
class Query:
    """One question's main ranking: the candidates of the first seed that had any, with labels."""
    row: QuestionRow
    part: str  # "tune", "held-out" (usefulness topics) or the blind batch's name
    candidates: tuple[Scored, ...]
    positive: tuple[bool, ...]
    poor: tuple[bool, ...]
    members: frozenset[str]  # drugs of a class the question names: ranked first whatever the score


def collect(assistant, rows: Sequence[tuple[str, QuestionRow]]) -> list[Query]:
    """Prepare each row and keep the candidates of its first non-empty ``Relevance.rank`` call."""
    kg, relevance = assistant.kg, assistant.relevance
    queries = []
    for part, row in rows:
        history = []
        for earlier in row.history:
            history.append(assistant.answer(earlier, tuple(history), row.audience))
        relevance.trace = []
        try:
            assistant.prepare(row.question, tuple(history), row.audience)
            calls = list(relevance.trace)
        finally:
            relevance.trace = None
        expected = {same for e in row.expected_first for same in (e, *kg.same_concept(e))}
        for members, ranked in calls:
            if ranked:
                queries.append(Query(row, part, tuple(ranked), tuple(s.other in expected for s in ranked),
                                     tuple(s.other in row.poor_first for s in ranked), members))
                break
    return queries


def with_table(queries: Sequence[Query], table: FirstNamed, relevance: Relevance) -> list[Query]:
    """The queries with each candidate's ``named_first`` feature read from ``table`` (a fold's own table: an
    item counts as named first only if a row the fold trains on named it)."""
    listed: dict[tuple[str, object], dict[str, float]] = {}
    out = []
    for q in queries:
        candidates = []
        for s in q.candidates:
            key = (s.seed, s.relation)
            if key not in listed:
                listed[key] = relevance.named_first(s.seed, s.relation, table)
            candidates.append(dataclasses.replace(s, features={**s.features,
                                                               "named_first": listed[key].get(s.other, 0.0)}))
        out.append(dataclasses.replace(q, candidates=tuple(candidates)))
    return out


def table_of(queries: Sequence[Query]) -> FirstNamed:
    return FirstNamed.from_rows((q.row for q in queries), GROUP)


def design(candidate: Scored) -> np.ndarray:
    """The candidate's features in its kind's block, with a constant for the kind's intercept."""
    width = len(FEATURES) + 1
    vector = np.zeros(len(KINDS) * width)
    start = KINDS.index(GROUP.get(candidate.relation, OTHER_GROUP)) * width
    vector[start] = 1.0
    vector[start + 1:start + width] = [candidate.features.get(name, 0.0) for name in FEATURES]
    return vector


def fit(queries: Sequence[Query], c: float = 0.1) -> RelevanceModel:
    from sklearn.linear_model import LogisticRegression

    x = np.array([design(s) for q in queries for s in q.candidates])
    y = np.array([p for q in queries for p in q.positive], dtype=float)
    weight = np.array([POOR_WEIGHT if bad else 1.0 for q in queries for bad in q.poor])
    weight[y == 1] *= (len(y) - y.sum()) / max(1.0, y.sum())  # balance the few positives against the pool
    model = LogisticRegression(C=c, max_iter=5000, fit_intercept=False).fit(x, y, sample_weight=weight)
    width, coef = len(FEATURES) + 1, model.coef_[0]
    trained = {GROUP.get(s.relation, OTHER_GROUP) for q in queries for s in q.candidates}
    intercepts, coefficients = {}, {}
    for i, kind in enumerate(KINDS):
        if kind in trained:  # an untrained kind keeps the hand-set score (``RelevanceModel.score``)
            block = coef[i * width:(i + 1) * width]
            intercepts[kind] = round(float(block[0]), 6)
            coefficients[kind] = {name: round(float(w), 6) for name, w in zip(FEATURES, block[1:], strict=True)}
    return RelevanceModel(intercepts, coefficients)


def ranking(queries: Sequence[Query], score: Callable[[Scored], float]) -> dict[str, float]:
    """hit@3, lead and poor over the queries' rankings by ``score`` (members of a named class first)."""
    hit = lead = poor = 0
    for q in queries:
        order = sorted(range(len(q.candidates)), key=lambda i: (
            bool(q.members) and q.candidates[i].other not in q.members, -score(q.candidates[i]),
            q.candidates[i].triple_id))
        seen, firsts = set(), []
        for i in order:
            if q.candidates[i].other not in seen:
                seen.add(q.candidates[i].other)
                firsts.append(i)
        hit += any(q.positive[i] for i in firsts[:3])
        lead += bool(firsts) and q.positive[firsts[0]]
        poor += bool(firsts) and q.poor[firsts[0]]
    n = max(1, len(queries))
    return {"n": len(queries), "hit@3": round(hit / n, 3), "lead": round(lead / n, 3), "poor": round(poor / n, 3)}


def _line(name: str, baseline: dict, learned: dict) -> str:
    cells = [f"{k} {baseline[k]:.2f} -> {learned[k]:.2f}" for k in ("hit@3", "lead", "poor")]
    return f"{name:<22} n={learned['n']:<4} " + "   ".join(cells)


def fit_relevance(
    batches: Annotated[list[str] | None, typer.Option(
        "--batch", help="Blind answer batches to train on (names under eval/answers_blind); default: the scored "
        "ones. Only batches whose first-sight score is recorded may be named.")] = None,
    c: Annotated[float, typer.Option("--c", help="Inverse regularisation strength of the logistic regression.")
                 ] = 0.1,
    out: Annotated[Path, typer.Option(help="Where to write the model.")] = MODEL_PATH,
    table_out: Annotated[Path, typer.Option("--table-out", help="Where to write the first-named table.")
                         ] = TABLE_PATH,
) -> None:
    """Fit the relevance model and write it with the first-named table of its training rows; print its ranking
    figures on held-out topics, on each blind batch left out (of the fit and the table), and on topics no
    training question asked, against the hand-set weights measured in the same run."""
    from assistant.answer import Assistant

    names = batches or list(SCORED_BATCHES)
    rows = [(split(r), r) for r in read_question_set(*sorted(USEFULNESS_DIR.glob("*.jsonl")))]
    for name in names:
        rows += [(name, r) for r in read_question_set(BLIND_DIR / f"{name}.jsonl")]
    rows = [(part, r) for part, r in rows if r.expected_first]
    assistant = Assistant.open(generator="fake")
    assistant.relevance.scorer = Weights()  # the features do not depend on it; no model is needed to fit one
    assistant.relevance.first_named = FirstNamed()  # each fold gets its own table below
    queries = collect(assistant, rows)
    hand = Weights()

    def baseline(s: Scored) -> float:
        return hand.score(s.relation, s.features)

    relevance = assistant.relevance
    train = [q for q in queries if q.part != "held-out"]
    table = table_of(train)
    train = with_table(train, table, relevance)
    held = with_table([q for q in queries if q.part == "held-out"], table, relevance)
    model = fit(train, c)
    typer.echo(f"{len(queries)} questions ({len(train)} to train), {sum(len(q.candidates) for q in queries)} "
               f"candidate facts, {len(table)} topics in the first-named table; hand-set weights -> learned model")
    lines = [_line("held-out topics", ranking(held, baseline), ranking(held, _scorer(model)))]
    for name in names:  # each blind batch left out of the fit, and of the first-named table, in turn
        rest = [q for q in train if q.part != name]
        fold_table = table_of(rest)
        left_out = with_table([q for q in train if q.part == name], fold_table, relevance)
        other = _scorer(fit(with_table(rest, fold_table, relevance), c))
        lines.append(_line(f"{name} left out", ranking(left_out, baseline), ranking(left_out, other)))
    lines += unseen_topics(queries, relevance, c, baseline)
    typer.echo("\n".join(lines))
    model = RelevanceModel(model.intercepts, model.coefficients, about={
        "fitted_on": ["eval/usefulness (tune half)", *(f"eval/answers_blind/{n}.jsonl" for n in names)],
        "c": c, "poor_weight": POOR_WEIGHT, "questions": len(train), "figures": lines})
    model.save(out)
    table.save(table_out)
    typer.echo(f"wrote {out} and {table_out}")


def unseen_topics(queries: Sequence[Query], relevance: Relevance, c: float, baseline: Callable[[Scored], float],
                  folds: int = 5) -> list[str]:
    """Every question once in a fold whose topics (the ranked seed) no training question of the fold had: how
    the model ranks a topic the first-named table cannot hold. Pooled over the folds."""
    from sklearn.model_selection import GroupKFold

    kg = relevance.kg
    topics = [min((q.candidates[0].seed, *kg.same_concept(q.candidates[0].seed))) for q in queries]
    totals = {"base": np.zeros(4), "learned": np.zeros(4)}
    for train_rows, test_rows in GroupKFold(n_splits=folds).split(queries, groups=topics):
        train = [queries[i] for i in train_rows]
        table = table_of(train)
        test = with_table([queries[i] for i in test_rows], table, relevance)
        learned = _scorer(fit(with_table(train, table, relevance), c))
        for name, score in (("base", baseline), ("learned", learned)):
            r = ranking(test, score)
            totals[name] += [r["n"], r["hit@3"] * r["n"], r["lead"] * r["n"], r["poor"] * r["n"]]

    def figures(t: np.ndarray) -> dict[str, float]:
        return {"n": int(t[0]), "hit@3": t[1] / t[0], "lead": t[2] / t[0], "poor": t[3] / t[0]}

    return [_line("unseen topics (5 folds)", figures(totals["base"]), figures(totals["learned"]))]


def _scorer(model: RelevanceModel) -> Callable[[Scored], float]:
    return lambda s: model.score(s.relation, s.features)
