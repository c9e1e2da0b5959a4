"""Frozen dataclasses passed between the assistant's stages (the KG's own live in ``kg.types``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from kg.types import Entity, Path, Subgraph, Triple  # re-exported: one place to import stage types from

__all__ = ["Answer", "Audience", "Citation", "Entity", "EntityMention", "Passage", "Path", "Subgraph", "Tier",
           "Triage", "Triple"]


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


class Tier(StrEnum):
    """How urgent a message is (``assistant.safety``). ``EMERGENCY``: the emergency message alone, nothing else;
    ``POSSIBLE``: a safety net first (when to call the emergency number or a crisis line), then what the sources
    say, and never a fixed "out of scope" or "unknown term" reply; ``NONE``: an ordinary question."""

    NONE = "none"
    POSSIBLE = "possible"
    EMERGENCY = "emergency"


@dataclass(frozen=True)
class Triage:
    """The safety check that runs before retrieval. ``tier`` says how urgent; ``category`` names the red flag
    ("cardiac", "stroke", "suicide", ...; for ``POSSIBLE`` the closest one, or None); ``message`` is what must be
    shown before anything else (the emergency message, the safety net, or the note to a message not in English);
    ``matched`` is what triggered it, as written ("crushing chest pain + sweating"), and ``triggers`` names the
    components that raised it ("rules", "findings", "classifier", "context"). ``in_scope`` is False for messages
    that are not about health; ``language`` is the ISO 639-1 code of a message not in English. ``situational``
    (tier ``NONE`` only) says the classifier's reading came near the "may be urgent" bar (``ClassifierConfig.guard``):
    the message may describe something happening now, so it is never given a fixed fallback ("out of scope",
    "unknown word", "no evidence"). ``urgent`` is ``tier is EMERGENCY``."""

    tier: Tier = Tier.NONE
    category: str | None = None
    message: str | None = None
    matched: str | None = None
    triggers: tuple[str, ...] = ()
    in_scope: bool = True
    language: str | None = None
    situational: bool = False
    urgent: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tier", Tier(self.tier))
        object.__setattr__(self, "urgent", self.tier is Tier.EMERGENCY)


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
    asked: tuple[str, ...] = ()  # the relations the question asked (``kg.vocab.Relation`` values), or inherited
    triage: Triage | None = None
    abstained: bool = False  # the sources did not cover the question
    flags: tuple[str, ...] = ()  # e.g. "unsupported sentence removed: <sentence>", "uncited", "removed marker: T99"
    # sentences removed as unsupported: naming a drug or disease absent from the evidence, citing only triples
    # that do not state them ("miscited"), or denying a fact the evidence holds ("contradicted")
    unsupported: tuple[str, ...] = ()
    raw_text: str = ""  # the generator's output before citation checking
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds


#: the flag prefix of an answer that declined a personal request ("declined: dosing"): ``assistant.safety.advice``
DECLINED_FLAG = "declined"
