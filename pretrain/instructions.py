"""Stage-2 instruction-tuning data: (prompt, target) pairs that teach the generator to answer from numbered evidence.

The generator is fine-tuned on exactly the prompt the assistant sends at run time, so every example goes through
the assistant's own pipeline up to the prompt (``Assistant.prepare``):

1. **question**: a template per task (side effects of a drug, what helps a disease, what a drug is used for,
   symptoms, genes, drug class, "is Y a side effect of X?", "does X treat Y?") filled with an entity's name, a
   synonym or a lay synonym, in patient or clinician wording, drawn by ``random.Random(seed)``; about one in eight
   is a follow-up turn ("what about its side effects?") after another question on the same entity.
2. **prompt**: ``prepare``; a question that ends in a fixed message, or whose entity is not among the seeds, is
   skipped (counted by reason).
3. **target**, written from ``prepared.block`` alone: the triples of an asked relation of the task that touch the
   seed, each fact followed by its marker. Patients get ``assistant.evidence.PLAIN`` sentences and a closing line
   on seeing a doctor or pharmacist; clinicians one compact sentence per relation with the source and frequency
   of the evidence line. A pair question is answered by a triple joining the two entities' records in any source
   (``Assistant.concept``); when no triple answers, the target abstains ("My sources do not say that ..."). Passage
   text is never copied (some sources forbid reuse of their answers): a passage is cited only as "[P1] discusses
   <title>". A target must survive the check every generated answer gets (``Assistant.check``): markers resolve
   and state their clause, no sentence is removed as unsupported, miscited or denying a fact the evidence holds.
4. **no leakage**: an example whose block holds a held-out triple of the edge split, or whose text (prompt and
   target) names both ends of a held-out pair (``pretrain.data.leaks``), is dropped.
5. **entity holdout**: train/dev/test by a stable hash of the seed entity id (80/10/10).

Build (the model's tokenizer counts the evidence budget, as at run time; 3000 examples take about 5400 questions,
~5 CPU minutes, most of it embedding each question for the literature search)::

    python -m pretrain.instructions --out DIR [--n 3000] [--seed 0] [--data-dir data/kg] [--split DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from assistant.answer import Assistant, Prepared
from assistant.citations import sentences
from assistant.evidence import PLAIN, EvidenceBlock
from assistant.types import Answer, Audience, Triple
from kg.artefacts import sha256_file
from kg.errors import KGError
from kg.store import DEFAULT_DATA_DIR, KnowledgeGraph
from kg.vocab import SIGNATURES, Curation, EntityType, Relation
from pretrain.data import RELATIONS, EdgeSplit, entity_names, leaks, split_edges

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
END_OF_TURN = "<|im_end|>"  # SmolLM2's end of an assistant turn (its eos token)
PARTS = (("train", 80), ("dev", 90), ("test", 100))  # part, upper bound of the hash bucket (0..99)
R = Relation
TREATMENT = (R.TREATS, R.PALLIATES, R.INDICATED_FOR)


class GenerationNotAllowedError(KGError):
    """The prompt-only generator was asked to generate: it exists to count tokens while building prompts."""


class TokenCountMismatchError(KGError):
    """The transformers tokenizer and llama.cpp count a text differently."""


class PromptOnlyGenerator:
    """A generator stand-in that counts tokens with the real model's tokenizer (the evidence budget drops whole
    items by token count, so the prompts must be cut exactly as at run time) and never generates."""

    name = "prompt-only"
    context_window = 4096

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer

    @classmethod
    def load(cls) -> PromptOnlyGenerator:
        """The tokenizer of the shipped GGUF (transformers, ~20 s to parse), checked against llama.cpp's if
        llama-cpp-python is installed."""
        import importlib.util

        from assistant.generation import model_path

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoTokenizer

        path = model_path()
        counter = cls(AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name))
        if importlib.util.find_spec("llama_cpp") is not None:
            from llama_cpp import Llama

            llm = Llama(model_path=str(path), vocab_only=True, verbose=False)
            for text in ("[T1] Metformin — causes side effect — Nausea (SIDER 4.1, frequency 9%) — curated database",
                         "[P2] Insulin Resistance — People with prediabetes … (MedQuAD/NIDDK)", "  naïve, 48.3%\n\nx"):
                ours, theirs = counter.count_tokens(text), len(llm.tokenize(text.encode(), add_bos=False))
                if ours != theirs:
                    raise TokenCountMismatchError(f"{text!r}: transformers counts {ours} tokens, llama.cpp {theirs}")
        return counter

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def stream(self, messages, config):
        raise GenerationNotAllowedError("the prompt-only generator builds prompts; it cannot generate")

    generate = stream


def chat_text(tokenizer, messages: Sequence[dict[str, str]], target: str) -> tuple[str, str]:
    """(prompt text, full text) in the model's chat format: the prompt is exactly what the runtime feeds the model
    (``apply_chat_template(..., add_generation_prompt=True)``); the full text is the prompt, the target and the
    end-of-turn token, so the loss can be taken on ``full[len(prompt):]``."""
    prompt = tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    return prompt, prompt + target + END_OF_TURN


# --- tasks and questions -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Task:
    """A kind of question: the relations that answer it, which end of them the asked-about entity is, and the
    wordings. A ``pair`` task asks about one fact between the seed (``{x}``) and another entity (``{y}``)."""

    name: str
    relations: tuple[Relation, ...]
    seed_end: str  # "subject" or "object"
    noun: str  # for a list abstention: "The facts I have do not list the {noun} {x}." ("side effects of")
    patient: tuple[str, ...]
    clinician: tuple[str, ...]
    follow_up: tuple[str, ...] = ()  # the same question about "it", after another question on the seed
    closing: tuple[str, ...] = ("If you are worried, talk to your doctor.",)
    pair: bool = False
    weight: float = 1.0


TASKS = (
    Task("side_effects", (R.CAUSES_SIDE_EFFECT,), "subject", "side effects of",
         ("what are the side effects of {x}?", "what side effects can {x} cause?", "{x} side effects?",
          "I just started {x}. What side effects should I look out for?", "does {x} have side effects?",
          "my doctor gave me {x}, what are the side effects?"),
         ("Adverse effects of {x}?", "What adverse reactions are reported for {x}?",
          "{x}: common adverse effects?", "Reported adverse drug reactions of {x}?"),
         ("what about its side effects?", "and what side effects does it have?", "Adverse effects of it?"),
         ("Talk to your doctor or pharmacist if a side effect worries you.",
          "Ask your pharmacist if you notice a side effect.", "Do not stop a medicine before you talk to your doctor."),
         weight=0.18),
    Task("treatments", TREATMENT, "object", "treatments for",
         ("what helps {x}?", "what can I take for {x}?", "how is {x} treated?", "is there medicine for {x}?",
          "what medicines treat {x}?", "I have {x}. What can help?"),
         ("First-line pharmacotherapy for {x}?", "Which drugs are indicated for {x}?", "Treatment options for {x}?",
          "Pharmacological management of {x}?", "What agents are used to treat {x}?"),
         ("what helps it?", "and how is it treated?", "And the treatment options for it?"),
         ("Your doctor can tell you which one is right for you.", "Ask your doctor before you take any of them.",
          "A doctor can help you choose."), weight=0.16),
    Task("uses", TREATMENT, "subject", "uses of",
         ("what is {x} used to treat?", "what is {x} prescribed for?", "what does {x} treat?",
          "why would a doctor prescribe {x}?", "what conditions can {x} help with?"),
         ("Indications for {x}?", "What is {x} indicated for?", "Approved therapeutic uses of {x}?",
          "{x}: labelled indications?"),
         ("what is it used to treat?", "And its indications?"),
         ("Ask your doctor why it was given to you.", "Your doctor or pharmacist can tell you more."), weight=0.12),
    Task("symptoms", (R.HAS_SYMPTOM, R.HAS_PHENOTYPE), "subject", "signs of",
         ("what are the symptoms of {x}?", "what does {x} feel like?", "signs of {x}?",
          "how do I know if I have {x}? What are the signs?", "what happens when you have {x}?"),
         ("Clinical presentation of {x}?", "Phenotypic features of {x}?", "Presenting signs and symptoms of {x}?",
          "What phenotypes are associated with {x}?"),
         ("what are its symptoms?", "And its clinical presentation?"),
         ("See a doctor if you have these signs.", "If you are worried, see a doctor."), weight=0.14),
    Task("genes", (R.ASSOCIATED_WITH_GENE,), "subject", "genes linked to",
         ("is {x} genetic?", "what genes are linked to {x}?", "can {x} be inherited? Which genes are involved?",
          "is {x} hereditary?"),
         ("Genes associated with {x}?", "Which genes are implicated in {x}?", "Genetic associations of {x}?",
          "{x}: associated genes?"),
         ("is it genetic?", "which genes are linked to it?"),
         ("A doctor or genetic counsellor can tell you more.", "Ask your doctor if genetic testing is right for you."),
         weight=0.08),
    Task("drug_class", (R.IN_CLASS,), "subject", "drug class of",
         ("what kind of medicine is {x}?", "what type of drug is {x}?", "what group of medicines is {x} in?"),
         ("Pharmacologic class of {x}?", "What drug class does {x} belong to?", "{x}: drug class?"),
         ("what kind of medicine is it?", "And its drug class?"),
         ("Ask your pharmacist if you have questions about this medicine.",), weight=0.08),
    Task("is_side_effect", (R.CAUSES_SIDE_EFFECT,), "subject", "side effects",
         ("is {y} a side effect of {x}?", "can {x} cause {y}?", "does {x} cause {y}?",
          "I take {x} and have {y}. Is that a side effect?"),
         ("Is {y} a reported adverse effect of {x}?", "Does {x} cause {y}?", "{x} and {y}: known adverse reaction?"),
         closing=("Talk to your doctor or pharmacist if it worries you.", "Tell your doctor if this happens to you."),
         pair=True, weight=0.14),
    Task("does_treat", TREATMENT, "subject", "uses",
         ("does {x} treat {y}?", "can {x} help with {y}?", "is {x} a treatment for {y}?", "will {x} help my {y}?"),
         ("Is {x} indicated for {y}?", "Is {x} an established therapy for {y}?", "Does {x} treat {y}?"),
         closing=("Ask your doctor if it is right for you.", "Your doctor can tell you more."), pair=True, weight=0.10),
)
PATIENT_ABSTAIN = ("Please ask your doctor or pharmacist.", "A doctor or pharmacist can tell you more.",
                   "Please ask a doctor or pharmacist about this.")
#: clinician phrasings: (relation, the seed's end) -> one sentence listing ``{items}``; a relation -> one fact
CLINICIAN_LIST = {
    (R.CAUSES_SIDE_EFFECT, "subject"): "Reported adverse effects of {seed} include {items}.",
    (R.TREATS, "subject"): "{seed} is recorded as a treatment for {items}.",
    (R.TREATS, "object"): "Recorded treatments for {seed} include {items}.",
    (R.PALLIATES, "subject"): "{seed} is recorded as symptomatic (palliative) therapy for {items}.",
    (R.PALLIATES, "object"): "Symptomatic (palliative) therapies for {seed} include {items}.",
    (R.INDICATED_FOR, "subject"): "Labelled indications of {seed} include {items}.",
    (R.INDICATED_FOR, "object"): "Drugs indicated for {seed} include {items}.",
    (R.HAS_SYMPTOM, "subject"): "Recorded symptoms of {seed} include {items}.",
    (R.HAS_PHENOTYPE, "subject"): "Phenotypic features of {seed} include {items}.",
    (R.ASSOCIATED_WITH_GENE, "subject"): "Genes associated with {seed} include {items}.",
    (R.IN_CLASS, "subject"): "{seed} is classified as {items}.",
}
CLINICIAN_FACT = {R.CAUSES_SIDE_EFFECT: "{o} is a reported adverse effect of {s}",
                  R.TREATS: "{s} is recorded as a treatment for {o}",
                  R.PALLIATES: "{s} is recorded as symptomatic therapy for {o}",
                  R.INDICATED_FOR: "{s} is indicated for {o}"}
CLINICIAN_NO_FACT = {R.CAUSES_SIDE_EFFECT: "The evidence provided does not report {y} as an adverse effect of {x}.",
                     R.TREATS: "The evidence provided records no treatment, palliation or indication of {x} for {y}."}
TIER = {Curation.TEXT_MINED: "text-mined", Curation.DATABASE: "curated database", Curation.EXPERT: "expert-curated"}


@dataclass(frozen=True)
class Example:
    """One training pair; ``block`` (the evidence the messages number) is kept for checks, not written."""

    messages: tuple[dict[str, str], ...]  # system + user, exactly as the assistant sends them
    target: str
    audience: Audience
    kind: str  # "answer" or "abstain"
    seed: str  # the entity asked about (the split is by this id)
    task: str
    relation: str  # the task's first relation
    question: str
    history: tuple[str, ...]
    asked: tuple[Relation, ...]
    block: EvidenceBlock = field(repr=False, compare=False)

    def record(self) -> dict:
        return {"messages": list(self.messages), "target": self.target, "audience": self.audience.value,
                "kind": self.kind, "seed": self.seed, "task": self.task, "relation": self.relation,
                "question": self.question, "history": list(self.history),
                "asked": [r.value for r in self.asked],
                "evidence_triple_ids": [t.id for t in self.block.triples.values()]}

    @property
    def text(self) -> str:
        """Everything the model reads and writes, for the leak check."""
        return "\n".join([*(m["content"] for m in self.messages), self.target])


def part_of(entity_id: str) -> str:
    """"train", "dev" or "test": a stable hash of the entity id, so an entity's examples stay in one part."""
    bucket = int(hashlib.sha256(entity_id.encode()).hexdigest()[:8], 16) % 100
    return next(name for name, upper in PARTS if bucket < upper)


