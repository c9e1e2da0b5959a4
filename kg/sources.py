"""Source mappings: each function reads one source's tables and returns entity and edge records.

Cross-source joins go through identifiers, never through guesses: SIDER indications reach Disease
Ontology through DO's UMLS xrefs, HPO annotations through DO's OMIM and Orphanet xrefs, and side-effect
frequencies join SIDER's STITCH ids through the DrugBank<->STITCH pairs that SIDER itself lists.
Only symptom *labels* (DO axioms, MeSH symptom names) are matched by normalised name, to merge them
with the HPO term that names the same thing.
"""

from __future__ import annotations

import logging
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable

from kg.errors import SourceFormatError
from kg.tables import EdgeRecord, EntityRecord, SourceDir
from kg.vocab import Curation, EntityType, Relation

log = logging.getLogger(__name__)

HETIONET_NODES = "hetionet/hetionet-v1.0-nodes.tsv.gz"
HETIONET_EDGES = "hetionet/hetionet-clinical-edges.tsv.gz"
DO_TERMS = "disease_ontology/do_terms_merged.tsv.gz"
DO_SYMPTOMS = "disease_ontology/DO_has_symptom.tsv"
DO_SYMPTOM_IDS = "disease_ontology/disease-symptom.tsv.gz"
DO_LOCATIONS = "disease_ontology/DO_disease_has_location.tsv"
DRUGBANK = "hetionet/sources/drugbank_drugbank-slim.tsv"
DRUGCENTRAL_CLASSES = "hetionet/sources/drugcentral_classes.tsv"
DRUGCENTRAL_MEMBERS = "hetionet/sources/drugcentral_drug-to-class.tsv"
PHARMACOTHERAPYDB = "hetionet/sources/indications_catalog.tsv"
SIDER_INDICATIONS = "hetionet/sources/sider4_indications.tsv"
SIDER_FREQUENCIES = "hetionet/sources/sider4_meddra_freq.tsv.gz"
SIDER_SIDE_EFFECTS = "hetionet/sources/sider4_meddra_all_se.tsv.gz"
MESH_SYMPTOMS = "hetionet/sources/mesh_symptoms.tsv"
UBERON = "hetionet/sources/uberon_hetio-slim.tsv"
MEDLINE = "hetionet/sources/medline_disease-disease-cooccurrence.tsv"
BINDING = "hetionet/sources/integrate_CbG-binding.tsv"

#: every file the build reads, relative to the source directory (the bundle holds exactly these)
SOURCE_FILES = (HETIONET_NODES, HETIONET_EDGES, DO_TERMS, DO_SYMPTOMS, DO_SYMPTOM_IDS, DO_LOCATIONS,
                DRUGBANK, DRUGCENTRAL_CLASSES, DRUGCENTRAL_MEMBERS, PHARMACOTHERAPYDB, SIDER_INDICATIONS,
                SIDER_FREQUENCIES, SIDER_SIDE_EFFECTS, MESH_SYMPTOMS, UBERON, MEDLINE, BINDING)

_KINDS = {"Disease": EntityType.DISEASE, "Compound": EntityType.COMPOUND, "Gene": EntityType.GENE,
          "Side Effect": EntityType.SIDE_EFFECT, "Anatomy": EntityType.ANATOMY,
          "Pharmacologic Class": EntityType.PHARMACOLOGIC_CLASS, "Symptom": EntityType.SYMPTOM}
_KIND_SOURCE = {EntityType.DISEASE: "disease-ontology", EntityType.COMPOUND: "hetionet",
                EntityType.GENE: "entrez-gene", EntityType.SIDE_EFFECT: "sider",
                EntityType.ANATOMY: "uberon", EntityType.PHARMACOLOGIC_CLASS: "drugcentral",
                EntityType.SYMPTOM: "mesh"}
