"""The triage stage as a whole: which tier wins when rules, findings, classifier and language disagree (the table in
``assistant/safety/triage.py``), follow-ups, locales, the language check, the findings rules, the classifier's
artefact, and the pipeline's promise that a person describing something happening now never gets a fixed
fallback."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from assistant.safety.classifier import (
    ClassifierArtefactError,
    ClassifierConfig,
    Features,
    TriageClassifier,
    char_grams,
)
from assistant.safety.language import LanguageCheck
from assistant.safety.messages import SafetyMessages
from assistant.safety.triage import Triager
from assistant.types import Audience, EntityMention, Tier

#: a scripted reading: a keyword in the text sets its label's logit high (a stand-in for the MiniLM features)
KEYWORDS = ("xsuicide", "xcardiac", "xnow", "xoff")
LABELS = ("emergency:cardiac", "emergency:suicide", "info", "non_health", "now")
PLAIN = SafetyMessages.load("default")


def keyword_features(texts) -> np.ndarray:
    return np.array([[float(k in t.lower()) for k in KEYWORDS] + [1.0] for t in texts], dtype=np.float32)


def scripted_triager(**thresholds) -> Triager:
    weights = np.zeros((len(LABELS), len(KEYWORDS) + 1), np.float32)
    weights[LABELS.index("info"), -1] = 4.0  # with no keyword: an ordinary health question
    for keyword, label, weight in zip(KEYWORDS, ("emergency:suicide", "emergency:cardiac", "now", "non_health"),
                                      (12.0, 14.0, 12.0, 12.0), strict=True):
        weights[LABELS.index(label), KEYWORDS.index(keyword)] = weight
    config = ClassifierConfig(**{"emergency": 0.5, "possible": 0.5, "scope": 0.5, "char_features": 0, **thresholds})
    model = TriageClassifier(LABELS, weights, np.zeros(len(LABELS), np.float32), config)
    return Triager(PLAIN, model, keyword_features, language=LanguageCheck())


# --- which tier wins ---------------------------------------------------------------------------------------------

def test_rules_alone_raise_an_emergency_the_classifier_does_not_see():
    verdict = scripted_triager().assess("crushing chest pain and sweating")
    assert verdict.tier is Tier.EMERGENCY and verdict.category == "cardiac" and verdict.triggers == ("rules",)
    assert verdict.message == PLAIN.emergency["cardiac"][Audience.PATIENT]
    assert verdict.matched == "crushing chest + sweating"  # the finding as written, then its companion


def test_the_classifier_alone_raises_an_emergency_the_rules_miss():
    verdict = scripted_triager().assess("it feels like an elephant xcardiac")
    assert verdict.tier is Tier.EMERGENCY and verdict.triggers == ("classifier",) and verdict.category == "cardiac"
    assert verdict.matched.startswith("classifier cardiac")


def test_suicide_wins_whoever_names_it_and_both_messages_show_suicide_first():
    mixed = scripted_triager().assess("crushing chest pain and sweating xsuicide")  # rules cardiac, classifier suicide
    assert mixed.category == "suicide" and mixed.triggers == ("rules", "classifier")
    assert mixed.message.startswith(PLAIN.emergency["suicide"][Audience.PATIENT])
    both = scripted_triager().assess("I took 40 tablets because I want to die")
    assert both.category == "suicide"
    assert both.message == PLAIN.emergency["suicide"][Audience.PATIENT] + "\n\n" + \
        PLAIN.emergency["overdose"][Audience.PATIENT]


def test_an_emergency_wins_over_the_language_check():
    verdict = scripted_triager().assess("ayuda, my husband has crushing chest pain and sweating, por favor")
    assert verdict.urgent


def test_a_message_not_in_english_gets_the_note_in_its_language_never_out_of_scope():
    verdict = scripted_triager().assess("mi esposo tiene dolor de pecho y no puede respirar bien")
    assert verdict.tier is Tier.NONE and verdict.language == "es" and verdict.in_scope
    assert verdict.message == PLAIN.not_english("es", Audience.PATIENT)
    assert "only read English" in verdict.message and "emergencia" in verdict.message
    assert scripted_triager().assess("我胸口很痛，喘不过气").language == "zh"


def test_english_with_typos_abbreviations_and_drug_names_stays_english():
    check = scripted_triager()
    for text in ("chest pian and sweatin alot", "pt c/o SOB, hx CHF", "dyspnoea tachycardia hypotension",
                 "does zoloft help panic attacks", "my grandad is all muddled", "kms", "hola"):
        assert check.assess(text).language is None, text


def test_something_happening_now_gets_a_safety_net_first():
    verdict = scripted_triager().assess("my knee hurts a bit xnow")
    assert verdict.tier is Tier.POSSIBLE and verdict.category is None  # no emergency close: the general net
    assert verdict.message == PLAIN.possible["general"][Audience.PATIENT]
    near = scripted_triager(emergency=0.99).assess("a bit of tightness xnow xcardiac")
    assert near.tier is Tier.POSSIBLE and near.category == "cardiac"  # below the emergency threshold
    assert near.message == PLAIN.possible["cardiac"][Audience.PATIENT]


def test_scope_is_the_classifiers_health_relevance():
    assert scripted_triager().assess("what treats gout?").in_scope
    off = scripted_triager().assess("write me a poem xoff")
    assert off.tier is Tier.NONE and not off.in_scope


def test_a_follow_up_is_read_with_the_turn_before_it():
    check = scripted_triager()
    assert check.assess("and now it is worse xnow").tier is Tier.POSSIBLE
    # alone it reads as "now"; joined to the turn before it reads as an emergency
    verdict = check.assess("and now it is worse xnow", context=["earlier I said xcardiac"])
    assert verdict.urgent and verdict.category == "cardiac"
    assert not check.assess("what is gout?", context=["earlier I said xcardiac"]).urgent  # not happening now


def test_audience_changes_the_message_only():
    check = scripted_triager()
    patient, clinician = (check.assess("I want to kill myself", a) for a in Audience)
    assert patient.category == clinician.category == "suicide" and patient.matched == clinician.matched
    assert patient.message != clinician.message and "crisis" in clinician.message.lower()


@pytest.mark.parametrize("text", ["", "   ", "\x00\x07\x1b[31m", "\ud800 lone surrogate", "😀" * 50, "a" * 100_000,
                                  "gout \ud800"])
def test_odd_input_never_raises(text):
    scripted_triager().assess(text)


def test_bad_arguments_fail_narrowly():
    with pytest.raises(TypeError, match="str"):
        scripted_triager().assess(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        scripted_triager().assess("hello", "doctor")  # type: ignore[arg-type]


# --- findings ---------------------------------------------------------------------------------------------------

def mention(text: str, start: int, entity_id: str) -> EntityMention:
    return EntityMention(start, start + len(text), text, entity_id, "symptom", 0.9, text, "exact")


def test_linked_findings_raise_an_emergency_unless_a_cue_clears_them():
    from assistant.safety.findings import FindingRule, FindingRules

    rules = FindingRules({"chest": frozenset({"HP:1"}), "companion": frozenset({"HP:2"})},
                         (FindingRule("cardiac", ("chest", "companion"), False),))
    check = Triager(PLAIN, scripted_triager().classifier, keyword_features, rules)
    text = "zorpain and blorsweat"  # words the regular expressions do not know, linked to findings
    found = [mention("zorpain", 0, "HP:1"), mention("blorsweat", 12, "HP:2")]
    assert not check.assess(text).urgent
    verdict = check.with_findings(check.assess(text), text, found)
    assert verdict.urgent and verdict.triggers == ("findings",) and verdict.matched == "zorpain + blorsweat"
    negated = "no zorpain or blorsweat"
    cleared = [mention("zorpain", 3, "HP:1"), mention("blorsweat", 14, "HP:2")]
    assert not check.with_findings(check.assess(negated), negated, cleared).urgent


def test_the_findings_table_names_only_defined_groups_and_resolves_on_the_kg(kg):
    from assistant.linking import Linker
    from assistant.safety.findings import FindingRules

    rules = FindingRules.open(kg, Linker(kg))
    assert {r.category for r in rules.rules} == {"cardiac", "stroke", "anaphylaxis"}
    assert all(group in rules.groups for r in rules.rules for group in r.groups)


# --- messages and locales ---------------------------------------------------------------------------------------

def test_locales_fill_every_emergency_and_crisis_number():
    us, gb = SafetyMessages.load("us"), SafetyMessages.load("gb")
    assert "911" in us.emergency["cardiac"][Audience.PATIENT] and "988" in us.emergency["suicide"][Audience.PATIENT]
    assert "999" in gb.emergency["cardiac"][Audience.PATIENT] and "116 123" in gb.possible["suicide"][Audience.PATIENT]
    default = PLAIN.emergency["suicide"][Audience.PATIENT]
    assert all(number in default for number in ("911", "112", "999", "988", "116 123"))  # safe wherever read
    for table in (PLAIN.emergency, PLAIN.possible):
        assert all("$" not in text for texts in table.values() for text in texts.values())


def test_an_unknown_locale_or_a_broken_file_is_an_error_naming_the_file(tmp_path, monkeypatch):
    from assistant.prompts import PROMPTS_DIR, PromptError

    with pytest.raises(PromptError, match="unknown locale 'xx'"):
        SafetyMessages.load("xx")
    monkeypatch.setenv("MEDKG_LOCALE", "au")
    assert SafetyMessages.load().locale == "au"
    for name in ("locales.toml", "triage.toml"):
        shutil.copy(PROMPTS_DIR / name, tmp_path / name)
    text = (tmp_path / "triage.toml").read_text(encoding="utf-8")
    (tmp_path / "triage.toml").write_text(text.replace("Call $emergency now.", "Call $nowhere now.", 1), "utf-8")
    with pytest.raises(PromptError, match="unknown slot"):
        SafetyMessages.load("us", tmp_path)


# --- the classifier's artefact ----------------------------------------------------------------------------------

def test_the_artefact_round_trips_and_damage_names_the_rebuild_command(tmp_path):
    model = scripted_triager().classifier
    model.save(tmp_path, embedder_checksum="abc", training={"rows": 1})
    loaded = TriageClassifier.load(tmp_path, "abc")
    assert loaded.labels == model.labels and np.allclose(loaded.weights, model.weights)
    assert loaded.config == model.config
    with pytest.raises(ClassifierArtefactError, match="other embedder weights.*medkg triage fit"):
        TriageClassifier.load(tmp_path, "other")
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps({**manifest, "weights_sha256": "0" * 64}))
    with pytest.raises(ClassifierArtefactError, match="checksum.*medkg triage fit"):
        TriageClassifier.load(tmp_path, "abc")
    (tmp_path / "manifest.json").write_text("{trunc")
    with pytest.raises(ClassifierArtefactError, match="damaged.*medkg triage fit"):
        TriageClassifier.load(tmp_path)
    with pytest.raises(ClassifierArtefactError, match="no triage classifier.*medkg triage fit"):
        TriageClassifier.load(tmp_path / "missing")


def test_fit_learns_the_labels_it_is_given():
    features = np.eye(4, dtype=np.float32).repeat(5, axis=0)
    labels = ["info"] * 5 + ["now"] * 5 + ["non_health"] * 5 + ["emergency:stroke"] * 5
    model = TriageClassifier.fit(features, labels, ClassifierConfig(C=10.0, char_features=0))
    readings = model.read(np.eye(4, dtype=np.float32))
    assert readings[3].emergency > 0.8 and readings[3].category == "stroke"
    assert readings[1].now > 0.8 and readings[2].health < 0.2
    with pytest.raises(ValueError, match="unknown labels"):
        TriageClassifier.fit(features, ["urgent"] * 20, ClassifierConfig())


def test_character_ngrams_read_as_scikit_learn_would_and_survive_the_artefact(tmp_path):
    """The n-gram half: TF-IDF at reading time equals scikit-learn's (unseen n-grams count in the norm), the
    float16 weights are what was read at fitting time, and a reloaded model reads the same probabilities."""
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfTransformer

    config = ClassifierConfig(C=10.0, char_features=2 ** 12)
    texts = ["cant breath at all", "can't breathe now", "sore knee after running", "knee hurts a bit",
             "what is gout", "what causes gout", "football scores", "weather today"] * 3
    labels = ["emergency:breathing"] * 2 + ["now"] * 2 + ["info"] * 2 + ["non_health"] * 2
    labels *= 3
    dense = np.zeros((len(texts), 2), np.float32)
    train = Features(dense, char_grams(texts, config))
    model = TriageClassifier.fit(train, labels, config)
    new = ["i cant breathe zzqx", "what is gout"]
    grams = char_grams(new, config)
    expected = TfidfTransformer(sublinear_tf=True).fit(train.grams).transform(grams)
    idf = np.full(grams.shape[1], model.grams.idf_unseen, np.float32)
    idf[model.grams.columns] = model.grams.idf
    ours = grams.copy()
    ours.data = (1 + np.log(ours.data)) * idf[ours.indices]
    ours = sparse.csr_matrix(ours.multiply(1 / np.sqrt(ours.multiply(ours).sum(axis=1))))
    assert np.allclose(ours.toarray(), expected.toarray(), atol=1e-6)
    full = np.zeros((len(model.labels), grams.shape[1]), np.float32)
    full[:, model.grams.columns] = model.grams.weights
    assert np.allclose(model.grams.logits(grams), expected @ full.T, atol=1e-5)
    reading = model.read(Features(np.zeros((2, 2), np.float32), grams))
    assert reading[0].category == "breathing" and reading[0].emergency > 0.5 > reading[1].emergency
    model.save(tmp_path, embedder_checksum="abc", training={})
    loaded = TriageClassifier.load(tmp_path, "abc")
    assert np.allclose(loaded.probabilities(Features(np.zeros((2, 2), np.float32), grams)),
                       model.probabilities(Features(np.zeros((2, 2), np.float32), grams)), atol=1e-6)
    with pytest.raises(ValueError, match="n-grams"):
        model.probabilities(np.zeros((2, 2), np.float32))
