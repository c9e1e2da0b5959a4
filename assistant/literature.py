"""The literature index: dense (MiniLM + FAISS) and sparse (BM25) retrieval over the chunked corpus,
fused by reciprocal rank fusion, with a boost for chunks that mention the question's KG entities.

Layout of the data directory (built aside, then swapped in atomically, like the KG)::

    data/index/current -> builds/<build id>
    data/index/builds/<build id>/chunks.jsonl.gz    the chunks with provenance, in index order
    data/index/builds/<build id>/dense.faiss        FAISS index of the L2-normalised vectors (inner product)
    data/index/builds/<build id>/bm25/              bm25s index of the same chunks
    data/index/builds/<build id>/manifest.json      embedder, counts, checksums, build config

A build holds ``data/index/.build.lock`` from before it reads the corpus (``kg.artefacts.build_lock``).

Fusion (Cormack et al. 2009): ``score(c) = Σ_s w_s / (rrf_k + rank_s(c))`` over the signals that
ranked ``c`` among their ``depth`` best; a chunk that mentions a linked entity (by the entity's
names in the KG names table, or by the chunk's own entity ids) gains ``kg_boost / (rrf_k + 1)``, the
value of one more first place.
"""

from __future__ import annotations

import functools
import gzip
import json
import logging
import math
import re
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from assistant import corpus
from assistant.embedding import Embedder
from assistant.types import Passage
from kg.artefacts import BuildLock, held_or_taken, new_build_id, record_files, sha256_file, verify_files
from kg.artefacts import read_manifest as read_artefact_manifest
from kg.errors import ArtefactMismatchError, KGError
from kg.store import KnowledgeGraph

log = logging.getLogger(__name__)

DEFAULT_DATA_DIR = corpus.REPO_ROOT / "data" / "index"
INDEX_VERSION = 1
INDEX_TYPES = ("flat", "hnsw", "ivf")
BUILD_COMMAND = "medkg index build"
ARTEFACT = "literature index"
#: the manifest keys ``LiteratureIndex.open`` and ``medkg index stats`` read
_MANIFEST_KEYS = ("index_version", "build_id", "embedder", "count", "index_type", "config", "files", "by_source",
                  "by_licence", "corpus_sha256", "kg_build_id")
_MIN_NAME_CHARS = 4  # shorter names ("ALL", "MS") match too much text to say what a chunk is about


class IndexMissingError(KGError):
    def __init__(self, path: object) -> None:
        super().__init__(f"no literature index at {path}: build it with `{BUILD_COMMAND}`")


class IndexMismatchError(ArtefactMismatchError):
    """The index is damaged, or disagrees with its manifest or with the embedder it is opened with."""

    def __init__(self, path: object, detail: str) -> None:
        super().__init__(path, detail, ARTEFACT, BUILD_COMMAND)


@dataclass(frozen=True)
class IndexConfig:
    passages: Path = corpus.BUNDLE_DIR / corpus.PASSAGES_FILE
    data_dir: Path = DEFAULT_DATA_DIR
    embedding_cache: Path | None = corpus.BUNDLE_DIR / corpus.EMBEDDINGS_FILE  # None: encode everything
    index_type: str = "hnsw"  # benchmarks/index_bench.py: recall@10 0.971 of exact at 0.7 ms p95 vs flat 10 ms
    hnsw_m: int = 32
    hnsw_ef_search: int = 128
    ivf_nlist: int = 512
    ivf_nprobe: int = 32
    max_words: int = 200
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.index_type not in INDEX_TYPES:
            raise ValueError(f"index_type must be one of {INDEX_TYPES}, not {self.index_type!r}")


