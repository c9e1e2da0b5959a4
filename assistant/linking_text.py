"""Text normalisation for entity linking: tokens with offsets, folded word forms, and type cues.

Both the KG names and the input go through the same ``fold_token``, so "Alzheimer's", "alzheimers" and
"Alzheimer" meet in one key, as do "seizures"/"seizure" and "allergies"/"allergy". The folding is a
deliberately small, rule-based inflection stripper (no stemmer: "diabetes" must not become "diabet"
for one side only, and the same rules run on both sides, so exactness of the rules does not matter,
only their consistency).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

from kg.vocab import EntityType

#: a token: a run of letters/digits (hyphens and apostrophes split words; "type-2" -> "type", "2")
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

#: common English words that are never corrected by the fuzzy matcher nor linked on their own
STOPWORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being below
between both but by can could did do does doing down during each few for from further had has have having
he her here hers herself him himself his how i if in into is it its itself just me more most my myself no
nor not now of off on once only or other our ours out over own same she should so some such than that the
their them then there these they this those through to too under until up very was we were what when where
which while who whom why will with would you your yours yourself get got getting take takes taking took
give given make made much many one two three first new used use using well like may might must shall also
per via due without within whether however thus although though since yet ever never always often usually
lot lots bit really still even back day days week weeks month months year years time times thing things
go going went come came good bad better worse best worst way feel feeling felt know think want need help
ok okay please thanks thank hi hello doctor doc mom dad wife husband son daughter kid kids child children
patient patients people person man woman men women old young normal new cause causes caused treat treats
treated treatment treatments drug drugs medicine medicines medication medications pill pills tablet
symptom symptoms sign signs side effect effects risk risks test tests type kind sort case cases result
results study studies show shows shown found find report reported increase increased decrease decreased
associated association patient's result due gene genes protein proteins cell cells
""".split())

#: English word endings that are not plurals ("diabetes", "analysis", "virus", "sinus", "glass")
_NOT_PLURAL = ("ss", "us", "is", "betes", "pes", "ics")


#: number words and small roman numerals as digits ("type two diabetes", "type II diabetes" -> "type 2 ...")
_NUMBERS = {"one": "1", "two": "2", "three": "3", "four": "4", "ii": "2", "iii": "3"}
#: British spellings folded to American ones ("haemangioblastoma", "tumour", "oesophageal", "diarrhoea"); both
#: sides are folded, so a rule only has to be consistent, not a full spelling converter
_BRITISH = ((re.compile(r"(?<=[a-z]{2})our(?=s?$)"), "or"),
            (re.compile(r"aem"), "em"), (re.compile(r"(?<=[a-z])oe(?=[a-z])|^oe(?=[a-z]{3})"), "e"))


def fold_token(token: str) -> str:
    """Lower-case, accent-free, singular form of one token (``"Allergies"`` -> ``"allergy"``).

    Rules: British spellings become American (``_BRITISH``); possessive ``'s`` is split off before this by
    the tokeniser; ``-ies`` -> ``-y``; ``-aches`` after a consonant -> ``-ache`` ("headaches"); ``-sses``/``-xes``/
    ``-ches``/``-shes`` -> drop ``es``; a final ``s`` is dropped unless the word ends in one of ``_NOT_PLURAL`` or is
    at most 3 letters long.
    """
    word = unicodedata.normalize("NFKD", token).encode("ascii", "ignore").decode().lower() or token.lower()
    if word in _NUMBERS:
        return _NUMBERS[word]
    if len(word) <= 3 or not word.isalpha():
        return word
    if len(word) >= 6:
        for pattern, replacement in _BRITISH:
            word = pattern.sub(replacement, word)
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if re.search(r"(?<![aeiou])aches$", word):  # "aches", "headaches": ache + s ("reaches", "coaches": below)
        return word[:-1]
    if word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(_NOT_PLURAL):
        return word[:-1]
    return word


@dataclass(frozen=True)
class Token:
    """One word of the input: ``text[start:end]`` and its folded form ``key``."""

    start: int
    end: int
    surface: str
    key: str


def clean(text: str) -> str:
    """Control characters become spaces (offsets are kept: one character for one)."""
    return _CONTROL.sub(" ", text)


def tokenize(text: str) -> list[Token]:
    """Word tokens with character offsets; a trailing possessive ``'s`` is not a token of its own."""
    tokens = []
    for match in _TOKEN.finditer(text):
        surface = match.group()
        if surface.lower() == "s" and tokens and match.start() >= 1 and text[match.start() - 1] in "'’":
            continue  # "alzheimer's" -> "alzheimer"
        tokens.append(Token(match.start(), match.end(), surface, fold_token(surface)))
    return tokens


def name_key(name: str) -> str:
    """The lookup key of a whole name: folded tokens joined by one space (``"Alzheimer's disease"`` ->
    ``"alzheimer disease"``)."""
    return " ".join(t.key for t in tokenize(name))


#: words that qualify a disease without changing which one it is ("familial", "complete", "autosomal dominant")
_MODIFIERS = re.compile(r"^(?:(?:complete|partial|total|subtotal|combined|inherited|hereditary|familial|sporadic|"
                        r"isolated|human|adult|juvenile|childhood|fatal|severe|mild|classic|classical|typical|"
                        r"autosomal|dominant|recessive|x-linked|dominantly|recessively|inherited|primary|"
                        r"secondary)[\s,]+)+", re.IGNORECASE)
