"""Entity linking: free text (patient or clinician style) -> ranked, non-overlapping ``EntityMention``s.

Candidates come from four sources, cheapest first:

1. **dictionary** — every KG name, synonym and HPO lay synonym, plus two committed resources
   (``resources/abbreviations.tsv``, ``resources/lay_synonyms.tsv``), folded by ``linking_text.name_key``
   (case, punctuation, plurals, possessives) and matched in one pass with an Aho-Corasick automaton over
   token keys (``" key "``, so matches fall on word boundaries). A phrase the lay table lists means what the
   table says, whatever KG term has the same name ("feeling sick" is nausea, not SIDER's one-drug term).
   All-capitals short names ("COPD", "MI") match only capitals in the text unless the curated table says
   otherwise ("copd", "htn").
2. **fuzzy** — a token that is in no name, is not a common word, and has at least ``fuzzy_min_chars``
   letters is corrected to the closest name token with the same first letter (rapidfuzz ratio ≥
   ``fuzzy_cutoff``); the corrected key string is matched again, so a typo only links if it completes
   a whole KG name.
3. **local abbreviations** — "long form (SF)" in the text makes every SF in it a mention of the long form's
   entity (Schwartz–Hearst style: the first letters must agree); a capitalised short form whose letters are
   the initials of a name of an entity linked elsewhere in the text ("DMD" after "Duchenne muscular
   dystrophy") is linked to it too.
4. **embedding** — only for short texts (at most ``embed_max_tokens`` tokens) in which the dictionary
   linked nothing but body parts: the longest unlinked run of words is embedded once and searched in the
   HNSW name index (cosine ≥ ``embed_threshold``). Long texts, and texts already linked, never pay for the
   model (about 20 ms a query on this machine with one thread).

Each (span, entity) candidate is scored in 0..1::

    score = base(method) + kind bonus + type term + context bonus + prominence, clipped to [0, 1]

where the type term rewards the types expected (the ``expected_types`` argument, or a cue such as "side
effects of X" -> compound, "symptoms of Y" -> disease) and otherwise applies a small prior that prefers
diseases for disease-like phrasing; the context bonus goes to entity ids linked earlier in the
conversation; prominence is ``w * log1p(degree) / log1p(max degree)``. Spans are then chosen greedily,
longest first, then by score, without overlap.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rapidfuzz import fuzz, process

from assistant.embedding import Embedder
from assistant.linking_dictionary import RESOURCES, Entry, build_dictionary, initialism_index
from assistant.linking_index import NameIndex
from assistant.linking_text import (
    STOPWORDS,
    Token,
    clean,
    common_english,
    cue_types,
    phrase_variants,
    possessive,
    short_form,
    tokenize,
)
from assistant.types import EntityMention
from kg.store import KnowledgeGraph
from kg.vocab import EntityType

log = logging.getLogger(__name__)

_FINDING_TYPES = frozenset({EntityType.SYMPTOM, EntityType.SIDE_EFFECT})
#: how much a curated row's candidate is preferred over the KG's own names for the same span when choosing
_CURATED_CHOICE = 0.03

BASE_SCORE = {"exact": 0.9, "normalised": 0.86, "abbreviation": 0.86, "curated": 0.86, "corpus": 0.85,
              "fuzzy": 0.84, "embedding": 0.8}
KIND_BONUS = {"name": 0.02, "synonym": 0.01, "lay": 0.01, "abbreviation": 0.04, "curated": 0.01, "corpus": 0.0,
              "eponym": 0.0, "drug_name": 0.01}
#: prior when nothing says which type is wanted: disease-like phrasing means the disease
TYPE_PRIOR = {EntityType.DISEASE: 0.04, EntityType.COMPOUND: 0.035, EntityType.SYMPTOM: 0.03,
              EntityType.ANATOMY: 0.02, EntityType.PHARMACOLOGIC_CLASS: 0.02, EntityType.SIDE_EFFECT: 0.01,
              EntityType.GENE: 0.0}


@dataclass(frozen=True)
class LinkerConfig:
    max_chars: int = 5000  # longer input is cut (noted in the result and logged)
    max_name_tokens: int = 12
    fuzzy_min_chars: int = 5
    fuzzy_cutoff: float = 86.0  # rapidfuzz ratio, 0..100
    embed_max_tokens: int = 6  # texts longer than this never call the embedder (questions are short)
    embed_threshold: float = 0.72  # cosine
    embed_k: int = 8
    finding_threshold: float = 0.8  # cosine, for a finding told in everyday words beside other mentions
    type_bonus: float = 0.06
    type_penalty: float = 0.12
    context_bonus: float = 0.08
    prominence_weight: float = 0.03
    cue_window: int = 3  # tokens between a cue and the mention it types


@dataclass(frozen=True)
class LinkResult:
    mentions: tuple[EntityMention, ...]  # non-overlapping, best first
    truncated: bool = False
    note: str | None = None
    used_embedding: bool = False
    abbreviations: tuple[tuple[str, str], ...] = ()  # (short form, entity id) defined as "long form (SF)"


@dataclass
class _Candidate:
    start_token: int
    end_token: int  # exclusive
    entry: Entry
    method: str
    quality: float = 1.0  # fuzzy ratio or cosine, 0..1
    score: float = 0.0


class Linker:
    """Links text to KG entities. Build once per KG (about 2 s on the full KG); ``link`` is cheap."""

    def __init__(self, kg: KnowledgeGraph, config: LinkerConfig | None = None, embedder: Embedder | None = None,
                 name_index: NameIndex | None = None, resources: Path = RESOURCES) -> None:
        if (embedder is None) != (name_index is None):
            raise ValueError("pass both an embedder and its name index, or neither")
        self.kg = kg
        self.config = config or LinkerConfig()
        self.embedder = embedder
        self.name_index = name_index
        self.dictionary = build_dictionary(kg, resources)
        self._names = kg.names()
        self._types = {n.entity_id: n.entity_type.value for n in self._names}
        self._initialisms: dict[str, set[str]] | None = None  # built on first use (link_phrase)
        self._names_by_id: dict[str, list[str]] = defaultdict(list)
        for n in self._names:
            self._names_by_id[n.entity_id].append(n.name)
        self._log_max_degree = math.log1p(max(int(kg.adjacency.degree.max()), 1)) if kg.has_adjacency else 1.0

    # --- public API ----------------------------------------------------------------------------

    def link(self, text: str, expected_types: Iterable[EntityType] | None = None,
             context_ids: Iterable[str] = (), restrict: bool = False) -> LinkResult:
        """Mentions in ``text``, best first. ``expected_types`` are preferred (only allowed if ``restrict``);
        ``context_ids`` are entity ids linked earlier in the conversation."""
        text, truncated, note = self._prepare(text)
        tokens = tokenize(text)
        if not tokens:
            return LinkResult((), truncated, note)
        expected = frozenset(expected_types or ())
        candidates = self._dictionary_candidates(tokens, text) + self._fuzzy_candidates(tokens, text)
        used_embedding = False
        if self._wants_embedding(tokens, candidates):
            gap = self._gap(tokens, candidates)
            if gap is not None:
                candidates += self._embedding_candidates(tokens, text, *gap)
                used_embedding = True
        elif (gap := self._finding_gap(tokens, candidates, expected)) is not None:
            found = self._embedding_candidates(tokens, text, *gap, threshold=self.config.finding_threshold)
            candidates += [c for c in found if c.entry.entity_type in _FINDING_TYPES]
            used_embedding = True
        self._score(candidates, tokens, text, expected, frozenset(context_ids), restrict)
        chosen = self._select(candidates)
        chosen, defined = self._local_abbreviations(chosen, tokens, text)
        chosen = chosen + self._short_forms_of_linked(chosen, tokens)
        mentions = tuple(sorted((self._mention(c, tokens, text) for c in chosen), key=lambda m: (-m.score, m.start)))
        return LinkResult(mentions, truncated, note, used_embedding, defined)

    def link_phrase(self, phrase: str, expected_types: Iterable[EntityType] | None = None,
                    context_ids: Iterable[str] = (), restrict: bool = False,
                    abbreviations: Mapping[str, str] | None = None) -> EntityMention | None:
        """The one entity a whole phrase (e.g. a gold mention) names: a short form defined in its document
        (``abbreviations``, from ``LinkResult.abbreviations``), else a dictionary or fuzzy match covering all
        of it, else one of its rewrites (``phrase_variants``), else the longest mention inside it, else the
        nearest name by embedding."""
        text, _, _ = self._prepare(phrase)
        tokens = tokenize(text)
        if not tokens:
            return None
        defined = (abbreviations or {}).get(text.strip())
        if defined is None and len(tokens) == 1 and short_form(tokens[0].surface):
            context_ids = list(context_ids)
            defined = next((eid for eid in context_ids if self._abbreviates(tokens[0].surface, eid)), None)
        wanted = frozenset(expected_types or ())
        if defined is None and len(tokens) == 1 and short_form(tokens[0].surface) and not any(
                not wanted or e.entity_type in wanted for e in self.dictionary.entries.get(tokens[0].key, ())):
            defined = self._initialism(tokens[0].surface, wanted)
        if defined is not None:
            return EntityMention(0, len(text), text, defined, self._types.get(defined, ""), BASE_SCORE["abbreviation"],
                                 text.strip(), "abbreviation")
        expected, context = frozenset(expected_types or ()), frozenset(context_ids)
        candidates = self._dictionary_candidates(tokens, text) + self._fuzzy_candidates(tokens, text)
        self._score(candidates, tokens, text, expected, context, restrict)
        whole = [c for c in candidates if c.start_token == 0 and c.end_token == len(tokens)]
        for variant in () if whole else phrase_variants(text):
            found = self._whole_match(variant, expected, context, restrict)
            if found is not None:
                return EntityMention(0, len(text), text, found.entry.entity_id, found.entry.entity_type.value,
                                     round(found.score, 4), found.entry.name, found.method)
        pool = [c for c in whole or self._select(candidates) if c.score > 0]
        if not pool and self.embedder is not None:  # nothing inside it either: the nearest name by meaning
            pool = self._embedding_candidates(tokens, text, 0, len(tokens), threshold=0.0)
            self._score(pool, tokens, text, expected, context, restrict)
            pool = [c for c in pool if c.score > 0]
        if not pool:
            return None
        best = max(pool, key=lambda c: (c.end_token - c.start_token, c.score))
        return self._mention(best, tokens, text)

    def name_of(self, phrase: str, expected_types: Iterable[EntityType] | None = None) -> EntityMention | None:
        """The entity the whole phrase is a dictionary name of ("ovarian cancer"), without fuzzy matches, rewrites
        or mentions inside it; None if it is no such name."""
        text, _, _ = self._prepare(phrase)
        tokens = tokenize(text)
        if not tokens:
            return None
        candidates = self._dictionary_candidates(tokens, text)
        self._score(candidates, tokens, text, frozenset(expected_types or ()), frozenset(), bool(expected_types))
        whole = [c for c in candidates if c.start_token == 0 and c.end_token == len(tokens) and c.score > 0]
        return self._mention(max(whole, key=lambda c: (c.score, c.entry.entity_id)), tokens, text) if whole else None

    def _whole_match(self, text: str, expected: frozenset, context: frozenset, restrict: bool) -> _Candidate | None:
        """The best dictionary or fuzzy candidate covering all of ``text``, if any scores above 0."""
        tokens = tokenize(text)
        candidates = self._dictionary_candidates(tokens, text) + self._fuzzy_candidates(tokens, text)
        whole = [c for c in candidates if c.start_token == 0 and c.end_token == len(tokens)]
        self._score(whole, tokens, text, expected, context, restrict)
        return max((c for c in whole if c.score > 0), key=lambda c: c.score, default=None)

    # --- stages ---------------------------------------------------------------------------------

    def _prepare(self, text: str) -> tuple[str, bool, str | None]:
        text = clean(text or "")
        if len(text) <= self.config.max_chars:
            return text, False, None
        note = f"input of {len(text)} characters cut to the first {self.config.max_chars} for linking"
        log.warning(note)
        return text[:self.config.max_chars], True, note

    def _match(self, keys: list[str]) -> list[tuple[int, int, str]]:
        """(first token, end token, key) of every dictionary key found in the token keys."""
        padded = " " + " ".join(keys) + " "
        starts, offset = {}, 1
        for index, key in enumerate(keys):
            starts[offset] = index
            offset += len(key) + 1
        found = []
        for end, key in self.dictionary.automaton.iter(padded):
            first = starts.get(end - len(key))
            n = key.count(" ") + 1
            if first is not None and n <= self.config.max_name_tokens:
                found.append((first, first + n, key))
        return found

    def _phrase_entries(self, key: str) -> list[Entry]:
        """The dictionary's entries for a phrase matched in the text: only the lay table's where it lists the
        phrase (it says what the phrase means to a patient, over any KG term of that name)."""
        entries = self.dictionary.entries.get(key, [])
        return [e for e in entries if e.kind == "curated"] or entries

    def _dictionary_candidates(self, tokens: list[Token], text: str) -> list[_Candidate]:
        out = []
        for first, end, key in self._match([t.key for t in tokens]):
            surface = text[tokens[first].start:tokens[end - 1].end]
            for entry in self._phrase_entries(key):
                if entry.case_sensitive and "".join(t.surface for t in tokens[first:end]) != \
                        "".join(t.surface for t in tokenize(entry.surface or entry.name)):
                    continue
                if entry.kind == "eponym" and not possessive(tokens[end - 1], text):
                    continue
                method = entry.kind if entry.kind in ("abbreviation", "curated", "corpus") else \
                    "abbreviation" if entry.case_sensitive else \
                    "exact" if surface.lower() == entry.name.lower() else "normalised"
                out.append(_Candidate(first, end, entry, method))
        return out

    def _fuzzy_candidates(self, tokens: list[Token], text: str) -> list[_Candidate]:
        corrected, quality = [t.key for t in tokens], {}
        for i, token in enumerate(tokens):
            key = token.key
            if (len(key) < self.config.fuzzy_min_chars or not key.isalpha() or key in self.dictionary.vocabulary
                    or key in STOPWORDS or token.surface.isupper() or key in common_english()):
                continue
            best = process.extractOne(key, self.dictionary.by_initial.get(key[0], []), scorer=fuzz.ratio,
                                      score_cutoff=self.config.fuzzy_cutoff)
            if best is not None:
                corrected[i], quality[i] = best[0], best[1] / 100
        out = self._joined_candidates(tokens)
        if not quality:
            return out
        for first, end, key in self._match(corrected):
            fixed = [quality[i] for i in range(first, end) if i in quality]
            if not fixed:
                continue
            for entry in self._phrase_entries(key):
                if not entry.case_sensitive and entry.kind != "eponym":
                    out.append(_Candidate(first, end, entry, "fuzzy", min(fixed)))
        return out

    def _joined_candidates(self, tokens: list[Token]) -> list[_Candidate]:
        """Two words written apart that the KG writes as one ("chicken pox" -> "chickenpox")."""
        out = []
        for i in range(len(tokens) - 1):
            joined = tokens[i].key + tokens[i + 1].key
            for entry in self._phrase_entries(joined) if " " not in joined else ():
                if not entry.case_sensitive and entry.kind != "eponym":
                    out.append(_Candidate(i, i + 2, entry, "normalised"))
        return out

    def _wants_embedding(self, tokens: list[Token], candidates: list[_Candidate]) -> bool:
        """Only short texts in which the dictionary found nothing but body parts, and that have a lower-case
        content word used in some KG name, pay for the model (~20 ms; author lists and numbers do not)."""
        return (self.embedder is not None and len(tokens) <= self.config.embed_max_tokens
                and all(c.entry.entity_type is EntityType.ANATOMY for c in candidates)
                and any(t.surface.islower() and len(t.key) >= 4 and t.key not in STOPWORDS
                        and t.key in self.dictionary.vocabulary for t in tokens))

    def _finding_gap(self, tokens: list[Token], candidates: list[_Candidate],
                     expected: frozenset) -> tuple[int, int] | None:
        """A question about symptoms or side effects whose finding is told in everyday words the dictionary does
        not hold ("needing to pee all the time", "gums bleed", "hard to swallow"): the longest run of at least two
        tokens no candidate covers, with a content word in it, if the dictionary found no finding at all."""
        if self.embedder is None or not expected & _FINDING_TYPES or any(
                c.entry.entity_type in _FINDING_TYPES for c in candidates):
            return None
        gap = self._gap(tokens, candidates)
        if gap is None or gap[1] - gap[0] < 2 or gap[1] - gap[0] > self.config.embed_max_tokens:
            return None
        return gap

    def _gap(self, tokens: list[Token], candidates: list[_Candidate]) -> tuple[int, int] | None:
        """The longest run of tokens no candidate covers, trimmed of common words; None if it has no
        content word left."""
        covered = np.zeros(len(tokens), dtype=bool)
        for c in candidates:
            covered[c.start_token:c.end_token] = True
        best, run_start = None, None
        for i in range(len(tokens) + 1):
            if i < len(tokens) and not covered[i]:
                run_start = i if run_start is None else run_start
                continue
            if run_start is not None:
                first, end = run_start, i
                while first < end and tokens[first].key in STOPWORDS:
                    first += 1
                while end > first and tokens[end - 1].key in STOPWORDS:
                    end -= 1
                if end > first and (best is None or end - first > best[1] - best[0]):
                    best = (first, end)
                run_start = None
        return best

    def _embedding_candidates(self, tokens: list[Token], text: str, first: int, end: int,
                              threshold: float | None = None) -> list[_Candidate]:
        threshold = self.config.embed_threshold if threshold is None else threshold
        query = text[tokens[first].start:tokens[end - 1].end]
        scores, rows = self.name_index.search(self.embedder.encode([query]), self.config.embed_k)
        out = []
        for score, row in zip(scores[0], rows[0], strict=True):
            if row < 0 or score < threshold:
                continue
            n = self._names[int(row)]
            entry = Entry(n.entity_id, n.entity_type, n.name, n.kind, False)
            out.append(_Candidate(first, end, entry, "embedding", float(score)))
        return out

    def _score(self, candidates: list[_Candidate], tokens: list[Token], text: str, expected: frozenset,
               context: frozenset, restrict: bool) -> None:
        cues = cue_types(text)
        cfg = self.config
        for c in candidates:
            wanted = self._cued(c, tokens, cues) or expected
            entry = c.entry
            base = BASE_SCORE[c.method]
            if c.method in ("fuzzy", "embedding"):
                base *= c.quality
            if wanted:
                type_term = cfg.type_bonus if entry.entity_type in wanted else -cfg.type_penalty
            else:
                type_term = TYPE_PRIOR[entry.entity_type]
            prominence = cfg.prominence_weight * math.log1p(self.kg.degree(entry.entity_id)) / self._log_max_degree
            raw = (base + KIND_BONUS.get(entry.kind, 0.0) + type_term + prominence
                   + (cfg.context_bonus if entry.entity_id in context else 0.0))
            c.score = min(1.0, max(0.0, raw))
            if restrict and expected and entry.entity_type not in expected:
                c.score = 0.0

    def _cued(self, c: _Candidate, tokens: list[Token], cues: list) -> frozenset:
        """Types wanted by the nearest cue that has only common words (at most ``cue_window``) between it
        and the mention."""
        best, distance = frozenset(), None
        for offset, types, direction in cues:
            if direction == "after":
                if tokens[c.start_token].start < offset:
                    continue
                between = [t for t in tokens[:c.start_token] if t.start >= offset]
            else:
                if tokens[c.end_token - 1].end > offset:
                    continue
                between = [t for t in tokens[c.end_token:] if t.end <= offset]
            if len(between) <= self.config.cue_window and all(t.key in STOPWORDS for t in between):
                edge = tokens[c.start_token].start if direction == "after" else tokens[c.end_token - 1].end
                gap = abs(offset - edge)
                if distance is None or gap < distance:
                    best, distance = frozenset(types), gap
        return best

    def _select(self, candidates: list[_Candidate]) -> list[_Candidate]:
        """Greedy non-overlapping choice: longer spans first, then higher score, then entity id."""
        taken: set[int] = set()
        chosen = []
        # the team's curated row for a span ("eczema": atopic dermatitis, the form people mean) is chosen over the
        # KG's own synonym of the same words (DO's dermatitis) unless that one is clearly better
        ordered = sorted((c for c in candidates if c.score > 0),
                         key=lambda c: (-(c.end_token - c.start_token),
                                        -(c.score + (_CURATED_CHOICE if c.entry.kind == "curated" else 0.0)),
                                        c.entry.entity_id))
        for c in ordered:
            span = set(range(c.start_token, c.end_token))
            if not span & taken:
                taken |= span
                chosen.append(c)
        return chosen

    def _local_abbreviations(self, chosen: list[_Candidate], tokens: list[Token],
                             text: str) -> tuple[list[_Candidate], tuple[tuple[str, str], ...]]:
        """"long form (SF)": every occurrence of SF in the text (one or more tokens: "DM", "A-T", "HPT-JT")
        becomes a mention of the long form, replacing what a general abbreviation table said there (in a text
        that writes "myotonic dystrophy (DM)", DM is not diabetes). SF's first letter must start a word of the
        long form (Schwartz & Hearst 2003). Returns the mentions, and the (SF, entity id) definitions."""
        definitions: dict[tuple[str, ...], _Candidate] = {}
        defined = []
        for c in chosen:
            sf = _parenthesised(tokens, c.end_token, text)
            initials = {t.surface[0].lower() for t in tokens[c.start_token:c.end_token]}
            if sf is None or text[tokens[sf[0]].start].lower() not in initials:
                continue
            surfaces = tuple(t.surface for t in tokens[sf[0]:sf[1]])
            definitions.setdefault(surfaces, c)
            defined.append((text[tokens[sf[0]].start:tokens[sf[1] - 1].end], c.entry.entity_id))
        if not definitions:
            return chosen, ()
        kept = [c for c in chosen if not (
            c.entry.case_sensitive and tuple(t.surface for t in tokens[c.start_token:c.end_token]) in definitions)]
        taken = {i for c in kept for i in range(c.start_token, c.end_token)}
        extra = []
        for surfaces, c in definitions.items():
            n = len(surfaces)
            for i in range(len(tokens) - n + 1):
                span = set(range(i, i + n))
                if tuple(t.surface for t in tokens[i:i + n]) == surfaces and not span & taken:
                    taken |= span
                    entry = Entry(c.entry.entity_id, c.entry.entity_type, c.entry.name, "abbreviation", True)
                    extra.append(_Candidate(i, i + n, entry, "abbreviation", c.quality, c.score * 0.97))
        return kept + extra, tuple(defined)

    def _short_forms_of_linked(self, chosen: list[_Candidate], tokens: list[Token]) -> list[_Candidate]:
        """An uncovered capitalised short form ("DMD") whose letters are the initials of a name of an entity
        already linked in the same text ("Duchenne muscular dystrophy") becomes a mention of it."""
        taken = {i for c in chosen for i in range(c.start_token, c.end_token)}
        linked = {c.entry.entity_id: c for c in chosen}
        extra = []
        for i, token in enumerate(tokens):
            if i in taken or not short_form(token.surface):
                continue
            for entity_id, c in linked.items():
                if self._abbreviates(token.surface, entity_id):
                    entry = Entry(entity_id, c.entry.entity_type, c.entry.name, "abbreviation", True)
                    extra.append(_Candidate(i, i + 1, entry, "abbreviation", 1.0, c.score * 0.95))
                    break
        return extra

    def _initialism(self, short: str, expected: frozenset) -> str | None:
        """The most connected disease whose name's initials spell ``short`` ("PWS" -> Prader-Willi syndrome):
        a last resort for a short form met alone, which no dictionary entry and no context explains."""
        if expected and EntityType.DISEASE not in expected:
            return None
        if self._initialisms is None:
            self._initialisms = initialism_index(self._names)
        found = self._initialisms.get(short.lower())
        return max(sorted(found), key=self.kg.degree) if found else None

    def _abbreviates(self, short: str, entity_id: str) -> bool:
        """``short`` spells the initials of the first words of one of the entity's names (stop words and a
        final "disease"/"syndrome" may be skipped): "DMD" -> Duchenne muscular dystrophy, "VHL" -> von
        Hippel-Lindau disease."""
        letters = short.lower()
        for name in self._names_by_id.get(entity_id, ()):
            words = [t.surface.lower() for t in tokenize(name)]
            initials = "".join(w[0] for w in words)
            content = "".join(w[0] for w in words if w not in STOPWORDS and w not in ("disease", "syndrome"))
            if initials.startswith(letters) or content == letters:
                return True
        return False

    def _mention(self, c: _Candidate, tokens: list[Token], text: str) -> EntityMention:
        start, end = tokens[c.start_token].start, tokens[c.end_token - 1].end
        return EntityMention(start, end, text[start:end], c.entry.entity_id, c.entry.entity_type.value,
                             round(c.score, 4), c.entry.name, c.method)


def _parenthesised(tokens: list[Token], index: int, text: str) -> tuple[int, int] | None:
    """Token range of a short form written in parentheses right at token ``index`` ("(DM)", "(A-T)"): 2 to 10
    characters, no space, at least one capital; None otherwise."""
    if index >= len(tokens) or text[tokens[index].start - 1:tokens[index].start] != "(":
        return None
    close = text.find(")", tokens[index].start)
    inner = text[tokens[index].start:close] if close > 0 else ""
    if not (2 <= len(inner) <= 10 and " " not in inner and any(ch.isupper() for ch in inner)):
        return None
    end = index
    while end < len(tokens) and tokens[end].end <= close:
        end += 1
    return index, end
