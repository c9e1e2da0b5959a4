"""Fitting the triage classifier and choosing its thresholds by cross-validation across writers.

``fit_classifier`` reads the training data (``assistant.safety.training``), encodes it (cached under
``data/triage/``), and runs leave-one-writer-out cross-validation: each team-written file is predicted by a model
fitted on the others (the MedQuAD questions are split into as many folds). From those out-of-writer predictions
and the rules' verdicts it chooses:

* the emergency threshold: the lowest P(emergency) at which the rules *or* the classifier raise at most
  ``max_false_alarms`` of the look-alikes (safety first: as low as the false-alarm budget allows);
* the "may be urgent" threshold on P(emergency) + P(now): the highest at which at least ``min_now_recall`` of the
  look-alikes describing something happening now reach that tier;
* the scope threshold on health relevance: the highest at which at most ``max_refused`` of the health messages
  are taken for non-health.

Then it fits on everything and saves the model with the cross-validated figures in its manifest.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from assistant.safety.classifier import REPO, ClassifierConfig, Features, TriageClassifier, TriageEncoder, char_grams
from assistant.safety.rules import red_flags
from assistant.safety.training import (
    MEDQUAD_QUESTIONS,
    TRAIN_DIR,
    Message,
    classifier_text,
    fingerprint,
    label_of,
    medquad_questions,
    team_written,
)

log = logging.getLogger(__name__)

CACHE_DIR = REPO / "data" / "triage"


@dataclass(frozen=True)
class FitTargets:
    max_false_alarms: float = 0.045
    min_now_recall: float = 0.95
    max_refused: float = 0.005


@dataclass(frozen=True)
class CrossValidation:
    """Out-of-writer probabilities (n, K) in ``labels`` order for ``messages``, and the rules' verdicts."""

    messages: tuple[Message, ...]
    labels: tuple[str, ...]
    probabilities: np.ndarray
    rules: np.ndarray  # bool (n,): a rule fires


def encode_cached(encoder: TriageEncoder, texts: Sequence[str], cache_dir: Path = CACHE_DIR) -> Features:
    """``encoder.encode(texts)``; the MiniLM part cached by the texts, the layers and the embedder's checksum."""
    config = encoder.config
    key = hashlib.sha256("\0".join([encoder.checksum, str(config.layers), str(config.max_tokens), *texts])
                         .encode()).hexdigest()[:16]
    path = cache_dir / f"features-{key}.npy"
    if path.is_file():
        dense = np.load(path)
    else:
        dense = encoder.dense(list(texts))
        cache_dir.mkdir(parents=True, exist_ok=True)
        np.save(path, dense)
    return Features(dense, char_grams(texts, config))


def training_rows(train_dir: Path = TRAIN_DIR, medquad: Path = MEDQUAD_QUESTIONS) -> list[Message]:
    return [m for m in [*team_written(train_dir), *medquad_questions(medquad)] if label_of(m) is not None]


def cross_validate(messages: Sequence[Message], features: Features, config: ClassifierConfig,
                   medquad_folds: int = 4) -> CrossValidation:
    writers = sorted({m.source for m in messages if m.source != "medquad"})
    folds = np.array([writers.index(m.source) if m.source != "medquad" else -1 for m in messages])
    medquad = np.flatnonzero(folds == -1)
    folds[medquad] = np.arange(len(medquad)) % max(1, min(medquad_folds, len(writers)))
    labels = [label_of(m) for m in messages]
    all_labels = tuple(sorted(set(labels)))
    probabilities = np.zeros((len(messages), len(all_labels)), np.float32)
    for fold in sorted(set(folds)):
        held = folds == fold
        model = TriageClassifier.fit(features.rows(~held),
                                     [lab for lab, h in zip(labels, held, strict=True) if not h], config)
        columns = [all_labels.index(label) for label in model.labels]
        probabilities[np.ix_(held, columns)] = model.probabilities(features.rows(held))
    rules = np.array([bool(red_flags(m.text, m.history)) for m in messages])
    return CrossValidation(tuple(messages), all_labels, probabilities, rules)


