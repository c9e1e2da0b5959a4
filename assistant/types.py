"""Frozen dataclasses passed between the assistant's stages (the KG's own live in ``kg.types``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from kg.types import Entity, Path, Subgraph, Triple  # re-exported: one place to import stage types from

__all__ = ["Answer", "Audience", "Citation", "Entity", "EntityMention", "Passage", "Path", "Subgraph", "Triage",
           "Triple"]


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


class Audience(StrEnum):
    PATIENT = "patient"
    CLINICIAN = "clinician"


@dataclass(frozen=True)
class Triage:
    """The safety check that runs before retrieval. ``urgent``: a red flag was found and ``message`` (emergency
    guidance) must be shown first; ``category`` names the red flag ("cardiac", "stroke", "suicide", ...);
    ``matched`` is the text that triggered it. ``in_scope`` is False for messages that are not medical."""

    urgent: bool
    category: str | None = None
    message: str | None = None
    matched: str | None = None
    in_scope: bool = True


@dataclass(frozen=True)
class Citation:
    """One piece of evidence the answer cites, resolved against exactly what the prompt contained."""

    marker: str  # "T3" or "P1", as numbered in the prompt's evidence block
    kind: str  # "triple" or "passage"
    id: str  # triple id or passage (chunk) id
    text: str  # the rendered triple, or the passage title
    source: str  # source database(s) / corpus
    licence: str
    url: str | None = None


@dataclass(frozen=True)
class Answer:
    """What ``assistant.answer.answer`` returns: the text shown, what it cites, and how it was made."""

    question: str
    audience: Audience
    text: str  # shown to the user: triage message first when urgent; citation markers kept as [T1]/[P1]
    citations: tuple[Citation, ...] = ()  # markers the text cites, in order of first use
    evidence: tuple[Citation, ...] = ()  # everything the prompt's evidence block held (cited or not)
    entities: tuple[EntityMention, ...] = ()
    seeds: tuple[str, ...] = ()  # the ids the evidence was retrieved for: linked, or carried from an earlier turn
    triage: Triage | None = None
    abstained: bool = False  # the sources did not cover the question
    flags: tuple[str, ...] = ()  # e.g. "unsupported sentence removed: <sentence>", "uncited", "removed marker: T99"
    # sentences removed as unsupported: naming a drug or disease absent from the evidence, citing only triples
    # that do not state them ("miscited"), or denying a fact the evidence holds ("contradicted")
    unsupported: tuple[str, ...] = ()
    raw_text: str = ""  # the generator's output before citation checking
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds
