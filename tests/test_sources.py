"""Each source mapping, on real rows from the committed fixture."""

from __future__ import annotations

import pytest
from conftest import HPO

from kg import hpo, sources
from kg.errors import SourceFormatError
from kg.vocab import Curation, EntityType, Relation


@pytest.fixture
def xrefs(src):
    return sources.disease_ontology(src)[2]


def test_sider_indication_reaches_doid_through_umls(src, xrefs):
    edges = sources.sider_indications(src, xrefs)
    metformin_t2d = [e for e in edges if (e.subject, e.object) == ("DRUGBANK:DB00331", "DOID:9352")]
    assert len(metformin_t2d) == 1
    edge = metformin_t2d[0]
    assert edge.relation is Relation.INDICATED_FOR
    assert "C0011860" in edge.evidence and "DO UMLS xref" in edge.evidence
    assert edge.sources == ("sider",) and edge.licence == "CC BY-NC-SA 4.0"
    assert edge.curation is Curation.TEXT_MINED


def test_sider_preconditions_and_meddra_fallback_are_left_out(src, xrefs):
    edges = sources.sider_indications(src, xrefs)
    # metformin's label names lactic acidosis as a precondition (NLP_precondition): not an indication
    assert not [e for e in edges if e.subject == "DRUGBANK:DB00331" and "Lactic" in (e.evidence or "")]
    # every edge was mapped from the label's own concept, never from SIDER's coarser MedDRA CUI
    assert all("mapped by DO" in e.evidence for e in edges)


def test_curated_non_indications_veto_sider_indications(src, xrefs):
    edges = sources.sider_indications(src, xrefs)
    pair = (edges[0].subject, edges[0].object)
    vetoed = sources.sider_indications(src, xrefs, vetoed={pair})
    assert pair not in {(e.subject, e.object) for e in vetoed}
    assert len(vetoed) < len(edges)


def test_hpo_annotation_reaches_doid_through_omim(src, xrefs):
    terms = {t.id for t in hpo.phenotype_terms(HPO)}
    edges = sources.hpo_phenotypes(hpo.annotations(HPO), xrefs, terms, HPO / "phenotype.hpoa")
    migraine = [e for e in edges if e.subject == "DOID:6364"]
    assert migraine, "OMIM:157300 is a MIM xref of DOID:6364 (migraine)"
    assert all(e.relation is Relation.HAS_PHENOTYPE and "via OMIM:157300" in e.evidence for e in migraine)
    assert "HP:0002083" in {e.object for e in migraine}  # a real OMIM:157300 annotation (aspect P)
    assert "HP:0000006" not in {e.object for e in edges}  # aspect I (inheritance) rows are skipped
    assert any(e.frequency is not None for e in edges)


def test_hpo_terms_keep_lay_synonyms():
    terms = {t.id: t for t in hpo.phenotype_terms(HPO)}
    assert "High blood pressure" in terms["HP:0000822"].lay_synonyms
    assert "HP:0000001" not in terms  # only descendants of "Phenotypic abnormality"
    assert all(t.type is EntityType.SYMPTOM for t in terms.values())


@pytest.mark.parametrize(("raw", "expected"), [
    ("HP:0040281", 0.895), ("HP:0040280", 1.0), ("3/4", 0.75), ("25%", 0.25), ("", None)])
def test_hpo_frequency_parsing(raw, expected):
    assert hpo.parse_frequency(raw)[0] == expected


def test_hpo_frequency_rejects_garbage():
    with pytest.raises(ValueError, match="unrecognised frequency"):
        hpo.parse_frequency("often")


def test_sider_frequencies_prefer_numeric_reports(src):
    frequencies = sources.sider_frequencies(src)
    frequency, text = frequencies[("DB00331", "C0020615")]  # metformin, hypoglycaemia: one report, 13.7%
    assert frequency == pytest.approx(0.137)
    assert text == "13.7%"
    band_only = [v for v in frequencies.values() if v[1] and "%" not in v[1] and v[0] is not None]
    assert all(v[0] in sources.CIOMS_BANDS.values() or 0 < v[0] < 0.3 for v in band_only)


def test_symptom_labels_merge_into_the_hpo_term_of_that_name():
    resolve = sources.SymptomResolver(hpo.phenotype_terms(HPO))
    assert resolve("high blood pressure") == "HP:0000822"  # via HPO's lay synonym
    assert resolve("Hypertension") == "HP:0000822"
    assert resolve("no such symptom at all") is None


def test_normalise_label_undoes_mesh_inversion():
    assert sources.normalise_label("Abdomen, Acute") == "acute abdomen"
    assert sources.normalise_label("  Chest-Pain ") == "chest pain"


def test_hetionet_ids_map_to_curies():
    assert sources.hetionet_curie("Compound::DB00331") == (EntityType.COMPOUND, "DRUGBANK:DB00331")
    assert sources.hetionet_curie("Gene::1017") == (EntityType.GENE, "NCBIGene:1017")
    assert sources.class_curie("N0000175655") == "NDFRT:N0000175655"
    with pytest.raises(ValueError):
        sources.hetionet_curie("Pathway::PC7_1")


def test_malformed_row_names_file_and_line(tmp_path):
    bad = tmp_path / "hetionet" / "sources"
    bad.mkdir(parents=True)
    (bad / "mesh_symptoms.tsv").write_text("mesh_id\tmesh_name\tin_hsdn\nD000006\tAbdomen, Acute\t1\nD000270\n")
    with pytest.raises(SourceFormatError, match=r"mesh_symptoms.tsv:3: expected 3 tab-separated fields"):
        sources.mesh_symptoms(sources.SourceDir(tmp_path), lambda label: None)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(SourceFormatError, match=r"do_terms_merged.tsv.gz: source file missing"):
        sources.disease_ontology(sources.SourceDir(tmp_path))


def test_a_lowest_level_side_effect_term_points_at_its_meddra_preferred_term(src):
    preferred = sources.sider_preferred_terms(src)
    assert preferred["UMLS:C0013144"] == ("UMLS:C2830004",)  # Drowsiness -> Somnolence
    assert "UMLS:C0015672" not in preferred  # Fatigue is itself preferred (beside Asthenia): it points nowhere


def test_sider_side_effects_fill_a_compound_hetionet_leaves_without_any(src):
    metformin, hypoglycaemia = "DRUGBANK:DB00331", "UMLS:C0020615"
    effects = {hypoglycaemia, "UMLS:C0011991"}
    filled = sources.sider_side_effects(src, {metformin}, effects, labelled=set())
    assert {(e.subject, e.object) for e in filled} <= {(metformin, x) for x in effects}
    hypo = next(e for e in filled if e.object == hypoglycaemia)
    assert hypo.relation is Relation.CAUSES_SIDE_EFFECT and hypo.curation is Curation.DATABASE
    assert hypo.frequency == pytest.approx(0.137) and hypo.sources == ("sider",)
    # a compound Hetionet's edges already label, one the KG lacks, or a side effect without a node: nothing
    assert sources.sider_side_effects(src, {metformin}, effects, labelled={metformin}) == []
    assert sources.sider_side_effects(src, set(), effects, labelled=set()) == []
    assert sources.sider_side_effects(src, {metformin}, set(), labelled=set()) == []
