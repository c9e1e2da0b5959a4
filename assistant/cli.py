"""The ``medkg`` command. Library errors become one-line messages here, and only here."""

from __future__ import annotations

import logging
import os
import sys

import typer

from assistant import answer_cli, answer_eval, linking_cli, relevance_fit, usefulness_eval
from assistant.literature_cli import eval_retrieval, index_app
from assistant.safety.cli import eval_triage, triage_app
from kg.cli import app as kg_app
from kg.errors import KGError
from pretrain.cli import app as pretrain_app

app = typer.Typer(help="MedKG Assistant: a medical assistant grounded in a knowledge graph.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
app.add_typer(kg_app, name="kg")
app.add_typer(index_app, name="index")
app.add_typer(pretrain_app, name="pretrain")
app.add_typer(triage_app, name="triage")
app.command("ask")(answer_cli.ask)
app.command("app")(answer_cli.serve)
app.command("link")(linking_cli.link)
app.command("link-build")(linking_cli.link_build)
app.command("link-terms")(linking_cli.link_terms)
app.command("link-drugnames")(linking_cli.link_drugnames)
eval_app = typer.Typer(help="Evaluation harnesses; each prints its tables.", no_args_is_help=True)
eval_app.command("linking")(linking_cli.eval_linking)
eval_app.command("retrieval")(eval_retrieval)
eval_app.command("answers")(answer_eval.eval_answers)
eval_app.command("usefulness")(usefulness_eval.eval_usefulness)
eval_app.command("triage")(eval_triage)
app.add_typer(eval_app, name="eval")
relevance_app = typer.Typer(help="The relevance model that ranks an answer's facts.", no_args_is_help=True)
relevance_app.command("fit")(relevance_fit.fit_relevance)
app.add_typer(relevance_app, name="relevance")


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress.")) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")


def run() -> None:
    """Console entry point: known errors print as ``error: …`` (re-raised when MEDKG_DEBUG is set)."""
    try:
        app()
    except KGError as error:
        if os.environ.get("MEDKG_DEBUG"):
            raise
        typer.echo(f"error: {error}", err=True)
        sys.exit(1)
