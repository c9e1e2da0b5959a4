"""Typer-compatible commands of entity linking; ``assistant/cli.py`` registers them (``medkg link``,
``medkg link-build``, ``medkg eval linking``). Thin: they open the KG, call the library, and format.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import typer

from assistant.linking import Linker, LinkerConfig
from assistant.linking_index import DEFAULT_LINKING_DIR, build_name_index, open_name_index
from kg.errors import KGError
from kg.store import DEFAULT_DATA_DIR, KnowledgeGraph

log = logging.getLogger(__name__)

KG_DIR = typer.Option(DEFAULT_DATA_DIR, "--kg-data-dir", help="Directory of the built KG (`medkg kg build`).")
LINK_DIR = typer.Option(DEFAULT_LINKING_DIR, "--data-dir", help="Directory of the name-embedding index.")
NCBI = typer.Option(None, "--ncbi", help="PubTator file (default: the committed dev split).")
LAY = typer.Option(None, "--lay", help="Lay-language TSV (default: eval/lay_linking.tsv).")
EMBEDDING = typer.Option(True, "--embedding/--no-embedding", help="Use the name-embedding index for paraphrases.")
FAILURES = typer.Option(False, "--failures", help="List the lay phrases missed.")


def make_linker(kg: KnowledgeGraph, data_dir: Path, use_embedding: bool = True) -> Linker:
    """A linker with the MiniLM name index when asked (a missing or stale index raises, naming the command)."""
    if not use_embedding:
        return Linker(kg)
    from assistant.embedding import MiniLMEmbedder

    embedder = MiniLMEmbedder(threads=1)  # one short query: threads only contend (500 ms against 18 ms)
    return Linker(kg, LinkerConfig(), embedder, open_name_index(kg, embedder, data_dir))


def link(text: str = typer.Argument(..., help="Text to link, e.g. 'side effects of metformin'."),
         as_json: bool = typer.Option(False, "--json", help="Print JSON."),
         kg_data_dir: Path = KG_DIR, data_dir: Path = LINK_DIR, embedding: bool = EMBEDDING) -> None:
    """Link the entities mentioned in TEXT to the KG."""
    with KnowledgeGraph.open(kg_data_dir) as kg:
        result = make_linker(kg, data_dir, embedding).link(text)
    if as_json:
        typer.echo(json.dumps({"mentions": [asdict(m) for m in result.mentions], "truncated": result.truncated,
                               "note": result.note}, indent=2))
        return
    if result.note:
        typer.echo(f"note: {result.note}")
    if not result.mentions:
        typer.echo("no entity found")
    for m in result.mentions:
        typer.echo(f"{m.start:>4}-{m.end:<4} {m.text!r:30} {m.entity_id:18} {m.entity_type:20} {m.score:.3f} "
                   f"{m.method:12} {m.matched_name}")


def link_build(kg_data_dir: Path = KG_DIR, data_dir: Path = LINK_DIR,
               if_missing: bool = typer.Option(False, "--if-missing", help="Do nothing if a matching index exists."),
               export_cache: bool = typer.Option(False, "--export-cache",
                                                 help="Instead, write the built index's vectors as the committed "
                                                      "cache (bundle/linking/name_embeddings.npz).")) -> None:
    """Embed every KG name with MiniLM (reusing the committed vectors) and write the FAISS name index."""
    from assistant.embedding import MiniLMEmbedder
    from assistant.linking_index import BUILD_COMMAND, export_name_cache
    from kg.artefacts import build_lock

    if export_cache:
        with KnowledgeGraph.open(kg_data_dir) as kg:
            typer.echo(f"wrote {export_name_cache(kg, MiniLMEmbedder(), data_dir)}")
        return
    # the lock before the KG is read: a second build fails at once
    with build_lock(data_dir, BUILD_COMMAND) as lock, KnowledgeGraph.open(kg_data_dir) as kg:
        embedder = MiniLMEmbedder()
        if if_missing:
            try:
                manifest = open_name_index(kg, embedder, data_dir).manifest
            except KGError as error:
                log.info("building the name index: %s", error)
            else:
                typer.echo(f"name index {manifest.build_id} already built ({manifest.count:,} names)")
                return
        manifest = build_name_index(kg, embedder, data_dir, lock=lock)
    typer.echo(f"name index {manifest.build_id}: {manifest.count:,} names, {manifest.dimension} dimensions, "
               f"{manifest.seconds:.1f} s, KG {manifest.kg_build_id}")


def eval_linking(kg_data_dir: Path = KG_DIR, data_dir: Path = LINK_DIR,
                 ncbi: Path | None = NCBI, lay: Path | None = LAY, embedding: bool = EMBEDDING,
                 show_failures: bool = FAILURES) -> None:
    """NCBI disease corpus accuracy@1 and P/R/F1, lay-set accuracy@1, and speed (p50/p95)."""
    from assistant import linking_eval as ev

    with KnowledgeGraph.open(kg_data_dir) as kg:
        started = time.perf_counter()
        linker = make_linker(kg, data_dir, embedding)
        setup_s = time.perf_counter() - started
        documents = ev.read_pubtator(ncbi or ev.NCBI_DEV)
        mapping = ev.concept_doids(kg)
        alone = ev.accuracy_at_1(linker, documents, mapping)
        in_doc = ev.accuracy_at_1(linker, documents, mapping, with_document=True)
        overlap = ev.detection_prf(linker, documents, mapping)
        exact = ev.detection_prf(linker, documents, mapping, exact=True)
        rows = ev.read_lay_set(lay or ev.LAY_SET)
        lay_result = ev.lay_accuracy(linker, rows)
        texts = [phrase for phrase, _, _ in rows] + ev.sentences(documents)
        speed = ev.speed(linker, texts)
    typer.echo(f"linker ready in {setup_s:.1f} s (embedding: {'on' if embedding else 'off'}); "
               f"NCBI: {len(documents)} documents, {alone.total} gold mentions with a DOID "
               f"({alone.skipped} without, left out)")
    typer.echo(f"{'metric':42} {'value':>8}  detail")
    typer.echo(f"{'NCBI accuracy@1 (gold text alone)':42} {alone.value:8.3f}  {alone.correct}/{alone.total}")
    typer.echo(f"{'NCBI accuracy@1 (gold text, document ctx)':42} {in_doc.value:8.3f}  {in_doc.correct}/{in_doc.total}")
    for label, prf in (("overlap", overlap), ("exact span", exact)):
        typer.echo(f"{'NCBI detection+linking P/R/F1 (' + label + ')':42} {prf.f1:8.3f}  P {prf.precision:.3f} "
                   f"R {prf.recall:.3f} (TP {prf.tp}, FP {prf.fp}, FN {prf.fn})")
    typer.echo(f"{'lay-set accuracy@1':42} {lay_result.accuracy.value:8.3f}  {lay_result.accuracy.correct}/"
               f"{lay_result.accuracy.total}; {lay_result.by_resource} resolved by resources/lay_synonyms.tsv")
    held = lay_result.held_out
    typer.echo(f"{'lay-set accuracy@1, phrases in no resource':42} {held.value:8.3f}  {held.correct}/{held.total} "
               f"({lay_result.accuracy.total - held.total} eval phrases are resource entries)")
    typer.echo(f"{'speed p50 / p95 / max (ms per text)':42} {speed.p50_ms:8.2f}  p95 {speed.p95_ms:.2f}, "
               f"max {speed.max_ms:.2f} over {speed.n} texts; embedder called on {speed.embedder_calls}")
    if show_failures:
        for phrase, predicted in lay_result.failures:
            typer.echo(f"  missed: {phrase!r} -> {predicted}")


NCBI_TRAIN = typer.Option(None, "--ncbi-train", help="PubTator training split (default: the committed one).")
TERMS_OUT = typer.Option(None, "--output", help="TSV to write (default: the resource).")


def link_terms(kg_data_dir: Path = KG_DIR, ncbi_train: Path | None = NCBI_TRAIN,
               output: Path | None = TERMS_OUT) -> None:
    """Rewrite resources/ncbi_train_terms.tsv: disease phrases of the NCBI training split mapped to DOIDs."""
    from assistant import linking_eval as ev
    from assistant import linking_terms as lt
    from assistant.linking_dictionary import build_dictionary

    with KnowledgeGraph.open(kg_data_dir) as kg:
        documents = ev.read_pubtator(ncbi_train or lt.NCBI_TRAIN)
        rows = lt.corpus_terms(documents, ev.concept_doids(kg), build_dictionary(kg, corpus=False))
    lt.write_terms(rows, output or lt.TERMS_FILE)
    typer.echo(f"{len(rows):,} phrases from {len(documents)} training documents -> {output or lt.TERMS_FILE}")


def link_drugnames(kg_data_dir: Path = KG_DIR) -> None:
    """Rewrite assistant/resources/drug_names.tsv: brand and other drug names from the drug-named-entity-recognition
    package, mapped to this KG's compounds (see assistant/linking_drugnames.py)."""
    from assistant.linking_drugnames import RESOURCE, write_resource

    with KnowledgeGraph.open(kg_data_dir) as kg:
        count = write_resource(kg)
    typer.echo(f"wrote {count} drug names to {RESOURCE}")
