"""Frozen dataclasses passed between the assistant's stages (the KG's own live in ``kg.types``)."""

from __future__ import annotations

from dataclasses import dataclass

from kg.types import Entity, Path, Subgraph, Triple  # re-exported: one place to import stage types from

__all__ = ["Entity", "EntityMention", "Passage", "Path", "Subgraph", "Triple"]


@dataclass(frozen=True)
class Passage:
    """A retrievable chunk of literature with its provenance; ``score`` is set by a search."""

    id: str  # stable: "<source passage id>#<chunk number>"
    title: str
    text: str
    source: str  # e.g. "MedQuAD/MedlinePlus", "PubMedQA", "Disease Ontology"
    licence: str
    url: str | None = None
    score: float = 0.0
    entity_ids: tuple[str, ...] = ()  # KG entities the chunk is known to be about (definitions)


@dataclass(frozen=True)
class EntityMention:
    """A span of the input linked to a KG entity."""

    start: int  # character offsets into the input text, end exclusive
    end: int
    text: str
    entity_id: str
    entity_type: str  # kg.vocab.EntityType value
    score: float  # 0..1, higher is more confident
    matched_name: str  # the KG name or synonym that matched
    method: str  # "exact", "normalised", "abbreviation", "fuzzy", "embedding", "context"
