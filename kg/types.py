"""Frozen dataclasses the KG layer hands out: ``Entity``, ``Triple``, ``Subgraph``, ``Path``."""

from __future__ import annotations

from dataclasses import dataclass, field

from kg.vocab import Curation, EntityType, Relation


@dataclass(frozen=True)
class Entity:
    id: str  # CURIE, e.g. "DOID:9352"
    type: EntityType
    name: str
    synonyms: tuple[str, ...] = ()
    lay_synonyms: tuple[str, ...] = ()  # plain-language names (HPO "layperson" synonyms)
    definition: str | None = None
    xrefs: tuple[str, ...] = ()
    source: str = ""  # the source record that defined the entity
    attributes: tuple[tuple[str, str], ...] = ()  # (name, value), e.g. ("atc_code", "A10BA02")
    degree: int = 0  # number of relation edges touching the entity


@dataclass(frozen=True)
class Triple:
    """One KG fact with its provenance; ``id`` is stable across rebuilds (hash of s, p, o)."""

    id: str
    subject: str
    predicate: Relation
    object: str
    subject_name: str = ""
    object_name: str = ""
    sources: tuple[str, ...] = ()  # source database names
    release: str = ""
    licence: str = ""
    curation: Curation = Curation.UNSPECIFIED
    evidence: str | None = None  # free text: evidence code, method, counts
    frequency: float | None = None  # fraction of patients, 0..1
    frequency_text: str | None = None  # as the source states it, e.g. "9%", "rare"
    score: float = 0.0  # evidence strength used for ranking: curation tier + frequency

    def render(self) -> str:
        """One line for people: ``metformin — causes side effect — nausea (SIDER 4.1, frequency 9%)``."""
        extra = [", ".join(self.sources) + (f" {self.release.split(' ')[0]}" if self.release else "")]
        if self.frequency_text:
            extra.append(f"frequency {self.frequency_text}")
        return (f"{self.subject_name or self.subject} — {self.predicate.label} — "
                f"{self.object_name or self.object} ({', '.join(extra)})")


@dataclass(frozen=True)
class Subgraph:
    """A ranked, pruned neighbourhood: ``triples`` in rank order, never more than ``budget``."""

    seeds: tuple[str, ...]
    triples: tuple[Triple, ...]
    budget: int
    candidates: int  # how many triples were eligible before pruning to the budget
    entities: dict[str, str] = field(default_factory=dict)  # id -> name for every entity mentioned

    @property
    def pruned(self) -> int:
        return max(0, self.candidates - len(self.triples))


@dataclass(frozen=True)
class Path:
    """A chain of triples linking ``start`` to ``end``; triples may be walked in either direction."""

    start: str
    end: str
    nodes: tuple[str, ...]  # start, intermediates..., end
    triples: tuple[Triple, ...]
    score: float

    @property
    def hops(self) -> int:
        return len(self.triples)

    def render(self) -> str:
        return " | ".join(t.render() for t in self.triples)
