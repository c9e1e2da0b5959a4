"""``medkg index …`` (build, stats, search, bundle) and ``medkg eval retrieval``: thin typer edges over
``assistant.literature``, ``assistant.corpus`` and ``assistant.retrieval_eval``. Errors are raised as
``KGError`` subclasses; ``assistant.cli.run`` prints them. The embedder is built here, at the edge."""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer

from assistant import corpus
from assistant.embedding import Embedder, MiniLMEmbedder
from assistant.literature import DEFAULT_DATA_DIR, INDEX_TYPES, SearchConfig
from kg.store import DEFAULT_DATA_DIR as KG_DATA_DIR

index_app = typer.Typer(help="The literature index: build, inspect and search it.", no_args_is_help=True)

DataDir = Annotated[Path, typer.Option("--data-dir", help="Where the index lives (data/index by default).")]
KGDir = Annotated[Path, typer.Option("--kg-data-dir", help="The built KG (definitions and entity names).")]
Threads = Annotated[int, typer.Option("--threads", help="torch CPU threads for the embedder.")]


def _embedder(threads: int) -> Embedder:
    return MiniLMEmbedder(threads=threads)


@index_app.command()
def build(
    source: Annotated[Path, typer.Option(help="Folder with passages.jsonl.gz (or its literature/): "
                                              "bundle/literature by default, or ../shared/data.")] = corpus.BUNDLE_DIR,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    kg_data_dir: KGDir = KG_DATA_DIR,
    no_kg: Annotated[bool, typer.Option("--no-kg", help="Leave out the KG's entity definitions.")] = False,
    index_type: Annotated[str, typer.Option(help=f"One of {', '.join(INDEX_TYPES)}.")] = "hnsw",
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Encode every chunk, ignoring the "
                                                              "committed embeddings.")] = False,
    if_missing: Annotated[bool, typer.Option("--if-missing", help="Do nothing when an index is built.")] = False,
    threads: Threads = 2,
) -> None:
    """Chunk the corpus, embed it (reusing committed vectors), build FAISS + BM25, swap it in."""
    from assistant.literature import BUILD_COMMAND, IndexConfig, build_index
    from kg.artefacts import build_lock
    from kg.store import KnowledgeGraph

    if if_missing and (data_dir / "current" / "manifest.json").is_file():
        typer.echo(f"index already built at {data_dir / 'current'} (rebuild: medkg index build)")
        return
    folder = source / "literature" if (source / "literature").is_dir() else source
    config = IndexConfig(passages=folder / corpus.PASSAGES_FILE, data_dir=data_dir, index_type=index_type,
                         embedding_cache=None if no_cache else IndexConfig().embedding_cache)
    with ExitStack() as stack:
        lock = stack.enter_context(build_lock(data_dir, BUILD_COMMAND))  # before the KG and the corpus are read
        kg = None if no_kg else stack.enter_context(KnowledgeGraph.open(kg_data_dir))
        manifest = build_index(config, _embedder(threads), kg, lock)
    typer.echo(f"built {manifest['count']:,} chunks ({manifest['index_type']}) in {manifest['build_seconds']} s "
               f"(embedding {manifest['embed_seconds']} s): {data_dir / 'current'}")


@index_app.command()
def stats(data_dir: DataDir = DEFAULT_DATA_DIR,
          as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False) -> None:
    """Counts by source and licence from the manifest (no model loaded)."""
    from assistant.literature import read_manifest

    manifest = read_manifest(data_dir)
    if as_json:
        typer.echo(json.dumps(manifest, indent=2, sort_keys=True))
        return
    typer.echo(f"build {manifest['build_id']}: {manifest['count']:,} chunks, {manifest['index_type']} index, "
               f"embedder {manifest['embedder']['name']} ({manifest['embedder']['dimension']} d), corpus sha256 "
               f"{manifest['corpus_sha256'][:12]}, KG build {manifest['kg_build_id']}")
    for key in ("by_source", "by_licence"):
        for name, count in manifest[key].items():
            typer.echo(f"  {count:>7,}  {name}")


