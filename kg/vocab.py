"""The KG's closed vocabulary: namespaces, entity types, relations and data sources.

Every predicate the build writes and the query layer reads is declared here. ``MEDKG`` is an
rdflib ``DefinedNamespace``, so a mistyped term (``MEDKG.tretas``) raises at once instead of
silently minting a new predicate.

Entities keep URIs minted from their source ids (OBO PURLs, identifiers.org, MeSH RDF), so the
same source id always yields the same URI across rebuilds; the short CURIE form (``DOID:9352``)
is what the API and CLI speak.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass

import curies
from rdflib import URIRef
from rdflib.namespace import DefinedNamespace, Namespace

MEDKG_NS = "https://medkg.org/vocab/"
TRIPLE_NS = Namespace("https://medkg.org/triple/")
SOURCE_NS = Namespace("https://medkg.org/source/")
KG_NODE = URIRef("https://medkg.org/kg")  # carries the build id, checked against the manifest

SCHEMA_VERSION = 1
#: prefixes every prepared query may use
SPARQL_PREFIXES = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "medkg": MEDKG_NS,
}


class MEDKG(DefinedNamespace):
    """Classes and properties of the MedKG schema (closed: unknown names raise)."""

    _NS = Namespace(MEDKG_NS)
    _fail = True

    # entity classes
    Disease: URIRef
    Compound: URIRef
    SideEffect: URIRef
    Symptom: URIRef
    Anatomy: URIRef
    PharmacologicClass: URIRef
    Gene: URIRef
    # relations (asserted as plain triples, and described by a reified statement node)
    treats: URIRef
    palliates: URIRef
    indicated_for: URIRef
    causes_side_effect: URIRef
    has_symptom: URIRef
    has_phenotype: URIRef
    associated_with_gene: URIRef
    binds_gene: URIRef
    resembles: URIRef
    in_class: URIRef
    located_in: URIRef
    subclass_of: URIRef
    # entity attributes
    laySynonym: URIRef
    xref: URIRef
    degree: URIRef
    recordSource: URIRef
    drugType: URIRef
    drugGroup: URIRef
    atcCode: URIRef
    category: URIRef
    classType: URIRef
    preferredTerm: URIRef  # a side effect's MedDRA preferred term (its lower-level terms point at it)
    # statement (provenance) attributes
    source: URIRef
    licence: URIRef
    release: URIRef
    evidence: URIRef
    evidenceScore: URIRef
    curation: URIRef
    frequency: URIRef
    frequencyText: URIRef
    # build marker
    buildId: URIRef


class EntityType(enum.StrEnum):
    """Entity types; the value is the name used in the API, the CLI and the names table."""

    DISEASE = "disease"
    COMPOUND = "compound"
    SIDE_EFFECT = "side_effect"
    SYMPTOM = "symptom"  # symptoms and phenotypes (HPO, MeSH symptoms, DO symptom labels), merged
    ANATOMY = "anatomy"
    PHARMACOLOGIC_CLASS = "pharmacologic_class"
    GENE = "gene"

    @property
    def uri(self) -> URIRef:
        return _TYPE_URI[self]

    @classmethod
    def from_uri(cls, uri: URIRef) -> EntityType:
        return _URI_TYPE[uri]


_TYPE_URI = {
    EntityType.DISEASE: MEDKG.Disease,
    EntityType.COMPOUND: MEDKG.Compound,
    EntityType.SIDE_EFFECT: MEDKG.SideEffect,
    EntityType.SYMPTOM: MEDKG.Symptom,
    EntityType.ANATOMY: MEDKG.Anatomy,
    EntityType.PHARMACOLOGIC_CLASS: MEDKG.PharmacologicClass,
    EntityType.GENE: MEDKG.Gene,
}
_URI_TYPE = {v: k for k, v in _TYPE_URI.items()}


class Relation(enum.StrEnum):
    """The closed relation vocabulary, with the entity types each end must have."""

    TREATS = "treats"
    PALLIATES = "palliates"
    INDICATED_FOR = "indicated_for"
    CAUSES_SIDE_EFFECT = "causes_side_effect"
    HAS_SYMPTOM = "has_symptom"
    HAS_PHENOTYPE = "has_phenotype"
    ASSOCIATED_WITH_GENE = "associated_with_gene"
    BINDS_GENE = "binds_gene"
    RESEMBLES = "resembles"
    IN_CLASS = "in_class"
    LOCATED_IN = "located_in"
    SUBCLASS_OF = "subclass_of"

    @property
    def uri(self) -> URIRef:
        return MEDKG[self.value]

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")

    @classmethod
    def from_uri(cls, uri: URIRef) -> Relation:
        return cls(str(uri)[len(MEDKG_NS):])


D, C, SE, S, A, PC, G = (EntityType.DISEASE, EntityType.COMPOUND, EntityType.SIDE_EFFECT,
                         EntityType.SYMPTOM, EntityType.ANATOMY, EntityType.PHARMACOLOGIC_CLASS,
                         EntityType.GENE)
#: relation -> (subject type, object type); the build rejects an edge that breaks its signature.
SIGNATURES: dict[Relation, tuple[EntityType, EntityType]] = {
    Relation.TREATS: (C, D),
    Relation.PALLIATES: (C, D),
    Relation.INDICATED_FOR: (C, D),
    Relation.CAUSES_SIDE_EFFECT: (C, SE),
    Relation.HAS_SYMPTOM: (D, S),
    Relation.HAS_PHENOTYPE: (D, S),
    Relation.ASSOCIATED_WITH_GENE: (D, G),
    Relation.BINDS_GENE: (C, G),
    Relation.RESEMBLES: (D, D),
    Relation.IN_CLASS: (C, PC),
    Relation.LOCATED_IN: (D, A),
    Relation.SUBCLASS_OF: (D, D),
}
DRUG_RELATIONS = (Relation.TREATS, Relation.PALLIATES, Relation.INDICATED_FOR)
SYMPTOM_RELATIONS = (Relation.HAS_SYMPTOM, Relation.HAS_PHENOTYPE)


class Curation(enum.IntEnum):
    """How an edge was established; higher ranks first ("curated over text-mined")."""

    UNSPECIFIED = 0
    TEXT_MINED = 1  # NLP over labels or abstracts, co-occurrence statistics, electronic inference
    DATABASE = 2  # curated database records (drug targets, class membership, label side effects)
    EXPERT = 3  # expert-curated assertions (PharmacotherapyDB physicians, ontology axioms)


@dataclass(frozen=True)
class Source:
    """A data source: the unit of provenance and licensing."""

    key: str
    name: str
    release: str
    licence: str
    url: str
    permissive: bool  # False for non-commercial or share-alike terms

    @property
    def uri(self) -> URIRef:
        return SOURCE_NS[self.key]


_S = Source
SOURCES: dict[str, Source] = {s.key: s for s in (
    _S("hetionet", "Hetionet", "v1.0 (hetio/hetionet 8a6cc0c)", "CC0 1.0",
       "https://het.io", True),
    _S("disease-ontology", "Disease Ontology", "2026-08-19 (HumanDiseaseOntology 9fbefd6)", "CC0 1.0",
       "https://disease-ontology.org", True),
    _S("hpo", "Human Phenotype Ontology", "read from hp.obo at build time",
       "HPO licence (free use with attribution)", "https://hpo.jax.org", True),
    _S("pharmacotherapydb", "PharmacotherapyDB", "1.0 (dhimmel/indications 11d535b)", "CC0 1.0",
       "https://doi.org/10.6084/m9.figshare.3103054", True),
    _S("sider", "SIDER", "4.1 (dhimmel/SIDER4 be3adeb)", "CC BY-NC-SA 4.0",
       "http://sideeffects.embl.de", False),
    _S("drugbank", "DrugBank", "4.x slim (dhimmel/drugbank 3e87872)", "CC BY-NC 4.0",
       "https://go.drugbank.com", False),
    _S("drugcentral", "DrugCentral", "dhimmel/drugcentral 0e085dd", "CC BY 4.0",
       "https://drugcentral.org", True),
    _S("medline", "MEDLINE cooccurrence", "dhimmel/medline 60d6118", "CC0 1.0",
       "https://github.com/dhimmel/medline", True),
    _S("mesh", "MeSH", "2015 (dhimmel/mesh a7036a3)", "Public domain (NLM terms)",
       "https://www.nlm.nih.gov/mesh", True),
    _S("uberon", "Uberon", "dhimmel/uberon 134f234", "CC BY 3.0", "https://uberon.github.io", True),
    _S("entrez-gene", "Entrez Gene", "2015-08 (via Hetionet)", "Public domain (NCBI)",
       "https://www.ncbi.nlm.nih.gov/gene", True),
    # gene-edge sources integrated by Hetionet (dhimmel/integrate); licence as Hetionet states it
    _S("disgenet", "DisGeNET", "2015 (via dhimmel/integrate)", "ODbL 1.0", "https://www.disgenet.org", False),
    _S("diseases", "DISEASES", "2015 (via dhimmel/integrate)", "CC BY 4.0",
       "https://diseases.jensenlab.org", True),
    _S("doaf", "DOAF", "2012 (via dhimmel/integrate)", "unspecified", "https://doi.org/10.1371/journal.pone.0049686",
       False),
    _S("gwas-catalog", "GWAS Catalog", "2015 (via dhimmel/integrate)", "CC BY 4.0", "https://www.ebi.ac.uk/gwas",
       True),
    _S("chembl", "ChEMBL", "20 (via dhimmel/integrate)", "CC BY-SA 3.0", "https://www.ebi.ac.uk/chembl", False),
    _S("bindingdb", "BindingDB", "2015 (via dhimmel/integrate)", "CC BY 3.0", "https://www.bindingdb.org", True),
    _S("pdsp-ki", "PDSP Ki", "2015 (via dhimmel/integrate)", "unspecified", "https://pdsp.unc.edu", False),
    _S("us-patent", "US Patent (binding data)", "2015 (via dhimmel/integrate)", "unspecified",
       "https://github.com/dhimmel/integrate", False),
    _S("pubchem", "PubChem", "2015 (via dhimmel/integrate)", "Public domain (NCBI)",
       "https://pubchem.ncbi.nlm.nih.gov", True),
)}

#: licences that are neither non-commercial nor share-alike nor unknown
PERMISSIVE_LICENCES = frozenset({
    "CC0 1.0", "CC BY 3.0", "CC BY 4.0", "Public domain (NCBI)", "Public domain (NLM terms)",
    "HPO licence (free use with attribution)",
})


def licence_is_permissive(licence: str) -> bool:
    return licence in PERMISSIVE_LICENCES


#: CURIE prefix -> URI prefix; the converter checks both directions.
PREFIXES = {
    "DOID": "http://purl.obolibrary.org/obo/DOID_",
    "HP": "http://purl.obolibrary.org/obo/HP_",
    "UBERON": "http://purl.obolibrary.org/obo/UBERON_",
    "SYMP": "http://purl.obolibrary.org/obo/SYMP_",
    "CHEBI": "http://purl.obolibrary.org/obo/CHEBI_",
    "DRUGBANK": "http://identifiers.org/drugbank/",
    "UMLS": "http://identifiers.org/umls/",
    "MESH": "http://id.nlm.nih.gov/mesh/",
    "NCBIGene": "http://identifiers.org/ncbigene/",
    "NDFRT": "http://purl.bioontology.org/ontology/NDFRT/",
    "MEDKG": "https://medkg.org/entity/",  # entities without a source id (DO symptom labels)
}
CONVERTER = curies.Converter.from_prefix_map(PREFIXES)


def entity_uri(curie: str) -> URIRef:
    """``DOID:9352`` -> ``URIRef('http://purl.obolibrary.org/obo/DOID_9352')``; ValueError if unknown."""
    uri = CONVERTER.expand(curie)
    if uri is None:
        raise ValueError(f"not an entity id with a known prefix ({', '.join(PREFIXES)}): {curie!r}")
    return URIRef(uri)


@functools.lru_cache(maxsize=1 << 17)  # curies' compress costs ~30 us; entities recur in every subgraph
def entity_curie(uri: str) -> str:
    curie = CONVERTER.compress(str(uri))
    if curie is None:
        raise ValueError(f"URI outside the KG's entity namespaces: {uri}")
    return curie