def _word(name: str) -> str:
    """A name inside a sentence: the first letter lower-cased ("Nausea" -> "nausea"), unless the name is an acronym,
    mixed case ("HbA1c") or title case ("Sodium Tetradecyl Sulfate")."""
    if name.isupper() or not name[:1].isupper() or name[1:2].isupper():
        return name
    if any(w[:1].isupper() and not w.isupper() for w in name.split()[1:]):
        return name
    return name[0].lower() + name[1:]


def _name(triple: Triple, end: str) -> str:
    """The subject's or object's name as written inside a sentence. Disease, gene and class names keep their case
    ("Parkinson's disease", "Cyclooxygenase Inhibitors"); drug and finding names are capitalised labels ("Nausea")."""
    name = triple.subject_name if end == "subject" else triple.object_name
    kind = SIGNATURES[triple.predicate][0 if end == "subject" else 1]
    return name if kind in (EntityType.DISEASE, EntityType.GENE, EntityType.PHARMACOLOGIC_CLASS) else _word(name)


def _other(triple: Triple, seed: str) -> str:
    return _name(triple, "object" if triple.subject == seed else "subject")


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _mentions(text: str, name: str) -> bool:
    return re.search(rf"\b{re.escape(name)}\b", text, re.IGNORECASE) is not None


