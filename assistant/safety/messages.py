"""The texts the safety triage shows first, per audience and locale (``prompts/triage.toml``,
``prompts/locales.toml``).

``SafetyMessages.load(locale)`` reads both files, fills the ``$emergency``, ``$crisis`` and ``$poison`` slots from
the locale, and checks that every emergency category has both audiences' texts and no slot is left unfilled, so a
broken file fails at start-up, not in front of a person in danger. The locale comes from the caller (``--locale``),
else ``MEDKG_LOCALE``, else ``default``, whose numbers name several countries.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from string import Template

from assistant.prompts import PROMPTS_DIR, PromptError
from assistant.types import Audience

LOCALE_SLOTS = frozenset({"emergency", "crisis", "poison"})
DEFAULT_LOCALE = "default"


def _read(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise PromptError(f"cannot read {path}: {error} (restore it from git)") from None


@dataclass(frozen=True)
class SafetyMessages:
    """The filled texts: ``emergency[category][audience]``, ``possible[category][audience]`` (with a "general"
    entry), ``non_english[audience]`` and ``translations[language code]``."""

    locale: str
    emergency: dict[str, dict[Audience, str]]
    possible: dict[str, dict[Audience, str]]
    non_english: dict[Audience, str]
    translations: dict[str, str]

    @classmethod
    def load(cls, locale: str | None = None, folder: Path = PROMPTS_DIR) -> SafetyMessages:
        locale = locale or os.environ.get("MEDKG_LOCALE") or DEFAULT_LOCALE
        locales = _read(folder / "locales.toml")
        if locale not in locales:
            raise PromptError(f"unknown locale {locale!r}: {folder / 'locales.toml'} has {', '.join(sorted(locales))}")
        slots = locales[locale]
        if set(slots) != LOCALE_SLOTS:
            raise PromptError(f"{folder / 'locales.toml'} [{locale}] needs exactly the keys {sorted(LOCALE_SLOTS)}")
        texts = _read(folder / "triage.toml")

        def fill(where: str, text: str) -> str:
            filled = Template(text).safe_substitute(slots)
            if "$" in filled:
                raise PromptError(f"{folder / 'triage.toml'} [{where}] has an unknown slot: {filled!r}")
            return filled

        def per_audience(table: str) -> dict[str, dict[Audience, str]]:
            out = {}
            for category, pair in texts.get(table, {}).items():
                if set(pair) != {a.value for a in Audience}:
                    raise PromptError(f"{folder / 'triage.toml'} [{table}.{category}] needs one text per audience")
                out[category] = {a: fill(f"{table}.{category}", pair[a.value]) for a in Audience}
            return out

        emergency, possible = per_audience("emergency"), per_audience("possible")
        missing = (set(emergency) | {"general"}) - set(possible)
        if missing:
            raise PromptError(f"{folder / 'triage.toml'} has no [possible.*] text for {sorted(missing)}")
        non_english = {a: fill("non_english", texts["non_english"][a.value]) for a in Audience}
        translations = {code: str(text) for code, text in texts.get("translations", {}).items()}
        return cls(locale, emergency, possible, non_english, translations)

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(self.emergency)

    def for_emergency(self, categories: tuple[str, ...], audience: Audience) -> str:
        """The emergency reply for one or more categories, suicide first (crisis guidance before anything else)."""
        ordered = sorted(dict.fromkeys(categories), key=lambda c: c != "suicide")
        return "\n\n".join(self.emergency[c][audience] for c in ordered[:2])

    def safety_net(self, category: str | None, audience: Audience) -> str:
        return self.possible.get(category or "general", self.possible["general"])[audience]

    def not_english(self, language: str | None, audience: Audience) -> str:
        """The note to a message not in English, and the same note in its language when one is written."""
        note = self.non_english[audience]
        translated = self.translations.get((language or "").lower())
        return f"{note}\n\n{translated}" if translated else note

