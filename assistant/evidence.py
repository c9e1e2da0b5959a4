"""The numbered evidence block of a prompt: KG triples ``[T<n>]`` then passages ``[P<n>]``, best first, kept
within a token budget by dropping whole items from the end (the lowest ranked), and logged when dropped."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from assistant.citations import neutralise
from assistant.types import Citation, Passage, Triple
from kg.vocab import Curation, Relation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvidenceBlock:
    lines: tuple[str, ...]  # "[T1] metformin — causes side effect — nausea (SIDER 4.1, frequency 9%)"
    items: dict[str, Citation]  # marker -> what it resolves to
    triples: dict[str, Triple]  # marker -> triple (for the verifier's entity ids)
    passages: dict[str, Passage]
    dropped: tuple[str, ...]  # rendered lines left out to keep the budget

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def entity_ids(self) -> set[str]:
        ids = {e for t in self.triples.values() for e in (t.subject, t.object)}
        return ids | {e for p in self.passages.values() for e in p.entity_ids}


#: relation -> a plain sentence for patients (the evidence list under an answer that cited nothing)
PLAIN = {Relation.TREATS: "{s} is used to treat {o}", Relation.PALLIATES: "{s} can ease {o}",
         Relation.INDICATED_FOR: "{s} is used for {o}", Relation.CAUSES_SIDE_EFFECT: "{s} can cause {o}",
         Relation.HAS_SYMPTOM: "{o} can be a sign of {s}", Relation.HAS_PHENOTYPE: "{o} can be a sign of {s}",
         Relation.ASSOCIATED_WITH_GENE: "{s} is linked to the gene {o}", Relation.BINDS_GENE: "{s} acts on {o}",
         Relation.RESEMBLES: "{s} is similar to {o}", Relation.IN_CLASS: "{s} is a kind of {o}",
         Relation.LOCATED_IN: "{s} affects the {o}", Relation.SUBCLASS_OF: "{s} is a kind of {o}"}


def plain(triple: Triple) -> str:
    """"Metformin can cause nausea." — one short sentence a patient can read (its sources are listed apart)."""
    def word(name: str) -> str:
        return name if name.isupper() or not name[:1].isupper() or name[1:2].isupper() else name[0].lower() + name[1:]

    text = PLAIN[triple.predicate].format(s=triple.subject_name or triple.subject,
                                          o=word(triple.object_name or triple.object))
    return f"{text[0].upper()}{text[1:]}."


#: an "Evidence:" label a small model writes before copying an evidence line ("The evidence is [P1] ...")
_LABEL = re.compile(r"(?:\bthe evidence is:?|\bevidence:)\s*(?=\[[TP]\d+\]|\n|$)", re.I)


def strip_echo(text: str, block: EvidenceBlock) -> str:
    """``text`` without the evidence block's layout copied into it: an "Evidence:" label and a passage line's head
    ("[P1] Indigestion (treatment) — ") after a marker or at the start of a line, or a title copied as a line of its
    own. What follows a head stays; copied closely enough, ``answer.attribute`` gives it its passage's marker again."""
    text = _LABEL.sub("", text)
    for passage in block.passages.values():
        title = re.escape(neutralise(passage.title, source=True))
        head = rf"(?:\[[TP]\d+\][ \t]*{title}|^[ \t]*{title})(?:\s+[—-]+\s*|(?:[ \t]*\[[TP]\d+\])*[ \t]*$)"
        text = re.sub(head, "", text, flags=re.M)
    return text


def excerpt(text: str, words: int) -> str:
    parts = text.split()
    return " ".join(parts[:words]) + (" …" if len(parts) > words else "")


def triple_line(marker: str, triple: Triple) -> str:
    tier = {Curation.TEXT_MINED: "text-mined", Curation.DATABASE: "curated database",
            Curation.EXPERT: "expert-curated"}.get(triple.curation)
    return f"[{marker}] {triple.render()}" + (f" — {tier}" if tier else "")


def passage_line(marker: str, passage: Passage, words: int) -> str:
    """A passage as the prompt shows it; a bracketed marker in its title or text is defused
    (``citations.neutralise(..., source=True)``), so it cannot pose as the block's own."""
    title, text = neutralise(passage.title, source=True), neutralise(excerpt(passage.text, words), source=True)
    return f"[{marker}] {title} — {text} ({passage.source})"


def build_evidence(triples: Sequence[Triple], passages: Sequence[Passage], budget_tokens: int,
                   count_tokens: Callable[[str], int], passage_words: int = 60) -> EvidenceBlock:
    """Number the items, then drop whole items from the end (passages first, then the lowest-ranked triples)
    until the block fits ``budget_tokens``."""
    triples, passages = list(triples), list(passages)
    dropped: list[str] = []
    while True:
        t_lines = [triple_line(f"T{i}", t) for i, t in enumerate(triples, 1)]
        p_lines = [passage_line(f"P{i}", p, passage_words) for i, p in enumerate(passages, 1)]
        lines = t_lines + p_lines
        if not lines or count_tokens("\n".join(lines)) <= budget_tokens:
            break
        # passages are long: drop the last one first while triples are fewer than two
        if passages and (len(passages) > 1 or len(triples) <= 2):
            dropped.append(p_lines[-1])
            passages.pop()
        else:
            dropped.append(t_lines[-1])
            triples.pop()
    if dropped:
        log.info("evidence over %d tokens: dropped %d item(s): %s", budget_tokens, len(dropped),
                 "; ".join(d[:80] for d in dropped))
    items = {f"T{i}": Citation(f"T{i}", "triple", t.id, t.render(), ", ".join(t.sources), t.licence)
             for i, t in enumerate(triples, 1)}
    items |= {f"P{i}": Citation(f"P{i}", "passage", p.id, p.title, p.source, p.licence, p.url)
              for i, p in enumerate(passages, 1)}
    return EvidenceBlock(tuple(lines), items, {f"T{i}": t for i, t in enumerate(triples, 1)},
                         {f"P{i}": p for i, p in enumerate(passages, 1)}, tuple(dropped))
