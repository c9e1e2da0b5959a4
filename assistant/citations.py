"""Citation markers: neutralising them in user text, resolving them against the evidence the prompt held,
checking that a cited triple states what its sentence says, and flagging sentences that name a drug or disease
the evidence does not contain.

Markers are ``[T<n>]`` (a KG triple) and ``[P<n>]`` (a literature passage), numbered from 1 in the prompt's
evidence block; the model may also write several in one bracket (``[T1, T3]``). Only markers of items that were in
the prompt survive; anything else (``[T0]``, ``[T99]``, a marker the user typed) is removed and flagged.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from assistant.linking import Linker
from assistant.types import Citation, Triple
from kg.vocab import EntityType, Relation

#: one bracket holding one or more markers: "[T1]", "[T1, P2]", "[ t3 ]"
_BRACKET = re.compile(r"\[\s*([TPtp]\s*\d+(?:\s*[,;]\s*[TPtp]\s*\d+)*)\s*\]")
_MARKER = re.compile(r"([TPtp])\s*(\d+)")
#: what looks like a marker or a list or range of them in user text, in any bracket style (after NFKC, which
#: folds full-width forms): "[T1]", "(P2)", "【T3】", "[[T4]]", "[T1, T2]", "[ t3 ; P1 ]", "[T1-T3]", "〔P2 and P4〕"
_OPENING = "[({<【〔〖〘〚⟦⟨⟪«‹［（｛＜"
_CLOSING = "])}>】〕〗〙〛⟧⟩⟫»›］）｝＞"
_USER_MARKER = re.compile(rf"[{re.escape(_OPENING)}]+\s*([TPtp]\s*\d+(?:\s*(?:[,;/&+|~\-–—]|and|to|or)\s*(?:[TPtp]\s*)?"
                          rf"\d+)*)\s*[{re.escape(_CLOSING)}]+")
#: every square bracket of any width, so none survives into the prompt from user or source text
_SQUARE = str.maketrans({"[": "(", "]": ")", "［": "(", "］": ")", "⁅": "(", "⁆": ")"})
_TRIPLE_MARKER = re.compile(r"\[(T\d+)\]")
_UNSAFE = re.compile("[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
#: a sentence ends at a full stop (or ! ?) before a capital, a digit or a bracket, and at a line break: a line a
#: small model writes without a full stop is a sentence of its own
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])|\s*\n\s*")
VERIFIED_TYPES = (EntityType.DISEASE, EntityType.COMPOUND)


def neutralise(user_text: str, *, source: bool = False) -> str:
    """User text as it may enter a prompt: every marker-like token defused ("[T1]" -> "T1", "[T1, T2]" ->
    "T1, T2", "［Ｔ１］" -> "T1"), then every remaining square bracket made round. The resolver reads only square
    brackets, so by construction nothing the user typed can resolve as a citation, whatever the model copies of
    it; lone surrogates become U+FFFD. ``source``: text from the sources (a passage), of which only the
    marker-like tokens are defused, so that their wording ("…", "[1]") reaches the prompt as it was."""
    if source:
        return _USER_MARKER.sub(_defused, user_text)
    text = unicodedata.normalize("NFKC", clean_text(user_text))
    return _USER_MARKER.sub(_defused, text).translate(_SQUARE)


def _defused(match: re.Match) -> str:
    return _MARKER.sub(lambda k: f"{k.group(1).upper()}{k.group(2)}", match.group(1))


def clean_text(text: str) -> str:
    """``text`` safe to encode, tokenise and log: lone UTF-16 surrogates (which no encoder accepts) become U+FFFD,
    NUL and the other C0/C1 control characters except tab and newline are dropped."""
    return _UNSAFE.sub(lambda m: "\ufffd" if "\ud800" <= m.group() <= "\udfff" else "", text)


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


#: how a finished sentence ends: a full stop or the like, maybe closed by a marker, bracket or quote
_FINISHED = re.compile(r"[.!?…\])\"'”]\s*$")


def unfinished(text: str) -> tuple[str, str | None]:
    """``text`` without a last sentence the generator left unfinished, and that sentence (None if it ends
    properly): a small model stopped by its token limit leaves half a word ("... for gout [T1]. Col")."""
    stripped = text.rstrip()
    if not stripped or _FINISHED.search(stripped):
        return text, None
    last = sentences(stripped)[-1]
    return stripped[:len(stripped) - len(last)].rstrip(), last


#: flag prefix of a sentence removed for naming a drug or disease absent from the evidence (the harness counts them)
UNSUPPORTED_ENTITY_FLAG = "unsupported sentence removed"
#: flag prefix of a sentence removed for stating something without citing the evidence (``unsourced``)
UNSOURCED_FLAG = "uncited sentence removed"


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
    sentences: tuple[str, ...]  # kept, each with only markers whose triple its clause states
    removed: tuple[tuple[str, str], ...]  # (marker, the end of its triple the clause does not name, or relation)
    recited: tuple[tuple[str, str], ...]  # (wrong marker, the marker of the evidence triple the clause does state)
    dropped: tuple[str, ...]  # sentences left citing nothing they were pinned on: their claim has no source


#: words that say which way a clause's fact goes: a drug causing a finding, or a drug helping a condition
_CUES = {"causes": re.compile(r"\b(?:caus\w*|side[- ]effects?|adverse|give[s]? you|lead[s]? to|trigger\w*)\b", re.I),
         "helps": re.compile(r"\b(?:treat\w*|help\w*|eas(?:e|es|ing)|reliev\w*|used (?:for|to)|prescribed)\b", re.I)}
#: "helps" fits only a treatment fact: "warfarin can ease rodenticides [T1]" does not state an ``in_class`` fact
_CUE_CLASH = {"causes": {Relation.TREATS, Relation.PALLIATES, Relation.INDICATED_FOR},
              "helps": set(Relation) - {Relation.TREATS, Relation.PALLIATES, Relation.INDICATED_FOR}}
#: a clause calling its items drugs or medicines cannot cite a gene fact ("Drugs for asthma include SPRR2B [T1]")
_DRUG_NOUN = re.compile(r"\b(?:drugs?|medicines?|medications?|treatments?|tablets?|pills?|therap(?:y|ies))\b", re.I)
_GENE_NOUN = re.compile(r"\b(?:genes?|proteins?|targets?|enzymes?|receptors?|transporters?)\b", re.I)
_GENE_RELATIONS = {Relation.ASSOCIATED_WITH_GENE, Relation.BINDS_GENE}
#: the KG's source names: a clause naming one must cite a fact from it ("DisGeNET" on a DISEASES fact is wrong)
SOURCE_NAMES = ("DrugCentral", "DrugBank", "DOAF", "MEDLINE", "BindingDB", "Human Phenotype Ontology", "DISEASES",
                "GWAS Catalog", "PharmacotherapyDB", "Disease Ontology", "PubChem", "PDSP", "DisGeNET", "ChEMBL",
                "SIDER", "Hetionet")
_SOURCE_NAME = re.compile(r"\b(" + "|".join(map(re.escape, SOURCE_NAMES)) + r")\b")


#: a negation in a clause's last part ("My sources do not say that X treats Y [T1]"): a denial cannot cite a fact
_NEGATION = re.compile(r"\b(?:not|no|never|neither|nor|without|cannot)\b|n't\b", re.I)
DENIED = "denied"  # what ``check_markers`` reports as missing when a clause denies the fact it cites


def negates(sentence: str) -> bool:
    """Whether the sentence holds a negation anywhere ("not", "no", "never", "n't", ...)."""
    return bool(_NEGATION.search(sentence))


def _denies(clause: str) -> bool:
    """Whether the clause's last part (after its last ``,;:``) holds a negation: "do not stop it; it can cause
    nausea [T1]" affirms, "my sources do not say that it treats gout [T1]" denies."""
    return bool(_NEGATION.search(re.split(r"[,;:]", clause)[-1]))


