"""``KnowledgeGraph``: open a built KG (checking it against its manifest) and read entities and triples.

All reads go through rdflib's API over the Oxigraph store: ``graph.predicate_objects`` for one node,
and prepared SPARQL strings whose variables are bound through ``initBindings`` (never text pasted
into a query). The store is opened read-only, so several processes can share one KG.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from rdflib import RDF, RDFS, SKOS, Graph, Literal, URIRef

from kg.adjacency import Adjacency, load_adjacency
from kg.errors import ArtefactMismatchError, QuerySyntaxError, StoreMissingError, UnknownEntityError
from kg.names import NameEntry, read_names
from kg.rdfstore import open_graph
from kg.types import Entity, Triple
from kg.vocab import (
    KG_NODE, MEDKG, SCHEMA_VERSION, SOURCE_NS, SPARQL_PREFIXES, TRIPLE_NS, Curation, EntityType, Relation,
    entity_curie, entity_uri,
)

log = logging.getLogger(__name__)

DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "kg"
_ATTRIBUTE_NAMES = {MEDKG.drugType: "drug_type", MEDKG.drugGroup: "drug_group", MEDKG.atcCode: "atc_code",
                    MEDKG.category: "category", MEDKG.classType: "class_type"}
_SOURCES_QUERY = "SELECT ?src ?name ?release ?licence WHERE { ?src rdfs:label ?name ; medkg:release ?release ; " \
                 "medkg:licence ?licence }"


@dataclass(frozen=True)
class SourceInfo:
    key: str
    name: str
    release: str
    licence: str


class KnowledgeGraph:
    """A built KG. Use ``KnowledgeGraph.open(data_dir)``; close it (or use ``with``) when done."""

    def __init__(self, graph: Graph, manifest: dict, root: Path) -> None:
        self.graph = graph
        self.manifest = manifest
        self.root = root
        self._sources = {
            str(row.src)[len(str(SOURCE_NS)):]: SourceInfo(str(row.src)[len(str(SOURCE_NS)):], str(row.name),
                                                           str(row.release), str(row.licence))
            for row in self.graph.query(_SOURCES_QUERY, initNs=SPARQL_PREFIXES)}

    @classmethod
    def open(cls, data_dir: Path = DEFAULT_DATA_DIR) -> KnowledgeGraph:
        """Open ``data_dir/current`` read-only after checking the manifest, build id and checksums."""
        root = Path(data_dir) / "current"
        manifest_path = root / "manifest.json"
        if not (root / "store").is_dir() or not manifest_path.is_file():
            raise StoreMissingError(Path(data_dir))
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("schema_version") != SCHEMA_VERSION:
            raise ArtefactMismatchError(root, f"schema version {manifest.get('schema_version')}, "
                                              f"this code reads {SCHEMA_VERSION}")
        for name, key in (("names.tsv.gz", "names_sha256"), ("adjacency.npz", "adjacency_sha256")):
            path = root / name
            if not path.is_file() or _sha256(path) != manifest.get(key):
                raise ArtefactMismatchError(root, f"{name} missing or its checksum differs from the manifest")
        graph = open_graph(root / "store")
        build_id = graph.value(KG_NODE, MEDKG.buildId)
        if str(build_id) != manifest.get("build_id"):
            graph.close()
            raise ArtefactMismatchError(root, f"store build id {build_id}, manifest {manifest.get('build_id')}")
        return cls(graph, manifest, root.resolve())

    def close(self) -> None:
        self.graph.close()

    def __enter__(self) -> KnowledgeGraph:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- entities ---------------------------------------------------------------------------

    def entity(self, entity_id: str) -> Entity:
        """The entity with this CURIE (``DOID:9352``); ``UnknownEntityError`` with close matches if none."""
        try:
            uri = entity_uri(entity_id)
        except ValueError:
            raise UnknownEntityError(entity_id, self.close_matches(entity_id)) from None
        values: dict[URIRef, list] = {}
        for predicate, obj in self.graph.predicate_objects(uri):
            values.setdefault(predicate, []).append(obj)
        if RDF.type not in values:
            raise UnknownEntityError(entity_id, self.close_matches(entity_id))
        definition = values.get(SKOS.definition)
        return Entity(
            id=entity_id, type=EntityType.from_uri(values[RDF.type][0]), name=str(values[RDFS.label][0]),
            synonyms=tuple(sorted(map(str, values.get(SKOS.altLabel, ())))),
            lay_synonyms=tuple(sorted(map(str, values.get(MEDKG.laySynonym, ())))),
            definition=str(definition[0]) if definition else None,
            xrefs=tuple(sorted(map(str, values.get(MEDKG.xref, ())))),
            source=", ".join(sorted(self._sources[str(s)[len(str(SOURCE_NS)):]].name
                                    for s in values.get(MEDKG.recordSource, ()))),
            attributes=tuple(sorted((_ATTRIBUTE_NAMES[p], str(v)) for p in _ATTRIBUTE_NAMES for v in values.get(p, ()))),
            degree=int(values[MEDKG.degree][0]),
        )

    def name(self, entity_id: str) -> str:
        label = self.graph.value(entity_uri(entity_id), RDFS.label)
        return str(label) if label is not None else entity_id

    def resolve(self, text: str) -> Entity:
        """An entity by id, or by an exact (case-insensitive) name or synonym; preferred names win."""
        if ":" in text:
            try:
                return self.entity(text.strip())
            except UnknownEntityError:
                pass
        key = text.strip().lower()
        hits = [n for n in self.names() if n.name.lower() == key]
        if not hits:
            raise UnknownEntityError(text, self.close_matches(text))
        hits.sort(key=lambda n: (n.kind != "name", -self._degree(n.entity_id), n.entity_id))
        return self.entity(hits[0].entity_id)

    @functools.cache  # noqa: B019 - one table per open KG, released with it
    def names(self) -> list[NameEntry]:
        """Every name and synonym with its entity and type (the table entity linking uses)."""
        return read_names(self.root / "names.tsv.gz")

    @functools.cached_property
    def adjacency(self) -> Adjacency:
        return load_adjacency(self.root / "adjacency.npz")

    @functools.cached_property
    def _adjacency_index(self) -> dict[str, int]:
        return self.adjacency.index()

    def _degree(self, entity_id: str) -> int:
        i = self._adjacency_index.get(entity_id)
        return int(self.adjacency.degree[i]) if i is not None else 0

    def close_matches(self, text: str, limit: int = 5) -> list[tuple[str, str]]:
        """(id, name) of the names closest to ``text`` (rapidfuzz edit-distance ratio), for error messages."""
        from rapidfuzz import fuzz, process, utils

        names = self.names()
        choices = [n.name for n in names] + [n.entity_id for n in names if n.kind == "name"]
        owners = [n for n in names] + [n for n in names if n.kind == "name"]
        found, seen = [], set()
        for _, _, index in process.extract(text, choices, scorer=fuzz.ratio, processor=utils.default_process,
                                           limit=limit * 4):
            entry = owners[index]
            if entry.entity_id not in seen:
                seen.add(entry.entity_id)
                found.append((entry.entity_id, choices[index] if index < len(names) else entry.name))
        return found[:limit]

    # --- triples ----------------------------------------------------------------------------

    def triple(self, triple_id: str) -> Triple:
        """The fact with this stable id, with labels and provenance."""
        return self.statement(TRIPLE_NS[triple_id])

    def statement(self, node: URIRef) -> Triple:
        values: dict[URIRef, list] = {}
        for predicate, obj in self.graph.predicate_objects(node):
            values.setdefault(predicate, []).append(obj)
        if RDF.subject not in values:
            raise UnknownEntityError(str(node).rsplit("/", 1)[-1])
        subject, obj = values[RDF.subject][0], values[RDF.object][0]
        sources = sorted((self._sources[str(s)[len(str(SOURCE_NS)):]] for s in values.get(MEDKG.source, ())),
                         key=lambda s: s.name)
        frequency = values.get(MEDKG.frequency)
        first = functools.partial(_first, values)
        return Triple(
            id=str(node)[len(str(TRIPLE_NS)):], subject=entity_curie(subject),
            predicate=Relation.from_uri(values[RDF.predicate][0]), object=entity_curie(obj),
            subject_name=str(self.graph.value(subject, RDFS.label)), object_name=str(self.graph.value(obj, RDFS.label)),
            sources=tuple(s.name for s in sources), release="; ".join(s.release for s in sources),
            licence=str(first(MEDKG.licence)), curation=Curation(int(first(MEDKG.curation))),
            evidence=_optional(first(MEDKG.evidence)), frequency=float(frequency[0]) if frequency else None,
            frequency_text=_optional(first(MEDKG.frequencyText)), score=float(first(MEDKG.evidenceScore)),
        )

    # --- SPARQL ----------------------------------------------------------------------------

    def sparql(self, query: str, bindings: dict[str, str | URIRef | Literal] | None = None) -> list[dict[str, str]]:
        """Run a read-only SPARQL query; ``bindings`` bind variables (strings become literals).

        Malformed queries raise ``QuerySyntaxError`` with the position Oxigraph reports.
        """
        init = {k: v if isinstance(v, URIRef | Literal) else Literal(v) for k, v in (bindings or {}).items()}
        try:
            result = self.graph.query(query, initNs=SPARQL_PREFIXES, initBindings=init)
            if result.type == "ASK":
                return [{"ask": str(bool(result.askAnswer)).lower()}]
            if result.type == "CONSTRUCT":
                return [{"subject": str(s), "predicate": str(p), "object": str(o)} for s, p, o in result.graph]
            return [{str(var): str(row[var]) for var in result.vars if row[var] is not None} for row in result]
        except SyntaxError as error:
            raise QuerySyntaxError(str(error)) from error
        except RuntimeError as error:  # Oxigraph reports evaluation errors (e.g. unprojected bindings) so
            raise QuerySyntaxError(str(error)) from error

    def export(self, destination: Path, fmt: str) -> None:
        """Serialise the whole KG: ``nt`` (N-Triples), ``nq`` (N-Quads) or ``ttl`` (Turtle)."""
        formats = {"nt": "ox-ntriples", "nq": "ox-nquads", "ttl": "ox-turtle"}
        if fmt not in formats:
            raise ValueError(f"export format must be one of {sorted(formats)}, not {fmt!r}")
        self.graph.serialize(destination=str(destination), format=formats[fmt])


def _first(values: dict, predicate: URIRef) -> object:
    found = values.get(predicate)
    return found[0] if found else None


def _optional(value: object) -> str | None:
    return str(value) if value is not None else None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