_METAEDGES = {"CtD": (Relation.TREATS, False), "CpD": (Relation.PALLIATES, False),
              "CcSE": (Relation.CAUSES_SIDE_EFFECT, False), "DaG": (Relation.ASSOCIATED_WITH_GENE, False),
              "DrD": (Relation.RESEMBLES, False), "CbG": (Relation.BINDS_GENE, False),
              "PCiC": (Relation.IN_CLASS, True)}  # True: Hetionet's direction is reversed here
#: source names as Hetionet's provenance column writes them -> vocab.SOURCES keys
_PROVENANCE = {"SIDER 4.1": "sider", "PharmacotherapyDB": "pharmacotherapydb", "DisGeNET": "disgenet",
               "DISEASES": "diseases", "DOAF": "doaf", "GWAS Catalog": "gwas-catalog",
               "DrugBank": "drugbank", "ChEMBL": "chembl", "DrugCentral": "drugcentral",
               "PDSP Ki": "pdsp-ki", "BindingDB": "bindingdb", "PubChem": "pubchem", "US Patent": "us-patent",
               "MEDLINE cooccurrence": "medline"}
_XREF_PREFIX = {"UMLS_CUI": "UMLS", "MIM": "OMIM", "ORDO": "ORPHA", "MESH": "MESH", "NCI": "NCIT",
                "ICD10CM": "ICD10CM", "ICD9CM": "ICD9CM", "GARD": "GARD", "ICDO": "ICDO", "EFO": "EFO",
                "KEGG": "KEGG", "MEDDRA": "MEDDRA", "ICD11": "ICD11"}


def hetionet_curie(node: str) -> tuple[EntityType, str]:
    """``Compound::DB00331`` -> (COMPOUND, ``DRUGBANK:DB00331``); ``Gene::1017`` -> ``NCBIGene:1017``."""
    kind, _, local = node.partition("::")
    if kind not in _KINDS or not local:
        raise ValueError(f"unknown Hetionet node {node!r}")
    entity_type = _KINDS[kind]
    prefix = {EntityType.COMPOUND: "DRUGBANK:", EntityType.GENE: "NCBIGene:", EntityType.SIDE_EFFECT: "UMLS:",
              EntityType.SYMPTOM: "MESH:", EntityType.PHARMACOLOGIC_CLASS: "NDFRT:"}.get(entity_type, "")
    return entity_type, prefix + local


def class_curie(class_id: str) -> str:
    """DrugCentral class ids: ``N0000175655`` (NDF-RT), ``D000970`` (MeSH), ``CHEBI:21241``."""
    if class_id.startswith("CHEBI:"):
        return class_id
    if re.fullmatch(r"N\d+", class_id):
        return f"NDFRT:{class_id}"
    if re.fullmatch(r"D\d+", class_id):
        return f"MESH:{class_id}"
    raise ValueError(f"unknown pharmacologic class id {class_id!r}")


def normalise_xref(raw: str) -> str | None:
    prefix, _, local = raw.strip().partition(":")
    if not local:
        return None
    if prefix.startswith("SNOMEDCT"):
        return f"SNOMEDCT:{local}"
    return f"{_XREF_PREFIX.get(prefix, prefix)}:{local}"


def _split(value: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v.strip() for v in value.split("|") if v.strip()))


def _licence(raw: str) -> str:
    return raw.strip() or "unspecified"


class XrefIndex:
    """Maps a foreign id (``UMLS:C0011849``, ``OMIM:222100``) to the DOIDs that cross-reference it."""

    def __init__(self) -> None:
        self._map: dict[str, set[str]] = defaultdict(set)
        self._names: dict[str, set[str]] = defaultdict(set)

    def add(self, xref: str, doid: str) -> None:
        self._map[xref].add(doid)

    def add_name(self, name: str, doid: str) -> None:
        self._names[normalise_label(name)].add(doid)

    def doids(self, xref: str) -> list[str]:
        return sorted(self._map.get(xref, ()))

    def doid_named(self, name: str) -> str | None:
        """The one DOID whose name or exact synonym is ``name`` (normalised); None if none or several."""
        found = self._names.get(normalise_label(name), ())
        return next(iter(found)) if len(found) == 1 else None


# --- Disease Ontology -------------------------------------------------------------------------