def _last_cue(text: str) -> str | None:
    """"causes" or "helps", whichever of the two kinds of cue comes last in ``text``, or None."""
    found = [(m.start(), kind) for kind, cue in _CUES.items() for m in cue.finditer(text)]
    return max(found)[1] if found else None


#: a clause and the run of markers closing it: "Metformin can cause nausea [T1][T4]" -> ("Metformin ...", "[T1][T4]")
_CLAUSE = re.compile(r"(.*?)((?:\s*\[[TP]\d+\])+)", re.DOTALL)


def _states(clause: str, cue: str | None, triple: Triple, seeds: set[str],
            mentions: Callable[[str, str], bool]) -> str | None:
    """What ``clause`` fails to state of ``triple``: the first end it should name and does not, or the relation
    when the clause's last cue says the opposite ("can cause" on a "treats" fact); None if it states it."""
    if cue is not None and triple.predicate in _CUE_CLASH[cue]:
        return str(triple.predicate.value)
    if triple.predicate in _GENE_RELATIONS and _DRUG_NOUN.search(clause) and not _GENE_NOUN.search(clause):
        return str(triple.predicate.value)
    named = set(_SOURCE_NAME.findall(clause))
    if named and not any(source.startswith(name) or name in source for name in named for source in triple.sources):
        return "source"
    ends = (triple.subject, triple.object)
    missing = next((end for end in ends if end not in seeds and not mentions(clause, end)), None)
    if missing is None and all(end in seeds for end in ends) and not mentions(clause, triple.object):
        return triple.object  # a fact between two seeds still needs its object named ("nausea [T1]")
    return missing


