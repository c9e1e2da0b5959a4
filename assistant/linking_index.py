"""The name-embedding artefact of entity linking: every KG name embedded once, in a FAISS index.

Layout (built aside, then swapped in atomically like the KG itself)::

    data/linking/current -> builds/<build id>
    data/linking/builds/<build id>/names.faiss     HNSW (inner product) over L2-normalised vectors (cosine)
    data/linking/builds/<build id>/rows.npy        int32: FAISS row -> index into ``kg.names()``
    data/linking/builds/<build id>/manifest.json   embedder name and checksum, KG build id, count, sha256s

Opening checks the embedder, the KG build id and the checksums; any mismatch raises
``LinkingIndexMismatchError`` naming ``medkg link-build``.

Encoding the 74k names with MiniLM took 705 s on this 2-core machine, so their vectors are committed as an
int8 cache (``bundle/linking/name_embeddings.npz``, the literature index's format, keyed by name text;
``medkg link-build --export-cache`` writes it): a build encodes only the names the cache lacks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from assistant.embedding import Embedder
from assistant.linking_text import is_acronym, name_key
from kg.artefacts import sha256_file, staged_build
from kg.errors import KGError
from kg.store import KnowledgeGraph
from kg.vocab import EntityType

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
DEFAULT_LINKING_DIR = REPO / "data" / "linking"
NAME_CACHE = REPO / "bundle" / "linking" / "name_embeddings.npz"
#: 1: flat index (9 ms a query on 74k names); 2: HNSW (well under 1 ms); 3: the rows of today's ``name_key`` (British
#: spellings fold together: 73,075 rows, not 74,152). Bump it whenever ``embedded_rows`` or ``name_key`` changes:
#: the manifest checks the KG and the embedder, not which of the KG's names were embedded.
INDEX_VERSION = 3
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 80, 64
REBUILD = "`medkg link-build`"
#: gene symbols and acronyms carry no meaning an embedding could match a paraphrase to
EMBEDDED_TYPES = tuple(t for t in EntityType if t is not EntityType.GENE)


class LinkingIndexMissingError(KGError):
    def __init__(self, path: Path) -> None:
        super().__init__(f"no entity-linking name index at {path}: build it with {REBUILD}")


class LinkingIndexMismatchError(KGError):
    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"entity-linking name index at {path} does not match ({detail}): rebuild it with {REBUILD}")


@dataclass(frozen=True)
class NameIndexManifest:
    index_version: int
    build_id: str
    kg_build_id: str
    embedder: str
    embedder_checksum: str
    dimension: int
    count: int
    faiss_sha256: str
    rows_sha256: str
    seconds: float


@dataclass
class NameIndex:
    """A loaded index: ``search(vectors, k)`` -> (scores, names-table rows), both (n, k)."""

    index: object  # faiss.Index
    rows: np.ndarray
    manifest: NameIndexManifest

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, positions = self.index.search(np.ascontiguousarray(vectors, dtype=np.float32), k)
        rows = np.where(positions >= 0, self.rows[np.clip(positions, 0, None)], -1)
        return scores, rows


def embedded_rows(kg: KnowledgeGraph) -> np.ndarray:
    """Rows of ``kg.names()`` to embed: one per distinct folded name (the first, i.e. preferred-name row,
    wins), leaving out genes and acronyms."""
    seen: set[str] = set()
    rows = []
    for row, entry in enumerate(kg.names()):
        if entry.entity_type not in EMBEDDED_TYPES or is_acronym(entry.name):
            continue
        key = name_key(entry.name)
        if key and key not in seen:
            seen.add(key)
            rows.append(row)
    return np.asarray(rows, dtype=np.int32)


def build_name_index(kg: KnowledgeGraph, embedder: Embedder, data_dir: Path = DEFAULT_LINKING_DIR,
                     batch_size: int = 256, cache: Path | None = NAME_CACHE) -> NameIndexManifest:
    """Embed the names (from ``cache`` where it has them), write them aside and swap ``current`` to them."""
    from assistant.literature import embed_chunks

    started = time.perf_counter()
    rows = embedded_rows(kg)
    names = kg.names()
    vectors = embed_chunks([names[r].name for r in rows], embedder, cache, batch_size)
    return write_name_index(kg, embedder, rows, vectors, Path(data_dir), started)


def export_name_cache(kg: KnowledgeGraph, embedder: Embedder, data_dir: Path = DEFAULT_LINKING_DIR,
                      destination: Path = NAME_CACHE) -> Path:
    """Write the built index's vectors, int8-quantised and keyed by name text, as the committed cache."""
    from assistant.corpus import EmbeddingCache, text_key

    index = open_name_index(kg, embedder, data_dir)
    vectors = index.index.reconstruct_n(0, index.index.ntotal)
    names = kg.names()
    keys = [text_key(names[int(r)].name) for r in index.rows]
    EmbeddingCache.quantise(embedder.checksum, keys, vectors).save(Path(destination))
    return Path(destination)


