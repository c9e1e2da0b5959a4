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
