"""Opening a KG, entity and triple lookup, the names table, SPARQL, and the errors of each."""

from __future__ import annotations

import json
import shutil

import pytest
from rdflib import URIRef

from kg.errors import ArtefactMismatchError, QuerySyntaxError, StoreMissingError, UnknownEntityError, UnknownTripleError
from kg.store import KnowledgeGraph
from kg.vocab import EntityType, entity_uri


def test_missing_store_names_the_build_command(tmp_path):
    with pytest.raises(StoreMissingError, match="medkg kg build"):
        KnowledgeGraph.open(tmp_path)


@pytest.fixture
def kg_copy(built_kg, tmp_path):
    """A private copy of the fixture KG that a test may damage."""
    shutil.copytree(built_kg[0], tmp_path / "kg", symlinks=True)
    return tmp_path / "kg"


def test_manifest_from_another_build_is_a_mismatch(kg_copy):
    manifest_path = kg_copy / "current" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["build_id"] = "20200101T000000-deadbeef"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ArtefactMismatchError, match=r"build id .* manifest 20200101T000000-deadbeef.*medkg kg build"):
        KnowledgeGraph.open(kg_copy)


def test_changed_names_table_is_a_checksum_mismatch(kg_copy):
    names = kg_copy / "current" / "names.tsv.gz"
    names.write_bytes(names.read_bytes()[:-8])
    with pytest.raises(ArtefactMismatchError, match="names.tsv.gz missing or its checksum differs"):
        KnowledgeGraph.open(kg_copy)


def test_newer_schema_is_a_mismatch(kg_copy):
    manifest_path = kg_copy / "current" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["schema_version"] = 999
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ArtefactMismatchError, match="schema version 999"):
        KnowledgeGraph.open(kg_copy)


def test_entity_has_names_definition_xrefs_and_type(kg):
    t2d = kg.entity("DOID:9352")
    assert t2d.type is EntityType.DISEASE
    assert t2d.name == "type 2 diabetes mellitus"
    assert "type 2 diabetes" in t2d.synonyms
    assert t2d.definition.startswith("A diabetes mellitus")
    assert {"UMLS:C0011860", "OMIM:125853"} <= set(t2d.xrefs)
    assert t2d.source == "Disease Ontology"
    metformin = kg.entity("DRUGBANK:DB00331")
    assert ("atc_code", "A10BA02") in metformin.attributes
    assert metformin.degree > 0


def test_hpo_term_merges_mesh_and_do_names(kg):
    hypertension = kg.entity("HP:0000822")
    assert "High blood pressure" in hypertension.lay_synonyms
    assert kg.resolve("high blood pressure").id == "HP:0000822"


def test_same_concept_follows_the_sources_cross_references(kg):
    assert kg.same_concept("HP:0002018") == ("UMLS:C0027497",)  # HPO's Nausea lists SIDER's concept
    assert kg.same_concept("UMLS:C0027497") == ("HP:0002018",)  # and back
    assert kg.same_concept("HP:0002076") == ("DOID:6364",)  # HPO's Migraine and DO's migraine share a UMLS id
    assert kg.same_concept("DOID:6364") == ("HP:0002076",)
    assert kg.same_concept("UMLS:C0013144") == ("UMLS:C2830004",)  # Drowsiness and its preferred term Somnolence
    assert "UMLS:C0013144" in kg.same_concept("UMLS:C2830004")  # and back
    assert kg.same_concept("DRUGBANK:DB00331") == ()  # no other record of metformin
    assert kg.same_concept("HP:9999999") == () and kg.same_concept("not an id") == ()


def test_unknown_entity_names_close_matches(kg):
    with pytest.raises(UnknownEntityError) as caught:
        kg.resolve("metfromin")
    assert ("DRUGBANK:DB00331", "Metformin") in caught.value.close_matches
    assert "Metformin (DRUGBANK:DB00331)" in str(caught.value)
    with pytest.raises(UnknownEntityError):
        kg.entity("DOID:0000000")
    with pytest.raises(UnknownEntityError):
        kg.entity("not a curie")


def test_resolve_prefers_preferred_names_and_ignores_case(kg):
    assert kg.resolve("METFORMIN").id == "DRUGBANK:DB00331"
    assert kg.resolve(" DOID:6364 ").name == "migraine"


def test_names_table_lists_every_name_kind(kg):
    names = kg.names()
    kinds = {n.kind for n in names}
    assert kinds == {"name", "synonym", "lay"}
    assert len(names) == kg.manifest["counts"]["names"]
    assert any(n.name == "type 2 diabetes" and n.entity_id == "DOID:9352" for n in names)


def test_triple_carries_labels_and_provenance(kg):
    rows = kg.sparql("SELECT ?s ?st WHERE { ?st rdf:subject ?s ; rdf:predicate medkg:treats }",
                     {"s": entity_uri("DRUGBANK:DB00331")})
    triple = kg.triple(rows[0]["st"].rsplit("/", 1)[1])
    assert (triple.subject_name, triple.object_name) == ("Metformin", "type 2 diabetes mellitus")
    assert triple.sources == ("PharmacotherapyDB",) and triple.licence == "CC0 1.0"
    assert "physician curator" in triple.evidence
    assert triple.render() == "Metformin — treats — type 2 diabetes mellitus (PharmacotherapyDB 1.0)"
    with pytest.raises(UnknownTripleError):
        kg.triple("0000000000000000")


def test_sparql_binds_variables_instead_of_pasting_text(kg):
    query = "SELECT ?name ?x WHERE { ?x rdfs:label ?name }"
    assert kg.sparql(query, {"name": "migraine"}) == [{"name": "migraine", "x": str(entity_uri("DOID:6364"))}]
    hostile = 'migraine" } ?x ?p ?o { "'
    assert kg.sparql(query, {"name": hostile}) == []
    assert kg.sparql("ASK { ?x rdfs:label ?name }", {"name": "migraine"}) == [{"ask": "true"}]


def test_malformed_sparql_reports_the_position(kg):
    with pytest.raises(QuerySyntaxError, match=r"malformed SPARQL: error at 1:\d+"):
        kg.sparql("SELECT ?x WHERE { ?x ?y }")


def test_bound_variable_must_be_projected(kg):
    with pytest.raises(QuerySyntaxError, match="projection"):
        kg.sparql("SELECT ?x WHERE { ?x rdfs:label ?name }", {"name": "migraine"})


def test_describe_is_the_same_through_rdflib_and_oxigraph(kg):
    iri = str(URIRef(entity_uri("DOID:9352")))
    fast = {k: sorted(v) for k, v in kg.describe(iri).items()}
    generic = {str(p): sorted(str(o) for o in kg.graph.objects(URIRef(iri), p))
               for p in set(kg.graph.predicates(URIRef(iri)))}
    assert fast == generic


def test_an_attribute_table_holds_every_entitys_values_in_one_read(kg):
    groups = kg.attribute_table("drug_group")
    assert groups and all(isinstance(values, tuple) and values for values in groups.values())
    some_drug = next(iter(groups))
    assert set(groups[some_drug]) == {v for name, v in kg.entity(some_drug).attributes if name == "drug_group"}
    with pytest.raises(ValueError, match="no attribute 'popularity'"):
        kg.attribute_table("popularity")
