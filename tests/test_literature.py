"""The literature index on 50 committed real passages (tests/fixtures/literature) and the fixture KG,
with the deterministic ``FakeEmbedder``; one ``slow`` test uses the real MiniLM."""

from __future__ import annotations

import gzip
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from assistant import corpus, literature, literature_cli, retrieval_eval
from assistant.embedding import FakeEmbedder
from assistant.literature import (
    IndexConfig,
    IndexMismatchError,
    IndexMissingError,
    LiteratureIndex,
    SearchConfig,
    SearchFilters,
    build_index,
)
from assistant.types import Passage
from kg.errors import KGError

PASSAGES = Path(__file__).parent / "fixtures" / "literature" / "passages.jsonl.gz"
METFORMIN = "DRUGBANK:DB00331"


def config(data_dir: Path, **overrides) -> IndexConfig:
    return IndexConfig(passages=PASSAGES, data_dir=data_dir, embedding_cache=None, **overrides)


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory, kg) -> Path:
    data_dir = tmp_path_factory.mktemp("index")
    build_index(config(data_dir), FakeEmbedder(), kg)
    return data_dir


@pytest.fixture(scope="module")
def index(index_dir, kg) -> LiteratureIndex:
    # the textbook RRF settings, so these tests do not move when the defaults are re-tuned on MedQuAD
    return LiteratureIndex.open(FakeEmbedder(), index_dir, kg, SearchConfig(rrf_k=60, depth=100, dense_weight=1.0))


# --- corpus and chunking ------------------------------------------------------------------------

def test_chunks_are_short_keep_title_and_provenance():
    rows = corpus.read_passages(PASSAGES)
    chunks = list(corpus.chunk(rows))
    by_passage = {r["id"]: r for r in rows}
    assert len(rows) == 50 and len(chunks) > 60  # long passages are split
    for c in chunks:
        source_row = by_passage[c.id.rsplit("#", 1)[0]]
        assert len(corpus.embedded_text(c).split()) <= 200
        assert corpus.embedded_text(c).startswith(source_row["title"] + ". ")
        assert (c.title, c.source, c.licence, c.url) == (source_row["title"], source_row["source"],
                                                         source_row["licence"], source_row["url"])
    for row in rows:  # no word is lost or reordered
        pieces = [c.text for c in chunks if c.id.rsplit("#", 1)[0] == row["id"]]
        assert " ".join(pieces).split() == row["text"].split()
        assert [c.id for c in chunks if c.id.startswith(row["id"] + "#")] == [f"{row['id']}#{i}"
                                                                            for i in range(len(pieces))]


def test_split_cuts_at_sentences_and_inside_overlong_ones():
    text = "One two three. Four five six. " + " ".join(f"w{i}" for i in range(25))
    pieces = corpus.split_words(text, budget=10, min_tail=3)
    assert pieces[0] == "One two three. Four five six."
    assert all(len(p.split()) <= 10 for p in pieces) and " ".join(pieces).split() == text.split()


def test_questions_are_not_indexed(tmp_path):
    row = {"id": "medquad:X:1-1", "source": "MedQuAD/X", "licence": "CC BY 4.0", "title": "T", "text": "answer",
           "url": "u", "question": "What is the secret question ?"}
    path = tmp_path / "p.jsonl.gz"
    path.write_bytes(gzip.compress((json.dumps(row) + "\n").encode()))
    assert "question" not in corpus.read_passages(path)[0]


def test_kg_definitions_carry_entity_ids_and_skip_existing_passages(kg):
    rows = corpus.corpus_rows(PASSAGES, kg)
    definitions = [r for r in rows if r["id"].startswith("def:")]
    assert definitions, "the fixture KG has definitions"
    assert all(r["entity_ids"] == r["id"][4:] and r["url"].startswith("http") for r in definitions)
    assert "def:DOID:9352" not in {r["id"] for r in rows}  # DO definition already a passage (do:DOID:9352)
    assert next(r for r in rows if r["id"] == "do:DOID:9352")["entity_ids"] == "DOID:9352"


def test_embedding_cache_roundtrip_is_close(tmp_path):
    vectors = FakeEmbedder().encode(["metformin lowers glucose", "asthma inhaler", "migraine aura"])
    keys = [corpus.text_key(t) for t in ("a", "b", "c")]
    corpus.EmbeddingCache.quantise("fake-64", keys, vectors).save(tmp_path / "e.npz")
    cache = corpus.EmbeddingCache.load(tmp_path / "e.npz")
    found, restored = cache.lookup([keys[2], corpus.text_key("unknown"), keys[0]])
    assert found.tolist() == [True, False, True]
    assert np.all(np.sum(restored[[0, 2]] * vectors[[2, 0]], axis=1) > 0.999)
    assert not restored[1].any()


