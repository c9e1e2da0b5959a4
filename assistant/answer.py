"""The answer pipeline: a question goes in, a grounded, cited, safe ``Answer`` comes out.

    triage -> scope -> link -> subgraph -> literature -> prompt -> generate -> cite and verify

``Assistant.prepare`` runs everything up to generation and returns a ``Prepared`` (a fixed message, or the exact
messages for the generator and their evidence block); ``Assistant.stream`` generates from it, yielding the text
pieces as they come, then the final ``Answer``; ``answer`` returns only the ``Answer``. Decisions, in order:

* **triage** (``assistant.safety``) runs on every turn before anything else, for both audiences, with the
  earlier user turns as context; once the question is linked, its findings are checked too. An emergency returns
  the emergency message alone (no retrieval, no generation: the person should act, not read); a message not in
  English gets a short note saying so and when to call the emergency number; a message that *may* be urgent
  (something happening now) gets a safety net first (when to call the emergency number or a crisis line), then
  the answer, and never one of the fixed replies below.
* **scope**: the triage classifier's health relevance decides it (a follow-up that carries the previous turn's
  seeds is in scope): a message not about health gets a polite redirection; a word nothing knows ("zorblatine":
  not English, not in the KG or the literature, not a typo of a known word) gets "I don't know ..."; a health
  question that links to nothing, or whose entities have no evidence, gets the honest "my sources don't cover
  this" (``abstained``). Nothing is generated in these cases, so nothing can be invented.
* **follow-ups**: entities of earlier turns are passed to the linker as context, and a question with an
  anaphor ("its side effects?", "what about for children?") or without entities of its own carries the
  previous turn's seeds.
* **evidence**: the seeds' ranked KG neighbourhood (relations the question asks for first; triples joining
  two seeds first of all), then literature passages about a seed; numbered ``[T<n>]``/``[P<n>]`` and kept in a
  token budget by dropping whole items (``assistant.evidence``). User text is neutralised (``[T1]`` -> ``T1``)
  before it enters the prompt, so it can never pose as evidence.
* **citations** (``assistant.citations``): markers are resolved against exactly the prompt's evidence; unknown
  ones are removed and flagged. A sentence without a marker that names both ends of an evidence triple gets that
  triple's marker (``attribute``, flagged "attributed"). An answer that still cites nothing is followed by the
  evidence it was given.
* **verification**: a sentence that names a drug or disease absent from the evidence and the question is
  **removed** (and listed in ``Answer.unsupported`` and ``flags``), with a note saying how many were removed:
  this is medical software, so an unsupported claim is not shown, even marked. A ``[T<n>]`` must sit on a
  clause that names every end of its triple that is not one of the question's seeds, and whose cue words
  ("can cause", "helps") fit the triple's relation (``citations.check_markers``): a marker on a fact the clause
  does not state is replaced by the marker of the evidence triple the clause does state, or removed, and a
  sentence left with none of its markers is removed as unsupported too. A sentence saying the sources lack a
  fact the evidence holds ("My sources do not say that lisinopril can cause dry cough" beside that very triple,
  ``citations.contradicted``) is removed, counted as unsupported, and, unless the answer cites it elsewhere, the
  fact is stated after the answer as the evidence states it ("Correction: my sources do say this: ..."), without
  a marker: the model did not cite it.
"""

from __future__ import annotations

import functools
import itertools
import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.citations import (
    DENIED,
    UNSOURCED_FLAG,
    UNSUPPORTED_ENTITY_FLAG,
    VERIFIED_TYPES,
    check_markers,
    clean_text,
    contradicted,
    names,
    negates,
    neutralise,
    resolve,
    sentences,
    unfinished,
    unsourced,
    unsupported_sentences,
)
from assistant.evidence import EvidenceBlock, build_evidence, plain, strip_echo
from assistant.linking import Linker
from assistant.linking_text import STOPWORDS, fold_token, name_key, tokenize
from assistant.literature import LiteratureIndex
from assistant.prompts import PromptSet
from assistant.relevance import DEFAULT_RELATIONS, Relevance
from assistant.safety.advice import personal_request
from assistant.safety.english import EnglishWords
from assistant.safety.triage import Triager
from assistant.types import DECLINED_FLAG, Answer, Audience, EntityMention, Passage, Tier, Triage, Triple
from kg.store import KnowledgeGraph
from kg.subgraph import neighbourhood, paths, ranked_edges
from kg.vocab import SIGNATURES, SYMPTOM_RELATIONS, EntityType, Relation

if TYPE_CHECKING:
    from assistant.generation import Generator

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 2000
#: generated text read per token of the limit: a token is a few characters, so only a generator that ignores its
#: limit (a remote server) reaches this; beyond it the stream is closed and the checks read no further
MAX_CHARS_PER_TOKEN = 16
SEED_TYPES = frozenset({EntityType.DISEASE, EntityType.COMPOUND, EntityType.SYMPTOM, EntityType.SIDE_EFFECT,
                        EntityType.PHARMACOLOGIC_CLASS, EntityType.GENE})

TREATMENT_RELATIONS = (Relation.TREATS, Relation.PALLIATES, Relation.INDICATED_FOR)

#: what the question asks about -> the relations ranked first
INTENTS: tuple[tuple[re.Pattern, tuple[Relation, ...]], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), relations) for pattern, relations in (
        (r"side[- ]?(?:effects?|affects?|efects?|effets?|effecs?)|adverse|reactions?|"
         r"(?:make|makes|made|give|gives|gave) (?:me|you)|"
         r"(?:make|makes|made) (?:your|my|his|her|their)\b(?!(?: \w+){1,3} (?:better|stronger|go away|easier|heal))|"
         r"mess(?:es|ed)? (?:with|up)|upset(?:s|ting)? (?:your|my|his|her|the)|cause(?:s|d)? (?:me )?|"
         r"safe|\b(?:SEs?|ADRs?|AEs)\b|how (?:often|common|likely|rare)|downsides?|"
         r"(?:could|can|might|would) (?:that|this|it|these|those) be (?:from |caused by )?(?:the|my|his|her|their|"
         r"that|those|these) (?:\w+ ){0,2}(?:tablets?|pills?|medicines?|medications?|meds|drugs?|jabs?|injections?)\b|"
         r"(?:could|can|might|would) (?:that|this|it|these|those) be (?:from|caused by) (?:that|it|them|those|this|"
         r"the|my|his|her|their)\b",
         (Relation.CAUSES_SIDE_EFFECT,)),
        (r"\b(?:treat\w*|help\w*|cure\w*|therap\w*|medicin\w*|medication\w*|drugs?|pills?|tablets?|meds|creams?|"
         r"inhalers?|jabs?|injections?|antivirals?|antibiotics?|abx|antifungals?|manage\w*|used (?:for|to)|"
         r"first[- ]line|second[- ]line|pharmacotherapy|indicat\w*|licen[cs]ed|approved for|prescri\w*|good for|"
         r"take for|(?:start|started|put)"
         r" (?:on|with)|options?|remed\w*|reliev\w*|relief|get rid of|go[- ]to|mainstay|drug of choice|tx|rx|mx|mgmt|"
         r"what (?:else )?(?:do|does|should|can|could|would|to) (?:i|you|we|he|she|they|people|doctors?|one) "
         r"(?:usually |normally |typically |often |generally )?(?:take|use|give|"
         r"try|prescribe|do)|works? (?:for|on|against)|agents?|regimens?|"
         r"what (?:stops|fixes|eases|settles|calms|clears|shifts|gets rid of)|"
         r"best (?:thing|stuff|medicine|meds|tablets?|pills?|treatment|option)|to take (?:for|when)|"
         r"what(?:'s|s| is| are) (?!(?:the )?(?:risk|tests?|signs?|symptoms?|genes?)\b)[\w' -]{2,40} for(?=\W*$)|"
         r"GDMT|(?:make|makes|get|gets) (?:\w+ ){1,3}(?:better|stronger|go away|heal))\b",
         TREATMENT_RELATIONS),
        (r"\b(?:symptoms?|signs?|present\w*|manifest\w*|phenotypes?|feel like|what happens|look like|"
         r"how (?:do|would|can|will) (?:i|you|we|one) (?:know|tell)|tell if|features?|clinical picture|"
         r"(?:could|can|might|would) (?:that|this|it|these|those) (?:be|mean)(?!\s+(?:from|caused|the|my|his|her|"
         r"their|that|those|these)\b)|does (?:that|this|it) mean (?:i|he|she)|"
         r"could (?:i|he|she|they) (?:have|be getting))\b",
         (Relation.HAS_SYMPTOM, Relation.HAS_PHENOTYPE)),
        (r"\b(?:class|kind of|type of|group|SSRIs?|SNRIs?|NSAIDs?|inhibitors?|blockers?|agonists?|antagonists?|"
         r"diuretics?|water pills?|antibiotics?|antibacterials?|antihistamines?|opioids?|statins?|macrolides?|"
         r"penicillins?|steroids?|corticosteroids?|antidepressants?|anticoagulants?|blood thinners?|benzos?|"
         r"benzodiazepines?|painkillers?|sleeping (?:pills?|tablets?)|opioids?|opiates?|ARBs?)\b",
         (Relation.IN_CLASS,)),
        (r"\b(?:genes?|genetic\w*|mutations?|inherit\w*|hereditary)\b", (Relation.ASSOCIATED_WITH_GENE,)),
        (r"\b(?:targets?|binds?|mechanism|receptors?|acts? (?:on|at)|works? (?:on|at) (?:which|what)|"
         r"(?:which|what) (?:protein|enzyme|receptor))\b", (Relation.BINDS_GENE,)),
        (r"\b(?:where|located|organ|body part)\b", (Relation.LOCATED_IN,)),
        (r"\b(?:similar|resembl\w*|alternatives?)\b", (Relation.RESEMBLES,)),
    ))
