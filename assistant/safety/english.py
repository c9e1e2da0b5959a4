"""English words, from a well-kept spelling dictionary (``pyspellchecker``'s English word-frequency list).

Two uses: the language check (what share of a message's words are English) and the unknown-term check (a word
is "unknown" only if it is not English, not in the KG or the literature, and not a typo of a known word).
Words seen fewer than ``min_count`` times in the list's corpus are left out: the list is built from web text and
its rare tail holds foreign words ("dolor", "hijo") and misspellings.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from assistant.linking_text import common_english

MIN_COUNT = 100


class EnglishWords:
    """``word in english`` (lower case); ``near(word, extra)``: a known word within a small edit distance (one
    edit for words under 8 letters, two from 8), among the English words and ``extra`` (e.g. the KG's name
    tokens)."""

    def __init__(self, min_count: int = MIN_COUNT) -> None:
        self.min_count = min_count

    @cached_property
    def words(self) -> frozenset[str]:
        return common_english(self.min_count)

    @cached_property
    def _by_initial(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for word in self.words:
            groups.setdefault(word[:1], []).append(word)
        return groups

    def __contains__(self, word: str) -> bool:
        return word.lower() in self.words

    def near(self, word: str, extra: Iterable[str] = ()) -> str | None:
        """A known word one edit (two from 8 letters) away from ``word``, or None: among the English words with
        the same first letter, then among ``extra``."""
        word = word.lower()
        limit = 1 if len(word) < 8 else 2
        pools = [self._by_initial.get(word[:1], []), [w for w in extra if abs(len(w) - len(word)) <= limit]]
        for pool in pools:
            found = process.extractOne(word, pool, scorer=Levenshtein.distance, score_cutoff=limit)
            if found is not None:
                return found[0]
        return None