def disease_ontology(src: SourceDir) -> tuple[list[EntityRecord], list[EdgeRecord], XrefIndex]:
    """All DO terms with synonyms, definitions and xrefs; the is-a hierarchy as ``subclass_of``."""
    rows = list(src.rows(DO_TERMS, ("doid", "name", "parents", "definition", "def_source", "synonyms",
                                    "xrefs"), overflow="synonyms"))
    by_name = {row["name"]: row["doid"] for _, row in rows}
    entities, edges, xrefs = [], [], XrefIndex()
    for line, row in rows:
        if not row["doid"].startswith("DOID:") or not row["name"]:
            raise SourceFormatError(src.path(DO_TERMS), line, f"expected a DOID and a name, got {row['doid']!r}")
        refs = tuple(dict.fromkeys(x for x in map(normalise_xref, row["xrefs"].split("|")) if x))
        for ref in refs:
            xrefs.add(ref, row["doid"])
        synonyms = tuple(s for s in _split(row["synonyms"]) if s.lower() != row["name"].lower())
        for name in (row["name"], *synonyms):
            xrefs.add_name(name, row["doid"])
        entities.append(EntityRecord(id=row["doid"], type=EntityType.DISEASE, name=row["name"],
                                     source="disease-ontology", synonyms=synonyms,
                                     definition=row["definition"].strip() or None, xrefs=refs))
        for parent in _split(row["parents"]):
            if parent == "disease" and parent not in by_name:  # the root (DOID:4) is not in the table
                continue
            if parent not in by_name:
                log.warning("%s:%d: parent %r of %s is not a DO term name", DO_TERMS, line, parent, row["doid"])
                continue
            edges.append(EdgeRecord(row["doid"], Relation.SUBCLASS_OF, by_name[parent], ("disease-ontology",),
                                    "CC0 1.0", Curation.EXPERT, evidence="DO is_a"))
    return entities, edges, xrefs


def do_symptoms(src: SourceDir, resolve: SymptomResolver) -> tuple[list[EntityRecord], list[EdgeRecord]]:
    """DO ``has_symptom`` axioms; each symptom label is merged with the HPO/MeSH term of that name."""
    symp_ids = {row["symptom_label"].strip().lower(): row["symptom_id"]
                for _, row in src.rows(DO_SYMPTOM_IDS, ("disease_id", "symptom_id", "symptom_label"))}
    entities, edges = [], []
    for _, row in src.rows(DO_SYMPTOMS, ("doid", "symptom_label")):
        label = row["symptom_label"].strip()
        target = resolve(label)
        if target is None:
            symp = symp_ids.get(label.lower())
            target = symp if symp else "MEDKG:symptom_" + re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")
            entities.append(EntityRecord(id=target, type=EntityType.SYMPTOM, name=label,
                                         source="disease-ontology"))
        edges.append(EdgeRecord(row["doid"], Relation.HAS_SYMPTOM, target, ("disease-ontology",), "CC0 1.0",
                                Curation.EXPERT, evidence=f"DO axiom: has symptom '{label}'"))
    return entities, edges


def do_locations(src: SourceDir) -> list[EdgeRecord]:
    edges = []
    for _, row in src.rows(DO_LOCATIONS, ("doid", "anatomy_label", "hetionet_anatomy_id")):
        if row["hetionet_anatomy_id"]:
            _, anatomy = hetionet_curie(row["hetionet_anatomy_id"])
            edges.append(EdgeRecord(row["doid"], Relation.LOCATED_IN, anatomy, ("disease-ontology",),
                                    "CC0 1.0", Curation.EXPERT, evidence=f"DO axiom: disease has location "
                                                                         f"'{row['anatomy_label']}'"))
    return edges


# --- symptoms: HPO terms, MeSH symptoms and DO labels merged by name ---------------------------

def normalise_label(label: str) -> str:
    """Case-, punctuation- and MeSH-inversion-insensitive key: ``Abdomen, Acute`` -> ``acute abdomen``."""
    label = label.strip().lower()
    if label.count(",") == 1:
        head, tail = (p.strip() for p in label.split(","))
        label = f"{tail} {head}"
    return " ".join(re.findall(r"[a-z0-9]+", label))


