"""Shared fixtures: the committed fixture sources, built into a KG through the real build path."""

from __future__ import annotations

from pathlib import Path

import pytest

from kg.build import BuildConfig, build
from kg.store import KnowledgeGraph
from kg.tables import SourceDir

FIXTURES = Path(__file__).parent / "fixtures"
SOURCE = FIXTURES / "source"
HPO = FIXTURES / "hpo"


def fixture_config(data_dir: Path, **overrides) -> BuildConfig:
    return BuildConfig(source=overrides.pop("source", SOURCE), hpo_dir=overrides.pop("hpo_dir", HPO),
                       data_dir=data_dir, **overrides)


@pytest.fixture(scope="session")
def built_kg(tmp_path_factory) -> tuple[Path, dict]:
    """(data dir, manifest) of the fixture KG, built once per session."""
    data_dir = tmp_path_factory.mktemp("kg")
    return data_dir, build(fixture_config(data_dir))


@pytest.fixture(scope="session")
def kg(built_kg) -> KnowledgeGraph:
    with KnowledgeGraph.open(built_kg[0]) as graph:
        yield graph


@pytest.fixture
def src() -> SourceDir:
    return SourceDir(SOURCE)


@pytest.fixture(scope="session")
def fake_triager():
    """A triage stage on the fake embedder: the real rules, and a logistic regression fitted on 59 committed
    fixture messages (``fixtures/triage_messages.jsonl``: health questions, situations happening now, emergencies,
    non-health messages) over hashed n-gram features, with thresholds (and the fallback guard) so high that only the
    rules raise an emergency or a "may be urgent" tier: hashed n-grams read scope, not urgency. For pipeline tests;
    the shipped classifier is tested in ``test_safety.py``."""
    from assistant.embedding import FakeEmbedder
    from assistant.safety.classifier import ClassifierConfig, TriageClassifier
    from assistant.safety.language import LanguageCheck
    from assistant.safety.messages import SafetyMessages
    from assistant.safety.training import classifier_text, label_of, read_messages
    from assistant.safety.triage import Triager

    messages = read_messages(FIXTURES / "triage_messages.jsonl")
    embedder = FakeEmbedder(256)
    model = TriageClassifier.fit(embedder.encode([classifier_text(m) for m in messages]),
                                 [label_of(m) for m in messages],
                                 ClassifierConfig(C=10.0, emergency=0.99, possible=0.99, guard=0.99, char_features=0))
    return Triager(SafetyMessages.load("default"), model, embedder.encode, language=LanguageCheck())
