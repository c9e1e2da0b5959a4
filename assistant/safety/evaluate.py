"""``medkg eval triage``: score message batches through the answer pipeline's own first stages.

Each message (with its ``history`` as earlier turns) goes through ``Assistant.prepare`` on the built artefacts
with a generator that is never called: triage, linking, the findings check, scope and the fixed replies are
decided there, so the outcome is exactly what a user would get first. Per batch:

* **recall**: emergencies that got the emergency reply / emergencies, overall and per category, and which
  component raised them (rules, findings, classifier);
* **false alarms**: look-alikes that got the emergency reply / look-alikes;
* **fallbacks given to people in danger**: emergencies and situations happening now that got "out of scope",
  "unknown term" or "no evidence" (target: none), and the share of situations happening now that reached at least
  the "may be urgent" tier;
* **scope**: non-health messages redirected as out of scope; **language**: non-English messages given the note.

A batch written blind is scored once, at first sight, with ``--record``: its figures are appended to
``eval/triage/blind/first_sight.jsonl`` with the commit they were measured on; recording the same batch twice is
refused, so a figure measured after tuning on it can never pass for a first-sight one.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from assistant.safety.training import BLIND_DIR, REPO, Message
from assistant.types import Answer, Audience, Tier

FIRST_SIGHT = BLIND_DIR / "first_sight.jsonl"
FALLBACKS = frozenset({"out_of_scope", "unknown_term", "no_evidence"})


@dataclass(frozen=True)
class Outcome:
    message: Message
    situation: str | None  # Prepared.situation: "triage", "non_english", "out_of_scope", ... or None (answered)
    tier: Tier
    category: str | None
    triggers: tuple[str, ...]
    seconds: float


@dataclass
class BatchScore:
    name: str
    outcomes: list[Outcome] = field(default_factory=list)

    def _of(self, expected: str, now: bool | None = None) -> list[Outcome]:
        return [o for o in self.outcomes if o.message.expected == expected and (now is None or o.message.now == now)]

    def figures(self) -> dict:
        emergencies, lookalikes = self._of("emergency"), self._of("lookalike")
        now = [o for o in lookalikes if o.message.now]
        caught = [o for o in emergencies if o.situation == "triage"]
        per_category: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for o in emergencies:
            per_category[o.message.category][1] += 1
            per_category[o.message.category][0] += o.situation == "triage"
        components = Counter(t for o in caught for t in o.triggers)
        in_danger = [o for o in [*emergencies, *now] if o.situation in FALLBACKS]
        non_health, non_english = self._of("non_health"), self._of("non_english")
        return {
            "batch": self.name,
            "emergencies": len(emergencies), "recall": _ratio(len(caught), len(emergencies)),
            "recall_by_category": {c: _ratio(*n) for c, n in sorted(per_category.items())},
            "raised_by": dict(components),
            "lookalikes": len(lookalikes),
            "false_alarms": _ratio(sum(o.situation == "triage" for o in lookalikes), len(lookalikes)),
            "fallbacks_to_people_in_danger": len(in_danger),
            "now_reaching_possible": _ratio(sum(o.tier is not Tier.NONE for o in now), len(now)),
            "non_health_redirected": _ratio(sum(o.situation == "out_of_scope" for o in non_health), len(non_health)),
            "non_english_noted": _ratio(sum(o.situation in ("non_english", "triage") for o in non_english),
                                        len(non_english)),
        }

    def misses(self) -> list[str]:
        lines = []
        for o in self.outcomes:
            wrong = ((o.message.expected == "emergency" and o.situation != "triage")
                     or (o.message.expected == "lookalike" and o.situation == "triage")
                     or (o.message.expected == "lookalike" and o.message.now and o.situation in FALLBACKS)
                     or (o.message.expected == "non_health" and o.situation != "out_of_scope")
                     or (o.message.expected == "non_english" and o.situation not in ("non_english", "triage")))
            if wrong:
                got = f"{o.situation or 'answered'}/{o.tier.value}" + (f" {o.category}" if o.category else "")
                lines.append(f"{o.message.expected:<11} {o.message.category or '-':<12} got {got:<28} "
                             f"{' | '.join(o.message.history)}{' || ' if o.message.history else ''}{o.message.text}")
        return lines


def _ratio(hit: int, total: int) -> list:
    return [hit, total, round(hit / total, 4) if total else None]


def score(assistant, messages: Sequence[Message], name: str) -> BatchScore:
    """Each message through ``assistant.prepare`` (its history as earlier turns), as its audience."""
    import time

    batch = BatchScore(name)
    for message in messages:
        history = [Answer(question=q, audience=Audience(message.audience), text="") for q in message.history]
        started = time.perf_counter()
        prepared = assistant.prepare(message.text, history, Audience(message.audience))
        check = prepared.triage
        batch.outcomes.append(Outcome(message, prepared.situation, check.tier if check else Tier.NONE,
                                      check.category if check else None, check.triggers if check else (),
                                      time.perf_counter() - started))
    return batch


def recorded(path: Path = FIRST_SIGHT) -> dict[str, dict]:
    if not path.is_file():
        return {}
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {row["file_sha256"]: row for row in rows}


def record_first_sight(figures: dict, batch_file: Path, path: Path = FIRST_SIGHT) -> dict:
    """Append ``figures`` as the first-sight score of ``batch_file``; refused if that file was recorded before."""
    import hashlib

    digest = hashlib.sha256(batch_file.read_bytes()).hexdigest()
    if digest in recorded(path):
        raise ValueError(f"{batch_file} was scored at first sight already ({recorded(path)[digest]['recorded_at']}): "
                         "a new score on it is a training figure, not a first-sight one")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                            check=False).stdout.strip()
    # the record file itself does not count: scoring two batches in one run appends to it in between
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                 f":(exclude){path.resolve().relative_to(REPO)}" if path.resolve().is_relative_to(REPO)
                                 else "."], cwd=REPO, capture_output=True, text=True, check=False).stdout.strip())
    row = {"file": str(batch_file.relative_to(REPO)) if batch_file.is_relative_to(REPO) else str(batch_file),
           "file_sha256": digest, "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
           "commit": commit + ("+uncommitted" if dirty else ""), **figures}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return row


def format_figures(figures: dict) -> str:
    def r(ratio: list) -> str:
        hit, total, value = ratio
        return f"{value:.3f} ({hit}/{total})" if total else "-"

    lines = [f"batch {figures['batch']}: {figures['emergencies']} emergencies, {figures['lookalikes']} look-alikes",
             f"  recall                          {r(figures['recall'])}   raised by {figures['raised_by']}",
             f"  false alarms on look-alikes     {r(figures['false_alarms'])}",
             f"  fallbacks to people in danger   {figures['fallbacks_to_people_in_danger']}",
             f"  now -> at least 'may be urgent' {r(figures['now_reaching_possible'])}",
             f"  non-health redirected           {r(figures['non_health_redirected'])}",
             f"  non-English noted               {r(figures['non_english_noted'])}",
             "  recall by category: " + ", ".join(f"{c} {h}/{t}" for c, (h, t, _) in
                                                  figures["recall_by_category"].items())]
    return "\n".join(lines)