def choose_thresholds(cv: CrossValidation, config: ClassifierConfig, targets: FitTargets) -> ClassifierConfig:
    emergency_cols = [i for i, label in enumerate(cv.labels) if label.startswith("emergency:")]
    p_emergency = cv.probabilities[:, emergency_cols].sum(axis=1)
    p_now = cv.probabilities[:, cv.labels.index("now")]
    health = 1 - cv.probabilities[:, cv.labels.index("non_health")]
    team = np.array([m.source != "medquad" for m in cv.messages])
    lookalike = np.array([m.expected == "lookalike" for m in cv.messages]) & team
    now = lookalike & np.array([m.now for m in cv.messages])
    healthy = np.array([m.expected != "non_health" for m in cv.messages])

    grid = np.round(np.arange(0.05, 0.96, 0.01), 2)
    emergency = next((t for t in grid if np.mean(cv.rules[lookalike] | (p_emergency[lookalike] >= t))
                      <= targets.max_false_alarms), 0.95)
    possible = max((t for t in grid if np.mean((p_emergency + p_now)[now] >= t) >= targets.min_now_recall),
                   default=0.05)
    scope = max((t for t in grid if np.mean(health[healthy] < t) <= targets.max_refused), default=0.05)
    return replace(config, emergency=float(emergency), possible=float(possible), scope=float(scope))


def figures(cv: CrossValidation, config: ClassifierConfig) -> dict:
    """Cross-validated figures at ``config``'s thresholds, per writer: recall (rules, classifier, either) and
    false alarms on look-alikes, the "may be urgent" reach on situations happening now, scope errors."""
    emergency_cols = [i for i, label in enumerate(cv.labels) if label.startswith("emergency:")]
    p_emergency = cv.probabilities[:, emergency_cols].sum(axis=1)
    p_now = cv.probabilities[:, cv.labels.index("now")]
    health = 1 - cv.probabilities[:, cv.labels.index("non_health")]
    out = {}
    for source in sorted({m.source for m in cv.messages}):
        rows = np.array([m.source == source for m in cv.messages])
        kind = np.array([m.expected for m in cv.messages])
        em, look = rows & (kind == "emergency"), rows & (kind == "lookalike")
        now = look & np.array([m.now for m in cv.messages])
        learned = p_emergency >= config.emergency
        either = cv.rules | learned
        out[source] = {
            "emergencies": int(em.sum()), "lookalikes": int(look.sum()),
            "recall_rules": _share(cv.rules[em]), "recall_classifier": _share(learned[em]),
            "recall_either": _share(either[em]), "false_alarms_either": _share(either[look]),
            "now_reaching_possible": _share((either | (p_emergency + p_now >= config.possible))[now]),
            "health_refused": _share(health[rows & (kind != "non_health")] < config.scope),
            "non_health_in_scope": _share(health[rows & (kind == "non_health")] >= config.scope),
        }
    return out


def _share(values: np.ndarray) -> float | None:
    return round(float(np.mean(values)), 4) if len(values) else None


def fit_classifier(config: ClassifierConfig, targets: FitTargets, out_dir: Path, train_dir: Path = TRAIN_DIR,
                   medquad: Path = MEDQUAD_QUESTIONS) -> tuple[TriageClassifier, dict]:
    messages = training_rows(train_dir, medquad)
    encoder = TriageEncoder(config)
    features = encode_cached(encoder, [classifier_text(m) for m in messages])
    cv = cross_validate(messages, features, config)
    config = choose_thresholds(cv, config, targets)
    measured = figures(cv, config)
    model = TriageClassifier.fit(features, [label_of(m) for m in messages], config)
    files = [*sorted(train_dir.glob("*.jsonl")), medquad]
    training = {"training_files": [str(p.relative_to(REPO)) for p in files], "training_sha256": fingerprint(files),
                "rows": len(messages), "labels_count": {label: sum(label_of(m) == label for m in messages)
                                                        for label in model.labels},
                "targets": targets.__dict__, "cross_validation": measured}
    model = replace(model, manifest=training)
    model.save(out_dir, embedder_checksum=encoder.checksum, training=training)
    return model, measured