# --- build, open, manifest ----------------------------------------------------------------------

def test_manifest_records_embedder_corpus_and_files(index):
    manifest = index.manifest
    assert manifest["embedder"] == {"name": "fake-hashed-ngrams", "checksum": "fake-64", "dimension": 64}
    assert manifest["count"] == len(index.chunks) and manifest["index_type"] == IndexConfig().index_type
    assert manifest["corpus_sha256"] == corpus.corpus_checksum(index.chunks)
    assert set(manifest["files"]) >= {"chunks.jsonl.gz", "dense.faiss"}
    assert any(name.startswith("bm25/") for name in manifest["files"])


def test_wrong_embedder_is_refused(index_dir):
    with pytest.raises(IndexMismatchError, match="medkg index build") as error:
        LiteratureIndex.open(FakeEmbedder(dimension=32), index_dir)
    assert isinstance(error.value, KGError) and "fake-32" in str(error.value)


def test_corrupted_file_is_refused(index_dir, tmp_path):
    copy = tmp_path / "index"
    shutil.copytree(index_dir / "current", copy / "builds" / "b", symlinks=False)
    (copy / "current").symlink_to("builds/b")
    chunks = copy / "current" / "chunks.jsonl.gz"
    chunks.write_bytes(chunks.read_bytes()[:-5] + b"xxxxx")
    with pytest.raises(IndexMismatchError, match="chunks.jsonl.gz .*medkg index build"):
        LiteratureIndex.open(FakeEmbedder(), copy)


def test_missing_index_names_the_build_command(tmp_path):
    with pytest.raises(IndexMissingError, match="medkg index build"):
        LiteratureIndex.open(FakeEmbedder(), tmp_path / "nothing")


