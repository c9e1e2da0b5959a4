"""Red-flag rules over linked findings: combinations of the KG concepts the entity linker found in a message.

The regular-expression rules (``assistant.safety.rules``) read words; these read what the linker made of them,
so they inherit its synonyms, clinical terms and typo correction ("diaphoresis", "dyspnoea", "hemiparesis",
"pharyngeal oedema", "chest pian"). The table is data (``resources/triage_findings.toml``): groups of KG names,
and rules that fire when all of their groups (``all``) or two different ones (``two_of``) are found. A mention
counts only where no cue clears it (``Scan.cleared``: negation, history, a general question, resolution).

``FindingRules.open(kg, linker)`` resolves each group's names to entity ids once (every dictionary entry with
that name, and their records in other sources); ``check(text, mentions)`` is then a few set lookups.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from assistant.linking_dictionary import RESOURCES, LinkingResourceError
from assistant.linking_text import name_key
from assistant.safety.cues import Scan
from assistant.safety.rules import RuleHit
from assistant.types import EntityMention

log = logging.getLogger(__name__)

FINDINGS_FILE = RESOURCES / "triage_findings.toml"


@dataclass(frozen=True)
class FindingRule:
    category: str
    groups: tuple[str, ...]
    two_of: bool  # False: every group must be found


@dataclass(frozen=True)
class FindingRules:
    """``groups``: group name -> entity ids; ``rules`` in file order (the first that fires names the category)."""

    groups: dict[str, frozenset[str]]
    rules: tuple[FindingRule, ...]

    @classmethod
    def open(cls, kg, linker, path: Path = FINDINGS_FILE) -> FindingRules:
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8"))
            names, rules = table["groups"], table["rules"]
            parsed = tuple(FindingRule(r["category"], tuple(r.get("all") or r["two_of"]), "two_of" in r)
                           for r in rules)
        except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError) as error:
            raise LinkingResourceError(f"cannot read the triage findings table {path}: {error}") from None
        unknown = {g for rule in parsed for g in rule.groups} - set(names)
        if unknown:
            raise LinkingResourceError(f"{path}: rules name groups that are not defined: {sorted(unknown)}")
        entries = linker.dictionary.entries
        groups = {}
        for group, members in names.items():
            ids = {e.entity_id for name in members for e in entries.get(name_key(name), ())}
            ids |= {other for entity_id in list(ids) for other in kg.same_concept(entity_id)}
            if not ids:
                log.debug("triage findings group %s: none of its names is in this KG", group)
            groups[group] = frozenset(ids)
        return cls(groups, parsed)

    def check(self, text: str, mentions: Sequence[EntityMention]) -> RuleHit | None:
        """The first rule whose groups the uncleared ``mentions`` of ``text`` cover, as a ``RuleHit`` naming the
        findings as written ("chest pain + sweating"), or None."""
        scan = Scan.of(text)
        if len(scan.raw) != len(text):  # a very long message: the scan is cut, its offsets are not the text's
            return None
        for rule in self.rules:
            found: dict[str, EntityMention] = {}
            for group in rule.groups:
                for mention in mentions:
                    if mention.entity_id in self.groups[group] and mention not in found.values() \
                            and not scan.cleared(mention.start, mention.end, rule.category):
                        found[group] = mention
                        break
            if len(found) == len(rule.groups) or (rule.two_of and len(found) >= 2):
                return RuleHit(rule.category, " + ".join(m.text for m in found.values()))
        return None