@dataclass(frozen=True)
class SearchConfig:
    # tuned on the dev questions (benchmarks/fusion_tune.py): dense is much the stronger signal (MRR@10 0.670
    # against BM25's 0.427), so it weighs 4x; rrf_k=60, depth=100 with equal weights lost to dense alone
    rrf_k: int = 30
    depth: int = 200  # candidates taken from each signal
    dense_weight: float = 4.0
    sparse_weight: float = 1.0
    kg_boost: float = 1.0

    def __post_init__(self) -> None:
        if self.rrf_k < 0 or self.depth < 1:
            raise ValueError(f"rrf_k must be >= 0 and depth >= 1 (got {self.rrf_k}, {self.depth})")


@dataclass(frozen=True)
class SearchFilters:
    """Keep chunks whose source starts with one of ``sources`` (``"MedQuAD"`` keeps every MedQuAD site)
    and whose licence starts with one of ``licences`` (case-insensitive); an empty tuple keeps all."""

    sources: tuple[str, ...] = ()
    licences: tuple[str, ...] = ()

    def keeps(self, passage: Passage) -> bool:
        return (not self.sources or passage.source.lower().startswith(tuple(s.lower() for s in self.sources))) and (
            not self.licences or passage.licence.lower().startswith(tuple(s.lower() for s in self.licences)))


# --- build ------------------------------------------------------------------------------------

def embed_chunks(texts: list[str], embedder: Embedder, cache_path: Path | None, batch_size: int) -> np.ndarray:
    """(n, d) float32 vectors: rows from the committed cache when its embedder checksum matches and the
    text's key is there, the rest encoded (with a progress bar)."""
    vectors = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    todo = np.ones(len(texts), dtype=bool)
    if cache_path is not None and Path(cache_path).is_file():
        cache = corpus.EmbeddingCache.load(Path(cache_path))
        if cache.embedder_checksum == embedder.checksum and cache.codes.shape[1] == embedder.dimension:
            found, cached = cache.lookup([corpus.text_key(t) for t in texts])
            vectors[found], todo = cached[found], ~found
        else:
            log.warning("embedding cache %s is for another embedder; encoding everything", cache_path)
    log.info("%d of %d chunk vectors from the cache; encoding %d", len(texts) - todo.sum(), len(texts), todo.sum())
    if todo.any():
        missing = [t for t, flag in zip(texts, todo, strict=True) if flag]
        vectors[todo] = embedder.encode(missing, batch_size=batch_size, progress=True)
    return vectors


