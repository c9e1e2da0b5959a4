"""Safety triage, the first stage of every turn: how urgent is this message, and what must be shown first?

``Triager.assess(text, audience, context)`` runs before anything else; ``Triager.with_findings(...)`` runs once the
message is linked. Four components read the message, and each can raise the tier on its own:

* **rules** (``assistant.safety.rules``): red-flag regular expressions with NegEx-style cues; they explain their
  verdict ("crushing chest pain + sweating"). A rule's companion may come from the earlier user turns (``context``).
* **findings** (``assistant.safety.findings``): combinations of linked KG findings (chest pain with sweating;
  two of one-sided weakness, facial droop, speech trouble; lip, tongue or throat swelling with trouble breathing
  or swallowing).
* **classifier** (``assistant.safety.classifier``): a logistic regression over MiniLM states, trained on a
  team-written set of emergencies, look-alikes, everyday health messages and non-health messages; it reads the
  message, and for a follow-up about something happening now also the message joined to the previous user turn.
* **language** (``assistant.safety.language``): whether the message is in English at all.

Which tier wins when they disagree (tested in ``tests/test_safety.py``):

1. **Emergency** when the rules, the findings or the classifier (P(emergency) >= its threshold) say so, whatever
   the others say, and whatever the language check says. The category: ``suicide`` if any component names it
   (crisis guidance comes before anything else), else the rules' first category, else the findings', else the
   classifier's. When the rules name two categories (an overdose taken to die), both messages are shown, suicide
   first. The reply is the emergency message alone.
2. **Not English** (and not an emergency): a short note that only English is read so far and when to call the
   emergency number, in the message's language too where a translation is written; never "out of scope".
3. **Possible** ("this may be urgent") when the classifier reads a situation happening now or a possible
   emergency (P(emergency) + P(now) >= its threshold): a safety net for the closest category (when to call the
   emergency number or a crisis line) is shown first, then what the sources say; the fixed "out of scope",
   "unknown term" and "no evidence" replies are never given.
4. **None** otherwise. Health relevance (1 - P(non_health)) decides the scope, not a word list. A reading near
   the "possible" bar (P(emergency) + P(now) >= ``guard``, below it) makes the verdict ``situational``: nothing is
   shown first, but the fixed fallbacks are still never given (an unknown word is answered around; no evidence
   gets the safety net): a margin, so that a reading just short of the bar cannot end in "unknown word".
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from assistant.safety.classifier import Features, Reading, TriageClassifier
from assistant.safety.cues import Scan, bounded
from assistant.safety.findings import FindingRules
from assistant.safety.language import LanguageCheck
from assistant.safety.messages import SafetyMessages
from assistant.safety.rules import RuleHit, red_flags
from assistant.types import Audience, EntityMention, Tier, Triage

log = logging.getLogger(__name__)

SAFETY_NET_FLOOR = 0.05  # below this P(category), a "possible" safety net is the general one


@dataclass(frozen=True)
class TriageConfig:
    context_turns: int = 2  # earlier user messages read with a follow-up
    window_words: int = 40  # a long message is also read in windows of this many words ...
    long_words: int = 60  # ... when it has more than this many
    max_windows: int = 4


class Triager:
    """The triage stage. ``encode(texts) -> Features`` gives the classifier's features (``TriageEncoder.encode``;
    in tests a fake giving an (n, D) array); ``findings`` and ``language`` are optional (without them those checks
    are skipped)."""

    def __init__(self, messages: SafetyMessages, classifier: TriageClassifier,
                 encode: Callable[[Sequence[str]], Features | np.ndarray], findings: FindingRules | None = None,
                 language: LanguageCheck | None = None, config: TriageConfig | None = None) -> None:
        self.messages, self.classifier, self.encode = messages, classifier, encode
        self.findings, self.language = findings, language
        self.config = config or TriageConfig()

    # --- reading --------------------------------------------------------------------------------------------

    def read(self, text: str, context: Sequence[str] = ()) -> Reading:
        """The classifier's reading of ``text`` (and of its windows when long, and of it joined to the previous
        user turn when it describes something happening now): the highest P(emergency) of these wins."""
        clean = bounded(text)
        pieces = [clean, *self._windows(clean)]
        readings = self.classifier.read(self.encode(pieces))
        best = max(readings, key=lambda r: r.emergency)
        whole = readings[0]
        if context and whole.emergency + whole.now >= self.classifier.config.possible:
            joined = bounded(" ".join([*context[-1:], text]))
            (with_context,) = self.classifier.read(self.encode([joined]))
            if with_context.emergency > best.emergency:
                best = with_context
        return Reading(best.emergency, best.category, max(whole.now, best.now), whole.health)

    def _windows(self, text: str) -> list[str]:
        words = text.split()
        if len(words) <= self.config.long_words:
            return []
        size, step = self.config.window_words, self.config.window_words * 3 // 4
        starts = list(range(0, len(words) - size + step, step))
        starts = [*starts[:self.config.max_windows - 1], max(0, len(words) - size)]
        return [" ".join(words[s:s + size]) for s in dict.fromkeys(starts)]

    # --- the verdict ----------------------------------------------------------------------------------------

    def assess(self, text: str, audience: Audience = Audience.PATIENT, context: Sequence[str] = ()) -> Triage:
        """Rules, classifier and language on ``text`` (``context``: earlier user messages, oldest first)."""
        if not isinstance(text, str):
            raise TypeError(f"triage expects the message as str, got {type(text).__name__}")
        audience = Audience(audience)
        context = [c for c in context if isinstance(c, str)][-self.config.context_turns:]
        if not Scan.of(text).text.strip():
            return Triage()
        hits = red_flags(text, context)
        reading = self.read(text, context)
        language = self.language.identify(text) if self.language is not None else None
        return self._verdict(hits, reading, language, audience)

    def with_findings(self, triage: Triage, text: str, mentions: Sequence[EntityMention],
                      audience: Audience = Audience.PATIENT) -> Triage:
        """``triage`` raised to an emergency when the linked ``mentions`` of ``text`` fire a findings rule."""
        if triage.urgent or self.findings is None or not mentions:
            return triage
        hit = self.findings.check(text, mentions)
        if hit is None:
            return triage
        return Triage(Tier.EMERGENCY, hit.category, self.messages.for_emergency((hit.category,), Audience(audience)),
                      hit.matched, ("findings",), True, triage.language)

    def _verdict(self, hits: list[RuleHit], reading: Reading, language: str | None, audience: Audience) -> Triage:
        thresholds = self.classifier.config
        learned = reading.emergency >= thresholds.emergency
        in_scope = reading.health >= thresholds.scope
        if hits or learned:
            triggers = ("rules",) * bool(hits) + ("classifier",) * learned
            named = [h.category for h in hits] + [reading.category] * learned
            first = "suicide" if "suicide" in named else named[0]
            shown = tuple(dict.fromkeys([first, *(h.category for h in hits)]))[:2]
            matched = " | ".join([*(h.matched for h in hits),
                                  *[f"classifier {reading.category} {reading.emergency:.2f}"] * learned])
            return Triage(Tier.EMERGENCY, first, self.messages.for_emergency(shown, audience), matched, triggers,
                          True, language)
        if language is not None:
            return Triage(Tier.NONE, None, self.messages.not_english(language, audience), None, ("language",),
                          True, language)
        if reading.emergency + reading.now >= thresholds.possible:
            category = reading.category if reading.emergency >= SAFETY_NET_FLOOR else None
            return Triage(Tier.POSSIBLE, category, self.messages.safety_net(category, audience),
                          f"classifier now {reading.now:.2f}, emergency {reading.emergency:.2f}", ("classifier",),
                          True, None)
        return Triage(Tier.NONE, in_scope=in_scope, situational=reading.emergency + reading.now >= thresholds.guard)



def open_triager(embedder=None, kg=None, linker=None, locale: str | None = None, model_dir=None,
                 config: TriageConfig | None = None) -> Triager:
    """The triage stage on the committed classifier (``bundle/triage``; ``ClassifierArtefactError`` names
    ``medkg triage fit`` when it is missing or was fitted on other embedder weights), the shipped MiniLM,
    the findings table when a KG and linker are given, and the language check (English words and, with a
    linker, the KG's vocabulary)."""
    from assistant.embedding import MiniLMEmbedder
    from assistant.safety.classifier import DEFAULT_MODEL_DIR, TriageEncoder

    embedder = embedder or MiniLMEmbedder(threads=1)
    classifier = TriageClassifier.load(model_dir or DEFAULT_MODEL_DIR, embedder.checksum)
    encoder = TriageEncoder(classifier.config, embedder)
    findings = FindingRules.open(kg, linker) if kg is not None and linker is not None else None
    vocabulary = None
    if linker is not None:
        from assistant.linking_text import fold_token

        vocabulary = lambda word: fold_token(word) in linker.dictionary.vocabulary  # noqa: E731
    language = LanguageCheck(vocabulary=vocabulary)
    return Triager(SafetyMessages.load(locale), classifier, encoder.encode, findings, language, config)
