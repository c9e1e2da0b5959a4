"""Entity linking on the fixture KG with the fake embedder; one slow test with MiniLM on the full KG."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from assistant import linking_cli
from assistant.embedding import FakeEmbedder
from assistant.linking import Linker, LinkerConfig
from assistant.linking_dictionary import RESOURCES, LinkingResourceError, read_resource
from assistant.linking_eval import PRF, GoldMention, gold_doids, read_pubtator
from assistant.linking_index import (
    LinkingIndexMismatchError,
    LinkingIndexMissingError,
    build_name_index,
    open_name_index,
)
from assistant.linking_text import fold_token, name_key, phrase_variants
from kg.errors import KGError
from kg.vocab import EntityType


@pytest.fixture(scope="module")
def linker(kg) -> Linker:
    return Linker(kg)


@pytest.fixture(scope="module")
def name_index_dir(kg, tmp_path_factory) -> Path:
    data_dir = tmp_path_factory.mktemp("linking")
    build_name_index(kg, FakeEmbedder(), data_dir)
    return data_dir


def top(linker: Linker, text: str, **kwargs) -> tuple[str, str, str]:
    mentions = linker.link(text, **kwargs).mentions
    assert mentions, f"nothing linked in {text!r}"
    return mentions[0].text, mentions[0].entity_id, mentions[0].method


def test_folding_is_the_same_for_names_and_text():
    assert name_key("Alzheimer's disease") == name_key("alzheimers diseases") == "alzheimer disease"
    assert [fold_token(w) for w in ("Allergies", "seizures", "diabetes", "two", "II")] == \
        ["allergy", "seizure", "diabetes", "2", "2"]
    # "-aches" is "ache" + s ("muscle aches" is the lay synonym "Muscle ache"), unless "-each"/"-oach" + es
    assert [fold_token(w) for w in ("aches", "headaches", "reaches", "coaches", "matches")] == \
        ["ache", "headache", "reach", "coach", "match"]
    assert name_key("muscle aches") == name_key("Muscle ache")


def test_exact_and_normalised_matches(linker):
    assert top(linker, "asthma") == ("asthma", "DOID:2841", "exact")
    assert top(linker, "Is it ASTHMA?") == ("ASTHMA", "DOID:2841", "exact")  # exact: equal but for case
    assert top(linker, "my migraines are worse") == ("migraines", "DOID:6364", "normalised")  # plural
    assert top(linker, "type two diabetes") == ("type two diabetes", "DOID:9352", "normalised")


def test_possessive_eponym_needs_its_s(linker):
    assert top(linker, "my dad's alzheimers")[1] == "DOID:10652"
    assert top(linker, "Alzheimer's disease")[:2] == ("Alzheimer's disease", "DOID:10652")
    assert top(linker, "what is Alzheimer's?")[1] == "DOID:10652"
    assert linker.link("Dr Alzheimer described it").mentions == ()  # the surname alone is not the disease


def test_typos_are_corrected_only_when_they_complete_a_name(linker):
    assert top(linker, "i have asthmaa") == ("asthmaa", "DOID:2841", "fuzzy")
    assert top(linker, "is metformn safe")[1:] == ("DRUGBANK:DB00331", "fuzzy")
    assert linker.link("what should i do about this").mentions == ()  # "should" is not "shoulder"


def test_abbreviations_from_kg_and_curated_table(linker):
    assert top(linker, "HTN")[1:] == ("DOID:10763", "abbreviation")  # an all-caps KG synonym
    assert top(linker, "my htn meds")[1:] == ("DOID:10763", "abbreviation")  # curated, case-insensitive
    assert top(linker, "T2D")[1] == "DOID:9352"  # curated only
    assert linker.link("mody").mentions == ()  # KG acronyms need capitals
    assert top(linker, "MODY")[1] == "DOID:0050524"


def test_a_curated_lay_phrase_overrides_a_kg_term_of_the_same_name(kg, linker, tmp_path):
    """The full KG names SIDER terms "Feeling sick" (one drug) and "Loose stools": the lay table says what such a
    phrase means to a patient. Here a table maps "asthenia", a SIDER name in the fixture, to Fatigue."""
    for name in ("abbreviations.tsv", "ncbi_train_terms.tsv", "drug_names.tsv"):
        (tmp_path / name).write_bytes((RESOURCES / name).read_bytes())
    (tmp_path / "lay_synonyms.tsv").write_text("phrase\tentity_id\tconcept\nasthenia\tUMLS:C0015672\tfatigue\n")
    assert top(linker, "asthenia after chemo") == ("asthenia", "UMLS:C0004093", "exact")
    curated = Linker(kg, resources=tmp_path)
    assert top(curated, "asthenia after chemo") == ("asthenia", "UMLS:C0015672", "curated")
    linked = {m.text: m.entity_id for m in curated.link("can metformin cause asthenia?").mentions}
    assert linked["asthenia"] == "UMLS:C0015672"  # a side-effect cue does not undo it
    assert top(curated, "asthenai after chemo")[1:] == ("UMLS:C0015672", "fuzzy")  # nor does a typo
    assert top(curated, "tremor")[1:] == ("UMLS:C0040822", "exact")  # phrases the table lacks are untouched


def test_local_abbreviation_definition(linker):
    result = linker.link("Patients with diabetes mellitus (DMX) were seen; DMX was mild.")
    assert ("DMX", "DOID:9351") in result.abbreviations
    assert sum(m.entity_id == "DOID:9351" for m in result.mentions) == 3


def test_local_definition_overrides_a_general_abbreviation_and_spans_tokens(linker):
    result = linker.link("Migraine (MODY) was studied. MODY was mild.")  # MODY is a KG acronym of DOID:0050524
    assert ("MODY", "DOID:6364") in result.abbreviations
    assert {m.entity_id for m in result.mentions} == {"DOID:6364"} and len(result.mentions) == 3
    result = linker.link("Asthma (A-S) is common; A-S in children.")
    assert ("A-S", "DOID:2841") in result.abbreviations
    assert [m.text for m in sorted(result.mentions, key=lambda m: m.start)] == ["Asthma", "A-S", "A-S"]
    assert linker.link_phrase("A-S", [EntityType.DISEASE], abbreviations=dict(result.abbreviations)).entity_id \
        == "DOID:2841"
    result = linker.link("Asthma (XQ) is common.")  # first letter of no long-form word: not a definition
    assert result.abbreviations == ()


def test_phrase_variants_and_british_spellings(linker):
    assert phrase_variants("complete deficiency of C9") == ["deficiency of C9", "C9 deficiency"]
    assert phrase_variants("HPRT-deficient") == ["HPRT deficiency"]
    assert phrase_variants("breast and/or ovarian cancer") == ["breast cancer", "ovarian cancer"]
    assert phrase_variants("autosomal dominant myotonia congenita") == ["myotonia congenita"]
    assert phrase_variants("myotonic dystrophy") == []
    assert name_key("oesophageal tumours") == name_key("esophageal tumor")
    assert name_key("haemorrhage, diarrhoea, anaemia") == name_key("hemorrhage diarrhea anemia")
    assert linker.link_phrase("familial essential hypertension", [EntityType.DISEASE]).entity_id == "DOID:10825"
    assert linker.link_phrase("type 2 diabetes and asthma", [EntityType.DISEASE]).entity_id in {"DOID:9352",
                                                                                                 "DOID:2841"}


def test_disease_preferred_for_disease_like_phrasing_and_expected_types_win(linker):
    assert top(linker, "migraine")[1] == "DOID:6364"  # also HP:0002076 (symptom)
    assert top(linker, "headache")[1] == "HP:0002315"  # symptom over the SIDER side effect
    assert top(linker, "headache", expected_types=[EntityType.SIDE_EFFECT])[1] == "UMLS:C0018681"
    assert top(linker, "side effects like headache")[1] == "UMLS:C0018681"  # cue
    restricted = linker.link("migraine and metformin", expected_types=[EntityType.COMPOUND], restrict=True)
    assert [m.entity_id for m in restricted.mentions] == ["DRUGBANK:DB00331"]


def test_conversation_context_bonus(linker):
    assert top(linker, "migraine")[1] == "DOID:6364"
    assert top(linker, "migraine", context_ids=["HP:0002076"])[1] == "HP:0002076"


def test_mentions_do_not_overlap_and_longest_wins(linker):
    mentions = linker.link("type 2 diabetes mellitus, high blood pressure and asthma attacks").mentions
    spans = sorted((m.start, m.end) for m in mentions)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
    by_text = {m.text: m.entity_id for m in mentions}
    assert by_text["type 2 diabetes mellitus"] == "DOID:9352"
    assert "diabetes mellitus" not in by_text
    assert by_text["high blood pressure"] in {"DOID:10763", "HP:0000822"}
    assert [m.score for m in mentions] == sorted((m.score for m in mentions), reverse=True)


@pytest.mark.parametrize("text", ["", "   ", "\x00\x01\x02\x7f", "こんにちは 糖尿病", "🤒🤧💊 asthma 😷",
                                  "a" * 100_000, "asthma " * 15_000, "\u202e\ufeff" * 1000])
def test_bad_input_is_bounded(linker, text):
    started = time.perf_counter()
    result = linker.link(text)
    assert time.perf_counter() - started < 1.0
    assert result.truncated == (len(text) > LinkerConfig().max_chars)
    if result.truncated:
        assert "cut to the first" in result.note
    for m in result.mentions:
        assert text[m.start:m.end] == m.text and 0.0 <= m.score <= 1.0


def test_embedding_fills_a_gap_only(kg, name_index_dir):
    embedder = FakeEmbedder()
    linker = Linker(kg, LinkerConfig(embed_threshold=0.5), embedder, open_name_index(kg, embedder, name_index_dir))
    result = linker.link("my sugar is too high")
    assert result.used_embedding
    assert any(m.entity_id == "HP:0003074" and m.method == "embedding" for m in result.mentions)
    exact = linker.link("asthma")
    assert not exact.used_embedding and exact.mentions[0].method == "exact"


def test_name_index_missing_and_mismatched(kg, name_index_dir, tmp_path):
    with pytest.raises(LinkingIndexMissingError, match="medkg link-build"):
        open_name_index(kg, FakeEmbedder(), tmp_path)
    with pytest.raises(LinkingIndexMismatchError, match="embedder checksum"):
        open_name_index(kg, FakeEmbedder(dimension=32), name_index_dir)
    build_name_index(kg, FakeEmbedder(), tmp_path)
    manifest = tmp_path / "current" / "manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "kg_build_id": "other"}))
    with pytest.raises(LinkingIndexMismatchError, match="KG build id") as error:
        open_name_index(kg, FakeEmbedder(), tmp_path)
    assert isinstance(error.value, KGError)


def test_malformed_resource_is_a_named_error(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("phrase\tentity_id\nsugar\t\n")
    with pytest.raises(LinkingResourceError, match="row 2"):
        read_resource(path, ("phrase", "entity_id"))


def test_pubtator_reader_and_metrics(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("1|t|Migraine study\n1|a|Some text.\n1\t0\t8\tMigraine\tSpecificDisease\tD008881|OMIM:157300\n\n")
    [doc] = read_pubtator(path)
    assert doc.text[0:8] == "Migraine" and doc.mentions[0].concepts == ("D008881", "OMIM:157300")
    mapping = {"MESH:D008881": {"DOID:6364"}}
    assert gold_doids(GoldMention(0, 8, "Migraine", ("D008881", "D1")), mapping) == {"DOID:6364"}
    prf = PRF(tp=3, fp=1, fn=2)
    assert (prf.precision, prf.recall) == (0.75, 0.6) and abs(prf.f1 - 2 * 0.75 * 0.6 / 1.35) < 1e-12


def test_cli_link(kg, built_kg, name_index_dir):
    app = typer.Typer()
    app.command("link")(linking_cli.link)
    app.command("build")(linking_cli.link_build)
    runner = CliRunner()
    result = runner.invoke(app, ["link", "side effects of metformin for my migraines", "--json", "--no-embedding",
                                 "--kg-data-dir", str(built_kg[0])])
    assert result.exit_code == 0, result.output
    ids = {m["entity_id"] for m in json.loads(result.output)["mentions"]}
    assert ids == {"DRUGBANK:DB00331", "DOID:6364"}
    missing = runner.invoke(app, ["link", "asthma", "--kg-data-dir", str(built_kg[0]), "--data-dir",
                                  str(name_index_dir / "nowhere")])
    assert isinstance(missing.exception, LinkingIndexMissingError)


@pytest.mark.slow
def test_minilm_on_full_kg():
    """Real MiniLM, full KG (data/kg); builds the name index (~10 min on 2 cores) if missing or stale."""
    from assistant.embedding import MiniLMEmbedder
    from kg.store import KnowledgeGraph

    with KnowledgeGraph.open() as kg:
        embedder = MiniLMEmbedder(threads=1)
        try:
            index = open_name_index(kg, embedder)
        except KGError:
            build_name_index(kg, embedder)
            index = open_name_index(kg, embedder)
        linker = Linker(kg, LinkerConfig(), embedder, index)
        assert top(linker, "heart attack")[1] == "DOID:5844"
        assert top(linker, "sugar diabetes")[1] == "DOID:9351"
        assert top(linker, "side effects of tylenol")[1] == "DRUGBANK:DB00316"
        paraphrase = linker.link("hard to catch my breath")
        assert paraphrase.used_embedding and paraphrase.mentions[0].entity_id == "HP:0002094"
        # everyday words for frequent side effects (resources/lay_synonyms.tsv), where the KG's names had none
        for phrase, side_effect in [("stomach bleeding", "HP:0002239"), ("short of breath", "HP:0002094"),
                                    ("make you gain weight", "HP:0004324"), ("drowsy", "HP:0002329")]:
            assert top(linker, phrase)[1] == side_effect, phrase
        assert top(linker, "I had a heart attack and have COPD")[1] in {"DOID:5844", "DOID:3083"}


def test_link_phrase_resolves_short_forms(linker):
    disease = [EntityType.DISEASE]
    assert linker.link_phrase("EH", disease, restrict=True).entity_id == "DOID:10825"  # essential hypertension
    assert linker.link_phrase("XYZ", disease, abbreviations={"XYZ": "DOID:2841"}).entity_id == "DOID:2841"
    assert linker.link_phrase("PD", disease, context_ids=["DOID:14330"]).entity_id == "DOID:14330"  # Parkinson's
    assert linker.link_phrase("", disease) is None


def test_corpus_terms_fill_gaps_only(kg, linker):
    from assistant.linking_eval import Document
    from assistant.linking_terms import corpus_terms

    def doc(*mentions):
        return Document("1", "", tuple(GoldMention(0, 1, text, (concept,)) for text, concept in mentions))

    mapping = {"MESH:D1": {"DOID:2841"}, "MESH:D2": {"DOID:6364"}, "MESH:D3": {"DOID:2841", "DOID:6364"}}
    documents = [doc(("wheezy lung disorder", "D1"), ("WLD", "D1"), ("asthma", "D2"), ("split phrase", "D1")),
                 doc(("split phrase", "D2"), ("two-way phrase", "D3"), ("Wheezy lung disorders", "D1"))]
    rows = corpus_terms(documents, mapping, linker.dictionary)
    # the short form, the KG's own name, the phrase the corpus disagrees on and the two-DOID concept are left out
    assert rows == [("wheezy lung disorder", "DOID:2841", 2)]


def test_name_index_reuses_the_committed_vector_cache(kg, name_index_dir, tmp_path):
    from assistant.linking_index import export_name_cache

    class Counting(FakeEmbedder):
        encoded = 0

        def encode(self, texts, batch_size=64, progress=False):
            Counting.encoded += len(texts)
            return super().encode(texts, batch_size, progress)

    cache = export_name_cache(kg, FakeEmbedder(), name_index_dir, tmp_path / "names.npz")
    build_name_index(kg, Counting(), tmp_path / "rebuilt", cache=cache)
    assert Counting.encoded == 0  # every name came from the cache
    rebuilt = open_name_index(kg, FakeEmbedder(), tmp_path / "rebuilt")
    original = open_name_index(kg, FakeEmbedder(), name_index_dir)
    query = FakeEmbedder().encode(["high blood pressure"])
    assert rebuilt.search(query, 3)[1].tolist() == original.search(query, 3)[1].tolist()
    build_name_index(kg, Counting(dimension=32), tmp_path / "other", cache=cache)  # another embedder: re-encoded
    assert Counting.encoded == len(rebuilt.rows)



def test_a_finding_told_in_everyday_words_beside_a_drug_is_found_by_meaning(kg, name_index_dir):
    embedder = FakeEmbedder()
    linker = Linker(kg, LinkerConfig(finding_threshold=0.5), embedder, open_name_index(kg, embedder, name_index_dir))
    side_effect_question = {EntityType.COMPOUND, EntityType.SIDE_EFFECT}
    found = linker.link("does metformin give you low sugar levels", side_effect_question)
    assert found.used_embedding
    assert [(m.text, m.entity_id) for m in found.mentions] == [("metformin", "DRUGBANK:DB00331"),
                                                               ("low sugar levels", "HP:0001943")]
    # only where a finding is asked about and the dictionary found none
    assert not linker.link("does metformin give you low sugar levels").used_embedding
    assert not linker.link("can metformin cause nausea and low sugar levels", side_effect_question).used_embedding


def test_a_curated_row_is_chosen_over_the_kgs_own_synonym_of_the_same_words():
    from assistant.linking import _Candidate
    from assistant.linking_dictionary import Entry

    def candidate(entity_id: str, kind: str, score: float) -> _Candidate:
        c = _Candidate(0, 1, Entry(entity_id, EntityType.DISEASE, "eczema", kind, False), "exact")
        c.score = score
        return c

    synonym, curated = candidate("DOID:2723", "synonym", 0.93), candidate("DOID:3310", "curated", 0.92)
    assert [c.entry.entity_id for c in Linker._select(None, [synonym, curated])] == ["DOID:3310"]
    clearly_better = candidate("DOID:2723", "synonym", 0.97)
    assert [c.entry.entity_id for c in Linker._select(None, [clearly_better, curated])] == ["DOID:2723"]