class SymptomResolver:
    """Finds the HPO term a symptom label names: preferred names win over synonyms; else None."""

    def __init__(self, hpo_terms: Iterable[EntityRecord]) -> None:
        self._by_name: dict[str, str] = {}
        self._by_synonym: dict[str, str] = {}
        for term in hpo_terms:
            self._by_name.setdefault(normalise_label(term.name), term.id)
            for synonym in (*term.synonyms, *term.lay_synonyms):
                self._by_synonym.setdefault(normalise_label(synonym), term.id)

    def __call__(self, label: str) -> str | None:
        key = normalise_label(label)
        return self._by_name.get(key) or self._by_synonym.get(key)


def mesh_symptoms(src: SourceDir, resolve: SymptomResolver) -> list[EntityRecord]:
    """MeSH symptoms: merged into the HPO term of the same name (as xref and synonym), else kept."""
    records = []
    for _, row in src.rows(MESH_SYMPTOMS, ("mesh_id", "mesh_name")):
        mesh = f"MESH:{row['mesh_id']}"
        target = resolve(row["mesh_name"])
        if target:
            records.append(EntityRecord(id=target, type=EntityType.SYMPTOM, name="", source="mesh",
                                        synonyms=(row["mesh_name"],), xrefs=(mesh,)))
        else:
            records.append(EntityRecord(id=mesh, type=EntityType.SYMPTOM, name=row["mesh_name"], source="mesh"))
    return records


def hpo_phenotypes(rows: Iterable[tuple[int, dict[str, str]]], xrefs: XrefIndex, phenotypes: set[str],
                   path: object) -> list[EdgeRecord]:
    """HPO disease annotations (aspect P, not negated) mapped to DOIDs through OMIM/Orphanet xrefs."""
    from kg.hpo import parse_frequency  # local: keeps this module free of the obonet import

    edges = []
    for line, row in rows:
        if row["aspect"] != "P" or row["qualifier"] == "NOT" or row["hpo_id"] not in phenotypes:
            continue
        try:
            frequency, text = parse_frequency(row["frequency"])
        except ValueError as error:
            raise SourceFormatError(path, line, str(error)) from error
        if frequency == 0.0:  # "excluded": the phenotype is known to be absent
            continue
        db, _, local = row["database_id"].partition(":")
        foreign = {"OMIM": f"OMIM:{local}", "ORPHA": f"ORPHA:{local}"}.get(db)
        if foreign is None:
            continue
        curation = Curation.TEXT_MINED if row["evidence"] == "IEA" else Curation.EXPERT
        for doid in xrefs.doids(foreign):
            edges.append(EdgeRecord(doid, Relation.HAS_PHENOTYPE, row["hpo_id"], ("hpo",),
                                    "HPO licence (free use with attribution)", curation,
                                    evidence=f"{row['evidence']} via {row['database_id']}",
                                    frequency=frequency, frequency_text=text))
    return edges


# --- Hetionet nodes and clinical edges ----------------------------------------------------------

def hetionet_nodes(src: SourceDir) -> list[EntityRecord]:
    """Compounds, genes, side effects, anatomy, pharmacologic classes and MeSH symptoms (not diseases:
    Hetionet's 137 are all in the full Disease Ontology)."""
    records = []
    for line, row in src.rows(HETIONET_NODES, ("id", "name", "kind")):
        if row["kind"] not in _KINDS or row["kind"] in ("Disease", "Symptom"):
            continue
        try:
            entity_type, curie = hetionet_curie(row["id"])
        except ValueError as error:
            raise SourceFormatError(src.path(HETIONET_NODES), line, str(error)) from error
        records.append(EntityRecord(id=curie, type=entity_type, name=row["name"],
                                    source=_KIND_SOURCE[entity_type]))
    return records