_OF_DEFICIENCY = re.compile(r"^deficienc(?:y|ies) of (?:the )?(.+)$", re.IGNORECASE)
_DEFICIENT = re.compile(r"^(.+?)[- ]deficien(?:t|cy)$", re.IGNORECASE)
_CONJUNCT = re.compile(r"^(.+?)(?:,? and/or|,? and|,? or|/|,) (.+?) (\w+)$", re.IGNORECASE)


def phrase_variants(phrase: str) -> list[str]:
    """Rewrites of a whole disease phrase that a normaliser tries when it matches no name (the sieves of
    D'Souza & Ng 2015): "deficiency of C9" -> "C9 deficiency", "HPRT-deficient" -> "HPRT deficiency",
    "autosomal dominant myotonia congenita" -> "myotonia congenita", "breast and ovarian cancer" ->
    "breast cancer", "ovarian cancer". Most specific first; the phrase itself is not included."""
    out: list[str] = []

    def add(text: str) -> None:
        text = " ".join(text.split())
        if text and text.lower() != phrase.lower() and text not in out:
            out.append(text)

    text = " ".join(phrase.split())
    for current in (text, _MODIFIERS.sub("", text)):
        add(current)
        of = _OF_DEFICIENCY.match(current)
        if of:
            add(f"{of.group(1)} deficiency")
        deficient = _DEFICIENT.match(current)
        if deficient:
            add(f"{deficient.group(1)} deficiency")
        conjunct = _CONJUNCT.match(current)
        if conjunct:
            add(f"{conjunct.group(1)} {conjunct.group(3)}")
            add(f"{conjunct.group(2)} {conjunct.group(3)}")
    return out


def is_acronym(name: str) -> bool:
    """An all-capitals short name ("COPD", "MEN2A", "LQT7"): matched only where the text has it in capitals
    too, because in lower case it is often a word ("COLD", "WAS", "TANK")."""
    letters = [c for c in name if c.isalpha()]
    return " " not in name.strip() and len(name) <= 8 and bool(letters) and all(c.isupper() for c in letters)


# --- type cues ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Cue:
    """A phrase that says which types the next (or previous) entity mention should have."""

    pattern: re.Pattern
    types: tuple[EntityType, ...]
    direction: str  # "after": the mention follows the cue; "before": it precedes it


def _cue(regex: str, types: tuple[EntityType, ...], direction: str = "after") -> Cue:
    return Cue(re.compile(regex, re.IGNORECASE), types, direction)


_DRUG, _DISEASE = (EntityType.COMPOUND,), (EntityType.DISEASE,)
_FINDING = (EntityType.SIDE_EFFECT, EntityType.SYMPTOM)
CUES = (
    _cue(r"\bside[- ]?effects? (?:of|from|with)\b|\badverse (?:effects?|reactions?) (?:of|to)\b", _DRUG),
    _cue(r"\b(?:taking|take|took|prescribed|on|dose of|dosage of|interactions? (?:of|with|between))\b", _DRUG),
    _cue(r"\bside[- ]?effects?\b|\badverse\b", _DRUG, "before"),
    _cue(r"\b(?:symptoms?|signs?|causes?|treatments?|cure|diagnosis|prognosis|risk factors?) (?:of|for)\b", _DISEASE),
    _cue(r"\b(?:treats?|treating|cures?|diagnosed with|suffer(?:s|ing)? from|i have|living with)\b", _DISEASE),
    _cue(r"\b(?:drugs?|medicines?|medications?|treatments?|pills?|take|taking|took|use|good|helps?) for\b", _DISEASE),
    _cue(r"\b(?:cause|causes|caused|give|gives|gave) (?:me )?\b", _FINDING),
    _cue(r"\b(?:side[- ]?effects?|adverse (?:effects?|reactions?)) (?:like|such as|including)\b",
         (EntityType.SIDE_EFFECT,)),
)


def cue_types(text: str) -> list[tuple[int, tuple[EntityType, ...], str]]:
    """(character offset, expected types, direction) of every cue in ``text``: the cue's end for
    "after" cues, its start for "before" cues."""
    found = []
    for cue in CUES:
        for match in cue.pattern.finditer(text):
            found.append((match.end() if cue.direction == "after" else match.start(), cue.types, cue.direction))
    return found


def short_form(word: str) -> bool:
    """A capitalised short form: 2 to 6 characters, letters and digits, mostly capitals ("DMD", "PWS", "G6PD")."""
    return 2 <= len(word) <= 6 and word[0].isupper() and sum(c.isupper() for c in word) >= len(word) - 1 \
        and word.isalnum()


def possessive(token: Token, text: str) -> bool:
    """``alzheimers``, ``alzheimer's``, ``alzheimers'``: the eponym keeps its s."""
    return token.surface.lower().endswith("s") or text[token.end:token.end + 2] in ("'s", "’s")


@functools.cache
def common_english(min_count: int = 100) -> frozenset[str]:
    """English words seen at least ``min_count`` times in pyspellchecker's word-frequency list (ASCII only): the
    linker never "corrects" one into a drug or disease name ("cover" is not Covera), the safety checks read
    them as English, and the drug-names resource leaves out names made of them."""
    from spellchecker import SpellChecker

    frequency = SpellChecker(language="en").word_frequency.dictionary
    return frozenset(w for w, n in frequency.items() if n >= min_count and w.isascii())