@index_app.command()
def search(
    query: str,
    k: Annotated[int, typer.Option("--k", help="How many chunks.")] = 5,
    source: Annotated[list[str] | None, typer.Option(help="Keep sources starting with this (repeatable).")] = None,
    licence: Annotated[list[str] | None, typer.Option(help="Keep licences starting with this (repeatable).")] = None,
    entity: Annotated[list[str] | None, typer.Option(help="Boost chunks mentioning this KG entity id.")] = None,
    no_dense: Annotated[bool, typer.Option("--no-dense", help="Switch off the dense signal.")] = False,
    no_sparse: Annotated[bool, typer.Option("--no-sparse", help="Switch off BM25.")] = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    kg_data_dir: KGDir = KG_DATA_DIR,
    threads: Threads = 2,
) -> None:
    """Print the ranked chunks with score, source, licence and URL."""
    from assistant.literature import LiteratureIndex, SearchFilters
    from kg.store import KnowledgeGraph

    with ExitStack() as stack:
        kg = stack.enter_context(KnowledgeGraph.open(kg_data_dir)) if entity else None
        index = LiteratureIndex.open(_embedder(threads), data_dir, kg)
        found = index.search(query, k, SearchFilters(tuple(source or ()), tuple(licence or ())),
                             dense=not no_dense, sparse=not no_sparse, entity_ids=tuple(entity or ()))
    for rank, p in enumerate(found, 1):
        typer.echo(f"[{rank}] {p.score:.4f}  {p.title}  ({p.id})\n    {p.source} | {p.licence} | {p.url or '-'}\n"
                   f"    {p.text[:300]}{'…' if len(p.text) > 300 else ''}")


@index_app.command()
def bundle(
    source: Annotated[Path, typer.Option(help="The raw data checkout.")] = corpus.REPO_ROOT.parent / "shared" / "data",
    embeddings: Annotated[bool, typer.Option("--embeddings", help="Also export the built index's vectors (int8) "
                                                                  "as the committed embedding cache.")] = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Refresh bundle/literature/ from ../shared/data (and, with --embeddings, from the built index)."""
    from assistant.literature import export_embeddings

    if embeddings:
        export_embeddings(data_dir, corpus.BUNDLE_DIR)
    manifest = corpus.make_bundle(source)
    typer.echo(f"wrote {corpus.BUNDLE_DIR}: {', '.join(sorted(manifest['files']))}")


def eval_retrieval(
    eval_set: Annotated[Path | None, typer.Option(help="JSONL questions (default: eval/retrieval_medquad500.jsonl).")]
    = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    kg_data_dir: KGDir = KG_DATA_DIR,
    rrf_k: Annotated[int, typer.Option(help="Reciprocal rank fusion constant.")] = SearchConfig().rrf_k,
    depth: Annotated[int, typer.Option(help="Candidates taken from each signal.")] = SearchConfig().depth,
    kg_boost: Annotated[float, typer.Option(help="Boost, in first places, of an entity mention.")]
    = SearchConfig().kg_boost,
    limit: Annotated[int, typer.Option(help="Only the first N questions (0: all).")] = 0,
    threads: Threads = 2,
) -> None:
    """Recall@5 and MRR@10 of BM25, dense, fused and fused+KG boost, and the latency of a whole query."""
    from assistant import retrieval_eval
    from assistant.literature import LiteratureIndex
    from kg.store import KnowledgeGraph

    questions = retrieval_eval.read_eval_set(eval_set or retrieval_eval.DEFAULT_EVAL_SET)
    questions = questions[:limit] if limit else questions
    with KnowledgeGraph.open(kg_data_dir) as kg:
        links = retrieval_eval.link_focus(kg, questions)
        index = LiteratureIndex.open(_embedder(threads), data_dir, kg,
                                     SearchConfig(rrf_k=rrf_k, depth=depth, kg_boost=kg_boost))
        index.search("warm-up query", k=10, entity_ids=("DOID:9352",))
        results = retrieval_eval.evaluate(index, questions, links)
    linked = sum(1 for q in questions if links.get(q.passage_id))
    typer.echo(f"{len(questions)} MedQuAD questions; {index.manifest['count']:,} chunks, "
               f"{index.manifest['index_type']} "
               f"index; rrf_k={rrf_k} depth={depth} kg_boost={kg_boost}; focus linked to the KG for {linked}")
    typer.echo(retrieval_eval.format_table(results))
    typer.echo(f"latency: one whole search call (query embedding, both searches, fusion); "
               f"peak RSS {retrieval_eval.peak_rss_mb():.0f} MB")
