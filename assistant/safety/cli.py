"""``medkg triage fit | bundle | check`` and ``medkg eval triage``. Thin: they parse, call and print."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import typer

from assistant.types import Audience

triage_app = typer.Typer(help="The safety triage: fit its classifier, check a message.", no_args_is_help=True)

SOURCE = typer.Option(Path("../shared/data"), "--source", help="The raw source data (its literature/ folder).")
QUESTIONS = typer.Option(3000, "--n", help="Questions to keep.")
SEED = typer.Option(0, "--seed")
LAYERS = typer.Option(3, "--layers", help="MiniLM layers read (1..6), their states concatenated.")
CHARS = typer.Option(2 ** 17, "--char-features", help="Hashed character n-gram columns (0: none).")
C = typer.Option(16.0, "--C", help="Inverse L2 strength.")
OUT = typer.Option(None, "--out", help="Folder for the model (default bundle/triage).")
MESSAGE = typer.Argument(..., help="The message.")
AUDIENCE = typer.Option(Audience.PATIENT, "--audience")
CONTEXT = typer.Option([], "--context", help="An earlier user message (repeatable).")
LOCALE = typer.Option(None, "--locale", help="A locale of prompts/locales.toml.")
BATCH = typer.Option([], "--batch", help="A batch file (repeatable; default: every eval/triage/blind/batch_*.jsonl).")
MEDQUAD = typer.Option(False, "--medquad", help="Also the 995 MedQuAD evaluation questions (false alarms).")
RECORD = typer.Option(False, "--record", help="Record each batch's figures as its first-sight score (refused for a "
                                              "batch recorded before).")
MISSES = typer.Option(False, "--misses", help="List the messages scored wrong.")
AS_JSON = typer.Option(False, "--json")


@triage_app.command("bundle")
def bundle(source: Path = SOURCE, n: int = QUESTIONS, seed: int = SEED) -> None:
    """Write bundle/triage/medquad_questions.jsonl.gz: MedQuAD questions for training (CC BY 4.0), none about a
    focus of the 995 evaluation questions."""
    from assistant.safety.training import MEDQUAD_EVAL, MEDQUAD_QUESTIONS

    held_out = {json.loads(line)["focus"].lower() for path in MEDQUAD_EVAL for line in path.open(encoding="utf-8")}
    with gzip.open(source / "literature" / "medquad_qa.jsonl.gz", "rt", encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines]
    rows = [r for r in rows if r["focus"].lower() not in held_out]
    unique = list({r["question"]: r for r in rows}.values())
    random.Random(seed).shuffle(unique)
    MEDQUAD_QUESTIONS.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(MEDQUAD_QUESTIONS, "wt", encoding="utf-8") as out:
        for row in sorted(unique[:n], key=lambda r: r["qid"]):
            out.write(json.dumps({k: row[k] for k in ("qid", "qtype", "focus", "question")}) + "\n")
    typer.echo(f"{min(n, len(unique))} questions -> {MEDQUAD_QUESTIONS}")


@triage_app.command("fit")
def fit(layers: int = LAYERS, c: float = C, char_features: int = CHARS, out: Path | None = OUT) -> None:
    """Fit the triage classifier on eval/triage/train and the MedQuAD questions; thresholds by leave-one-writer-out
    cross-validation; prints the cross-validated figures per writer."""
    from assistant.safety.classifier import DEFAULT_MODEL_DIR, ClassifierConfig
    from assistant.safety.fitting import FitTargets, fit_classifier

    model, measured = fit_classifier(ClassifierConfig(layers=layers, C=c, char_features=char_features), FitTargets(),
                                     out or DEFAULT_MODEL_DIR)
    typer.echo(f"thresholds: emergency {model.config.emergency}, possible {model.config.possible}, "
               f"scope {model.config.scope}")
    for source, row in measured.items():
        typer.echo(f"{source:<18} " + ", ".join(f"{k} {v}" for k, v in row.items()))


@triage_app.command("check")
def check(message: str = MESSAGE, audience: Audience = AUDIENCE, context: list[str] = CONTEXT,
          locale: str | None = LOCALE) -> None:
    """Triage one message (rules, classifier, language; no linking) and print the verdict and the reading."""
    from assistant.safety.rules import red_flags
    from assistant.safety.triage import open_triager

    triager = open_triager(locale=locale)
    verdict = triager.assess(message, audience, context)
    reading = triager.read(message, context)
    typer.echo(f"tier {verdict.tier.value}, category {verdict.category}, triggers {verdict.triggers}")
    typer.echo(f"rules: {[(h.category, h.matched) for h in red_flags(message, context)]}")
    typer.echo(f"classifier: P(emergency) {reading.emergency:.3f} ({reading.category}), P(now) {reading.now:.3f}, "
               f"health {reading.health:.3f}")
    if verdict.message:
        typer.echo("\n" + verdict.message)


def eval_triage(batch: list[Path] = BATCH, medquad: bool = MEDQUAD, record: bool = RECORD,
                show_misses: bool = MISSES, as_json: bool = AS_JSON) -> None:
    """Score triage batches through the answer pipeline's first stages (recall per category, false alarms,
    fallbacks given to people in danger, scope, language)."""
    from assistant.answer import Assistant
    from assistant.safety.evaluate import format_figures, record_first_sight, score
    from assistant.safety.training import BLIND_DIR, MEDQUAD_EVAL, Message, read_messages

    files = batch or sorted(BLIND_DIR.glob("batch_*.jsonl"))
    assistant = Assistant.open("fake")
    results = []
    for path in files:
        scored = score(assistant, read_messages(path), path.stem)
        figures = scored.figures()
        if record:
            record_first_sight(figures, path.resolve())
        results.append(figures)
        if not as_json:
            typer.echo(format_figures(figures))
            if show_misses:
                typer.echo("\n".join("    " + line for line in scored.misses()))
    if medquad:
        questions = [json.loads(line)["question"] for p in MEDQUAD_EVAL for line in p.open(encoding="utf-8")]
        messages = [Message(f"medquad-eval-{i}", q, "lookalike", None, False, "medquad", "patient", (), "medquad")
                    for i, q in enumerate(dict.fromkeys(questions))]
        scored = score(assistant, messages, "medquad-995")
        figures = scored.figures()
        results.append(figures)
        if not as_json:
            typer.echo(f"MedQuAD evaluation questions: false alarms {figures['false_alarms']}")
            if show_misses:
                typer.echo("\n".join("    " + line for line in scored.misses()))
    if as_json:
        typer.echo(json.dumps(results, indent=2))
