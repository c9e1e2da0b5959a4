"""The name-embedding artefact of entity linking: every KG name embedded once, in a FAISS index.

Layout (built aside, then swapped in atomically like the KG itself)::

    data/linking/current -> builds/<build id>
    data/linking/builds/<build id>/names.faiss     HNSW (inner product) over L2-normalised vectors (cosine)
    data/linking/builds/<build id>/rows.npy        int32: FAISS row -> index into ``kg.names()``
    data/linking/builds/<build id>/manifest.json   embedder name and checksum, KG build id, count, sha256s

Opening checks the manifest, the embedder, the KG build id and the files' checksums (bounded as
``kg.artefacts.verify_files`` says); a damaged or mismatched index raises ``LinkingIndexMismatchError`` (an
``ArtefactMismatchError``) naming ``medkg link-build``. A build holds ``data/linking/.build.lock`` from before it
reads the KG's names.

Encoding the 74k names with MiniLM took 705 s on this 2-core machine, so their vectors are committed as an
int8 cache (``bundle/linking/name_embeddings.npz``, the literature index's format, keyed by name text;
``medkg link-build --export-cache`` writes it): a build encodes only the names the cache lacks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from assistant.embedding import Embedder
from assistant.linking_text import is_acronym, name_key
from kg.artefacts import BuildLock, held_or_taken, record_files, verify_files
from kg.errors import ArtefactMismatchError, KGError
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
BUILD_COMMAND = "medkg link-build"
REBUILD = f"`{BUILD_COMMAND}`"
ARTEFACT = "entity-linking name index"
#: gene symbols and acronyms carry no meaning an embedding could match a paraphrase to
EMBEDDED_TYPES = tuple(t for t in EntityType if t is not EntityType.GENE)


class LinkingIndexMissingError(KGError):
    def __init__(self, path: Path) -> None:
        super().__init__(f"no entity-linking name index at {path}: build it with {REBUILD}")


class LinkingIndexMismatchError(ArtefactMismatchError):
    """The name index is damaged, or was built from another KG or with another embedder."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(path, detail, ARTEFACT, BUILD_COMMAND)


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
    files: dict = field(default_factory=dict)  # kg.artefacts.record_files (sha256 and size); empty before it


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
                     batch_size: int = 256, cache: Path | None = NAME_CACHE,
                     lock: BuildLock | None = None) -> NameIndexManifest:
    """Embed the names (from ``cache`` where it has them), write them aside and swap ``current`` to them.
    Takes the build lock of ``data_dir`` before reading the names (``BuildLockedError`` at once when another
    build holds it), unless the caller holds it (``lock``)."""
    from assistant.literature import embed_chunks

    with ExitStack() as stack:
        lock = held_or_taken(stack, lock, Path(data_dir), BUILD_COMMAND)
        started = time.perf_counter()
        rows = embedded_rows(kg)
        names = kg.names()
        vectors = embed_chunks([names[r].name for r in rows], embedder, cache, batch_size)
        return write_name_index(kg, embedder, rows, vectors, Path(data_dir), started, lock)


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
                     data_dir: Path, started: float, lock: BuildLock | None = None) -> NameIndexManifest:
    """Index ``vectors`` (one per names-table row in ``rows``), write aside, swap in; returns the manifest.
    Takes the build lock of ``data_dir`` unless the caller holds it (``lock``)."""
    with ExitStack() as stack:
        lock = held_or_taken(stack, lock, Path(data_dir), BUILD_COMMAND)
        return _write_name_index(kg, embedder, rows, vectors, lock, started)


def _write_name_index(kg: KnowledgeGraph, embedder: Embedder, rows: np.ndarray, vectors: np.ndarray,
                      lock: BuildLock, started: float) -> NameIndexManifest:
    import faiss

    index = faiss.IndexHNSWFlat(embedder.dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    kg_build_id = str(kg.manifest.get("build_id"))
    key = f"{INDEX_VERSION}|{kg_build_id}|{embedder.checksum}|{len(rows)}"
    build_id = hashlib.sha256(key.encode()).hexdigest()[:16]
    with lock.stage(build_id) as staging:
        faiss.write_index(index, str(staging / "names.faiss"))
        np.save(staging / "rows.npy", rows)
        files = record_files(staging, [staging / "names.faiss", staging / "rows.npy"])
        manifest = NameIndexManifest(
            index_version=INDEX_VERSION, build_id=build_id, kg_build_id=kg_build_id, embedder=embedder.name,
            embedder_checksum=embedder.checksum, dimension=embedder.dimension, count=len(rows),
            faiss_sha256=files["names.faiss"]["sha256"], rows_sha256=files["rows.npy"]["sha256"],
            seconds=round(time.perf_counter() - started, 2), files=files)
        (staging / "manifest.json").write_text(json.dumps(asdict(manifest), indent=2))
    log.info("name index %s: %d names embedded in %.1fs", build_id, len(rows), manifest.seconds)
    return manifest


def open_name_index(kg: KnowledgeGraph, embedder: Embedder, data_dir: Path = DEFAULT_LINKING_DIR) -> NameIndex:
    """Load ``data_dir/current`` after checking its files and that it was built from this KG with this embedder."""
    import faiss

    root = Path(data_dir) / "current"
    if not (root / "manifest.json").is_file():
        raise LinkingIndexMissingError(Path(data_dir))
    try:
        manifest = NameIndexManifest(**json.loads((root / "manifest.json").read_text(encoding="utf-8")))
    except (TypeError, ValueError) as error:  # truncated (JSONDecodeError), a key missing or unknown (TypeError)
        raise LinkingIndexMismatchError(root, f"unreadable manifest.json: {error}") from None
    expected = {"index version": (manifest.index_version, INDEX_VERSION),
                "KG build id": (manifest.kg_build_id, str(kg.manifest.get("build_id"))),
                "embedder": (manifest.embedder, embedder.name),
                "embedder checksum": (manifest.embedder_checksum, embedder.checksum),
                "dimension": (manifest.dimension, embedder.dimension)}
    for what, (found, wanted) in expected.items():
        if found != wanted:
            raise LinkingIndexMismatchError(root, f"{what} {found!r}, expected {wanted!r}")
    try:
        verify_files(root, manifest.files or {"names.faiss": manifest.faiss_sha256, "rows.npy": manifest.rows_sha256},
                     ARTEFACT, BUILD_COMMAND)
    except ArtefactMismatchError as error:
        raise LinkingIndexMismatchError(root, error.detail) from None
    index = faiss.read_index(str(root / "names.faiss"))
    index.hnsw.efSearch = HNSW_EF_SEARCH
    rows = np.load(root / "rows.npy")
    if index.ntotal != manifest.count or len(rows) != manifest.count:
        raise LinkingIndexMismatchError(root, f"{index.ntotal} vectors, manifest says {manifest.count}")
    return NameIndex(index, rows, manifest)