def hetionet_edges(src: SourceDir,
                   frequencies: dict[tuple[str, str], tuple[float | None, str]] | None = None) -> list[EdgeRecord]:
    """The seven clinical metaedges, with Hetionet's per-edge sources and licence, plus evidence
    details joined from PharmacotherapyDB, MEDLINE co-occurrence, binding records and SIDER frequencies."""
    catalog = {(row["drugbank_id"], row["doid_id"]): row for _, row in src.rows(
        PHARMACOTHERAPYDB, ("doid_id", "drugbank_id", "category", "n_curators", "n_resources"))}
    cooccurrence = {}
    for _, row in src.rows(MEDLINE, ("doid_code_0", "doid_code_1", "enrichment", "p_fisher")):
        cooccurrence[frozenset((row["doid_code_0"], row["doid_code_1"]))] = row
    binding = {(row["drugbank_id"], row["entrez_gene_id"]): row for _, row in src.rows(
        BINDING, ("drugbank_id", "entrez_gene_id", "actions", "affinity_nM"))}
    frequencies = sider_frequencies(src) if frequencies is None else frequencies
    edges = []
    for line, row in src.rows(HETIONET_EDGES, ("source", "metaedge", "target", "provenance")):
        if row["metaedge"] not in _METAEDGES:
            raise SourceFormatError(src.path(HETIONET_EDGES), line, f"unknown metaedge {row['metaedge']!r}")
        relation, reverse = _METAEDGES[row["metaedge"]]
        try:
            (_, head), (_, tail) = hetionet_curie(row["source"]), hetionet_curie(row["target"])
        except ValueError as error:
            raise SourceFormatError(src.path(HETIONET_EDGES), line, str(error)) from error
        if reverse:
            head, tail = tail, head
        *names, licence = row["provenance"].split("|")
        unknown = [n for n in names if n.split(" (")[0] not in _PROVENANCE]
        if unknown or not names:
            raise SourceFormatError(src.path(HETIONET_EDGES), line, f"unknown provenance source(s) {unknown}")
        sources = tuple(dict.fromkeys(_PROVENANCE[n.split(" (")[0]] for n in names))
        kinds = sorted({n.split(" (")[1].rstrip(")") for n in names if " (" in n})
        evidence, frequency, frequency_text = (", ".join(kinds) or None), None, None
        curation = Curation.DATABASE
        local_head, local_tail = head.split(":", 1)[1], tail.split(":", 1)[1]
        if relation in (Relation.TREATS, Relation.PALLIATES):
            curation = Curation.EXPERT
            entry = catalog.get((local_head, tail))
            if entry:
                evidence = (f"{'disease-modifying' if entry['category'] == 'DM' else 'symptomatic'}; "
                            f"{entry['n_curators']} physician curator(s), {entry['n_resources']} resource(s)")
        elif relation is Relation.RESEMBLES:
            curation = Curation.TEXT_MINED
            entry = cooccurrence.get(frozenset((head, tail)))
            if entry:
                evidence = (f"MEDLINE co-occurrence enrichment {float(entry['enrichment']):.1f}, "
                            f"p={float(entry['p_fisher']):.1e}")
        elif relation is Relation.BINDS_GENE:
            entry = binding.get((local_head, local_tail))
            details = [entry["actions"].replace("|", ", ")] if entry and entry["actions"] else []
            if entry and entry["affinity_nM"]:
                details.append(f"affinity {float(entry['affinity_nM']):g} nM")
            evidence = "; ".join(filter(None, [evidence, *details])) or None
        elif relation is Relation.ASSOCIATED_WITH_GENE and set(sources) == {"doaf"}:
            curation = Curation.TEXT_MINED
        elif relation is Relation.CAUSES_SIDE_EFFECT:
            evidence = "drug label (SIDER)"
            frequency, frequency_text = frequencies.get((local_head, local_tail), (None, None))
        edges.append(EdgeRecord(head, relation, tail, sources, _licence(licence), curation, evidence,
                                frequency, frequency_text))
    return edges