#: a sentence saying the sources lack a fact: "My sources do not say that ...", "the evidence does not list ...",
#: "there is no evidence that ..."
_SOURCES_DENY = re.compile(
    r"\b(?:sources?|evidence|knowledge graph|literature|records?|data)\b[^.;:!?]*?"
    r"\b(?:do(?:es)?\s+not|do(?:es)?n[’']t|never|cannot|can't)\s+"
    r"(?:say|mention|show|list|state|report|include|support|suggest|link)\w*"
    r"|\bno (?:evidence|record|mention|information|data)\b", re.I)


#: what an answer may say without a source: send the reader to a professional or to emergency help
_ADVICE = re.compile(
    r"\b(?:doctors?|GPs?|physicians?|pharmacists?|nurses?|midwi(?:fe|ves)|dentists?|specialists?|clinicians?"
    r"|health ?care (?:providers?|professionals?|team)|emergency|ambulance|urgent care|911|999|112)\b", re.I)
_ANY_MARKER = re.compile(r"\[[TP]\d+\]")
#: ... or say what the sources lack, or how strong the kinds of evidence are: "My sources do not cover this", "The
#: evidence provided records no treatment of X", "Text-mined evidence is weaker than curated evidence" (not "There
#: is strong evidence that X treats Y": that is a claim)
_ABOUT_SOURCES = re.compile(
    _SOURCES_DENY.pattern + r"|\b(?:sources?|evidence)\b[^.;:!?]*?\b(?:do(?:es)?\s+not|do(?:es)?n[’']t)\s+cover"
    r"|\b(?:sources?|evidence)\b[^.;:!?]*?\b(?:records?|holds?|lists?|contains?|has|have|includes?)\s+no\b"
    r"|\b(?:text-mined|curated) evidence is\b", re.I)


def unsourced(sentences_: Iterable[str], names_other: Callable[[str], bool]) -> list[str]:
    """Sentences that cite nothing and state something: every sentence without a marker, except advice to see a
    professional or seek emergency help and a statement of what the sources lack or how strong they are ("My
    sources do not cover ..."), and even those when they name an entity other than the question's
    (``names_other``): "Your doctor may recommend treatment if the arrhythmia raises your risk of heart failure"
    states a fact. A small model writes "The incubation period is usually 14 days" or "It is used to treat kidney
    disease" with no marker, naming nothing the entity check could catch; shown, that is a medical fact no
    evidence supports."""
    return [sentence for sentence in sentences_ if not _ANY_MARKER.search(sentence)
            and not ((_ADVICE.search(sentence) or _ABOUT_SOURCES.search(sentence)) and not names_other(sentence))]


#: words that stand for an entity named earlier (the question's seed)
_PRONOUN = re.compile(r"\b(?:it|its|they|them|this|these|that (?:medicine|drug|condition))\b", re.I)


def contradicted(sentences_: Iterable[str], triples: Mapping[str, Triple], seeds: Iterable[str],
                 mentions: Callable[[str, str], bool]) -> list[tuple[str, str]]:
    """Sentences that say the sources lack a fact the evidence holds, each with the marker of that fact: "My
    sources do not say that lisinopril can cause dry cough" beside ``[T1] Lisinopril — causes side effect — Dry
    cough``. What follows the denial must state the triple as ``check_markers`` requires of a cited clause (its
    ends named, no clashing cue), so "... do not say that it treats nausea" does not contradict
    a side effect. A small model that learnt "My sources do not say ..." for the facts the evidence lacks also
    writes it for facts it holds; shown, that would deny a documented fact. A seed may stay implicit only behind
    a pronoun: "... do not say that diatrizoate can cause fever" does not deny "diatrizoate causes malaria" when
    malaria is the question's seed."""
    seeds = set(seeds)
    found = []
    for sentence in sentences_:
        if (denial := _SOURCES_DENY.search(sentence)) is None:
            continue
        claim = _BRACKET.sub("", re.split(r"[;:]", sentence[denial.end():])[0])
        cue = _last_cue(claim)
        implicit = seeds if _PRONOUN.search(claim) else set()  # "... that it can cause nausea": "it" is a seed
        marker = next((m for m, t in triples.items() if _states(claim, cue, t, implicit, mentions) is None), None)
        if marker is not None:
            found.append((sentence, marker))
    return found