#: a follow-up that asks the previous question of something else ("and escitalopram?", "what about for kids?")
_ELLIPSIS = re.compile(r"^\s*(?:and|what about|how about|same (?:for|with)|also)\b", re.IGNORECASE)
#: a measurement said to be high or low ("my blood pressure is too high", "her potassium keeps going low"): the
#: condition is named "high blood pressure", "low potassium"
_LEVEL = re.compile(r"\b(?P<what>(?:blood )?(?:pressure|sugars?|glucose|cholesterol|potassium|sodium|iron|calcium|"
                    r"thyroid|heart ?rate|pulse|platelets?|b12|vitamin d))(?: levels?| readings?)?\s+"
                    r"(?:is|are|was|were|gets?|keeps?|has been|have been|runs?|'s|going|goes)\s+"
                    r"(?:\w+\s+){0,2}?(?P<level>high|low)\b", re.IGNORECASE)
#: the question asks for the other members of a class ("what other ones are in that group?", "are there others
#: like it?", "what else is in the same class"): a drug beside the class is the example, not the topic
_OTHER_MEMBERS = re.compile(r"\b(?:other|others|else)\b(?:\W+\w+){0,5}?\W+(?:group|class|type|kind|family|ones|"
                            r"like (?:it|that|this|them))\b|\bothers like (?:it|that|this)\b|"
                            r"\b(?:besides|apart from|other than|as well as)\b", re.IGNORECASE)
#: a word that points back at the earlier turn's drug or disease
_PRONOUN = re.compile(r"\b(?:it|its|it's|they|them|their|this|that|these|those)\b", re.IGNORECASE)
#: a follow-up of at most three words ("citalopram?", "the prozac one?"): it asks what the previous turn asked
_SHORT = re.compile(r"^\W*[\w'-]+(?:\s+[\w'-]+){0,2}\W*$")
#: a follow-up naming a drug as one more of the previous answer's list ("is keppra one?", "does tiotropium count?",
#: "does topamax help as well?")
_LIST_MEMBER = re.compile(r"\b(?:one|ones|count|counts|as well|too|also|either|instead|another)\b", re.IGNORECASE)
#: a medicine named as not working ("tylenol doesnt touch it", "my ventolin isnt really enough", "tried painkillers"):
#: the question asks what else helps
_FAILED_AFTER = re.compile(r"^\W*(?:[\w']+\W+){0,3}?(?:do(?:es)?n'?t|did(?:n'?t| not)|do(?:es)? not|is(?:n'?t| not)|"
                           r"are(?:n'?t| not)|won'?t|never|no longer|not)\W+(?:[\w']+\W+){0,2}?(?:help\w*|work\w*|"
                           r"touch\w*|do\w* (?:anything|much|a thing)|enough|effective|shift\w*|cutting it)\b",
                           re.IGNORECASE)
_FAILED_BEFORE = re.compile(r"\b(?:tried|already (?:on|taking|take|tried)|besides|other than|apart from|instead of|"
                            r"except)\s+(?:[\w']+\s+){0,2}$", re.IGNORECASE)
_ANAPHOR = re.compile(r"\b(?:it|its|it's|they|them|their|this|that|these|those|the (?:drug|medicine|disease|"
                      r"condition|illness)|what about|how about|and for)\b", re.IGNORECASE)

#: what the KG and literature never hold: prices, insurance, stock, local services, local statistics
_NOT_COVERED = re.compile(r"\b(?:price|prices|cost|costs|how much (?:does|is) .{0,40}(?:cost|charge)|insurance|"
                          r"reimburse\w*|copay|in stock|pharmacy near|near me|open (?:now|today)|"
                          r"how many patients|last year at)\b", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z][a-z]{6,}")
#: endings of adjectives, adverbs and verb forms ("cardioselective", "hepatotoxic", "nephrotoxicity" is a noun):
#: such a word describes, it does not name a drug or disease the question hinges on
_NOT_A_NAME = re.compile(r"(?:ive|ous|ical|ful|less|able|ible|ly|ing|ed)$")
#: the kinds of personal request (``assistant.safety.advice``) as the decline names them
_REQUESTS = {"dosing": "doses", "prescription": "prescriptions", "stop_switch": "stopping or switching a medicine",
             "safe_for_me": "whether a medicine is safe for you", "child_pregnancy": "children and pregnancy"}
#: "for" and at most three words before a condition's mention ("for my bad", "for an underactive"), not after a noun
#: that makes it another question ("risk factors for", "tests for", "genes for", "symptoms for")
_FOR_CONDITION = re.compile(r"(?<!risk )(?<!factors )(?<!tests )(?<!test )(?<!testing )(?<!screening )(?<!genes )"
                            r"(?<!symptoms )(?<!signs )(?<!criteria )(?<!at risk )\bfor(?:\s+[\w'-]+){0,3}\s*$",
                            re.IGNORECASE)
_CONDITION_TYPES = frozenset({EntityType.DISEASE, EntityType.SYMPTOM, EntityType.SIDE_EFFECT})
#: a question about relief of an attack or a flare (symptomatic relief first)
_ACUTE = re.compile(r"\b(?:acute|abortive|attacks?|flares?|flare-ups?|flaring|rescue|once (?:it|they)(?:'ve| have)? "
                    r"(?:started|begun)|when (?:it|one) (?:starts|comes on)|relie\w*|symptomatic)\b", re.IGNORECASE)
#: a question asking how often something happens
_HOW_OFTEN = re.compile(r"\b(?:how (?:often|common|likely|rare|frequent\w*)|frequency|incidence|rate of|chance of|"
                        r"percentage|what percent)\b", re.IGNORECASE)
#: a mention this sure, of a drug, disease or drug class, makes a question medical (see ``prepare``)
_NAMED_SCORE = 0.85
_TOPIC_TYPES = frozenset({EntityType.DISEASE, EntityType.COMPOUND, EntityType.PHARMACOLOGIC_CLASS})
#: words of a finding's name that say how a disease runs, not which disease it is ("Gout flare" is gout)
_COURSE_WORDS = frozenset({"acute", "chronic", "primary", "secondary", "flare", "flares", "attack", "attacks",
                           "episode", "stable", "unstable", "mild", "moderate", "severe", "recurrent", "exacerbation",
                           "uncomplicated", "simple"})