def sider_side_effects(src: SourceDir, compounds: set[str], effects: set[str], labelled: set[str],
                       frequencies: dict[tuple[str, str], tuple[float | None, str]] | None = None) -> list[EdgeRecord]:
    """SIDER 4.1's label side effects (MedDRA preferred terms) of the KG's compounds that Hetionet's CcSE edges leave
    without any (``labelled``: the compounds that have some): Hetionet's own mapping from SIDER's STITCH ids dropped
    atorvastatin, whose labels list 209 preferred terms. STITCH ids reach DrugBank through SIDER's indications table;
    only side effects the KG has a node for are kept; frequencies as for Hetionet's edges (``sider_frequencies``,
    read here unless given)."""
    stitch_to_drugbank = sider_stitch_to_drugbank(src)
    frequencies = sider_frequencies(src) if frequencies is None else frequencies
    pairs: dict[tuple[str, str], None] = {}
    for _, row in src.rows(SIDER_SIDE_EFFECTS, _SIDER_SIDE_EFFECT_COLUMNS, header=False):
        if row["meddra_type"] != "PT":
            continue
        effect = f"UMLS:{row['umls_meddra']}"
        for drug in (f"DRUGBANK:{d}" for d in stitch_to_drugbank.get(row["stitch_flat"], ())):
            if drug in compounds and drug not in labelled and effect in effects:
                pairs[(drug, effect)] = None
    edges = []
    for drug, effect in pairs:
        frequency, text = frequencies.get((drug.split(":", 1)[1], effect.split(":", 1)[1]), (None, None))
        edges.append(EdgeRecord(drug, Relation.CAUSES_SIDE_EFFECT, effect, ("sider",), "CC BY-NC-SA 4.0",
                                Curation.DATABASE, "drug label (SIDER; not among Hetionet's edges)", frequency, text))
    log.info("SIDER side effects: %d facts for %d compounds Hetionet's edges leave without any", len(edges),
             len({d for d, _ in pairs}))
    return edges


_SIDER_SIDE_EFFECT_COLUMNS = ("stitch_flat", "stitch_stereo", "umls_label", "meddra_type", "umls_meddra", "name")

#: the columns of SIDER's frequency table (no header)
_SIDER_FREQUENCY_COLUMNS = ("stitch_flat", "stitch_stereo", "umls_label", "placebo", "description", "lower", "upper",
                            "meddra_type", "umls_meddra", "name")
#: SIDER's qualitative frequencies -> a representative fraction inside the CIOMS band they name
#: (SIDER's own bounds for them are too wide to rank by: "common" spans 1-100%)
CIOMS_BANDS = {"very common": 0.2, "very frequent": 0.2, "common": 0.03, "frequent": 0.03,
               "uncommon": 0.003, "infrequent": 0.003, "rare": 0.0003, "very rare": 0.00003}


def sider_stitch_to_drugbank(src: SourceDir) -> dict[str, set[str]]:
    """SIDER's flat STITCH compound ids -> DrugBank ids (bare, "DB00331"), from its indications table."""
    stitch_to_drugbank: dict[str, set[str]] = defaultdict(set)
    for _, row in src.rows(SIDER_INDICATIONS, ("drugbank_id", "stitch_id_flat")):
        stitch_to_drugbank[row["stitch_id_flat"]].add(row["drugbank_id"])
    return stitch_to_drugbank