def _whole_sentence(sentence: str, triples: Mapping[str, Triple], states) -> str | None:
    """A sentence whose markers sit on its subject ("Salbutamol [T1] and salbutamol [T2] are used to treat
    asthma") fails clause by clause though the sentence states the facts: the sentence with its triple markers
    moved to its end, keeping those the whole sentence states (by its last cue), or None if it states none."""
    markers = [m for m in dict.fromkeys(_TRIPLE_MARKER.findall(sentence)) if m in triples]
    plain = re.sub(r"[ \t]{2,}", " ", _BRACKET.sub("", sentence)).strip()
    body, end = re.match(r"(.*?)([.!?]*)$", plain, re.DOTALL).groups()
    if _denies(body):
        return None
    cue = _last_cue(body)
    stated = [m for m in markers if states(body, cue, triples[m]) is None]
    passages = list(dict.fromkeys(re.findall(r"\[(P\d+)\]", sentence)))
    if not stated:
        return None
    return re.sub(r"[ \t]+([.,;:!?])", r"\1", body.rstrip()) + "".join(f" [{m}]" for m in (*stated, *passages)) + end


def check_markers(sentences_: Iterable[str], triples: Mapping[str, Triple], seeds: Iterable[str],
                  mentions: Callable[[str, str], bool]) -> MarkerCheck:
    """A ``[T<n>]`` must close a clause that says what its triple says: every end of the triple that is not one
    of the question's seeds must be named in the clause, the text since the previous run of markers
    (``mentions(clause, entity_id)``); the seeds may stay implicit ("It can cause nausea [T2]" about metformin).

    A marker that fails ("It can cause oedema [T3]" where T3 is amlodipine - fatigue) is replaced by the marker of
    an evidence triple the clause does state (T2, amlodipine - oedema: small models often cite the neighbouring
    line), or dropped when another marker of the same clause stands. A sentence with a clause left with no
    marker is dropped whole: that claim was pinned on facts that do not state it. A fact between two seeds
    needs its object named ("metformin can cause nausea [T1]", not "... stomach pain [T1]"). The relation is
    checked by the sentence's last cue before the marker: "can cause" does not fit a ``treats`` fact, nor
    "helps" a side effect. A clause that denies ("my sources do not say that allopurinol treats gout [T1]")
    states no fact, so no triple marker fits it (reported as ``DENIED``). Passage markers are not checked here."""
    seeds = set(seeds)

    def states(clause: str, cue: str | None, triple: Triple) -> str | None:
        return _states(clause, cue, triple, seeds, mentions)

    kept, removed, recited, dropped = [], [], [], []
    for sentence in sentences_:
        if not any(m in triples for m in _TRIPLE_MARKER.findall(sentence)):
            kept.append(sentence)
            continue
        out, unsourced = [], False
        end = 0
        for match in _CLAUSE.finditer(sentence):
            clause, run = match.group(1), match.group(2)
            end = match.end()
            plain = _BRACKET.sub("", clause)
            cue = _last_cue(_BRACKET.sub("", sentence[:match.start(2)]))
            markers = re.findall(r"\[([TP]\d+)\]", run)
            denied = _denies(plain)  # a denial states no fact: no marker fits it, none is looked for
            shown: list[str] = []
            for marker in markers:
                if marker not in triples:  # a passage: kept as it is
                    shown.append(marker)
                    continue
                missing = DENIED if denied else states(plain, cue, triples[marker])
                if missing is None:
                    shown.append(marker)
                    continue
                removed.append((marker, missing))
                better = None if denied else next((m for m, t in triples.items() if m not in markers
                                                   and m not in shown and states(plain, cue, t) is None), None)
                if better is not None:
                    recited.append((marker, better))
                    shown.append(better)
            unsourced |= not shown  # the clause's claim rests on no marker that states it
            out.append(clause.rstrip() + "".join(f" [{m}]" for m in dict.fromkeys(shown)))
        out.append(sentence[end:])
        if unsourced:
            repaired = _whole_sentence(sentence, triples, states)
            if repaired is None:
                dropped.append(sentence)
                continue
            kept.append(repaired)  # "Salbutamol [T1] and salbutamol [T2] are used to treat asthma": markers moved
            continue
        text = "".join(out)
        kept.append(re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", text)).strip())
    return MarkerCheck(tuple(kept), tuple(removed), tuple(recited), tuple(dropped))
