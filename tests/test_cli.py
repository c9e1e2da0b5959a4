"""The ``medkg kg`` commands, run in-process; one run through the console script for the error edge."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import HPO, SOURCE
from typer.testing import CliRunner

from assistant.cli import app
from kg.errors import QuerySyntaxError, UnknownEntityError

runner = CliRunner()


def invoke(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input)


def test_build_then_build_if_missing(tmp_path):
    args = ["kg", "build", "--source", str(SOURCE), "--hpo", str(HPO), "--data-dir", str(tmp_path)]
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    assert "built KG" in first.output
    second = invoke(*args, "--if-missing")
    assert second.exit_code == 0 and "already built" in second.output


def test_stats_json(built_kg):
    result = invoke("kg", "stats", "--json", "--data-dir", str(built_kg[0]))
    stats = json.loads(result.output)
    assert stats["edges"] == built_kg[1]["counts"]["edges"]
    assert stats["edges_without_source_or_licence"] == 0
    assert "sider" in stats["sources"]


def test_show_and_neighbours(built_kg):
    shown = invoke("kg", "show", "metformin", "--data-dir", str(built_kg[0]))
    assert "Metformin [DRUGBANK:DB00331]" in shown.output
    listed = invoke("kg", "neighbours", "DOID:9352", "--relation", "treats", "--budget", "3",
                    "--data-dir", str(built_kg[0]))
    assert listed.exit_code == 0
    assert listed.output.count("[T") == 3 and "— treats — type 2 diabetes mellitus" in listed.output


def test_paths_and_query(built_kg):
    found = invoke("kg", "paths", "metformin", "type 2 diabetes mellitus", "--limit", "2",
                   "--data-dir", str(built_kg[0]))
    assert "1. (1 hops" in found.output
    rows = invoke("kg", "query", "SELECT ?name ?x WHERE { ?x rdfs:label ?name }", "--bind", "name=migraine",
                  "--data-dir", str(built_kg[0]))
    assert json.loads(rows.output.strip())["x"].endswith("DOID_6364")


def test_export(built_kg, tmp_path):
    result = invoke("kg", "export", "-o", str(tmp_path / "kg.ttl"), "--format", "ttl", "--data-dir", str(built_kg[0]))
    assert result.exit_code == 0 and (tmp_path / "kg.ttl").stat().st_size > 1000


def test_errors_reach_the_edge_as_kg_errors(built_kg):
    unknown = invoke("kg", "show", "metfromin", "--data-dir", str(built_kg[0]))
    assert isinstance(unknown.exception, UnknownEntityError)
    malformed = invoke("kg", "query", "SELECT ?x WHERE { ?x ?y }", "--data-dir", str(built_kg[0]))
    assert isinstance(malformed.exception, QuerySyntaxError)
    bad_relation = invoke("kg", "neighbours", "DOID:9352", "--relation", "treatz", "--data-dir", str(built_kg[0]))
    assert bad_relation.exit_code == 2 and "treatz" in bad_relation.output


def test_console_script_prints_one_line_errors(tmp_path):
    done = subprocess.run([sys.executable, "-c", "from assistant.cli import run; run()", "kg", "stats",
                           "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip() == f"error: no knowledge graph at {tmp_path}: build it with `medkg kg build`"


def test_interactive_lookup(built_kg):
    result = invoke("kg", "lookup", "--data-dir", str(built_kg[0]), input="sugar pill\nmetformin\n\n")
    assert "unknown entity 'sugar pill'" in result.output
    assert "Metformin [DRUGBANK:DB00331]" in result.output and "[T1]" in result.output


@pytest.mark.parametrize("command", [["kg", "--help"], ["kg", "build", "--help"]])
def test_help(command):
    assert invoke(*command).exit_code == 0


def test_app_build_missing_runs_every_builder_if_missing_in_order(monkeypatch):
    """`make run` is `medkg app --build-missing`: the four builders, each told to skip what is built, then the app."""
    import assistant.app
    import assistant.linking_cli
    import assistant.literature_cli
    import kg.cli
    import pretrain.cli

    calls = []
    for module, name in [(kg.cli, "build"), (assistant.literature_cli, "build"), (assistant.linking_cli, "link_build"),
                         (pretrain.cli, "build_cmd")]:
        monkeypatch.setattr(module, name, lambda *_, _n=f"{module.__name__}.{name}", **kw: calls.append((_n, kw)))
    monkeypatch.setattr(assistant.app, "main", lambda **kw: calls.append(("app", kw)))
    result = CliRunner().invoke(app, ["app", "--build-missing"])
    assert result.exit_code == 0, result.output
    assert [name for name, _ in calls] == ["kg.cli.build", "assistant.literature_cli.build",
                                           "assistant.linking_cli.link_build", "pretrain.cli.build_cmd", "app"]
    assert all(kw["if_missing"] is True for _, kw in calls[:4])
