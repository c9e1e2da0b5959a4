"""``medkg ask``: one question through the whole pipeline, printed with its evidence (or the whole ``Answer`` as
JSON). Thin: it opens the assistant and formats."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import typer

from assistant.types import Answer, Audience

QUESTION = typer.Argument(..., help="The question, e.g. 'is nausea a side effect of metformin?'")
AUDIENCE = typer.Option(Audience.PATIENT, "--audience")
AS_JSON = typer.Option(False, "--json", help="Print the whole Answer as JSON.")
STREAM = typer.Option(False, "--stream/--no-stream",
                      help="Also print the generator's draft as it comes, before the checks remove what the evidence "
                           "does not support (marked as an unchecked draft).")
GENERATOR = typer.Option("auto", "--generator", help="auto (llama-cpp if installed, else transformers), "
                                                     "llama-cpp, transformers, openai, fake.")
BASE_URL = typer.Option(None, "--base-url", help="OpenAI-compatible server for --generator openai.")
MODEL = typer.Option(None, "--model", help="Model name for --generator openai.")
WEIGHTS = typer.Option("default", "--weights", help="Local model weights: default (the KG-pretrained generator "
                                                   "when committed, else the base), base, trained, or a GGUF path.")
KG_DIR = typer.Option(None, "--kg-data-dir", help="Directory of the built KG (default data/kg).")
INDEX_DIR = typer.Option(None, "--index-dir", help="Directory of the literature index (default data/index).")
LOCALE = typer.Option(None, "--locale", help="Emergency and crisis numbers of a locale in prompts/locales.toml "
                                             "(us, gb, ie, ca, au, nz, eu; default: MEDKG_LOCALE, else several "
                                             "countries' numbers).")


def local_weights(generator: str, weights: str) -> dict:
    """``{"path": ...}`` for a local generator when ``weights`` is not the default, else nothing."""
    from assistant.generation import resolve_model

    if weights == "default" or generator in ("openai", "kg", "fake"):
        return {}
    return {"path": resolve_model(weights)}


def format_answer(answer: Answer) -> str:
    lines = [answer.text, ""]
    if answer.entities:
        lines.append("linked: " + "; ".join(f"{m.text} → {m.entity_id} ({m.entity_type})" for m in answer.entities))
    for c in answer.citations:
        lines.append(f"[{c.marker}] {c.text} — {c.source} · {c.licence}" + (f" · {c.url}" if c.url else ""))
    uncited = [c for c in answer.evidence if c not in answer.citations]
    if uncited:
        lines.append(f"(also given, not cited: {', '.join(c.marker for c in uncited)})")
    for flag in answer.flags:
        lines.append(f"flag: {flag}")
    lines.append("time: " + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in answer.timings.items()))
    return "\n".join(lines).strip()


def ask(question: str = QUESTION, audience: Audience = AUDIENCE, as_json: bool = AS_JSON, stream: bool = STREAM,
        generator: str = GENERATOR, base_url: str | None = BASE_URL, model: str | None = MODEL,
        weights: str = WEIGHTS, kg_data_dir: Path | None = KG_DIR, index_dir: Path | None = INDEX_DIR,
        locale: str | None = LOCALE) -> None:
    """Answer QUESTION from the KG and the literature, with checked citations."""
    from assistant.answer import Assistant

    options = {k: v for k, v in (("base_url", base_url), ("model", model)) if v}
    options.update(local_weights(generator, weights))
    assistant = Assistant.open(generator, kg_data_dir=kg_data_dir, index_dir=index_dir, locale=locale, **options)
    answer = None
    if stream and not as_json:
        typer.echo("--- draft as generated, unchecked: not the answer ---")
    for item in assistant.stream(question, audience=audience):
        if isinstance(item, Answer):
            answer = item
        elif stream and not as_json:
            sys.stdout.write(item)
            sys.stdout.flush()
    if as_json:
        typer.echo(json.dumps(asdict(answer), indent=2, ensure_ascii=False, default=str))
        return
    if stream:
        typer.echo("\n\n--- checked answer ---")
    typer.echo(format_answer(answer))


HOST = typer.Option("127.0.0.1", "--host", help="Interface to serve on.")
PORT = typer.Option(7860, "--port", help="Port to serve on.")


BUILD_MISSING = typer.Option(False, "--build-missing", help="First build what is not built yet: the KG, the literature "
                                                          "and name indexes, the trained generator (what `make run` "
                                                          "does, in this one process).")


def serve(host: str = HOST, port: int = PORT, generator: str = GENERATOR, build_missing: bool = BUILD_MISSING,
          locale: str | None = LOCALE) -> None:
    """Serve the Gradio chat app (http://127.0.0.1:7860 by default)."""
    from assistant.app import main

    if build_missing:
        build_missing_artefacts()
    main(host=host, port=port, generator=generator, locale=locale)


def build_missing_artefacts() -> None:
    """``medkg kg build``, ``medkg index build``, ``medkg link-build`` and ``medkg pretrain build``, each with
    ``--if-missing``, in one process: a second ``make run`` pays one interpreter start-up, not five."""
    from assistant.linking_cli import DEFAULT_LINKING_DIR, link_build
    from assistant.literature_cli import build as index_build
    from kg.cli import build as kg_build
    from kg.store import DEFAULT_DATA_DIR
    from pretrain.cli import build_cmd as generator_build

    kg_build(if_missing=True)
    index_build(if_missing=True)
    link_build(kg_data_dir=DEFAULT_DATA_DIR, data_dir=DEFAULT_LINKING_DIR, if_missing=True, export_cache=False)
    generator_build(if_missing=True)
