"""``KnowledgeGraph``: open a built KG (checking it against its manifest) and read entities and triples.

All reads go through rdflib's API over the Oxigraph store: ``graph.predicate_objects`` for one node,
and prepared SPARQL strings whose variables are bound through ``initBindings`` (never text pasted
into a query). The store is opened read-only, so several processes can share one KG.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import pyoxigraph
from rdflib import RDF, RDFS, SKOS, Graph, Literal, URIRef

from kg.adjacency import Adjacency, load_adjacency
from kg.artefacts import read_manifest, require_keys, verify_files
from kg.errors import (
    ArtefactMismatchError,
    QuerySyntaxError,
    StoreMissingError,
    UnknownEntityError,
    UnknownTripleError,
)
from kg.names import NameEntry, read_names
from kg.rdfstore import describe_oxigraph, describe_rdflib, open_oxigraph
from kg.types import Entity, Triple
from kg.vocab import (
    KG_NODE,
    MEDKG,
    SCHEMA_VERSION,
    SOURCE_NS,
    SPARQL_PREFIXES,
    TRIPLE_NS,
    Curation,
    EntityType,
    Relation,
    entity_curie,
    entity_uri,
)

log = logging.getLogger(__name__)

DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "kg"
ARTEFACT, BUILD_COMMAND = "knowledge graph", "medkg kg build"
#: the manifest keys ``open`` and ``medkg kg stats`` read
_MANIFEST_KEYS = ("schema_version", "build_id", "built_at", "config", "counts", "sources")
#: how RocksDB's errors start (``Status::ToString``) when the store's files, not the query, are at fault
_STORAGE_ERRORS = ("Corruption", "IO error")
_ATTRIBUTE_NAMES = {str(MEDKG.drugType): "drug_type", str(MEDKG.drugGroup): "drug_group",
                    str(MEDKG.atcCode): "atc_code", str(MEDKG.category): "category", str(MEDKG.classType): "class_type",
                    str(MEDKG.preferredTerm): "preferred_term"}
# predicate IRIs as the describe() maps key them
_TYPE, _LABEL, _ALT_LABEL, _DEFINITION = str(RDF.type), str(RDFS.label), str(SKOS.altLabel), str(SKOS.definition)
_SUBJECT, _PREDICATE, _OBJECT = str(RDF.subject), str(RDF.predicate), str(RDF.object)
_LAY, _XREF, _RECORD_SOURCE, _DEGREE = (str(MEDKG.laySynonym), str(MEDKG.xref), str(MEDKG.recordSource),
                                        str(MEDKG.degree))
_SOURCE, _LICENCE, _CURATION, _EVIDENCE, _SCORE, _FREQUENCY, _FREQUENCY_TEXT = (
    str(MEDKG.source), str(MEDKG.licence), str(MEDKG.curation), str(MEDKG.evidence), str(MEDKG.evidenceScore),
    str(MEDKG.frequency), str(MEDKG.frequencyText))
# medkg:release first: only source nodes have it (Oxigraph joins in the written order; rdfs:label
# first scans all 88k labels, 1.4 s)
_SOURCES_QUERY = "SELECT ?src ?name ?release ?licence WHERE { ?src medkg:release ?release ; rdfs:label ?name ; " \
                 "medkg:licence ?licence }"


@dataclass(frozen=True)
class SourceInfo:
    key: str
    name: str
    release: str
    licence: str


class KnowledgeGraph:
    """A built KG: ``KnowledgeGraph.open(data_dir)`` locally, ``KnowledgeGraph.remote(url)`` behind a
    SPARQL 1.1 endpoint. Close it (or use ``with``) when done."""

    def __init__(self, graph: Graph, manifest: dict | None = None, root: Path | None = None,
                 oxigraph: pyoxigraph.Store | None = None) -> None:
        self.graph = graph
        self.manifest = manifest or {}
        self.root = root
        self._oxigraph = oxigraph
        self._sources = {
            str(row.src)[len(str(SOURCE_NS)):]: SourceInfo(str(row.src)[len(str(SOURCE_NS)):], str(row.name),
                                                           str(row.release), str(row.licence))
            for row in self.graph.query(_SOURCES_QUERY, initNs=SPARQL_PREFIXES)}

    @classmethod
    def open(cls, data_dir: Path = DEFAULT_DATA_DIR) -> KnowledgeGraph:
        """Open ``data_dir/current`` read-only after checking the manifest, the checksums of every file it lists
        (the store's too; bounded as ``kg.artefacts.verify_files`` says) and the store's build id.

        A damaged KG (an unreadable manifest or one without a key this reads, a file that differs from its
        checksum, a store that will not open) raises ``ArtefactMismatchError`` naming ``medkg kg build``. A KG
        built before the store's checksums were recorded is checked by opening its store alone."""
        root = Path(data_dir) / "current"
        if not (root / "store").is_dir() or not (root / "manifest.json").is_file():
            raise StoreMissingError(Path(data_dir))
        manifest = read_manifest(root, ARTEFACT, BUILD_COMMAND, _MANIFEST_KEYS)
        if manifest["schema_version"] != SCHEMA_VERSION:
            raise ArtefactMismatchError(root, f"schema version {manifest['schema_version']}, "
                                              f"this code reads {SCHEMA_VERSION}")
        if "manifest_version" in manifest:  # "files" lists the store's files and their companions'
            require_keys(root, manifest, ("files",), ARTEFACT, BUILD_COMMAND)
            files = manifest["files"]
        else:  # built before version 2: the companions' checksums only
            log.info("the KG at %s was built before its store's checksums were recorded; rebuild it with "
                     "`%s` to have them checked", root, BUILD_COMMAND)
            require_keys(root, manifest, ("names_sha256", "adjacency_sha256"), ARTEFACT, BUILD_COMMAND)
            files = {"names.tsv.gz": manifest["names_sha256"], "adjacency.npz": manifest["adjacency_sha256"]}
        verify_files(root, files, ARTEFACT, BUILD_COMMAND)
        try:
            graph, oxigraph = open_oxigraph(root / "store")
        except (RuntimeError, OSError) as error:  # RocksDB: "Corruption: ...", "IO error: ..."
            raise ArtefactMismatchError(root, f"the store will not open: {error}") from None
        try:
            build_id = graph.value(KG_NODE, MEDKG.buildId)
            if str(build_id) != manifest["build_id"]:
                raise ArtefactMismatchError(root, f"store build id {build_id}, manifest {manifest['build_id']}")
            kg = cls(graph, manifest, root.resolve(), oxigraph)
            kg.adjacency_index, kg._labels  # noqa: B018 - load the arrays and names now, not in the first query
        except (RuntimeError, OSError) as error:
            graph.close()
            raise ArtefactMismatchError(root, f"the store will not read: {error}") from None
        except BaseException:
            graph.close()
            raise
        return kg

    @classmethod
    def remote(cls, endpoint: str) -> KnowledgeGraph:
        """A KG served by a SPARQL 1.1 endpoint (for KGs that outgrow one machine); read-only."""
        from rdflib.plugins.stores.sparqlstore import SPARQLStore

        graph = Graph(store=SPARQLStore(endpoint, returnFormat="json"))
        if graph.value(KG_NODE, MEDKG.buildId) is None:
            raise StoreMissingError(endpoint)
        return cls(graph)

    def close(self) -> None:
        self.graph.close()

    def __enter__(self) -> KnowledgeGraph:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self, iri: str) -> dict[str, list[str]]:
        """predicate IRI -> values of one node: the one read primitive under ``entity`` and ``triple``."""
        if self._oxigraph is not None:
            try:
                return describe_oxigraph(self._oxigraph, iri)
            except (RuntimeError, OSError) as error:  # a damaged block the checks at open could not see
                raise self._damaged(error) from None
        return describe_rdflib(self.graph, iri)

    def _damaged(self, error: Exception) -> ArtefactMismatchError:
        return ArtefactMismatchError(self.root, f"the store will not read: {error}")

    # --- entities ---------------------------------------------------------------------------

    def entity(self, entity_id: str) -> Entity:
        """The entity with this CURIE (``DOID:9352``); ``UnknownEntityError`` with close matches if none."""
        try:
            uri = entity_uri(entity_id)
        except ValueError:
            raise UnknownEntityError(entity_id, self.close_matches(entity_id)) from None
        values = self.describe(uri)
        if _TYPE not in values:
            raise UnknownEntityError(entity_id, self.close_matches(entity_id))
        definition = values.get(_DEFINITION)
        return Entity(
            id=entity_id, type=EntityType.from_uri(URIRef(values[_TYPE][0])), name=values[_LABEL][0],
            synonyms=tuple(sorted(values.get(_ALT_LABEL, ()))),
            lay_synonyms=tuple(sorted(values.get(_LAY, ()))),
            definition=definition[0] if definition else None,
            xrefs=tuple(sorted(values.get(_XREF, ()))),
            source=", ".join(sorted(self._source(s).name for s in values.get(_RECORD_SOURCE, ()))),
            attributes=tuple(sorted((name, v) for p, name in _ATTRIBUTE_NAMES.items() for v in values.get(p, ()))),
            degree=int(values[_DEGREE][0]),
        )

    @functools.cache  # noqa: B019 - one table per attribute of an open KG
    def attribute_table(self, name: str) -> dict[str, tuple[str, ...]]:
        """Every entity's values of one attribute (``atc_code``, ``drug_group``, ...) in one read of the store:
        what a ranker needs for hundreds of candidates without an ``entity`` call each."""
        predicate = next((URIRef(p) for p, n in _ATTRIBUTE_NAMES.items() if n == name), None)
        if predicate is None:
            raise ValueError(f"no attribute {name!r}; known: {sorted(_ATTRIBUTE_NAMES.values())}")
        table: dict[str, list[str]] = {}
        for subject, value in self.graph.subject_objects(predicate):
            table.setdefault(entity_curie(subject), []).append(str(value))
        return {entity: tuple(sorted(values)) for entity, values in table.items()}

    @functools.lru_cache(maxsize=1 << 14)  # noqa: B019 - a few reads per seed, asked again for every answer
    def same_concept(self, entity_id: str) -> tuple[str, ...]:
        """Entities of other sources that denote the same concept, by the sources' own cross-references: one
        lists the other's id among its xrefs (HPO's Diarrhea -> SIDER's side effect ``UMLS:C0011991``, DO's
        malaria -> SIDER's ``UMLS:C0024530``), or both list the same UMLS concept (DO's exanthem and HPO's Skin
        rash -> ``UMLS:C0015230``), or one is the other's MedDRA preferred term (Drowsiness -> Somnolence). The
        KG keeps one node per source's record, so a question's "diarrhea" links to one of them and the fact it
        asks about may hang on another. Sorted, ``entity_id`` excluded; empty for an id the KG does not hold."""
        try:
            uri = entity_uri(entity_id)
        except ValueError:
            return ()
        xrefs = {str(x) for x in self.graph.objects(uri, MEDKG.xref)}
        found = set()
        for xref in xrefs:  # the records it points at
            try:
                if self.graph.value(entity_uri(xref), RDF.type) is not None:
                    found.add(xref)
            except ValueError:  # SNOMEDCT:, ICD10CM:, ...: no entities of the KG
                continue
        for key in {entity_id, *(x for x in xrefs if x.startswith("UMLS:"))}:  # the records pointing at it
            found.update(entity_curie(s) for s in self.graph.subjects(MEDKG.xref, Literal(key)))
        # a side effect's MedDRA preferred terms and, for a preferred term, the lower-level terms under it (Drowsiness
        # and Somnolence); not the other terms under the same preferred one (Ankle edema is not Edema hands)
        found.update(str(term) for term in self.graph.objects(uri, MEDKG.preferredTerm))
        found.update(entity_curie(s) for s in self.graph.subjects(MEDKG.preferredTerm, Literal(entity_id)))
        found.discard(entity_id)
        return tuple(sorted(found))

    def name(self, entity_id: str) -> str:
        """The preferred name (from the names table when local: no store read)."""
        if self.root is not None:
            return self._labels.get(entity_id, entity_id)
        label = self.graph.value(entity_uri(entity_id), RDFS.label)
        return str(label) if label is not None else entity_id

    @functools.cached_property
    def _labels(self) -> dict[str, str]:
        return {n.entity_id: n.name for n in self.names() if n.kind == "name"}

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
        hits.sort(key=lambda n: (n.kind != "name", -self.degree(n.entity_id), n.entity_id))
        return self.entity(hits[0].entity_id)

    @functools.cache  # noqa: B019 - one table per open KG, released with it
    def names(self) -> list[NameEntry]:
        """Every name and synonym with its entity and type (the table entity linking uses)."""
        if self.root is None:
            raise StoreMissingError("a remote KG (the names table is built locally by `medkg kg build`)")
        return read_names(self.root / "names.tsv.gz")

    @functools.cached_property
    def adjacency(self) -> Adjacency:
        return load_adjacency(self.root / "adjacency.npz")

    @property
    def has_adjacency(self) -> bool:
        return self.root is not None and (self.root / "adjacency.npz").is_file()

    @functools.cached_property
    def adjacency_index(self) -> dict[str, int]:
        return self.adjacency.index()

    def degree(self, entity_id: str) -> int:
        i = self.adjacency_index.get(entity_id)
        return int(self.adjacency.degree[i]) if i is not None else 0

    def close_matches(self, text: str, limit: int = 5) -> list[tuple[str, str]]:
        """(id, name) of the names closest to ``text`` (rapidfuzz edit-distance ratio), for error messages."""
        from rapidfuzz import fuzz, process, utils

        if self.root is None:
            return []
        names = self.names()
        choices = [n.name for n in names] + [n.entity_id for n in names if n.kind == "name"]
        owners = names + [n for n in names if n.kind == "name"]
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
        """The fact with this stable id, with labels and provenance; ``UnknownTripleError`` if none."""
        values = self.describe(str(TRIPLE_NS) + triple_id)
        if _SUBJECT not in values:
            raise UnknownTripleError(triple_id)
        subject, obj = entity_curie(values[_SUBJECT][0]), entity_curie(values[_OBJECT][0])
        sources = sorted((self._source(s) for s in values.get(_SOURCE, ())), key=lambda s: s.name)
        frequency = values.get(_FREQUENCY)
        first = functools.partial(_first, values)
        return Triple(
            id=triple_id, subject=subject, predicate=Relation.from_uri(URIRef(values[_PREDICATE][0])), object=obj,
            subject_name=self.name(subject), object_name=self.name(obj),
            sources=tuple(s.name for s in sources), release="; ".join(s.release for s in sources),
            licence=first(_LICENCE), curation=Curation(int(first(_CURATION))), evidence=first(_EVIDENCE),
            frequency=float(frequency[0]) if frequency else None, frequency_text=first(_FREQUENCY_TEXT),
            score=float(first(_SCORE)),
        )

    def _source(self, iri: str) -> SourceInfo:
        return self._sources[iri[len(str(SOURCE_NS)):]]

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
        except OSError as error:
            if self._oxigraph is None:  # a remote endpoint's
                raise
            raise self._damaged(error) from None
        except RuntimeError as error:  # Oxigraph reports evaluation errors (e.g. unprojected bindings) so, and
            if self._oxigraph is not None and str(error).startswith(_STORAGE_ERRORS):  # RocksDB a damaged block
                raise self._damaged(error) from None
            raise QuerySyntaxError(str(error)) from error

    def export(self, destination: Path, fmt: str) -> None:
        """Serialise the whole KG: ``nt`` (N-Triples), ``nq`` (N-Quads) or ``ttl`` (Turtle)."""
        formats = {"nt": "ox-ntriples", "nq": "ox-nquads", "ttl": "ox-turtle"}
        if fmt not in formats:
            raise ValueError(f"export format must be one of {sorted(formats)}, not {fmt!r}")
        self.graph.serialize(destination=str(destination), format=formats[fmt])


def _first(values: dict[str, list[str]], predicate: str) -> str | None:
    found = values.get(predicate)
    return found[0] if found else None