def test_interrupted_build_leaves_the_previous_index(tmp_path, monkeypatch):
    first = build_index(config(tmp_path), FakeEmbedder(), None)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(literature, "make_faiss", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_index(config(tmp_path), FakeEmbedder(), None)
    assert list(tmp_path.glob(".staging-*"))  # the half-written build stays aside ...
    assert LiteratureIndex.open(FakeEmbedder(), tmp_path).manifest["build_id"] == first["build_id"]  # ... unused
    monkeypatch.undo()
    second = build_index(config(tmp_path), FakeEmbedder(), None)  # the next build clears the leftovers
    assert not list(tmp_path.glob(".staging-*"))
    assert LiteratureIndex.open(FakeEmbedder(), tmp_path).manifest["build_id"] == second["build_id"]


def test_build_reuses_cached_vectors(tmp_path):
    texts = [corpus.embedded_text(c) for c in corpus.chunk(corpus.corpus_rows(PASSAGES, None))]
    embedder = FakeEmbedder()
    cache = tmp_path / "embeddings.npz"
    corpus.EmbeddingCache.quantise(embedder.checksum, [corpus.text_key(t) for t in texts[1:]],
                                   embedder.encode(texts[1:])).save(cache)
    encoded: list[str] = []

    class CountingEmbedder(FakeEmbedder):
        def encode(self, texts, batch_size=64, progress=False):
            encoded.extend(texts)
            return super().encode(texts)

    build_index(replace(config(tmp_path / "index"), embedding_cache=cache), CountingEmbedder(), None)
    assert encoded == texts[:1]  # only the chunk missing from the cache was encoded


# --- search -------------------------------------------------------------------------------------

@pytest.mark.parametrize("signals", [{"dense": True, "sparse": False}, {"dense": False, "sparse": True},
                                     {"dense": True, "sparse": True}])
def test_each_signal_alone_and_fused_finds_the_topic(index, signals):
    found = index.search("migraine headache treatment", k=5, **signals)
    assert len(found) == 5 and [p.score for p in found] == sorted((p.score for p in found), reverse=True)
    assert "migraine" in (found[0].title + found[0].text).lower()
    assert all(p.source and p.licence and p.url for p in found)


def test_fusion_is_reciprocal_rank_fusion_of_both_rankings(index):
    query, rrf_k = "asthma inhaled corticosteroids", index.config.rrf_k
    dense, sparse = index.dense_ranking(query, 100), index.sparse_ranking(query, 100)
    expected: dict[int, float] = {}
    for ranking in (dense, sparse):
        for rank, row in enumerate(ranking, 1):
            expected[row] = expected.get(row, 0.0) + 1 / (rrf_k + rank)
    best = max(expected, key=lambda row: (expected[row], -row))
    found = index.search(query, k=3)
    assert found[0].id == index.chunks[best].id and found[0].score == pytest.approx(expected[best], abs=1e-6)


def test_no_signal_is_an_error(index):
    with pytest.raises(ValueError, match="at least one"):
        index.search("asthma", dense=False, sparse=False)


def test_filters_keep_only_the_asked_source_and_licence(index):
    pubmed = index.search("diabetes", k=5, filters=SearchFilters(sources=("PubMedQA",)))
    assert pubmed and all(p.source.startswith("PubMedQA") for p in pubmed)
    cc0 = index.search("diabetes", k=5, filters=SearchFilters(licences=("cc0",)), sparse=False)
    assert cc0 and all(p.licence.startswith("CC0") for p in cc0)
    assert index.search("diabetes", filters=SearchFilters(sources=("no such source",))) == []


def test_kg_boost_moves_a_passage_mentioning_the_entity_up(index):
    query = "blood sugar control"
    plain = index.search(query, k=20)
    boosted = index.search(query, k=20, entity_ids=(METFORMIN,))

    def first_mention(passages):
        return next(i for i, p in enumerate(passages) if "metformin" in (p.title + " " + p.text).lower())

    assert first_mention(boosted) < first_mention(plain)
    assert first_mention(boosted) == 0


def test_kg_boost_uses_the_chunks_entity_ids_without_a_kg(index_dir):
    bare = LiteratureIndex.open(FakeEmbedder(), index_dir, kg=None, config=SearchConfig(kg_boost=5.0))
    found = bare.search("chronic disease of the airways", k=3, entity_ids=("DOID:2841",))
    assert found[0].entity_ids == ("DOID:2841",)


# --- command line and eval ----------------------------------------------------------------------

def test_cli_stats_search_and_eval(index_dir, built_kg, tmp_path, monkeypatch):
    monkeypatch.setattr(literature_cli, "_embedder", lambda threads: FakeEmbedder())
    runner = CliRunner()
    result = runner.invoke(literature_cli.index_app, ["stats", "--data-dir", str(index_dir)])
    assert result.exit_code == 0 and "PubMedQA-PQA-L" in result.output
    result = runner.invoke(literature_cli.index_app, ["search", "asthma symptoms", "--k", "2", "--no-dense",
                                                      "--source", "MedQuAD", "--data-dir", str(index_dir)])
    assert result.exit_code == 0 and result.output.count("MedQuAD/") == 2 and "https://" in result.output
    questions = [retrieval_eval.EvalQuestion("1", "What are the symptoms of asthma ?", "asthma", "symptoms",
                                             "medquad:GARD:0000491-2"),
                 retrieval_eval.EvalQuestion("2", "What is migraine ?", "Migraine", "information",
                                             "medquad:NINDS:0000194-1")]
    retrieval_eval.write_eval_set(tmp_path / "eval.jsonl", questions)
    app = typer.Typer()
    app.command()(literature_cli.eval_retrieval)
    result = runner.invoke(app, ["--eval-set", str(tmp_path / "eval.jsonl"), "--data-dir", str(index_dir),
                                 "--kg-data-dir", str(built_kg[0])])
    assert result.exit_code == 0, result.output
    assert all(name in result.output for name in ("bm25", "dense", "fused", "fused+kg", "Recall@5"))
    assert "linked to the KG for 2" in result.output


def test_answer_rank_counts_any_chunk_of_the_answer():
    chunks = [Passage(id=i, title="", text="", source="", licence="") for i in ("a#0", "b#3", "b#0")]
    assert retrieval_eval.answer_rank(chunks, "b") == 2 and retrieval_eval.answer_rank(chunks, "c") is None


@pytest.mark.slow
def test_real_minilm_ranks_the_answer_first(tmp_path, kg):
    from assistant.embedding import MiniLMEmbedder

    embedder = MiniLMEmbedder(threads=2)
    build_index(config(tmp_path), embedder, kg)
    index = LiteratureIndex.open(embedder, tmp_path, kg)
    found = index.search("What are the signs and symptoms of asthma?", k=3, sparse=False)
    assert any("asthma" in p.title.lower() for p in found)
    found = index.search("Which drug is the first-line therapy for type 2 diabetes?", k=10)
    assert any("diabetes" in (p.title + p.text).lower() for p in found[:3])