def sider_frequencies(src: SourceDir) -> dict[tuple[str, str], tuple[float | None, str]]:
    """(DrugBank id, UMLS CUI) -> (frequency, the reported texts).

    The frequency is the median of the numeric reports (SIDER's bounds, e.g. "9%" or "1-5%") when any
    exist, else of the qualitative ones (CIOMS bands); "postmarketing" alone means unknown (None).
    Placebo arms are skipped. Texts list numeric reports in ascending order, then qualitative ones.
    """
    stitch_to_drugbank = sider_stitch_to_drugbank(src)
    numeric: dict[tuple[str, str], list[tuple[float, str]]] = defaultdict(list)
    qualitative: dict[tuple[str, str], dict[str, None]] = defaultdict(dict)
    path = src.path(SIDER_FREQUENCIES)
    for line, row in src.rows(SIDER_FREQUENCIES, _SIDER_FREQUENCY_COLUMNS, header=False):
        if row["placebo"] == "placebo":
            continue
        keys = [(drugbank, row["umls_meddra"]) for drugbank in stitch_to_drugbank.get(row["stitch_flat"], ())]
        description = row["description"].strip()
        if description.endswith("%"):
            try:
                midpoint = (float(row["lower"]) + float(row["upper"])) / 2
            except ValueError as error:
                raise SourceFormatError(path, line, f"frequency bounds not numbers: {error}") from error
            for key in keys:
                numeric[key].append((midpoint, description))
        elif description in CIOMS_BANDS or description == "postmarketing":
            for key in keys:
                qualitative[key][description] = None
    result: dict[tuple[str, str], tuple[float | None, str]] = {}
    for key in numeric.keys() | qualitative.keys():
        reports = sorted(set(numeric.get(key, ())))
        labels = sorted(qualitative.get(key, {}), key=lambda label: -CIOMS_BANDS.get(label, -1.0))
        texts = list(dict.fromkeys(text for _, text in reports))
        if reports:
            frequency = statistics.median(value for value, _ in reports)
        elif banded := [CIOMS_BANDS[label] for label in labels if label in CIOMS_BANDS]:
            frequency = statistics.median(banded)
        else:
            frequency = None
        shown = (texts if len(texts) <= 3 else [texts[0], "…", texts[-1]]) + labels
        result[key] = (None if frequency is None else round(frequency, 6), ", ".join(shown))
    return result


def sider_preferred_terms(src: SourceDir) -> dict[str, tuple[str, ...]]:
    """MedDRA's lowest-level term -> its preferred terms, as SIDER codes each label's side effect: ``UMLS:C0013144``
    (Drowsiness) -> ``UMLS:C2830004`` (Somnolence), Dry cough -> Cough. The KG holds both levels as side effects,
    and people write the lower ("drowsy", "ankles swell") while labels are often coded by the preferred one; the
    ``preferred_term`` attribute lets ``KnowledgeGraph.same_concept`` join them. A preferred term maps nowhere."""
    lowest: dict[str, set[str]] = defaultdict(set)
    preferred: dict[str, set[str]] = defaultdict(set)
    for _, row in src.rows(SIDER_FREQUENCIES, _SIDER_FREQUENCY_COLUMNS, header=False):
        level = {"LLT": lowest, "PT": preferred}.get(row["meddra_type"])
        if level is not None:
            level[row["umls_label"]].add(row["umls_meddra"])
    found: dict[str, set[str]] = defaultdict(set)
    for label, terms in lowest.items():
        for term in terms - preferred.get(label, set()):
            found[f"UMLS:{term}"].update(f"UMLS:{p}" for p in preferred.get(label, ()) if p != term)
    return {term: tuple(sorted(pts)) for term, pts in found.items() if pts}


# --- compounds: DrugBank attributes, DrugCentral classes, SIDER indications ----------------------

def drugbank(src: SourceDir) -> list[EntityRecord]:
    records = []
    for _, row in src.rows(DRUGBANK, ("drugbank_id", "name", "type", "groups", "atc_codes", "categories")):
        attributes = [("drug_type", row["type"])] if row["type"] else []
        attributes += [("drug_group", g) for g in _split(row["groups"])]
        attributes += [("atc_code", a) for a in _split(row["atc_codes"])]
        attributes += [("category", c) for c in _split(row["categories"])]
        records.append(EntityRecord(id=f"DRUGBANK:{row['drugbank_id']}", type=EntityType.COMPOUND,
                                    name=row["name"], source="drugbank", attributes=tuple(attributes)))
    return records