def make_faiss(vectors: np.ndarray, config: IndexConfig):
    """An inner-product FAISS index of the normalised vectors: exact ``flat``, ``hnsw`` or ``ivf``."""
    import faiss

    dimension = vectors.shape[1]
    if config.index_type == "flat":
        index = faiss.IndexFlatIP(dimension)
    elif config.index_type == "hnsw":
        index = faiss.IndexHNSWFlat(dimension, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = config.hnsw_ef_search
    else:
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dimension), dimension,
                                   min(config.ivf_nlist, max(1, len(vectors) // 39)), faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.nprobe = config.ivf_nprobe
    index.add(vectors)
    return index


def bm25_tokens(texts: list[str], progress: bool = False) -> list[list[str]]:
    import bm25s

    return bm25s.tokenize(texts, stopwords="en", return_ids=False, show_progress=progress)


def build_index(config: IndexConfig, embedder: Embedder, kg: KnowledgeGraph | None,
                lock: BuildLock | None = None) -> dict:
    """Chunk, embed, index and swap in; returns the manifest. ``current`` is untouched on failure.

    Takes the build lock of ``config.data_dir`` before reading the corpus (``BuildLockedError`` at once when
    another build holds it), unless the caller holds it already (``lock``: the CLI takes it before opening the KG).
    """
    with ExitStack() as stack:
        lock = held_or_taken(stack, lock, Path(config.data_dir), BUILD_COMMAND)
        return _build_index(config, embedder, kg, lock)


def _build_index(config: IndexConfig, embedder: Embedder, kg: KnowledgeGraph | None, lock: BuildLock) -> dict:
    import bm25s
    import faiss

    started = time.perf_counter()
    chunks = list(corpus.chunk(corpus.corpus_rows(Path(config.passages), kg), corpus.ChunkConfig(config.max_words)))
    texts = [corpus.embedded_text(c) for c in chunks]
    log.info("%d chunks from %s%s", len(chunks), config.passages, " and the KG's definitions" if kg else "")
    vectors = embed_chunks(texts, embedder, config.embedding_cache, config.batch_size)
    embedded = time.perf_counter()
    build_id = new_build_id()
    with lock.stage(build_id) as staging:
        _write_chunks(staging / "chunks.jsonl.gz", chunks)
        faiss.write_index(make_faiss(vectors, config), str(staging / "dense.faiss"))
        retriever = bm25s.BM25()
        retriever.index(bm25s.tokenize(texts, stopwords="en", show_progress=True), show_progress=True)
        retriever.save(str(staging / "bm25"))
        manifest = {
            "index_version": INDEX_VERSION, "build_id": build_id,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "embed_seconds": round(embedded - started, 1), "build_seconds": round(time.perf_counter() - started, 1),
            "embedder": {"name": embedder.name, "checksum": embedder.checksum, "dimension": embedder.dimension},
            "count": len(chunks), "index_type": config.index_type,
            "by_source": dict(Counter(c.source for c in chunks).most_common()),
            "by_licence": dict(Counter(c.licence for c in chunks).most_common()),
            "corpus_sha256": corpus.corpus_checksum(chunks),
            "passages_sha256": sha256_file(Path(config.passages)),
            "kg_build_id": kg.manifest.get("build_id") if kg is not None else None,
            "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
            "files": record_files(staging, [p for p in staging.rglob("*") if p.is_file()]),
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    log.info("built %s: %d chunks in %.1fs", build_id, len(chunks), time.perf_counter() - started)
    return manifest


def _write_chunks(path: Path, chunks: list[Passage]) -> None:
    lines = "".join(json.dumps([c.id, c.title, c.text, c.source, c.licence, c.url, list(c.entity_ids)],
                               ensure_ascii=False) + "\n" for c in chunks)
    path.write_bytes(gzip.compress(lines.encode(), mtime=0))


def _read_chunks(path: Path) -> list[Passage]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [Passage(id=i, title=t, text=x, source=s, licence=lic, url=u, entity_ids=tuple(e))
                for i, t, x, s, lic, u, e in map(json.loads, handle)]


def read_manifest(data_dir: Path = DEFAULT_DATA_DIR) -> dict:
    """The built index's manifest; ``IndexMissingError`` when there is none, ``IndexMismatchError`` when it is
    unreadable or lacks a key."""
    root = Path(data_dir) / "current"
    if not (root / "manifest.json").is_file():
        raise IndexMissingError(Path(data_dir))
    try:
        return read_artefact_manifest(root, ARTEFACT, BUILD_COMMAND, _MANIFEST_KEYS)
    except ArtefactMismatchError as error:
        raise IndexMismatchError(root.resolve(), error.detail) from None


# --- search -----------------------------------------------------------------------------------

class LiteratureIndex:
    """An opened index. ``kg`` (optional) supplies entity names for the KG boost."""

    def __init__(self, root: Path, manifest: dict, chunks: list[Passage], dense, sparse, embedder: Embedder,
                 kg: KnowledgeGraph | None = None, config: SearchConfig = SearchConfig()) -> None:
        self.root, self.manifest, self.chunks, self.dense, self.sparse = root, manifest, chunks, dense, sparse
        self.embedder, self.kg, self.config = embedder, kg, config
        self._vocab = set(sparse.vocab_dict)

    @classmethod
    def open(cls, embedder: Embedder, data_dir: Path = DEFAULT_DATA_DIR, kg: KnowledgeGraph | None = None,
             config: SearchConfig = SearchConfig()) -> LiteratureIndex:
        """Open ``data_dir/current`` after checking the embedder and every file's checksum (bounded as
        ``kg.artefacts.verify_files`` says); a damaged index raises ``IndexMismatchError``."""
        import bm25s
        import faiss

        manifest = read_manifest(data_dir)
        root = (Path(data_dir) / "current").resolve()
        if manifest.get("index_version") != INDEX_VERSION:
            raise IndexMismatchError(root, f"index version {manifest.get('index_version')}, "
                                           f"this code reads {INDEX_VERSION}")
        expected = manifest["embedder"]
        given = {"name": embedder.name, "checksum": embedder.checksum, "dimension": embedder.dimension}
        if expected != given:
            raise IndexMismatchError(root, f"built with embedder {expected}, opened with {given}")
        try:
            verify_files(root, manifest["files"], ARTEFACT, BUILD_COMMAND)
        except ArtefactMismatchError as error:
            raise IndexMismatchError(root, error.detail) from None
        dense = faiss.read_index(str(root / "dense.faiss"))
        if manifest["index_type"] == "hnsw":
            dense.hnsw.efSearch = int(manifest["config"]["hnsw_ef_search"])
        elif manifest["index_type"] == "ivf":
            dense.nprobe = int(manifest["config"]["ivf_nprobe"])
        sparse = bm25s.BM25.load(str(root / "bm25"), show_progress=False)
        chunks = _read_chunks(root / "chunks.jsonl.gz")
        if len(chunks) != manifest["count"] or dense.ntotal != len(chunks):
            raise IndexMismatchError(root, f"{len(chunks)} chunks and {dense.ntotal} vectors, manifest "
                                           f"{manifest['count']}")
        return cls(root, manifest, chunks, dense, sparse, embedder, kg, config)

    def search(self, query: str, k: int = 10, filters: SearchFilters | None = None, *, dense: bool = True,
               sparse: bool = True, entity_ids: tuple[str, ...] = ()) -> list[Passage]:
        """The ``k`` best chunks for ``query``, fused score in ``Passage.score`` (higher is better)."""
        if not (dense or sparse):
            raise ValueError("switch on at least one of the dense and sparse signals")
        if k < 1:
            raise ValueError(f"k must be positive, not {k}")
        mask = self._mask(filters) if filters else None
        depth = max(self.config.depth, k)
        scores: dict[int, float] = {}
        if dense:
            self._fuse(scores, self.dense_ranking(query, depth, mask), self.config.dense_weight)
        if sparse:
            self._fuse(scores, self.sparse_ranking(query, depth, mask), self.config.sparse_weight)
        if entity_ids and self.config.kg_boost:
            bonus = self.config.kg_boost / (self.config.rrf_k + 1)
            for i in [i for i in scores if self.mentions(i, tuple(entity_ids))]:
                scores[i] += bonus
        best = sorted(scores.items(), key=lambda item: (-item[1], self.chunks[item[0]].id))[:k]
        return [replace(self.chunks[i], score=round(score, 6)) for i, score in best]

    def _fuse(self, scores: dict[int, float], ranking: list[int], weight: float) -> None:
        for rank, i in enumerate(ranking, 1):
            scores[i] = scores.get(i, 0.0) + weight / (self.config.rrf_k + rank)

    def dense_ranking(self, query: str, depth: int, mask: np.ndarray | None = None) -> list[int]:
        """Chunk rows by inner product with the query vector, best first (``depth`` of them)."""
        vector = self.embedder.encode([query])
        wanted = depth if mask is None else min(len(self.chunks), math.ceil(depth * len(mask) / max(1, mask.sum())))
        _, rows = self.dense.search(vector, min(wanted, len(self.chunks)))
        found = [int(i) for i in rows[0] if i >= 0 and (mask is None or mask[i])]
        return found[:depth]

    def sparse_ranking(self, query: str, depth: int, mask: np.ndarray | None = None) -> list[int]:
        """Chunk rows by BM25 score, best first; chunks sharing no query term are left out."""
        tokens = [t for t in bm25_tokens([query])[0] if t in self._vocab]
        if not tokens:
            return []
        rows, scores = self.sparse.retrieve([tokens], k=min(depth, len(self.chunks)), show_progress=False,
                                            weight_mask=None if mask is None else mask.astype(np.float32))
        return [int(i) for i, s in zip(rows[0], scores[0], strict=True) if s > 0]

    @functools.lru_cache(maxsize=64)  # noqa: B019 - a few filter combinations per open index
    def _mask(self, filters: SearchFilters) -> np.ndarray:
        return np.fromiter((filters.keeps(c) for c in self.chunks), dtype=bool, count=len(self.chunks))

    def mentions(self, row: int, entity_ids: tuple[str, ...]) -> bool:
        """Whether chunk ``row`` is about one of the entities: its entity ids, or a name in its text."""
        chunk = self.chunks[row]
        if set(chunk.entity_ids) & set(entity_ids):
            return True
        pattern = self._name_pattern(entity_ids)
        return pattern is not None and pattern.search(corpus.embedded_text(chunk)) is not None

    def knows(self, word: str) -> bool:
        """Whether ``word`` (lower case) occurs anywhere in the indexed corpus."""
        return word in self._vocab

    def is_about(self, passage: Passage, entity_ids: tuple[str, ...]) -> bool:
        """Whether a returned passage is about one of the entities: its entity ids, or a name in its text."""
        if set(passage.entity_ids) & set(entity_ids):
            return True
        pattern = self._name_pattern(entity_ids)
        return pattern is not None and pattern.search(corpus.embedded_text(passage)) is not None

    @functools.lru_cache(maxsize=1024)  # noqa: B019
    def _name_pattern(self, entity_ids: tuple[str, ...]) -> re.Pattern | None:
        """One case-insensitive whole-word pattern over the entities' names and synonyms (KG names table)."""
        if self.kg is None:
            return None
        names = sorted({n for e in entity_ids for n in self._names_by_entity.get(e, ()) if len(n) >= _MIN_NAME_CHARS},
                       key=len, reverse=True)
        if not names:
            return None
        return re.compile(r"\b(?:" + "|".join(map(re.escape, names)) + r")\b", re.IGNORECASE)

    @functools.cached_property
    def _names_by_entity(self) -> dict[str, list[str]]:
        table: dict[str, list[str]] = {}
        for entry in self.kg.names():
            table.setdefault(entry.entity_id, []).append(entry.name)
        return table

    def stats(self) -> dict:
        return {"count": len(self.chunks), "index_type": self.manifest["index_type"],
                "embedder": self.manifest["embedder"]["name"], "build_id": self.manifest["build_id"],
                "by_source": dict(Counter(c.source for c in self.chunks).most_common()),
                "by_licence": dict(Counter(c.licence for c in self.chunks).most_common())}


def export_embeddings(data_dir: Path = DEFAULT_DATA_DIR, destination: Path = corpus.BUNDLE_DIR) -> Path:
    """Write the built index's vectors, int8-quantised and keyed by chunk text, as the embedding cache
    that ``build_index`` reuses (``medkg index bundle --embeddings``)."""
    import faiss

    manifest = read_manifest(data_dir)
    root = Path(data_dir) / "current"
    index = faiss.read_index(str(root / "dense.faiss"))
    if manifest["index_type"] == "ivf":
        faiss.extract_index_ivf(index).make_direct_map()
    vectors = index.reconstruct_n(0, index.ntotal)
    keys = [corpus.text_key(corpus.embedded_text(c)) for c in _read_chunks(root / "chunks.jsonl.gz")]
    target = Path(destination) / corpus.EMBEDDINGS_FILE
    corpus.EmbeddingCache.quantise(manifest["embedder"]["checksum"], keys, vectors).save(target)
    return target
