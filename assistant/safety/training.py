"""The triage classifier's training data: what it is, where it comes from, and how it becomes labels.

* ``eval/triage/train/*.jsonl``: team-written messages (helper sessions given ``eval/triage/WRITING_BRIEF.md`` and
  a style to concentrate on), one writer per file: emergencies of every category, look-alikes, everyday health
  situations happening now, non-health and non-English messages. A blind batch joins them (``eval/triage/blind``)
  only after its first-sight score is committed.
* ``bundle/triage/medquad_questions.jsonl.gz``: MedQuAD questions (CC BY 4.0) as "info": real consumer questions
  about conditions and medicines. Questions about a focus of the 995 evaluation questions
  (``eval/retrieval_medquad500*.jsonl``) are left out: those are the false-alarm test.

A row's label (``label_of``): ``emergency:<category>`` for an emergency; ``now`` for a look-alike describing
something happening now; ``info`` for the other look-alikes; ``non_health``. Non-English rows are left to the
language check. A follow-up is read as its last user turn joined to the message (what the classifier reads in
``Triager.read``).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from assistant.safety.classifier import REPO

TRAIN_DIR = REPO / "eval" / "triage" / "train"
BLIND_DIR = REPO / "eval" / "triage" / "blind"
MEDQUAD_QUESTIONS = REPO / "bundle" / "triage" / "medquad_questions.jsonl.gz"
MEDQUAD_EVAL = (REPO / "eval" / "retrieval_medquad500.jsonl", REPO / "eval" / "retrieval_medquad500_dev.jsonl")
CATEGORIES = ("suicide", "cardiac", "stroke", "anaphylaxis", "breathing", "unconscious", "overdose", "bleeding",
              "sepsis", "pregnancy", "diabetic", "abdominal", "head_injury", "injury")
EXPECTED = ("emergency", "lookalike", "non_health", "non_english")
KEYS = {"id", "text", "expected", "category", "now", "style", "audience", "history"}


class TriageDataError(ValueError):
    """A triage data file is malformed (the message names the file and line)."""


@dataclass(frozen=True)
class Message:
    """One written message: ``expected`` in ``EXPECTED``; ``category`` an emergency category (the one a
    look-alike resembles) or None; ``now``: it describes something happening now; ``history``: earlier user
    turns, oldest first; ``source``: the file's stem (the writer)."""

    id: str
    text: str
    expected: str
    category: str | None
    now: bool
    style: str
    audience: str
    history: tuple[str, ...]
    source: str


def label_of(message: Message) -> str | None:
    """The classifier's label for ``message``, or None for a message it does not learn from (non-English)."""
    if message.expected == "emergency":
        return f"emergency:{message.category}"
    if message.expected == "lookalike":
        return "now" if message.now else "info"
    if message.expected == "non_health":
        return "non_health"
    return None


def read_messages(path: Path) -> list[Message]:
    """The messages of one JSON Lines file, checked: every key of ``KEYS`` (``id`` and ``history`` optional),
    a known ``expected``, and a known category for an emergency."""
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except ValueError as error:
            raise TriageDataError(f"{where}: not JSON ({error})") from None
        unknown = set(row) - KEYS
        if unknown or not isinstance(row.get("text"), str) or row.get("expected") not in EXPECTED:
            raise TriageDataError(f"{where}: expected keys {sorted(KEYS)} with text a string and expected one of "
                                  f"{EXPECTED}; got {sorted(row)}")
        category = row.get("category") or None
        if category is not None and category not in CATEGORIES:
            raise TriageDataError(f"{where}: unknown category {category!r}; known: {', '.join(CATEGORIES)}")
        if row["expected"] == "emergency" and category is None:
            raise TriageDataError(f"{where}: an emergency needs its category")
        history = row.get("history") or []
        if not isinstance(history, list) or not all(isinstance(h, str) for h in history):
            raise TriageDataError(f"{where}: history must be a list of earlier user messages")
        out.append(Message(str(row.get("id") or f"{path.stem}-{number:04d}"), row["text"], row["expected"], category,
                           bool(row.get("now")), str(row.get("style") or ""), str(row.get("audience") or "patient"),
                           tuple(history), path.stem))
    return out


def team_written(folder: Path = TRAIN_DIR) -> list[Message]:
    files = sorted(folder.glob("*.jsonl"))
    if not files:
        raise TriageDataError(f"no training files in {folder}")
    return [m for path in files for m in read_messages(path)]


def medquad_questions(path: Path = MEDQUAD_QUESTIONS) -> list[Message]:
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    return [Message(f"medquad-{r['qid']}", r["question"], "lookalike", None, False, "medquad", "patient", (),
                    "medquad") for r in rows]


def classifier_text(message: Message) -> str:
    """What the classifier reads for ``message``: a follow-up joined to its last earlier turn."""
    return " ".join([*message.history[-1:], message.text])


def fingerprint(paths: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()