def drugcentral(src: SourceDir) -> tuple[list[EntityRecord], list[EdgeRecord]]:
    """Pharmacologic classes (NDF-RT, MeSH pharmacological actions, ChEBI roles) and membership."""
    entities, path = [], src.path(DRUGCENTRAL_CLASSES)
    for line, row in src.rows(DRUGCENTRAL_CLASSES, ("class_id", "class_name", "class_source", "class_type")):
        try:
            curie = class_curie(row["class_id"])
        except ValueError as error:
            raise SourceFormatError(path, line, str(error)) from error
        entities.append(EntityRecord(id=curie, type=EntityType.PHARMACOLOGIC_CLASS, name=row["class_name"],
                                     source="drugcentral",
                                     attributes=(("class_type", f"{row['class_source']} {row['class_type']}"),)))
    edges, path = [], src.path(DRUGCENTRAL_MEMBERS)
    for line, row in src.rows(DRUGCENTRAL_MEMBERS, ("drugbank_id", "class_id")):
        try:
            curie = class_curie(row["class_id"])
        except ValueError as error:
            raise SourceFormatError(path, line, str(error)) from error
        edges.append(EdgeRecord(f"DRUGBANK:{row['drugbank_id']}", Relation.IN_CLASS, curie, ("drugcentral",),
                                "CC BY 4.0", Curation.DATABASE))
    return entities, edges


_INDICATION_METHODS = {
    "NLP_indication": "classified as an indication by NLP of the label's indications section",
    "text_mention": "term found in the label's indications section by text matching "
                    "(not confirmed as an indication)",
}


def non_indications(src: SourceDir) -> set[tuple[str, str]]:
    """(DRUGBANK id, DOID) pairs PharmacotherapyDB's physicians classified as non-indications (NOT)."""
    return {(f"DRUGBANK:{row['drugbank_id']}", row["doid_id"])
            for _, row in src.rows(PHARMACOTHERAPYDB, ("doid_id", "drugbank_id", "category"))
            if row["category"] == "NOT"}


def sider_indications(src: SourceDir, xrefs: XrefIndex, vetoed: set[tuple[str, str]] = frozenset()) -> list[EdgeRecord]:
    """SIDER label indications mapped to DO: the label concept's UMLS CUI through DO's UMLS xrefs, or,
    when DO has no such xref, the concept's name when it is exactly one DO term's name or synonym.

    ``NLP_precondition`` rows (a context of use, not an indication) are left out, and so is SIDER's
    MedDRA CUI, a coarser concept (cluster headache -> migraine) that would state a wrong indication.
    Pairs in ``vetoed`` (curated non-indications, see ``non_indications``) are dropped.
    """
    edges, skipped = [], 0
    for _, row in src.rows(SIDER_INDICATIONS, ("drugbank_id", "umls_cui_from_label", "method", "concept_name")):
        method = _INDICATION_METHODS.get(row["method"])
        if method is None:
            continue
        cui, concept = row["umls_cui_from_label"], row["concept_name"]
        doids, mapping = xrefs.doids(f"UMLS:{cui}"), "DO UMLS xref"
        if not doids and (named := xrefs.doid_named(concept)):
            doids, mapping = [named], "DO name"
        for doid in doids:
            if (f"DRUGBANK:{row['drugbank_id']}", doid) in vetoed:
                skipped += 1
                continue
            edges.append(EdgeRecord(f"DRUGBANK:{row['drugbank_id']}", Relation.INDICATED_FOR, doid, ("sider",),
                                    "CC BY-NC-SA 4.0", Curation.TEXT_MINED,
                                    evidence=f"label concept '{concept}' ({cui}, mapped by {mapping}): {method}"))
    log.info("SIDER indications: %d rows vetoed by PharmacotherapyDB non-indications", skipped)
    return edges


def uberon(src: SourceDir) -> list[EntityRecord]:
    return [EntityRecord(id=row["uberon_id"], type=EntityType.ANATOMY, name=row["uberon_name"], source="uberon",
                         xrefs=tuple(x for x in (f"MESH:{row['mesh_id']}" if row["mesh_id"] else "",
                                                 row["bto_id"]) if x))
            for _, row in src.rows(UBERON, ("uberon_id", "uberon_name", "mesh_id", "bto_id"))]