@dataclass(frozen=True)
class AnswerConfig:
    # the prompt's new tokens are the time to first token on a CPU (llama.cpp reads ~220 tokens/s here; the
    # system prompt is cached between questions), so the evidence block is kept to ~260 tokens
    triples: int = 6  # KG facts retrieved (before the token budget)
    passages: int = 2  # literature passages
    evidence_tokens: int = 260  # budget of the evidence block
    passage_words: int = 40  # excerpt length in the prompt
    max_sentences: dict[Audience, int] = field(default_factory=lambda: {Audience.PATIENT: 4,
                                                                        Audience.CLINICIAN: 6})
    max_new_tokens: dict[Audience, int] = field(default_factory=lambda: {Audience.PATIENT: 160,
                                                                         Audience.CLINICIAN: 220})
    temperature: float = 0.0  # greedy: the same evidence gives the same answer
    stop: tuple[str, ...] = ("\nQuestion:", "\nEvidence:", "<|im_end|>")
    min_link_score: float = 0.5
    max_seeds: int = 3


_CLASS_WORDS = {"reuptake": "uptake", "blocker": "antagonist", "blockers": "antagonist", "blocking": "antagonist",
                "antagonists": "antagonist", "inhibitors": "inhibitor", "agonists": "agonist"}
_CLASS_FILLER = frozenset({"agent", "agents", "drug", "drugs", "compound", "compounds", "class", "of"})


def class_key(name: str) -> str:
    """A drug class's name as a bag of normalised words: "beta-Adrenergic Blocker", "Adrenergic beta-Antagonists"
    and "beta-adrenergic antagonist" share one key; so do "Diuretics" and "diuretic"."""
    words = []
    for word in re.findall(r"[a-z0-9]+", name.lower()):
        word = _CLASS_WORDS.get(word, word)
        if word in _CLASS_FILLER:
            continue
        words.append(word[:-1] if word.endswith("s") and not word.endswith("ss") and len(word) > 3 else word)
    return " ".join(sorted(words))


def _no_disease_asked(asked: Sequence[Relation]) -> bool:
    """Relations are asked and none of them takes a disease (side effects, classes, targets): a disease carried
    over from the previous turn is not what the question is about."""
    return bool(asked) and not any(EntityType.DISEASE in SIGNATURES[r] for r in asked)


def _triage_flag(check: Triage) -> str:
    """"triage: cardiac (rules)", "triage: possible suicide (classifier)"."""
    tier = "" if check.urgent else f"{check.tier.value} "
    return f"triage: {tier}{check.category or 'general'} ({', '.join(check.triggers)})"


#: "drug class?", "what type of medicine is gabapentin?": the drug and medicine nouns ask for the class, not uses
_CLASS_QUESTION = re.compile(r"\b(?:drug|medicine|medication) (?:class|group|family)\b|\b(?:type|kind|class|group|sort)"
                             r" of (?:drug|medicine|medication|pill|tablet)\b", re.IGNORECASE)


_TREATMENT_INTENT = next(pattern for pattern, relations in INTENTS if relations == TREATMENT_RELATIONS)
_MEDICINE_NOUN = re.compile(r"(?:medicin\w*|medication\w*|drugs?|pills?|tablets?|meds|creams?|inhalers?|jabs?|"
                            r"injections?)", re.IGNORECASE)
#: a question that asks what a drug is: "is X a benzo?", "what class/kind of drug"
_CLASS_ASKED = re.compile(r"\b(?:class|kind of|type of|group)\b|^\W*(?:is|are|isn'?t|aren'?t)\s+[\w' -]{2,40}?\s+"
                          r"(?:a|an|one of the|one of)\s", re.IGNORECASE)


def asked_relations(question: str) -> tuple[Relation, ...]:
    """The relations the question asks about, in ``INTENTS`` order. A class word beside another intent only
    describes a drug ("side effects of the water pill hydrochlorothiazide", "do blood thinners like eliquis make you
    bruise") unless the question asks what the drug is ("is lasix a water pill?")."""
    if _CLASS_QUESTION.search(question):
        return (Relation.IN_CLASS,)
    asked = tuple(dict.fromkeys(r for pattern, relations in INTENTS if pattern.search(question) for r in relations))
    if Relation.IN_CLASS in asked and len(asked) > 1 and not _CLASS_ASKED.search(question):
        asked = tuple(r for r in asked if r is not Relation.IN_CLASS)
    # "what are the side effects of the water pill ...": a medicine noun beside another intent only names the drug
    if Relation.TREATS in asked and set(asked) - set(TREATMENT_RELATIONS) and all(
            _MEDICINE_NOUN.fullmatch(m.group()) for m in _TREATMENT_INTENT.finditer(question)):
        asked = tuple(r for r in asked if r not in TREATMENT_RELATIONS)
    return asked


def _content_words(text: str) -> set[str]:
    return {t.key for t in tokenize(text) if len(t.key) > 2 and t.key not in STOPWORDS}


def attribute(sentences_: list[str], block: EvidenceBlock, most: int = 2,
              overlap: float = 0.8) -> tuple[list[str], list[str]]:
    """Post-hoc attribution: a sentence without a marker that names both ends of an evidence triple (its subject
    and object names, whole words) and holds no negation gets that triple's marker, at most ``most`` per
    sentence; one that names no triple but whose content words (at least four) are, to ``overlap`` or more, words
    of a passage excerpt the prompt held gets that passage's marker (the model copied it, or nearly).
    Small models state the fact and forget the marker; the fact is still checkable. Returns the sentences and the
    markers added."""
    excerpts = {line[1:line.index("]")]: _content_words(line[line.index("]") + 1:])
                for line in block.lines if line.startswith("[P")}
    out, added = [], []
    for sentence in sentences_:
        if re.search(r"\[[TP]\d+\]", sentence):
            out.append(sentence)
            continue
        found = [] if negates(sentence) else [  # "X is not known to treat Y" states no fact
            marker for marker, t in block.triples.items()
            if names(t.subject_name, sentence) and names(t.object_name, sentence)][:most]
        words = _content_words(sentence)  # a passage's words, negations included, are the passage's statement
        if not found and len(words) >= 4 and excerpts:
            share, marker = max((len(words & e) / len(words), m) for m, e in excerpts.items())
            found = [marker] if share >= overlap else []
        if found:
            body, end = re.match(r"(.*?)([.!?]*)$", sentence, re.DOTALL).groups()
            sentence = body + "".join(f" [{m}]" for m in found) + end
            added += found
        out.append(sentence)
    return out, list(dict.fromkeys(added))


@dataclass(frozen=True)
class Prepared:
    """A question made ready for generation (``Assistant.prepare``). Either ``situation`` names a fixed-message
    case ("empty", "triage", "out_of_scope", "unknown_term", "not_covered", "no_evidence") whose ``fixed_text``
    is the whole reply, or ``messages`` (system + user, exactly what the generator is sent) and the evidence
    ``block`` they number are set. ``flags`` are those of the stages so far (a fixed message's are final);
    ``timings`` stage -> seconds so far, ``started`` the ``time.perf_counter()`` the question arrived at."""

    question: str  # stripped, cut to MAX_QUESTION_CHARS
    audience: Audience
    started: float
    timings: dict[str, float]
    flags: tuple[str, ...] = ()
    triage: Triage | None = None
    mentions: tuple[EntityMention, ...] = ()
    seeds: tuple[str, ...] = ()
    asked: tuple[Relation, ...] = ()
    situation: str | None = None
    fixed_text: str | None = None
    messages: tuple[dict[str, str], ...] = ()
    block: EvidenceBlock | None = None
    gaps: tuple[str, ...] = ()  # notes: an asked kind of fact the KG holds none of for a seed ("no side effects")


#: the kinds of fact a question lists, as a gap note names them
_LISTED = ((frozenset(TREATMENT_RELATIONS), "treatments or uses"),
           (frozenset({Relation.CAUSES_SIDE_EFFECT}), "side effects"),
           (frozenset({Relation.HAS_SYMPTOM, Relation.HAS_PHENOTYPE}), "symptoms or signs"),
           (frozenset({Relation.ASSOCIATED_WITH_GENE}), "associated genes"),
           (frozenset({Relation.BINDS_GENE}), "targets"))