def write_name_index(kg: KnowledgeGraph, embedder: Embedder, rows: np.ndarray, vectors: np.ndarray,
                     data_dir: Path, started: float) -> NameIndexManifest:
    """Index ``vectors`` (one per names-table row in ``rows``), write aside, swap in; returns the manifest."""
    import faiss

    index = faiss.IndexHNSWFlat(embedder.dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    data_dir = Path(data_dir)
    kg_build_id = str(kg.manifest.get("build_id"))
    key = f"{INDEX_VERSION}|{kg_build_id}|{embedder.checksum}|{len(rows)}"
    build_id = hashlib.sha256(key.encode()).hexdigest()[:16]
    with staged_build(data_dir, "medkg link-build", build_id) as staging:
        faiss.write_index(index, str(staging / "names.faiss"))
        np.save(staging / "rows.npy", rows)
        manifest = NameIndexManifest(
            index_version=INDEX_VERSION, build_id=build_id, kg_build_id=kg_build_id, embedder=embedder.name,
            embedder_checksum=embedder.checksum, dimension=embedder.dimension, count=len(rows),
            faiss_sha256=sha256_file(staging / "names.faiss"), rows_sha256=sha256_file(staging / "rows.npy"),
            seconds=round(time.perf_counter() - started, 2))
        (staging / "manifest.json").write_text(json.dumps(asdict(manifest), indent=2))
    log.info("name index %s: %d names embedded in %.1fs", build_id, len(rows), manifest.seconds)
    return manifest


def open_name_index(kg: KnowledgeGraph, embedder: Embedder, data_dir: Path = DEFAULT_LINKING_DIR) -> NameIndex:
    """Load ``data_dir/current`` after checking it was built from this KG with this embedder."""
    import faiss

    root = Path(data_dir) / "current"
    if not (root / "manifest.json").is_file():
        raise LinkingIndexMissingError(Path(data_dir))
    try:
        manifest = NameIndexManifest(**json.loads((root / "manifest.json").read_text()))
    except (TypeError, ValueError) as error:
        raise LinkingIndexMismatchError(root, f"unreadable manifest: {error}") from None
    expected = {"index version": (manifest.index_version, INDEX_VERSION),
                "KG build id": (manifest.kg_build_id, str(kg.manifest.get("build_id"))),
                "embedder": (manifest.embedder, embedder.name),
                "embedder checksum": (manifest.embedder_checksum, embedder.checksum),
                "dimension": (manifest.dimension, embedder.dimension)}
    for what, (found, wanted) in expected.items():
        if found != wanted:
            raise LinkingIndexMismatchError(root, f"{what} {found!r}, expected {wanted!r}")
    for name, digest in (("names.faiss", manifest.faiss_sha256), ("rows.npy", manifest.rows_sha256)):
        if not (root / name).is_file() or sha256_file(root / name) != digest:
            raise LinkingIndexMismatchError(root, f"{name} missing or its checksum differs from the manifest")
    index = faiss.read_index(str(root / "names.faiss"))
    index.hnsw.efSearch = HNSW_EF_SEARCH
    rows = np.load(root / "rows.npy")
    if index.ntotal != manifest.count or len(rows) != manifest.count:
        raise LinkingIndexMismatchError(root, f"{index.ntotal} vectors, manifest says {manifest.count}")
    return NameIndex(index, rows, manifest)