def _and(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _provenance(triple: Triple) -> tuple[str, str | None]:
    """(source and release, frequency or None) as the triple's evidence line gives them, plus its curation tier:
    ("SIDER 4.1; curated database", "9%"). A frequency of more than 30 characters is left out."""
    found = re.search(r"\(([^()]*)\)$", triple.render())
    source, _, frequency = (found.group(1) if found else "").partition(", frequency ")
    tier = TIER.get(triple.curation)
    return "; ".join(x for x in (source, tier) if x), (frequency if 0 < len(frequency) <= 30 else None)


def _provenance_text(triple: Triple) -> str:
    source, frequency = _provenance(triple)
    return source + (f"; frequency {frequency}" if frequency else "")


# --- targets -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    text: str
    kind: str  # "answer" or "abstain"


#: the words of a ``PLAIN`` sentence that change when its subject, or its gene, is several entities
SIGNS = ("can be a sign of", "can be signs of")
PLURAL = {R.HAS_SYMPTOM: SIGNS, R.HAS_PHENOTYPE: SIGNS,
          R.TREATS: ("is used to treat", "are used to treat"), R.INDICATED_FOR: ("is used for", "are used for"),
          R.ASSOCIATED_WITH_GENE: ("the gene", "the genes")}


def _plain(relation: Relation, s: str, o: str, plural: bool = False) -> str:
    """``PLAIN[relation]`` filled in, as a sentence without its full stop, made plural by ``PLURAL`` if asked."""
    template = PLAIN[relation].replace(*PLURAL[relation]) if plural and relation in PLURAL else PLAIN[relation]
    return _sentence(template.format(s=s, o=o))


def patient_facts(facts: Sequence[tuple[str, Triple]], seed: str, most: int = 2, pronoun: bool = False
                  ) -> list[str]:
    """At most ``most`` plain sentences stating ``facts`` (marker, triple), two to a sentence, each fact followed
    by its marker: "Metformin can cause nausea [T1] and headache [T2]. It can cause diarrhoea [T3].", "Wheezing [T1]
    and cough [T2] can be signs of asthma."; ``pronoun``: "it" for the seed from the first sentence on."""
    out: list[str] = []
    for relation in dict.fromkeys(t.predicate for _, t in facts):
        group = [(m, t) for m, t in facts if t.predicate is relation]
        end = "subject" if group[0][1].subject == seed else "object"
        listed = "object" if end == "subject" else "subject"
        first = PLAIN[relation].startswith("{o}" if listed == "object" else "{s}")  # the list is the subject
        for chunk in (c for c in (group[:2], group[2:4]) if c):
            items = _and([f"{_name(t, listed)} [{m}]" for m, t in chunk])
            seed_name = _name(group[0][1], end)
            if not first:  # the seed is the subject: named once, then "it"
                seed_name, pronoun = "it" if pronoun else seed_name, True
            s, o = (seed_name, items) if end == "subject" else (items, seed_name)
            plural = len(chunk) > 1 and (first or relation is R.ASSOCIATED_WITH_GENE)
            out.append(_plain(relation, s, o, plural) + ".")
    return out[:most]


def _plainness(fact: tuple[str, Triple], seed: str) -> float:
    """Vowel groups (about syllables) per word of the entity a fact names besides the seed: patients are told the
    plainest facts first."""
    words = _other(fact[1], seed).lower().split()
    return sum(len(re.findall(r"[aeiouy]+", w)) for w in words) / max(1, len(words))


def clinician_facts(facts: Sequence[tuple[str, Triple]], seed: str) -> list[str]:
    """One compact sentence per relation: each item with its marker and frequency, the source and curation tier
    once when the items share it ("... include nausea [T1] (frequency 9%) and ... (all SIDER 4.1; curated
    database)."); a closing caution when any item is text-mined."""
    out: list[str] = []
    for relation in dict.fromkeys(t.predicate for _, t in facts):
        group = [(m, t) for m, t in facts if t.predicate is relation]
        end = "subject" if group[0][1].subject == seed else "object"
        sources = {_provenance(t)[0] for _, t in group}
        items = []
        for m, t in group:
            source, frequency = _provenance(t)
            notes = [x for x in (None if len(sources) == 1 else source,
                                 f"frequency {frequency}" if frequency else None) if x]
            items.append(f"{_other(t, seed)} [{m}]" + (f" ({'; '.join(notes)})" if notes else ""))
        listed = _and(items) + (f" ({'all ' if len(group) > 1 else ''}{sources.pop()})" if len(sources) == 1 else "")
        out.append(_sentence(CLINICIAN_LIST[relation, end].format(seed=_name(group[0][1], end), items=listed)))
    if any(t.curation is Curation.TEXT_MINED for _, t in facts):
        out.append("Text-mined evidence is weaker than curated evidence.")
    return out


def _passage_note(block: EvidenceBlock, *names: str) -> str | None:
    """"[P1] discusses <title>." for the first passage whose title is a short statement naming one of ``names``
    (never its text: some sources forbid reuse of their answers)."""
    for marker, passage in block.passages.items():
        title = passage.title.rstrip(".")
        if "?" not in title and len(title.split()) <= 12 and any(_mentions(title, name) for name in names):
            return f"[{marker}] discusses {title}."
    return None


def write_target(task: Task, prepared: Prepared, seed: str, x_term: str, y_term: str | None,
                 rng: random.Random, concept: Callable[[str], Iterable[str]] = lambda e: (e,)) -> Target | None:
    """The answer to ``prepared``'s question from its evidence block alone (see the module docstring); None when
    the triples do not answer a pair question but a passage names both entities (it might answer it).
    ``concept``: an entity's records in every source (``Assistant.concept``): a fact on SIDER's Diarrhoea answers
    a question linked to HPO's Diarrhea."""
    block, patient = prepared.block, prepared.audience is Audience.PATIENT
    relations = [r for r in task.relations if r in prepared.asked]
    facts, named = [], set()
    for m, t in block.triples.items():  # one fact per entity named, none that restates the seed ("x has symptom x")
        if t.predicate in relations and seed in (t.subject, t.object):
            key, own = _other(t, seed).casefold(), (t.subject_name if t.subject == seed else t.object_name).casefold()
            if key not in named and key != own:
                named.add(key)
                facts.append((m, t))
    seed_name = next((_name(t, "subject" if t.subject == seed else "object") for _, t in facts), x_term)
    if task.pair:
        others = {e for other in prepared.seeds if other != seed for e in concept(other)} - set(concept(seed))
        joined = [(m, t) for m, t in facts if {t.subject, t.object} & others or _other(t, seed).casefold() ==
                  y_term.casefold()]
        if joined:
            if patient:
                first = patient_facts(joined[:1], seed)[0]
                return Target(f"Yes, {_word(first)} {rng.choice(task.closing)}", "answer")
            lines = [CLINICIAN_FACT[t.predicate].format(s=_name(t, "subject"), o=_name(t, "object"))
                     + f" [{m}] ({_provenance_text(t)})." for m, t in joined[:3]]
            return Target(" ".join(["Yes: " + lines[0], *map(_sentence, lines[1:])]), "answer")
        if any(_mentions(line, y_term) and (_mentions(line, x_term) or _mentions(line, seed_name))
               for line in block.lines if line.startswith("[P")):
            return None  # a passage naming both might say what the triples do not
        also = facts[:2 if patient else 3] if rng.random() < 0.7 else []
        if patient:
            said = f"My sources do not say that {_word(_plain(task.relations[0], seed_name, y_term))}."
            told = [f"They do say that {_word(s)}" for s in patient_facts(also, seed, most=1, pronoun=True)]
            return Target(" ".join([said, *told, rng.choice(PATIENT_ABSTAIN)]), "abstain")
        said = CLINICIAN_NO_FACT[task.relations[0]].format(x=seed_name, y=y_term)
        return Target(" ".join([said, *clinician_facts(also, seed)]), "abstain")
    if not facts:
        note = _passage_note(block, x_term, seed_name)
        if patient:
            said = f"The facts I have do not list the {task.noun} {x_term}."
            return Target(" ".join(x for x in (said, note, rng.choice(PATIENT_ABSTAIN)) if x), "abstain")
        said = f"The knowledge-graph evidence provided lists no {task.noun} {x_term}."
        return Target(" ".join(x for x in (said, note) if x), "abstain")
    if patient:
        plainest = sorted(facts, key=lambda fact: _plainness(fact, seed))[:3]
        return Target(" ".join([*patient_facts(plainest, seed), rng.choice(task.closing)]), "answer")
    note = _passage_note(block, x_term, seed_name) if rng.random() < 0.3 else None
    return Target(" ".join(x for x in (*clinician_facts(facts[:6], seed), note) if x), "answer")


# --- building the set ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class InstructionConfig:
    """How many examples, drawn how: ``abstain`` of them abstentions, ``follow_up`` the chance a list question is
    asked as a second turn; ``batch`` drafts are checked for held-out pairs at once (the check's index is built
    per call)."""

    n: int = 3000
    seed: int = 0
    abstain: float = 0.12  # 0.22 drew two "no" for each "yes" to "is Y a side effect of X?" (357 to 178): the
    # model then denied facts its evidence held
    follow_up: float = 0.12
    batch: int = 200

    def __post_init__(self) -> None:
        if self.n < 1 or self.batch < 1:
            raise ValueError(f"n and batch must be positive, not {self.n} and {self.batch}")
        if not (0.0 <= self.abstain < 1.0 and 0.0 <= self.follow_up <= 1.0):
            raise ValueError(f"abstain must be in [0, 1) and follow_up in [0, 1], not {self.abstain}, {self.follow_up}")


@dataclass(frozen=True)
class InstructionSet:
    examples: tuple[Example, ...]
    skipped: dict[str, int]  # reason -> drafts left out
    drafted: int


class _Drafter:
    """Draws questions and turns them into examples through ``assistant.prepare``; counts what it skips."""

    def __init__(self, assistant: Assistant, split: EdgeSplit, rng: random.Random) -> None:
        self.assistant, self.kg, self.rng = assistant, assistant.kg, rng
        self.held_out = set(split.held_out.triple_id.tolist())
        self.skipped: Counter[str] = Counter()
        self.names: dict[str, dict[str, list[str]]] = {}  # id -> kind ("synonym", "lay") -> names (Entity's fields)
        for entry in self.kg.names():
            self.names.setdefault(entry.entity_id, {}).setdefault(entry.kind, []).append(entry.name)
        adjacency = self.kg.adjacency
        self.adjacency, self.ids = adjacency, adjacency.ids.tolist()
        relation = np.empty(len(adjacency.head), dtype=np.int8)
        relation[adjacency.edge] = adjacency.relation
        self.pools, self.partners = {}, {}
        everyday = np.isin(relation, [RELATIONS.index(r) for r in (*TREATMENT, R.CAUSES_SIDE_EFFECT, R.HAS_SYMPTOM)])
        familiar = np.union1d(adjacency.head[everyday], adjacency.tail[everyday])
        for task in TASKS:
            mask = np.isin(relation, [RELATIONS.index(r) for r in task.relations])
            seeds = np.unique((adjacency.head if task.seed_end == "subject" else adjacency.tail)[mask])
            # clinicians ask about anything: weight by the square root of the degree; patients about common
            # drugs and diseases (those with a drug, side-effect or symptom edge), weighted by the degree
            common = seeds[np.isin(seeds, familiar)] if np.isin(seeds, familiar).any() else seeds
            self.pools[task.name] = {
                Audience.CLINICIAN: (seeds.tolist(), np.cumsum(np.sqrt(adjacency.degree[seeds])).tolist()),
                Audience.PATIENT: (common.tolist(), np.cumsum(adjacency.degree[common].astype(np.float64)).tolist())}
            if task.pair:  # the most connected partners: familiar names for "is nausea a side effect of X?"
                ends = np.unique((adjacency.tail if task.seed_end == "subject" else adjacency.head)[mask])
                self.partners[task.name] = ends[np.argsort(-adjacency.degree[ends], kind="stable")[:400]].tolist()

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    def draft(self, task: Task, audience: Audience, negative: bool, follow_up: bool) -> Example | None:
        rng = self.rng
        seeds, weights = self.pools[task.name][audience]
        x = rng.choices(seeds, cum_weights=weights)[0]
        x_term = self.term(self.ids[x], audience)
        y_term = None
        history: tuple[Answer, ...] = ()
        if task.pair:
            y = self.partner(task, x, negative)
            y_term = self.term(self.ids[y], audience)
            question = rng.choice(getattr(task, audience.value)).format(x=x_term, y=y_term)
        elif follow_up and task.follow_up:
            first_task = rng.choice([t for t in TASKS if not t.pair and t is not task and
                                     _seed_type(t) == _seed_type(task)])
            first_question = self.phrase(rng.choice(getattr(first_task, audience.value)).format(x=x_term), audience)
            first = self.assistant.prepare(first_question, (), audience)
            if self.ids[x] not in first.seeds:
                return self.skip("follow-up: first turn did not link the seed")
            history = (Answer(question=first.question, audience=audience, text="", entities=first.mentions),)
            question = rng.choice(task.follow_up)
        else:
            question = rng.choice(getattr(task, audience.value)).format(x=x_term)
        prepared = self.assistant.prepare(self.phrase(question, audience), history, audience)
        if prepared.situation:
            return self.skip(f"no generation: {prepared.situation}")
        if self.ids[x] not in prepared.seeds:
            return self.skip("seed entity not linked")
        if not set(task.relations) & set(prepared.asked):
            return self.skip("question not read as asking the task's relation")
        if any(t.id in self.held_out for t in prepared.block.triples.values()):
            return self.skip("held-out triple in the evidence")
        target = write_target(task, prepared, self.ids[x], x_term, y_term, rng, self.assistant.concept)
        if target is None:
            return self.skip("no triple answers, but a passage names both entities")
        if not self.verified(target.text, prepared):
            return self.skip("target fails the assistant's checks")
        return Example(messages=prepared.messages, target=target.text, audience=audience, kind=target.kind,
                       seed=self.ids[x], task=task.name, relation=task.relations[0].value, question=prepared.question,
                       history=tuple(h.question for h in history), asked=prepared.asked, block=prepared.block)

    def partner(self, task: Task, x: int, negative: bool) -> int:
        """A partner of ``x`` under the task's relations, or (``negative``) a familiar one with no edge at all."""
        allowed = np.zeros(len(RELATIONS), dtype=bool)
        if negative:
            allowed[:] = True
            linked = set(self.adjacency.neighbours(x, allowed)[0].tolist())
            unlinked = [p for p in self.partners[task.name] if p not in linked]
            if unlinked:
                return self.rng.choice(unlinked)
            allowed[:] = False
        allowed[[RELATIONS.index(r) for r in task.relations]] = True
        found = self.adjacency.neighbours(x, allowed)[0]
        return self.rng.choices(found.tolist(), weights=self.adjacency.degree[found].tolist())[0]

    def term(self, entity_id: str, audience: Audience) -> str:
        """The entity's name, a synonym or (patients) a lay synonym, as a person would type it."""
        rng, names = self.rng, self.names.get(entity_id, {})
        usable = [s for s in names.get("synonym", ()) if len(s) <= 40 and not re.search(r"[,;()\[\]]", s)]
        lay = [s for s in names.get("lay", ()) if len(s) <= 40] if audience is Audience.PATIENT else []
        name = (rng.choice(lay) if lay and rng.random() < 0.6 else
                rng.choice(usable) if usable and rng.random() < 0.25 else self.kg.name(entity_id))
        return _word(name) if audience is Audience.PATIENT or rng.random() < 0.5 else name

    def phrase(self, question: str, audience: Audience) -> str:
        if audience is Audience.PATIENT and self.rng.random() < 0.3:
            return question.lower()
        return _sentence(question) if self.rng.random() < 0.7 else question

    def verified(self, target: str, prepared: Prepared) -> bool:
        """The target passes the check every generated answer gets (``Assistant.check``): no marker unresolved or
        on a fact its clause does not state, no sentence removed (unsupported, miscited, or denying a fact the
        evidence holds), and the sentence count within the limit."""
        if len(sentences(target)) > self.assistant.config.max_sentences[prepared.audience]:
            return False
        _, _, removed, flags = self.assistant.check(target, prepared)
        return not removed and not any(f.startswith(("removed marker", "miscited marker")) for f in flags)


def _seed_type(task: Task) -> EntityType:
    return SIGNATURES[task.relations[0]][0 if task.seed_end == "subject" else 1]


def build_examples(assistant: Assistant, split: EdgeSplit, config: InstructionConfig | None = None
                   ) -> InstructionSet:
    """``config.n`` examples, ``round(abstain * n)`` of them abstentions, drawn by ``random.Random(config.seed)``.
    Stops after ``20 * n`` drafts if the KG cannot give more (with a warning)."""
    config = config or InstructionConfig()
    if split.build_id != assistant.kg.manifest.get("build_id", ""):
        raise ValueError(f"the edge split was made from KG build {split.build_id}, "
                         f"the assistant's KG is build {assistant.kg.manifest.get('build_id')}")
    n, rng = config.n, random.Random(config.seed)
    drafter = _Drafter(assistant, split, rng)
    names = entity_names(assistant.kg, split)
    quota = {"abstain": round(config.abstain * n), "answer": n - round(config.abstain * n)}
    kept: list[Example] = []
    seen: set[tuple] = set()
    drafted, started = 0, time.perf_counter()
    while any(quota.values()) and drafted < 20 * n:
        drafts = []
        for _ in range(config.batch):
            drafted += 1
            # abstentions come from "is Y a side effect of X?" with a Y the KG does not link to X (and from lists
            # the evidence lacks); once the answers are all there, only those are drafted
            tasks = [t for t in TASKS if t.pair] if quota["answer"] == 0 else TASKS
            task = rng.choices(tasks, weights=[t.weight for t in tasks])[0]
            negative = quota["abstain"] > 0 and (quota["answer"] == 0 or rng.random() < 0.5)
            audience = rng.choice(list(Audience))
            example = drafter.draft(task, audience, task.pair and negative, rng.random() < config.follow_up)
            if example is None:
                continue
            key = (example.question.casefold(), example.audience, example.history)
            if key not in seen:
                seen.add(key)
                drafts.append(example)
        leaked = {leak.text for leak in leaks([e.text for e in drafts], split, names)}
        drafter.skipped["names both ends of a held-out pair"] += sum(e.text in leaked for e in drafts)
        for example in drafts:
            if example.text not in leaked and quota[example.kind] > 0:
                quota[example.kind] -= 1
                kept.append(example)
        log.info("%d drafts, %d examples kept (%d answers, %d abstentions to go), %.0f s", drafted, len(kept),
                 quota["answer"], quota["abstain"], time.perf_counter() - started)
    if any(quota.values()):
        log.warning("stopped after %d drafts with %d of %d examples", drafted, len(kept), n)
    return InstructionSet(tuple(kept), dict(drafter.skipped.most_common()), drafted)


# --- writing -------------------------------------------------------------------------------------------

def flesch_kincaid(target: str, markers: bool = False) -> float:
    """Flesch–Kincaid grade of the words a reader reads (``markers``: with the ``[T1]`` markers left in)."""
    import textstat

    return float(textstat.flesch_kincaid_grade(target if markers else re.sub(r"\s*\[[TP]\d+\]", "", target)))


def write(directory: Path, built: InstructionSet, kg: KnowledgeGraph, split: EdgeSplit, config: InstructionConfig,
          seconds: float) -> dict:
    """``instructions_{train,dev,test}.jsonl`` and ``instructions.json`` (the manifest, returned)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    parts: dict[str, list[Example]] = {name: [] for name, _ in PARTS}
    for example in built.examples:
        parts[part_of(example.seed)].append(example)
    files, counts = {}, {}
    for name, examples in parts.items():
        path = directory / f"instructions_{name}.jsonl"
        path.write_text("".join(json.dumps(e.record(), ensure_ascii=False) + "\n" for e in examples))
        files[path.name] = sha256_file(path)
        counts[name] = {"examples": len(examples), "entities": len({e.seed for e in examples}),
                        **{f"{field_}={value}": n for field_ in ("kind", "audience", "task")
                           for value, n in sorted(Counter(str(getattr(e, field_)) for e in examples).items())}}
    patient = [e.target for e in built.examples if e.audience is Audience.PATIENT]
    manifest = {"format_version": FORMAT_VERSION, "config": asdict(config), "kg_build_id": kg.manifest.get("build_id"),
                "edge_split": {"seed": split.seed, "held_out": len(split.held_out), "build_id": split.build_id},
                "examples": len(built.examples), "drafted": built.drafted, "skipped": built.skipped,
                "counts": counts, "files_sha256": files, "seconds": round(seconds, 1),
                "patient_fk_grade_mean": _mean([flesch_kincaid(t) for t in patient]),
                "patient_fk_grade_mean_with_markers": _mean([flesch_kincaid(t, markers=True) for t in patient])}
    (directory / "instructions.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def _mean(values: Sequence[float]) -> float | None:
    return round(float(np.mean(values)), 2) if values else None


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pretrain.instructions",
                                     description="Build the stage-2 instruction-tuning examples.")
    parser.add_argument("--out", type=Path, required=True, help="directory for the .jsonl files and manifest")
    parser.add_argument("--n", type=int, default=3000, help="number of examples")
    parser.add_argument("--seed", type=int, default=0, help="seed of the question sampling")
    parser.add_argument("--abstain", type=float, default=InstructionConfig.abstain, help="share of abstentions")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="the built KG")
    parser.add_argument("--split", type=Path, help="a saved edge split (python -m pretrain.data); "
                                                   "default: split_edges(kg, --split-seed)")
    parser.add_argument("--split-seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("assistant.evidence").setLevel(logging.WARNING)  # a line per cut evidence block: thousands
    started = time.perf_counter()
    assistant = Assistant.open(generator=PromptOnlyGenerator.load(), kg_data_dir=args.data_dir)
    split = EdgeSplit.load(args.split, assistant.kg) if args.split else split_edges(assistant.kg, args.split_seed)
    config = InstructionConfig(n=args.n, seed=args.seed, abstain=args.abstain)
    built = build_examples(assistant, split, config)
    manifest = write(args.out, built, assistant.kg, split, config, time.perf_counter() - started)
    log.info("%d examples in %.0f s: %s", manifest["examples"], manifest["seconds"],
             {part: c["examples"] for part, c in manifest["counts"].items()})


if __name__ == "__main__":
    main()
