"""Citation markers: neutralising them in user text, resolving them against the evidence the prompt held,
checking that a cited triple states what its sentence says, and flagging sentences that name a drug or disease
the evidence does not contain.

Markers are ``[T<n>]`` (a KG triple) and ``[P<n>]`` (a literature passage), numbered from 1 in the prompt's
evidence block; the model may also write several in one bracket (``[T1, T3]``). Only markers of items that were in
the prompt survive; anything else (``[T0]``, ``[T99]``, a marker the user typed) is removed and flagged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from assistant.linking import Linker
from assistant.types import Citation, Triple
from kg.vocab import EntityType

#: one bracket holding one or more markers: "[T1]", "[T1, P2]", "[ t3 ]"
_BRACKET = re.compile(r"\[\s*([TPtp]\s*\d+(?:\s*[,;]\s*[TPtp]\s*\d+)*)\s*\]")
_MARKER = re.compile(r"([TPtp])\s*(\d+)")
#: what looks like a marker in user text, in any bracket style: "[T1]", "(P2)", "【T3】", "[[T4]]"
_USER_MARKER = re.compile(r"[\[\(\{【<]+\s*([TPtp])\s*(\d+)\s*[\]\)\}】>]+")
_TRIPLE_MARKER = re.compile(r"\[(T\d+)\]")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")
VERIFIED_TYPES = (EntityType.DISEASE, EntityType.COMPOUND)


def neutralise(user_text: str) -> str:
    """User text with every marker-like token defused ("[T1]" -> "T1"), so it can never pose as evidence."""
    return _USER_MARKER.sub(lambda m: f"{m.group(1).upper()}{m.group(2)}", user_text)


@dataclass(frozen=True)
class Resolved:
    text: str  # the answer with unknown markers removed and brackets normalised ("[T1][T3]")
    cited: tuple[Citation, ...]  # in order of first use
    removed: tuple[str, ...]  # markers that named nothing in the evidence


def resolve(text: str, evidence: dict[str, Citation]) -> Resolved:
    """Keep the markers that name an evidence item of the prompt, drop the others."""
    cited: dict[str, Citation] = {}
    removed: list[str] = []

    def replace(match: re.Match) -> str:
        kept = []
        for kind, number in _MARKER.findall(match.group(1)):
            marker = f"{kind.upper()}{int(number)}"
            if marker in evidence:
                cited.setdefault(marker, evidence[marker])
                kept.append(f"[{marker}]")
            else:
                removed.append(marker)
        return "".join(kept)

    cleaned = _BRACKET.sub(replace, text)
    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", cleaned)).strip()
    return Resolved(cleaned, tuple(cited.values()), tuple(dict.fromkeys(removed)))


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text.strip()) if s.strip()]


def unsupported_sentences(text: str, linker: Linker, supported_ids: Iterable[str],
                          evidence_text: str) -> list[str]:
    """Sentences that name a drug or disease (linked in the sentence) whose id is not among ``supported_ids`` and
    whose words do not appear in ``evidence_text`` (the rendered evidence and the question)."""
    supported = set(supported_ids)
    haystack = evidence_text.lower()
    flagged = []
    for sentence in sentences(text):
        plain = _BRACKET.sub("", sentence)
        for mention in linker.link(plain, VERIFIED_TYPES, restrict=True).mentions:
            if mention.entity_id in supported or mention.text.lower() in haystack:
                continue
            if mention.method in ("abbreviation",) and len(mention.text) <= 3:
                continue  # "OR", "MS" in running text: too ambiguous to accuse a sentence
            flagged.append(sentence)
            break
    return flagged


def names(name: str, sentence: str) -> bool:
    """``name`` appears in ``sentence`` as whole words, any case."""
    return bool(name) and re.search(rf"\b{re.escape(name)}\b", sentence, re.IGNORECASE) is not None


@dataclass(frozen=True)
class MarkerCheck:
    sentences: tuple[str, ...]  # kept, each with only the markers that passed
    removed: tuple[tuple[str, str], ...]  # (marker, the end of its triple the sentence does not name)
    dropped: tuple[str, ...]  # sentences whose every triple marker failed: their claim has no source


def check_markers(sentences_: Iterable[str], triples: Mapping[str, Triple], seeds: Iterable[str],
                  mentions: Callable[[str, str], bool]) -> MarkerCheck:
    """A ``[T<n>]`` must sit on a sentence that says what its triple says: every end of the triple that is not
    one of the question's seeds must be named in the sentence (``mentions(sentence, entity_id)``); the seeds may
    stay implicit ("It can cause nausea [T2]" about metformin). A marker that fails is removed ("It can cause
    stomach pain [T3]" where T3 is metformin - infection); a sentence whose every triple marker fails is dropped,
    since its claim was pinned on a fact that does not state it. Passage markers are not checked here."""
    seeds = set(seeds)
    kept, removed, dropped = [], [], []
    for sentence in sentences_:
        markers = [m for m in _TRIPLE_MARKER.findall(sentence) if m in triples]
        if not markers:
            kept.append(sentence)
            continue
        plain = _BRACKET.sub("", sentence)
        failed = {}
        for marker in markers:
            triple = triples[marker]
            missing = [end for end in (triple.subject, triple.object) if end not in seeds and not mentions(plain, end)]
            if missing:
                failed[marker] = missing[0]
        removed += [(marker, end) for marker, end in failed.items()]
        if failed and len(failed) == len(markers) and not re.search(r"\[P\d+\]", sentence):
            dropped.append(sentence)
            continue
        for marker in failed:
            sentence = sentence.replace(f"[{marker}]", "")
        kept.append(re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", sentence)).strip())
    return MarkerCheck(tuple(kept), tuple(removed), tuple(dropped))
