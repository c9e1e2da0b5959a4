"""The literature corpus: source passages plus the KG's entity definitions, chunked for retrieval.

Three inputs, one output::

    bundle/literature/passages.jsonl.gz    MedQuAD answers, PubMedQA abstracts, DO definitions (committed;
                                           ``medkg index bundle`` regenerates it from ../shared/data)
    KnowledgeGraph skos:definition         phenotype definitions (HPO) not already among the passages
    -> list[Passage]                       chunks of at most ``max_words`` words (title included)

The bundle also carries ``embeddings.npz``: int8-quantised MiniLM vectors of the chunks, keyed by the
sha256 of each embedded text and by the embedder's checksum, so a fresh clone builds the index without
encoding the whole corpus (see ``EmbeddingCache``).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.types import Passage
from kg.artefacts import sha256_file
from kg.errors import KGError, SourceFormatError
from kg.store import KnowledgeGraph
from kg.vocab import entity_curie

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
BUNDLE_DIR = REPO_ROOT / "bundle" / "literature"
PASSAGES_FILE = "passages.jsonl.gz"
EMBEDDINGS_FILE = "embeddings.npz"
SOURCE_FILES = ("passages.jsonl.gz", "MedQuAD-LICENSE.txt", "PubMedQA-LICENSE")
FIELDS = ("id", "source", "licence", "title", "text", "url")
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class ChunkConfig:
    """``max_words`` counts the title too: each chunk is embedded as ``"title. text"``."""

    max_words: int = 200
    min_tail_words: int = 20  # a shorter last piece is merged into the previous chunk (if that fits)

    def __post_init__(self) -> None:
        if self.max_words < 20:
            raise ValueError(f"max_words must be at least 20, not {self.max_words}")


class CorpusMissingError(KGError):
    def __init__(self, path: Path) -> None:
        super().__init__(f"no literature passages at {path}: restore bundle/literature/ from git or run "
                         "`medkg index bundle --source ../shared/data`")


# --- passages ---------------------------------------------------------------------------------

def read_passages(path: Path) -> list[dict[str, str]]:
    """The passages file (``id source licence title text url`` per JSON line); other keys are dropped
    (the MedQuAD ``question`` is never indexed)."""
    if not Path(path).is_file():
        raise CorpusMissingError(Path(path))
    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise SourceFormatError(path, number, f"not JSON: {error}") from None
            missing = [f for f in ("id", "source", "licence", "title", "text") if not row.get(f)]
            if missing:
                raise SourceFormatError(path, number, f"missing {', '.join(missing)}")
            rows.append({f: _SPACE.sub(" ", str(row.get(f) or "")).strip() for f in FIELDS})
    return rows


def write_passages(path: Path, rows: Iterable[dict[str, str]]) -> str:
    """Gzip with mtime=0 (reproducible bytes); returns the file's sha256."""
    lines = "".join(json.dumps({f: row[f] for f in FIELDS}, ensure_ascii=False, sort_keys=True) + "\n"
                    for row in rows)
    data = gzip.compress(lines.encode(), compresslevel=9, mtime=0)
    Path(path).write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def make_bundle(source: Path, destination: Path = BUNDLE_DIR) -> dict:
    """Copy the passages (normalised whitespace, no questions) and licences from ``source``, the
    ``literature/`` folder of ../shared/data; returns the bundle manifest."""
    source = Path(source)
    if (source / "literature").is_dir():
        source = source / "literature"
    destination.mkdir(parents=True, exist_ok=True)
    checksum = write_passages(destination / PASSAGES_FILE, read_passages(source / PASSAGES_FILE))
    for name in SOURCE_FILES[1:]:
        if (source / name).is_file():
            (destination / name).write_bytes((source / name).read_bytes())
    manifest = {"from": str(source), "files": {PASSAGES_FILE: {"sha256": checksum}}}
    if (destination / EMBEDDINGS_FILE).is_file():
        manifest["files"][EMBEDDINGS_FILE] = {"sha256": sha256_file(destination / EMBEDDINGS_FILE)}
    (destination / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def kg_definitions(kg: KnowledgeGraph, skip_ids: set[str]) -> list[dict[str, str]]:
    """Entity definitions from the KG (``skos:definition``), as passages; entities in ``skip_ids`` (the
    Disease Ontology terms whose definitions already are passages) are left out. The text follows the
    DO passages' form: ``name; also called syn1, syn2. definition``."""
    synonyms: dict[str, list[str]] = {}
    for entry in kg.names():
        if entry.kind != "name":
            synonyms.setdefault(entry.entity_id, []).append(entry.name)
    sources = kg.manifest.get("sources", {})
    rows = []
    for row in kg.sparql("SELECT ?e ?d WHERE { ?e skos:definition ?d }"):
        entity_id = entity_curie(row["e"])
        if entity_id in skip_ids:
            continue
        name = kg.name(entity_id)
        also = sorted(set(synonyms.get(entity_id, ())) - {name})
        text = f"{name}; also called {', '.join(also)}. {row['d']}" if also else f"{name}. {row['d']}"
        source = _definition_source(entity_id)
        rows.append({"id": f"def:{entity_id}", "source": sources.get(source, {}).get("name", source),
                     "licence": sources.get(source, {}).get("licence", "unspecified"), "title": name,
                     "text": _SPACE.sub(" ", text).strip(), "url": row["e"], "entity_ids": entity_id})
    rows.sort(key=lambda r: r["id"])
    return rows


def _definition_source(entity_id: str) -> str:
    prefix = entity_id.split(":", 1)[0]
    return {"HP": "hpo", "DOID": "disease-ontology", "DRUGBANK": "drugbank", "UBERON": "uberon"}.get(prefix, prefix)


def corpus_rows(passages_path: Path, kg: KnowledgeGraph | None) -> list[dict[str, str]]:
    """Passages, then KG definitions (DO passages carry their DOID as entity id)."""
    rows = read_passages(passages_path)
    for row in rows:
        row["entity_ids"] = row["id"][3:] if row["id"].startswith("do:DOID:") else ""
    if kg is not None:
        rows.extend(kg_definitions(kg, {r["entity_ids"] for r in rows if r["entity_ids"]}))
    return rows


# --- chunking ---------------------------------------------------------------------------------

def split_words(text: str, budget: int, min_tail: int) -> list[str]:
    """Pieces of ``text`` of at most ``budget`` words, cut at sentence ends where possible; a sentence
    longer than the budget is cut between words. A last piece under ``min_tail`` words joins the one
    before it when the two fit together."""
    units: list[list[str]] = []
    for sentence in _SENTENCE_END.split(text):
        words = sentence.split()
        units.extend(words[i:i + budget] for i in range(0, len(words), budget))
    pieces: list[list[str]] = []
    for unit in units:
        if pieces and len(pieces[-1]) + len(unit) <= budget:
            pieces[-1].extend(unit)
        else:
            pieces.append(list(unit))
    if len(pieces) > 1 and len(pieces[-1]) < min_tail and len(pieces[-2]) + len(pieces[-1]) <= budget:
        pieces[-2].extend(pieces.pop())
    return [" ".join(p) for p in pieces if p]


def chunk(rows: Iterable[dict[str, str]], config: ChunkConfig = ChunkConfig()) -> Iterator[Passage]:
    """Chunks with provenance; ids ``<passage id>#<n>``. Title + text is at most ``max_words`` words."""
    for row in rows:
        title = row["title"]
        budget = max(config.max_words - len(title.split()), config.max_words // 2)
        entity_ids = tuple(e for e in row.get("entity_ids", "").split(",") if e)
        for number, text in enumerate(split_words(row["text"], budget, config.min_tail_words)):
            yield Passage(id=f"{row['id']}#{number}", title=title, text=text, source=row["source"],
                          licence=row["licence"], url=row.get("url") or None, entity_ids=entity_ids)


def embedded_text(passage: Passage) -> str:
    """What the embedder and BM25 see: the title as context, then the chunk."""
    return f"{passage.title}. {passage.text}"


def corpus_checksum(passages: Iterable[Passage]) -> str:
    digest = hashlib.sha256()
    for p in passages:
        digest.update(json.dumps([p.id, p.title, p.text, p.source, p.licence, p.url, p.entity_ids]).encode())
    return digest.hexdigest()


def text_key(text: str) -> int:
    """64-bit key of an embedded text (first 8 bytes of its sha256): the cache row it may reuse."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


# --- embedding cache --------------------------------------------------------------------------

@dataclass(frozen=True)
class EmbeddingCache:
    """Committed vectors: int8 rows ``q`` with per-row float32 ``scale`` (``v ≈ q * scale``, max-abs
    quantisation, re-normalised on load), keyed by ``text_key`` and valid for one embedder checksum."""

    embedder_checksum: str
    keys: np.ndarray  # (n,) uint64 text keys
    codes: np.ndarray  # (n, d) int8
    scales: np.ndarray  # (n,) float32

    @classmethod
    def quantise(cls, embedder_checksum: str, keys: list[int], vectors: np.ndarray) -> EmbeddingCache:
        scales = np.abs(vectors).max(axis=1) / 127.0
        scales[scales == 0] = 1.0
        codes = np.clip(np.rint(vectors / scales[:, None]), -127, 127).astype(np.int8)
        return cls(embedder_checksum, np.array(keys, dtype=np.uint64), codes, scales.astype(np.float32))

    def save(self, path: Path) -> None:
        with open(path, "wb") as handle:  # np.savez_compressed: the int8 codes barely compress, keys do
            np.savez_compressed(handle, embedder_checksum=np.array(self.embedder_checksum), keys=self.keys,
                                codes=self.codes, scales=self.scales)

    @classmethod
    def load(cls, path: Path) -> EmbeddingCache:
        with np.load(path) as data:
            return cls(str(data["embedder_checksum"]), data["keys"], data["codes"], data["scales"])

    def lookup(self, keys: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(found mask (n,), vectors (n, d) float32, zero where not found), L2-normalised."""
        position = {k: i for i, k in enumerate(self.keys.tolist())}
        rows = np.array([position.get(k, -1) for k in keys], dtype=np.int64)
        found = rows >= 0
        vectors = np.zeros((len(keys), self.codes.shape[1]), dtype=np.float32)
        vectors[found] = self.codes[rows[found]].astype(np.float32) * self.scales[rows[found], None]
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        np.divide(vectors, norms, out=vectors, where=norms > 0)
        return found, vectors