class Assistant:
    """One assistant over an opened KG, linker, literature index and generator; ``open`` builds it from disk."""

    def __init__(self, kg: KnowledgeGraph, linker: Linker, literature: LiteratureIndex | None, generator,
                 triager: Triager, prompts: PromptSet | None = None, config: AnswerConfig | None = None,
                 writers: Mapping[Audience, object] | None = None) -> None:
        self.kg, self.linker, self.literature, self.generator = kg, linker, literature, generator
        # an audience's own writer instead of the generator ("kg": the ranked facts in the KG's words for
        # clinicians, see ``open``)
        self.writers = dict(writers or {})
        self.triager = triager
        self.relevance = Relevance(kg, literature)
        self.english = triager.language.english if triager.language is not None else EnglishWords()
        self.prompts = prompts or PromptSet.load()
        self.config = config or AnswerConfig()

    @classmethod
    def open(cls, generator: str | Generator = "auto", kg_data_dir: Path | None = None,
             index_dir: Path | None = None, linking_dir: Path | None = None, embedding: bool = True,
             locale: str | None = None, clinician_writer: str = "kg", **generator_options) -> Assistant:
        """The assistant on the built artefacts (``make run`` builds them; each missing one is an error naming
        its build command). ``generator``: a ``make_generator`` kind, or a ready generator object.
        ``clinician_writer``: "kg" (default) writes clinicians' answers as the ranked facts in the KG's words
        (``assistant.kg_writer``: no unsupported entity, the first-ranked facts first), "model" by the generator;
        patients' answers are always the generator's (plainer words: reading grade 5.7 against 8.1 for the
        KG's wording on blind batch 15)."""
        from assistant.embedding import MiniLMEmbedder
        from assistant.generation import make_generator
        from assistant.linking import LinkerConfig
        from assistant.linking_index import DEFAULT_LINKING_DIR, open_name_index
        from assistant.literature import DEFAULT_DATA_DIR as INDEX_DIR
        from assistant.safety.triage import open_triager
        from kg.store import DEFAULT_DATA_DIR as KG_DIR

        kg = KnowledgeGraph.open(kg_data_dir or KG_DIR)
        embedder = MiniLMEmbedder(threads=1)  # one short query at a time: more threads only contend
        name_index = open_name_index(kg, embedder, linking_dir or DEFAULT_LINKING_DIR) if embedding else None
        linker = Linker(kg, LinkerConfig(), embedder if embedding else None, name_index)
        literature = LiteratureIndex.open(embedder, index_dir or INDEX_DIR, kg)
        triager = open_triager(embedder, kg, linker, locale)
        embedder.encode(["warm up"])  # load the models now, not during the first question
        triager.assess("warm up")
        if isinstance(generator, str):
            generator = make_generator(generator, **generator_options)
        writers = {}
        if clinician_writer == "kg":  # clinicians get the ranked facts in the KG's words (assistant.kg_writer)
            from assistant.kg_writer import KGWriter

            writers[Audience.CLINICIAN] = KGWriter()
        elif clinician_writer != "model":
            raise ValueError(f"clinician_writer must be 'model' or 'kg', not {clinician_writer!r}")
        assistant = cls(kg, linker, literature, generator, triager, writers=writers)
        assistant.relevance.warm()
        return assistant

    # --- the pipeline ---------------------------------------------------------------------------

    def answer(self, question: str, history: Sequence[Answer] = (), audience: Audience = Audience.PATIENT) -> Answer:
        result = None
        for item in self.stream(question, history, audience):
            result = item
        return result

    def prepare(self, question: str, history: Sequence[Answer] = (),
                audience: Audience = Audience.PATIENT) -> Prepared:
        """Everything before generation: triage, scope, link, subgraph, literature, evidence block and prompt.
        The result either names a ``situation`` with its ``fixed_text`` (nothing is to be generated) or holds
        the ``messages`` the generator is to be sent and the evidence ``block`` they number."""
        audience = Audience(audience)
        started = time.perf_counter()
        timings: dict[str, float] = {}

        def lap(stage: str, since: float) -> float:
            now = time.perf_counter()
            timings[stage] = round(now - since, 4)
            return now

        def fixed(situation: str, text: str, **fields) -> Prepared:
            return Prepared(question=question, audience=audience, started=started, timings=timings,
                            situation=situation, fixed_text=text, **fields)

        def possible_no_answer(check: Triage, linked: dict) -> Prepared:
            """The safety net (when to call the emergency number or a crisis line), then that the sources have no
            answer: what someone who may be describing what happens now gets instead of a fixed fallback."""
            net = check.message or self.triager.messages.safety_net(check.category, audience)
            text = net + "\n\n" + self.prompts.message("possible_no_answer", audience)
            return fixed("possible_no_answer", text, **linked, flags=(*flags, "possible_no_answer"), triage=check)

        question = clean_text(question or "").strip()  # lone surrogates and control characters: see clean_text
        flags: list[str] = []
        if not question:
            return fixed("empty", self.prompts.message("empty", audience), flags=("empty",))
        if len(question) > MAX_QUESTION_CHARS:
            flags.append(f"question cut from {len(question)} to {MAX_QUESTION_CHARS} characters")
            question = question[:MAX_QUESTION_CHARS]

        t = time.perf_counter()
        check = self.triager.assess(question, audience, [clean_text(answer.question) for answer in history])
        t = lap("triage", t)
        if check.urgent:  # the emergency message alone: the person should act, not read
            return fixed("triage", check.message, triage=check, flags=(*flags, _triage_flag(check)))
        if check.language:  # not English: say so, and when to call the emergency number
            return fixed("non_english", check.message, triage=check, flags=(*flags, "non_english"))

        asked = asked_relations(question)
        if not asked and history and (_ELLIPSIS.search(question) or self._bare_name(question)):
            # "and escitalopram?" or "citalopram?" after "what class is it?"
            asked = tuple(Relation(r) for r in history[-1].asked)
        mentions, seeds, carried, asked = self._link(question, history, asked, check.in_scope)
        t = lap("link", t)
        check = self.triager.with_findings(check, question, mentions, audience)
        if check.urgent:
            return fixed("triage", check.message, triage=check, flags=(*flags, _triage_flag(check)))
        linked = {"mentions": mentions, "seeds": tuple(seeds), "asked": asked}
        request = personal_request(question) if check.in_scope or seeds else None
        if request:  # the KG holds general facts: personal dosing, prescribing, stopping, children and pregnancy
            net = check.message + "\n\n" if check.tier is Tier.POSSIBLE and check.message else ""
            situation = "child_pregnancy" if request == "child_pregnancy" else "personal_advice"
            text = net + self.prompts.message(situation, audience, what=_REQUESTS[request])
            return fixed(situation, text, **linked, triage=check, flags=(*flags, f"{DECLINED_FLAG}: {request}"))
        if carried:
            flags.append("follow-up: carried " + ", ".join(carried))
        if check.tier is Tier.POSSIBLE:
            flags.append(_triage_flag(check))
        # scope is the classifier's health relevance; a follow-up carrying the previous turn's seeds is in scope,
        # and so is anything that may be urgent or may describe something happening now
        at_risk = check.tier is Tier.POSSIBLE or check.situational
        # a drug, disease or class named plainly makes a question medical whatever the classifier thinks of a terse
        # text ("first-line for T2DM?", "and apixaban's main SEs?")
        named = any(m.score >= _NAMED_SCORE and m.entity_id in seeds and m.method not in ("fuzzy", "embedding")
                    and EntityType(m.entity_type) in _TOPIC_TYPES for m in mentions)
        in_scope = check.in_scope or bool(carried) or at_risk or named
        check = replace(check, in_scope=in_scope)
        # an unknown word is answered around, not refused, for someone who may be describing what happens now
        unknown = self._unknown_term(question, mentions) if in_scope and not at_risk else None
        situation = ("out_of_scope" if not in_scope else "unknown_term" if unknown
                     else "not_covered" if _NOT_COVERED.search(question) else "no_evidence" if not seeds else None)
        if situation and at_risk and situation != "not_covered":
            # never "out of scope", "unknown word" or "no evidence" for someone describing what is happening now
            return possible_no_answer(check, linked)
        if situation:
            return fixed(situation, self.prompts.message(situation, audience, term=unknown), **linked,
                         flags=(*flags, situation), triage=check)

        triples = self._triples(seeds, asked, question)
        gaps = self._gaps(seeds, asked, triples, audience)
        flags += [f"kg gap: {gap}" for gap in gaps]
        t = lap("subgraph", t)
        passages = self._passages(question, seeds)
        t = lap("literature", t)
        block = build_evidence(triples, passages, self.config.evidence_tokens, self.generator.count_tokens,
                               self.config.passage_words)
        if not block.items:
            if at_risk:
                return possible_no_answer(check, linked)
            return fixed("no_evidence", self.prompts.message("no_evidence", audience), **linked,
                         flags=(*flags, "no_evidence"), triage=check)
        if block.dropped:
            flags.append(f"evidence budget: dropped {len(block.dropped)} item(s)")
        messages = self._messages(question, history, audience, block)
        lap("prompt", t)
        return Prepared(question=question, audience=audience, started=started, timings=timings, **linked,
                        flags=tuple(flags), triage=check, messages=tuple(messages), block=block, gaps=tuple(gaps))

    def stream(self, question: str, history: Sequence[Answer] = (),
               audience: Audience = Audience.PATIENT) -> Iterator[str | Answer]:
        prepared = self.prepare(question, history, audience)
        timings = dict(prepared.timings)

        def final(text: str, more_flags: Sequence[str] = (), **fields) -> Answer:
            timings["total"] = round(time.perf_counter() - prepared.started, 4)
            return Answer(question=prepared.question, audience=prepared.audience, text=text, timings=timings,
                          flags=(*prepared.flags, *more_flags), entities=prepared.mentions, seeds=prepared.seeds,
                          asked=tuple(r.value for r in prepared.asked or ()), triage=prepared.triage, **fields)

        if prepared.situation:
            if prepared.situation != "empty":  # an empty question gets its prompt as the Answer only
                yield prepared.fixed_text
            yield final(prepared.fixed_text, abstained=prepared.situation != "triage")
            return

        # "this may be urgent": the safety net comes before the answer, in the stream and in the text
        safety_net = prepared.triage.message if prepared.triage and prepared.triage.tier is Tier.POSSIBLE else ""
        if safety_net:
            yield safety_net + "\n\n"
        t = time.perf_counter()
        pieces: list[str] = []
        first = None
        limit, length = self._answer_limit(prepared.audience), 0
        writer = self.writers.get(prepared.audience, self.generator)
        stream = writer.stream(list(prepared.messages), self._generation_config(prepared.audience))
        with closing(stream) if hasattr(stream, "close") else nullcontext():
            for piece in stream:
                if first is None:
                    first = time.perf_counter()
                    timings["first_token"] = round(first - prepared.started, 4)
                pieces.append(piece)
                yield piece
                length += len(piece)
                if length > limit:  # a generator that ignores its token limit (a remote server) is cut off
                    break
        raw = "".join(pieces).strip()
        now = time.perf_counter()
        timings["generate"] = round(now - t, 4)

        block = prepared.block
        text, cited, unsupported, more_flags = self.check(raw, prepared)
        text = f"{safety_net}\n\n{text}" if safety_net else text
        timings["verify"] = round(time.perf_counter() - now, 4)
        yield final(text, more_flags, citations=cited, evidence=tuple(block.items.values()),
                    unsupported=unsupported, raw_text=raw)

    # --- stages -----------------------------------------------------------------------------------

    def _link(self, question: str, history: Sequence[Answer], asked: tuple[Relation, ...], relevant: bool = True
              ) -> tuple[tuple[EntityMention, ...], list[str], list[str], tuple[Relation, ...]]:
        """(mentions, seed ids, ids carried over from the previous turn, the relations asked). The relations asked
        say which types to prefer: "what treats high blood pressure" wants the disease, not the HPO finding of
        the same name. "Cause" with no drug in sight asks for a disease's symptoms ("does influenza cause
        muscle aches?"), not for side effects: linked again for those."""
        found = self._link_for(question, history, asked, relevant)
        if not asked and any(_FOR_CONDITION.search(question[:m.start]) for m in found[0]
                             if EntityType(m.entity_type) in _CONDITION_TYPES):
            # "whats best for heartburn", "anything for osteoporosis?", "GDMT for HFrEF?": a condition after "for"
            # asks what is used for it
            asked = TREATMENT_RELATIONS
            found = self._link_for(question, history, asked, relevant)
        drugs = (EntityType.COMPOUND, EntityType.PHARMACOLOGIC_CLASS)  # "do statins cause muscle pain?" stays
        if Relation.CAUSES_SIDE_EFFECT in asked and not any(
                self.kg.entity(e).type in drugs for seed in found[1] for e in self.concept(seed)):
            swapped = [x for r in asked for x in (SYMPTOM_RELATIONS if r is Relation.CAUSES_SIDE_EFFECT else (r,))]
            asked = tuple(dict.fromkeys(swapped))
            found = self._link_for(question, history, asked, relevant)
        return (*found, asked)

    def _levels(self, question: str, mentions: Sequence[EntityMention], wanted: set) -> list[EntityMention]:
        """"My blood pressure is too high": the condition named "high blood pressure", where the words of the
        sentence do not name it and no disease or finding was found there; in a question asking about treatments
        or signs, only where the KG has it as a disease (not HPO's "High cholesterol", which no drug treats)."""
        found = []
        for match in _LEVEL.finditer(question):
            if any(m.start < match.end() and match.start() < m.end and EntityType(m.entity_type) in _CONDITION_TYPES
                   for m in mentions):
                continue
            mention = self.linker.name_of(f"{match['level']} {match['what']}")
            if mention is None or EntityType(mention.entity_type) not in _CONDITION_TYPES:
                continue
            # asked about, it must be the disease ("signs my blood sugar is too low" are hypoglycaemia's, not the
            # diseases that list it as a phenotype); said alone ("her potassium keeps going low") the finding does
            record = self._same_concept(mention.entity_id, {EntityType.DISEASE}) if wanted else mention.entity_id
            if not wanted or self.kg.entity(record).type is EntityType.DISEASE:
                found.append(replace(mention, start=match.start(), end=match.end(), text=match.group(0)))
        return found

    def _modifier_swap(self, question: str, last: Answer) -> EntityMention | None:
        """"and ovarian?" after "genes linked to breast cancer?": the previous disease with its modifier swapped
        (ovarian cancer), when the follow-up's one or two words and the end of that disease's name make the
        name of another disease ("and type 1?" after type 2 diabetes mellitus -> type 1 diabetes mellitus)."""
        ellipsis = _ELLIPSIS.match(question)
        rest = question[ellipsis.end():].strip(" ?!.,") if ellipsis else ""
        if not 1 <= len(rest.split()) <= 2:
            return None
        for seed in last.seeds:
            if self.kg.entity(seed).type is not EntityType.DISEASE:
                continue
            words = self.kg.name(seed).split()
            for k in (1, 2):
                if len(words) <= k:
                    break
                found = self.linker.name_of(f"{rest} {' '.join(words[-k:])}", (EntityType.DISEASE,))
                if found is not None and found.entity_id != seed:
                    start = question.index(rest)
                    return replace(found, start=start, end=start + len(rest), text=rest)
        return None

    def _bare_name(self, question: str) -> bool:
        """A short follow-up that names a drug, disease or finding and asks nothing of its own ("citalopram?")."""
        if not _SHORT.match(question):
            return False
        return any(m.score >= self.config.min_link_score and EntityType(m.entity_type) in SEED_TYPES
                   for m in self.linker.link(question).mentions)

    def _link_for(self, question: str, history: Sequence[Answer], asked: tuple[Relation, ...],
                  relevant: bool) -> tuple[tuple[EntityMention, ...], list[str], list[str]]:
        """One linking pass for ``asked``: (mentions, seed ids, ids carried over from the previous turn). A
        follow-up carries the previous turn's seeds when it points back ("its side effects?") or names nothing
        of its own and is about health (``relevant``: the triage classifier's reading, "how often?")."""
        earlier = [e for answer in history[-2:] for e in (*answer.seeds, *(m.entity_id for m in answer.entities))]
        wanted = {t for relation in asked for t in SIGNATURES[relation]}
        mentions = self.linker.link(question, wanted or None, context_ids=earlier).mentions
        if history and (swapped := self._modifier_swap(question, history[-1])):
            mentions = (swapped,)
        mentions = (*mentions, *self._levels(question, mentions, wanted))
        seeds = [self._same_concept(m.entity_id, wanted, m.text) for m in mentions
                 if m.score >= self.config.min_link_score and EntityType(m.entity_type) in SEED_TYPES]
        seeds = self._topics(question, mentions, list(dict.fromkeys(seeds)), asked)
        seeds = self._most_specific(seeds)[:self.config.max_seeds]
        carried: list[str] = []
        # "how common is the diarrhoea?" after "side effects of metformin": a follow-up naming only a finding asks
        # about it for the previous turn's drug or disease
        findings_only = bool(seeds) and all(self.kg.entity(s).type in (EntityType.SIDE_EFFECT, EntityType.SYMPTOM)
                                            for s in seeds)
        # "is keppra one?" after "what do they prescribe for epilepsy": a drug named as one more of the list asks about
        # it for the previous turn's disease
        member = bool(seeds) and bool(_LIST_MEMBER.search(question)) and all(
            self.kg.entity(s).type in (EntityType.COMPOUND, EntityType.PHARMACOLOGIC_CLASS) for s in seeds)
        pointing = bool(_ANAPHOR.search(question))
        # "what about ambien?" after "is valium a benzo", "what about crestor?" after "can zocor give you muscle
        # pain": an elliptic follow-up naming a drug of its own asks the same of that drug; the earlier class,
        # disease or finding is carried, the earlier drug is not (nor a disease a side-effect question cannot use)
        swapped_drug = (bool(history) and bool(_ELLIPSIS.match(question) or _SHORT.match(question))
                        and not _PRONOUN.search(question)
                        and any(self.kg.entity(s).type is EntityType.COMPOUND for s in seeds))
        if swapped_drug:
            kept = {EntityType.PHARMACOLOGIC_CLASS, EntityType.DISEASE, EntityType.SIDE_EFFECT, EntityType.SYMPTOM}
            if _no_disease_asked(asked):
                kept.discard(EntityType.DISEASE)
            carried = [e for e in dict.fromkeys(history[-1].seeds) if e not in seeds
                       and self.kg.entity(e).type in kept][:self.config.max_seeds - len(seeds)]
            seeds += carried
        elif history and (pointing or (not seeds and (relevant or bool(asked))) or findings_only or member):
            last = history[-1]  # its seeds hold what it carried itself ("what is it used for?" -> omeprazole)
            wanted_types = ((EntityType.DISEASE, EntityType.COMPOUND) if findings_only and not pointing
                            else (EntityType.DISEASE,) if member and not pointing else SEED_TYPES)
            # a carried finding becomes the record the question asks about ("what medicines do they use for it"
            # after "signs of heart failure": HPO's finding -> DO's disease)
            previous = last.seeds or tuple(m.entity_id for m in last.entities)
            if _no_disease_asked(asked) and any(
                    self.kg.entity(e).type is EntityType.COMPOUND for e in (*seeds, *previous)):
                # "what about side effects of the allopurinol" after "what treats gout": the drug's side effects,
                # not whether it causes gout
                previous = [e for e in previous if self.kg.entity(e).type is not EntityType.DISEASE]
            previous = [self._same_concept(e, wanted) for e in previous]
            previous = [e for e in previous if self.kg.entity(e).type in wanted_types]
            carried = [e for e in dict.fromkeys(previous) if e not in seeds][:self.config.max_seeds - len(seeds)]
            seeds += carried
        if _OTHER_MEMBERS.search(question) and any(
                self.kg.entity(s).type is EntityType.PHARMACOLOGIC_CLASS for s in seeds):
            dropped = [s for s in seeds if self.kg.entity(s).type is EntityType.COMPOUND]
            seeds = [s for s in seeds if s not in dropped]
            carried = [s for s in carried if s not in dropped]
        return mentions, seeds, carried

    def _topics(self, question: str, mentions: Sequence[EntityMention], seeds: list[str],
                asked: tuple[Relation, ...]) -> list[str]:
        """The seeds the question is about: not a medicine named as not working when it asks what helps ("what can i
        take for migraines? tylenol doesnt touch it"), nor a drug class named beside one of its own drugs to
        describe it ("the water pill hydrochlorothiazide", "blood thinners like eliquis") unless the class is
        asked about. Never all of them."""
        drugs = (EntityType.COMPOUND, EntityType.PHARMACOLOGIC_CLASS)
        types = {s: self.kg.entity(s).type for s in seeds}
        dropped: set[str] = set()
        if set(asked) & set(TREATMENT_RELATIONS) and any(t not in drugs for t in types.values()):
            dropped |= {m.entity_id for m in mentions if EntityType(m.entity_type) in drugs and (
                _FAILED_AFTER.match(question[m.end:]) or _FAILED_BEFORE.search(question[:m.start]))}
        compounds = [s for s in seeds if types[s] is EntityType.COMPOUND]
        if Relation.IN_CLASS not in asked and not _CLASS_ASKED.search(question) and compounds:
            dropped |= {s for s in seeds if types[s] is EntityType.PHARMACOLOGIC_CLASS and any(
                c in self.relevance.members(same) for same in self.concept(s) for c in compounds)}
        return [s for s in seeds if s not in dropped] or seeds

    def _unknown_term(self, question: str, mentions: Sequence[EntityMention]) -> str | None:
        """A long word the question leans on that nothing here knows ("zorblatine"): not English (a spelling
        dictionary's word list), not in the KG's names or the literature, and not a typo of a known word (one edit
        away, two from 8 letters: "presure", "metformn"). Answering around it would pass off facts about something
        else. Words inside linked mentions are known."""
        covered = [(m.start, m.end) for m in mentions]
        vocabulary = self.linker.dictionary.vocabulary
        for match in _WORD.finditer(question):
            word = match.group().lower()
            if any(start <= match.start() < end for start, end in covered) or word in STOPWORDS:
                continue
            if word in self.english or fold_token(word) in vocabulary:
                continue
            if self.literature is not None and (self.literature.knows(word) or self.literature.knows(fold_token(word))):
                continue
            if self.english.near(word, vocabulary) is not None or _NOT_A_NAME.search(word):
                continue
            return match.group()
        return None

    def _same_concept(self, entity_id: str, wanted: set[EntityType], written: str = "") -> str:
        """The entity of a wanted type for the same concept (``KnowledgeGraph.same_concept``) or with the same
        name, if the linked one has a type the question does not ask about: "what treats high blood pressure"
        links HPO's Hypertension (a finding), but treatments are edges of the disease hypertension."""
        entity = self.kg.entity(entity_id)
        if not wanted or entity.type in wanted:
            return entity_id
        # a record named as the question wrote it first ("mood swings": HPO's Emotional lability, whose synonym it is,
        # -> SIDER's Mood swings), then of the same name ("diarrhea" -> SIDER's Diarrhoea), then the sources'
        # cross-references (DO cross-references diarrhea to dysentery)
        for name in (*([written] if written else []), entity.name, *entity.synonyms):
            same = [e for e in self.linker.dictionary.entries.get(name_key(name), ()) if e.entity_type in wanted]
            if same:
                return max(same, key=lambda e: (e.kind == "name", self.kg.degree(e.entity_id))).entity_id
        others = self.kg.same_concept(entity_id)
        same = [e for e in others if self.kg.entity(e).type in wanted]
        if not same:  # two steps: SIDER's Heartburn -> HPO's Gastroesophageal reflux (it lists "Heartburn" among its
            # synonyms) -> DO's gastroesophageal reflux disease
            same = [e for other in others for e in self.kg.same_concept(other) if self.kg.entity(e).type in wanted]
        if same:
            return max(same, key=lambda e: (self.kg.degree(e), e))
        for name in (entity.name, *entity.synonyms):  # "Gout flare", "Primary hypothyroidism", "Angina, stable"
            bare = " ".join(w for w in name_key(name).split() if w not in _COURSE_WORDS)
            same = [e for e in self.linker.dictionary.entries.get(bare, ()) if e.entity_type in wanted]
            if bare and bare != name_key(name) and same:
                return max(same, key=lambda e: (e.kind == "name", self.kg.degree(e.entity_id))).entity_id
        return entity_id

    def _triples(self, seeds: list[str], asked: tuple[Relation, ...], question: str = "") -> list[Triple]:
        """Facts joining two seeds first ("is nausea a side effect of metformin?" is answered by the one edge
        between them, which a hub like nausea would otherwise bury), then each seed's ranked neighbourhood,
        asked relations first, shared between the seeds so one hub does not crowd out the others."""
        joined: list[Triple] = []
        for i, first in enumerate(seeds):
            for second in seeds[i + 1:]:
                # through each one's records in other sources too: "does malaria cause fever?" links SIDER's
                # Malaria, but the symptom is an edge of DO's malaria
                for a, b in itertools.product(self.concept(first), self.concept(second)):
                    if a == b:
                        continue
                    for path in paths(self.kg, a, b, max_hops=1, limit=4, relations=tuple(Relation)):
                        joined += [t for t in path.triples if t not in joined]
        # a finding ("nausea") next to a drug or disease is what is asked about, not a topic: its hundreds of
        # other drugs are noise, so only the drugs, diseases, classes and genes are expanded
        topics = [s for s in seeds if self.kg.entity(s).type not in (EntityType.SIDE_EFFECT, EntityType.SYMPTOM)]
        expand = topics or seeds
        # the asked relations (or what a bare name asks: a disease's treatments and symptoms, a drug's uses and
        # side effects) ranked by relevance to the asker (``assistant.relevance``); then the rest of the
        # neighbourhood by evidence, for what is left of each seed's share
        ranked: dict[str, list[str]] = {}
        # "which antibiotic for cystitis": a drug class named beside a disease narrows the disease's treatments to
        # the class's members; the class itself is not a topic then
        classes = [s for s in expand if self.kg.entity(s).type is EntityType.PHARMACOLOGIC_CLASS]
        diseases = [s for s in expand if self.kg.entity(s).type is EntityType.DISEASE]
        members: frozenset[str] = frozenset()
        if classes and diseases and set(asked) & set(TREATMENT_RELATIONS):
            members = frozenset(m for c in classes for same in self.concept(c) for m in self.relevance.members(same))
            expand = [s for s in expand if s not in classes]
        acute = bool(_ACUTE.search(question))
        for seed in expand:
            wanted = asked or DEFAULT_RELATIONS.get(self.kg.entity(seed).type, ())
            scored = self.relevance.rank(seed, wanted, acute, members) if wanted else []
            if wanted and not scored and self.kg.entity(seed).type is EntityType.DISEASE:
                # "UTI": another disease record of the same name that has such facts (DO's acute cystitis, whose
                # synonym it is), else -- "pulmonary tuberculosis", "focal epilepsy": a subtype without such facts
                # is answered with its nearest ancestor's (the gap note says the subtype itself has none)
                for parent in (*self._namesakes(seed), *self._ancestors(seed)):
                    scored = self.relevance.rank(parent, wanted, acute, members)
                    if scored:
                        break
            ranked[seed] = [s.triple_id for s in scored]
        graph = neighbourhood(self.kg, expand, asked or None, hops=1, budget=max(self.config.triples * 3, 24))
        for triple in graph.triples:
            seed = triple.subject if triple.subject in expand else triple.object
            ranked.setdefault(seed, []).append(triple.id)
        # a fact joining two seeds answers a yes/no question of its relation; of another relation ("metformin treats
        # type 2 diabetes" beside "GI side effects common?") it is context, after the asked facts
        aside = [t for t in joined if asked and t.predicate not in asked]
        chosen, per_seed = [t for t in joined if t not in aside], {}
        share = max(2, self.config.triples // len(expand))
        for seed in expand:
            for triple_id in dict.fromkeys(ranked.get(seed, ())):
                if per_seed.get(seed, 0) >= share:
                    break
                triple = self.kg.triple(triple_id)
                if triple not in chosen:
                    per_seed[seed] = per_seed.get(seed, 0) + 1
                    chosen.append(triple)
        chosen += [t for t in aside if t not in chosen]
        return chosen[:self.config.triples]

    def _namesakes(self, disease: str) -> list[str]:
        """Other disease records that carry one of the disease's names or synonyms, most connected first."""
        entries = self.linker.dictionary.entries
        found = {e.entity_id for name in self.relevance.names_of(disease) for e in entries.get(name_key(name), ())
                 if e.entity_type is EntityType.DISEASE and e.entity_id != disease}
        return sorted(found, key=lambda e: (-self.kg.degree(e), e))

    def _most_specific(self, seeds: list[str]) -> list[str]:
        """The seeds without a disease whose subtype is also a seed ("arthritis ... the wear and tear kind" with
        osteoarthritis: the question is about osteoarthritis)."""
        diseases = [s for s in seeds if self.kg.entity(s).type is EntityType.DISEASE]
        if len(diseases) < 2:
            return seeds
        broader = {a for d in diseases for a in self._ancestors(d, levels=3)}
        return [s for s in seeds if s not in broader]

    def _ancestors(self, disease: str, levels: int = 2) -> list[str]:
        """The disease's ``subclass_of`` parents, then theirs, nearest first."""
        found, frontier = [], [disease]
        for _ in range(levels):
            parents = []
            for node in frontier:
                for triple_id, other, _, _ in ranked_edges(self.kg, node, Relation.SUBCLASS_OF, 20):
                    if self.kg.triple(triple_id).subject == node and other not in found:
                        parents.append(other)
                        found.append(other)
            frontier = parents
        return found

    def _gaps(self, seeds: Sequence[str], asked: tuple[Relation, ...], triples: Sequence[Triple],
              audience: Audience) -> list[str]:
        """A note per drug or disease seed that has no fact of the kind the question lists ("side effects of
        atorvastatin": the KG holds none), so the answer does not pass off other facts as the whole list."""
        notes = []
        for relations, what in _LISTED:
            if not relations.intersection(asked):
                continue
            for seed in seeds:
                if self.kg.entity(seed).type not in (EntityType.DISEASE, EntityType.COMPOUND):
                    continue
                if not any(t.predicate in relations and seed in (t.subject, t.object) for t in triples):
                    notes.append(self.prompts.message("gap", audience, what=what, name=self.kg.name(seed)))
            break  # the first kind the question asks about is the one it lists
        return notes

    def concept(self, entity_id: str) -> tuple[str, ...]:
        """The entity and its records in other sources: cross-referenced (``KnowledgeGraph.same_concept``) or
        with the same preferred name (HPO's Palpitations, the symptom ontology's palpitation); for a drug class,
        the classes whose names say the same ("Serotonin Reuptake Inhibitor", "serotonin uptake inhibitor",
        "Serotonin Uptake Inhibitors": ``class_key``)."""
        named = (e.entity_id for e in self.linker.dictionary.entries.get(name_key(self.kg.name(entity_id)), ())
                 if e.kind == "name")
        same_class = self._classes.get(class_key(self.kg.name(entity_id)), ()) if entity_id in self._class_ids else ()
        return tuple(dict.fromkeys((entity_id, *self.kg.same_concept(entity_id), *named, *same_class)))

    @functools.cached_property
    def _classes(self) -> dict[str, tuple[str, ...]]:
        found: dict[str, list[str]] = {}
        for entry in self.kg.names():
            if entry.entity_type is EntityType.PHARMACOLOGIC_CLASS and entry.kind == "name":
                found.setdefault(class_key(entry.name), []).append(entry.entity_id)
        return {key: tuple(ids) for key, ids in found.items()}

    @functools.cached_property
    def _class_ids(self) -> frozenset[str]:
        return frozenset(e for ids in self._classes.values() for e in ids)

    def _passages(self, question: str, seeds: list[str]) -> list[Passage]:
        if self.literature is None or self.config.passages == 0:
            return []
        found = self.literature.search(question, k=self.config.passages * 4, entity_ids=tuple(seeds))
        about = [p for p in found if self.literature.is_about(p, tuple(seeds))]
        return about[:self.config.passages]

    def _messages(self, question: str, history: Sequence[Answer], audience: Audience,
                  block: EvidenceBlock) -> list[dict[str, str]]:
        conversation = ""
        if history:
            conversation = f"Earlier question: {neutralise(history[-1].question)}"
        user = self.prompts.user_turn(evidence=block.text, conversation=conversation, question=neutralise(question),
                                      sentences=self.config.max_sentences[audience])
        return [{"role": "system", "content": self.prompts.system[audience]}, {"role": "user", "content": user}]

    def _mentions(self):
        """``mentions(sentence, entity_id)``: the sentence names the entity: its name or a synonym as whole words,
        or a mention the linker finds there resolving to it, to a same-named entity of another source
        ("stomach pain" -> the HPO finding, for SIDER's abdominal pain) or to its record in another source
        ("diarrhea" -> HPO's Diarrhea, for SIDER's Diarrhoea: ``KnowledgeGraph.same_concept``)."""
        linked: dict[str, set[str]] = {}

        def mentions(sentence: str, entity_id: str) -> bool:
            entity = self.kg.entity(entity_id)
            written = (entity.name, *entity.synonyms)
            if any(names(name, sentence) for name in written):
                return True
            if sentence not in linked:
                found = self.linker.link(sentence).mentions
                linked[sentence] = {m.entity_id for m in found} | {name_key(m.matched_name) for m in found} | {
                    name_key(self.kg.name(m.entity_id)) for m in found}
            return (any(e in linked[sentence] for e in self.concept(entity_id))
                    or any(name_key(name) in linked[sentence] for name in written))

        return mentions

    def _names_other(self, seeds: Sequence[str]):
        """``names_other(sentence)``: whether the sentence names a drug or disease that is not one of ``seeds`` (nor a
        record of the same concept); mentions linked below ``min_link_score`` do not count. Symptoms do not: "see a
        doctor if you have chest pain" is advice, and "if it worries you" links to SIDER's Worry."""
        seeds_of = set(seeds)

        def names_other(sentence: str) -> bool:
            return any(m.score >= self.config.min_link_score and m.entity_id not in seeds_of
                       and not seeds_of.intersection(self.concept(m.entity_id))
                       for m in self.linker.link(sentence, VERIFIED_TYPES, restrict=True).mentions)

        return names_other

    def _generation_config(self, audience: Audience):
        from assistant.generation import GenerationConfig

        return GenerationConfig(max_new_tokens=self.config.max_new_tokens[audience],
                                temperature=self.config.temperature, stop=self.config.stop)

    def _answer_limit(self, audience: Audience) -> int:
        """The most characters of generated text read: ``MAX_CHARS_PER_TOKEN`` per token the generator may write."""
        return MAX_CHARS_PER_TOKEN * self.config.max_new_tokens[audience]

    def check(self, raw: str, prepared: Prepared) -> tuple[str, tuple, tuple[str, ...], list[str]]:
        """Check the generator's ``raw`` answer to ``prepared``: resolve the markers, remove unsupported sentences
        and markers on facts that do not state their sentence, attribute unmarked facts, list the evidence when
        nothing is cited. Returns (shown text, citations, removed sentences, flags)."""
        question, block, audience, seeds = prepared.question, prepared.block, prepared.audience, prepared.seeds
        flags: list[str] = []
        if len(raw) > (limit := self._answer_limit(audience)):  # bounds the checks' cost whatever the generator did
            flags.append(f"generator output cut from {len(raw)} to {limit} characters (over its token limit)")
            raw = raw[:limit]
        finished, cut = unfinished(strip_echo(raw, block))
        flags += [f"unfinished sentence removed: {cut}"] if cut else []
        resolved = resolve(finished, block.items)
        flags += [f"removed marker: {m}" for m in resolved.removed]
        evidence_text = block.text + "\n" + question
        seeds = tuple(dict.fromkeys(e for seed in seeds for e in self.concept(seed)))  # "it" is any record of one
        supported = {e for entity_id in block.entity_ids() for e in self.concept(entity_id)}
        unsupported = unsupported_sentences(resolved.text, self.linker, supported, evidence_text)
        kept = [s for s in sentences(resolved.text) if s not in unsupported]
        flags += [f"{UNSUPPORTED_ENTITY_FLAG}: {s}" for s in unsupported]
        mentions = self._mentions()
        denied = contradicted(kept, block.triples, seeds, mentions)
        flags += [f"contradicted sentence removed: {s} ({marker} states it)" for s, marker in denied]
        unsupported = [*unsupported, *(s for s, _ in denied)]
        kept = [s for s in kept if s not in unsupported]
        checked = check_markers(kept, block.triples, seeds, mentions)
        for marker, end in checked.removed:  # end: an entity id, a relation, or DENIED
            why = ("denies it" if end == DENIED else
                   f"does not state {self.kg.name(end) if ':' in end else 'a ' + end + ' fact'}")
            flags.append(f"miscited marker: {marker} (the clause {why})")
        flags += [f"re-cited: {wrong} -> {right} (the clause states {right}'s fact)"
                  for wrong, right in checked.recited]
        flags += [f"miscited sentence removed: {s}" for s in checked.dropped]
        unsupported = [*unsupported, *checked.dropped]
        kept = list(checked.sentences)
        kept, attributed = attribute(kept, block)
        flags += [f"attributed: {marker} (the sentence states that evidence item)" for marker in attributed]
        other = self._names_other(seeds)
        bare = unsourced(kept, other)
        flags += [f"{UNSOURCED_FLAG}: {s}" for s in bare]
        unsupported = [*unsupported, *bare]
        kept = [s for s in kept if s not in bare]
        once: dict[str, str] = {}  # a small model may loop on one sentence: each is shown once
        for sentence in kept:
            key = re.sub(r"\W+", " ", re.sub(r"\[[TP]\d+\]", "", sentence)).strip().lower()
            if key in once:
                flags.append(f"repeated sentence removed: {sentence}")
            else:
                once[key] = sentence
        kept = list(once.values())
        if kept and unsupported:  # "They do say ..." followed a denial that was removed: say who "they" are
            kept[0] = re.sub(r"^They do say\b", "My sources do say", kept[0])
        # a line the model ended without a full stop is a sentence now, joined to the next: close it
        text = " ".join(s if re.search(r"[.!?…:][\"'”)\]]*(?:\s*\[[TP]\d+\])*\s*$", s) else s + "." for s in kept)
        cited = resolve(text, block.items).cited  # what the shown text still cites
        parts = [text] if text else []
        if unsupported:
            parts.append(self.prompts.message("removed", audience, count=len(unsupported)))

        marker_of = {id(t): m for m, t in block.triples.items()}

        def listed(triples: Sequence[Triple], passages: Sequence[Passage] = ()) -> str:
            """Bullets, each fact as the KG states it with its own marker: faithful by construction, so they are
            citations of the answer (a passage is listed by its title, which states nothing: no marker). A
            clinician gets each fact as rendered with its sources and licence; a patient a plain sentence, and the
            sources once, after the list: "(Human Phenotype Ontology)" on every line is jargon a patient reads
            again and again."""
            if audience is Audience.CLINICIAN:
                lines = [f"{t.render()} [{marker_of[id(t)]}] — {t.licence}" for t in triples] + [
                    f"{p.title} ({p.source})" for p in passages]
                return "\n".join(f"• {line}" for line in lines)
            lines = [re.sub(r"\.?$", f" [{marker_of[id(t)]}].", plain(t), count=1) for t in triples] + [
                p.title + ("" if p.title[-1:] in ".?!" else ".") for p in passages]
            sources = dict.fromkeys([*(s for t in triples for s in t.sources), *(p.source for p in passages)])
            return "\n".join(f"• {line}" for line in lines) + f"\nSources: {', '.join(sources)}."

        shown = {c.marker for c in cited}  # a denied fact the evidence holds is stated, unless the answer does
        corrections = list(dict.fromkeys(block.triples[marker] for _, marker in denied if marker not in shown))
        if corrections:
            parts.append(self.prompts.message("contradicted", audience) + "\n" + listed(corrections))
        if not cited:  # list what the model was given
            flags.append("uncited")
            triples = [t for t in block.triples.values() if t not in corrections]
            if triples or block.passages:
                parts.append(self.prompts.message("uncited", audience) + "\n"
                             + listed(triples, list(block.passages.values())))
        if _HOW_OFTEN.search(question):  # a frequency asked for is given where the facts carry one
            cited_now = {c.marker for c in resolve("\n\n".join(parts), block.items).cited} or set(block.triples)
            counted = [(m, t) for m, t in block.triples.items() if m in cited_now and t.frequency_text
                       and t.predicate is Relation.CAUSES_SIDE_EFFECT]
            if counted:
                parts.append(self.prompts.message("frequency", audience) + "\n" + "\n".join(
                    f"• {t.object_name}: {t.frequency_text} [{m}]" for m, t in counted[:4]))
            else:
                flags.append("frequency asked: none of the facts carries one")
        parts += list(prepared.gaps)
        disclaimer = self.prompts.message("disclaimer", audience)
        if disclaimer:
            parts.append(disclaimer)
        shown_text = "\n\n".join(parts)
        return shown_text, resolve(shown_text, block.items).cited, tuple(unsupported), flags
