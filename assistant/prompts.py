"""Prompt templates as files (``prompts/``): one system prompt per audience, the user-turn template with named
``$slots``, and the fixed messages (``messages.toml``). A missing file or slot is an error naming the file."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from string import Template

from assistant.types import Audience
from kg.errors import KGError

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"
USER_SLOTS = frozenset({"evidence", "conversation", "question", "sentences"})


class PromptError(KGError):
    """A prompt template is missing or malformed."""


@dataclass(frozen=True)
class PromptSet:
    system: dict[Audience, str]
    user: Template
    messages: dict[str, dict[str, str]]  # situation -> audience value -> text

    @classmethod
    def load(cls, folder: Path = PROMPTS_DIR) -> PromptSet:
        try:
            system = {a: (folder / f"system_{a.value}.txt").read_text(encoding="utf-8").strip() for a in Audience}
            user = Template((folder / "user.txt").read_text(encoding="utf-8"))
            messages = tomllib.loads((folder / "messages.toml").read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise PromptError(f"cannot read the prompt templates in {folder}: {error} "
                              "(restore them from git)") from None
        slots = {m.group("named") or m.group("braced") for m in user.pattern.finditer(user.template)} - {None}
        if slots != USER_SLOTS:
            raise PromptError(f"{folder / 'user.txt'} has slots {sorted(slots)}, expected {sorted(USER_SLOTS)}")
        for situation, texts in messages.items():
            if set(texts) != {a.value for a in Audience}:
                raise PromptError(f"{folder / 'messages.toml'} [{situation}] needs one text per audience")
        return cls(system, user, messages)

    def message(self, situation: str, audience: Audience, **slots: object) -> str:
        return Template(self.messages[situation][audience.value]).safe_substitute(slots)

    def user_turn(self, *, evidence: str, conversation: str, question: str, sentences: int) -> str:
        text = self.user.substitute(evidence=evidence, conversation=conversation, question=question,
                                    sentences=sentences)
        return re.sub(r"\n{3,}", "\n\n", text).strip()
