"""The committed bundle: exactly the files the build reads, intact; and (slow) the full KG's coverage."""

from __future__ import annotations

import hashlib
import json

import pytest

from kg.build import DEFAULT_SOURCE, BuildConfig, build
from kg.sources import SOURCE_FILES


def test_bundle_holds_every_source_file_with_its_checksum():
    manifest = json.loads((DEFAULT_SOURCE / "MANIFEST.json").read_text())
    expected = {rel if rel.endswith(".gz") else f"{rel}.gz" for rel in SOURCE_FILES}
    assert set(manifest["files"]) == expected
    for rel, meta in manifest["files"].items():
        assert hashlib.sha256((DEFAULT_SOURCE / rel).read_bytes()).hexdigest() == meta["sha256"], rel
    total = sum(meta["bytes"] for meta in manifest["files"].values())
    assert total < 40e6


@pytest.mark.slow
def test_full_kg_from_the_bundle_meets_the_coverage_targets(tmp_path):
    counts = build(BuildConfig(data_dir=tmp_path))["counts"]
    assert counts["entities"]["disease"] >= 12_000
    assert counts["diseases_with_drug_relation"] >= 800
    assert counts["entities"]["compound"] >= 1_500
    assert counts["relations"]["causes_side_effect"] >= 138_000
    assert counts["side_effect_edges_with_frequency"] >= 30_000
    assert counts["diseases_with_symptom_or_phenotype"] >= 4_000
    assert counts["edges_without_source_or_licence"] == 0
