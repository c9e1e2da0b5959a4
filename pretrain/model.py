"""The KG-pretrained generator: SmolLM2 with entity representations pooled from its own hidden states.

One module holds the language model and the two small KG parts (KEPLER, Wang et al. 2021):

* an entity is represented by the language model itself: its name is run through the transformer and the
  final (normed) hidden states of its tokens are mean-pooled, ``(E, H)``, then projected to the KG space,
  ``(E, D)``, and L2-normalised (TransE's unit-norm entities; it keeps DistMult's products bounded too);
* relations have learnt embeddings ``(R, D)``; a triple is scored by a stateless interaction of
  ``pretrain.kg_scoring`` (``transe`` or ``distmult``);
* relation classification reads ``[h, t, h * t, h - t]`` ``(B, 4D)`` with one linear layer -> ``(B, R)``.

Gradients of the link and relation losses flow through the pooled hidden states into the transformer's
trainable part, so the KG objective shapes the generator, not only side tables.

Trainable part (``ModelConfig.trainable``), chosen by measuring tokens/s on this CPU (``benchmarks/`` and
the README): ``"lora"`` puts LoRA adapters (peft) on every linear layer of the top ``top_layers`` blocks;
``"top"`` trains those blocks fully; ``"full"`` trains everything. With only the top blocks trainable, the
bottom blocks run without autograd bookkeeping, which is where the speed comes from.

Shapes: ``B`` batch, ``T`` tokens, ``H`` hidden size (576 for SmolLM2-135M), ``D`` KG dim, ``R`` relations,
``E`` entities in a batch, ``N`` negatives per positive.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pretrain.kg_scoring import INTERACTIONS, in_batch_loss

log = logging.getLogger(__name__)

TRAINABLE = ("lora", "top", "full")
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class ModelConfig:
    trainable: str = "lora"  # "lora" | "top" | "full"
    top_layers: int = 8  # blocks that train (LoRA adapters or full weights); ignored for "full"
    lora_rank: int = 16
    lora_alpha: int = 32
    kg_dim: int = 256  # D
    interaction: str = "distmult"  # "transe" | "distmult"
    tiny: bool = False  # a 2-block random model with the real tokenizer, for tests

    def __post_init__(self) -> None:
        if self.trainable not in TRAINABLE:
            raise ValueError(f"trainable must be one of {TRAINABLE}, not {self.trainable!r}")
        if self.interaction not in INTERACTIONS:
            raise ValueError(f"interaction must be one of {sorted(INTERACTIONS)}, not {self.interaction!r}")
        if self.top_layers < 1 or self.lora_rank < 1 or self.kg_dim < 1:
            raise ValueError("top_layers, lora_rank and kg_dim must be positive")


def tiny_llama_config(vocab_size: int):
    """A 2-block, 64-wide Llama with SmolLM2's vocabulary: the tests' model (random weights)."""
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                       tie_word_embeddings=True, bos_token_id=1, eos_token_id=2)


def load_language_model(config: ModelConfig, vocab_size: int, path: Path | None = None) -> nn.Module:
    """The base causal LM in fp32: SmolLM2 from the wheel's GGUF (``path``), rebuilt as a plain
    ``LlamaForCausalLM`` (a GGUF-loaded model cannot ``save_pretrained``), or the tiny random model."""
    from transformers import LlamaForCausalLM

    if config.tiny:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            return LlamaForCausalLM(tiny_llama_config(vocab_size))
    from pretrain.export import load_base_model

    model, _ = load_base_model(path)
    if model.config.vocab_size != vocab_size:
        raise ValueError(f"the data was tokenised for {vocab_size} tokens, the model has {model.config.vocab_size}")
    return model


def select_trainable(lm: nn.Module, config: ModelConfig) -> nn.Module:
    """Freeze or adapt ``lm`` as ``config.trainable`` says; returns the module to train (a peft model for LoRA)."""
    blocks = lm.model.layers
    top = list(range(max(0, len(blocks) - config.top_layers), len(blocks)))
    if config.trainable == "full":
        lm.requires_grad_(True)
        return lm
    if config.trainable == "top":
        lm.requires_grad_(False)
        for i in top:
            blocks[i].requires_grad_(True)
        return lm
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=0.0,
                      target_modules=list(LORA_TARGETS), layers_to_transform=top, bias="none")
    return get_peft_model(lm, lora)


class KGLanguageModel(nn.Module):
    """The causal LM plus the KG parts. ``forward`` computes each objective's loss from a prepared batch."""

    def __init__(self, lm: nn.Module, n_relations: int, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.lm = select_trainable(lm, config)
        hidden = self.causal_lm.config.hidden_size
        self.entity_projection = nn.Linear(hidden, config.kg_dim)
        self.relation = nn.Embedding(n_relations, config.kg_dim)
        nn.init.normal_(self.relation.weight, std=config.kg_dim ** -0.5)
        if config.interaction == "distmult":  # start near the identity relation, so h . t drives the first steps
            nn.init.normal_(self.relation.weight, mean=1.0, std=0.1)
        self.relation_classifier = nn.Linear(4 * config.kg_dim, n_relations)
        self.score = INTERACTIONS[config.interaction]
        # the temperature of the logistic link loss: unit vectors give scores in [-2, 0] (TransE) or about
        # [-1, 1] (DistMult), too flat for a sigmoid without it
        self.scale = nn.Parameter(torch.tensor(5.0))

    @property
    def causal_lm(self) -> nn.Module:
        """The ``LlamaForCausalLM`` (inside the peft wrapper when LoRA is used)."""
        return self.lm.get_base_model() if hasattr(self.lm, "get_base_model") else self.lm

    def hidden_states(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Final normed hidden states ``(B, T, H)``."""
        return self.causal_lm.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def lm_loss(self, input_ids: Tensor, labels: Tensor) -> Tensor:
        """Mean next-token cross-entropy; ``labels`` ``(B, T)`` are the next tokens, -100 where not scored."""
        logits = self.causal_lm.lm_head(self.hidden_states(input_ids))
        return F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)

    @property
    def frozen_blocks(self) -> int:
        """How many bottom blocks never train (none for ``"full"``): their outputs for a given input never
        change, so an entity name's states after them are computed once (``frozen_states``) and cached."""
        if self.config.trainable == "full":
            return 0
        return max(0, len(self.causal_lm.model.layers) - self.config.top_layers)

    def run_blocks(self, hidden: Tensor, mask: Tensor, start: int, stop: int | None = None) -> Tensor:
        """Blocks ``[start, stop)`` of the transformer on hidden states ``(B, T, H)`` with the padding mask
        ``(B, T)``: the loop of ``LlamaModel.forward``, from any block."""
        from transformers.masking_utils import create_causal_mask

        base = self.causal_lm.model
        position_ids = torch.arange(hidden.shape[1], device=hidden.device).unsqueeze(0)
        causal = create_causal_mask(config=base.config, inputs_embeds=hidden, attention_mask=mask,
                                    past_key_values=None, position_ids=position_ids)
        rotary = base.rotary_emb(hidden, position_ids=position_ids)
        for block in base.layers[start:stop]:
            hidden = block(hidden, attention_mask=causal, position_embeddings=rotary, position_ids=position_ids)
        return hidden

    @torch.no_grad()
    def frozen_states(self, names: Tensor, lengths: Tensor) -> Tensor:
        """States ``(E, L, H)`` of name tokens ``(E, L)`` after the frozen blocks (the embeddings when none are),
        zeros past each name's end."""
        mask = (torch.arange(names.shape[1]) < lengths.unsqueeze(-1)).long()
        embedded = self.causal_lm.model.embed_tokens(names)
        return self.run_blocks(embedded, mask, 0, self.frozen_blocks) * mask.unsqueeze(-1)  # zeros past the end

    def encode_entities(self, names: Tensor, lengths: Tensor, frozen: Tensor | None = None) -> Tensor:
        """Entity vectors ``(E, D)``, unit norm, from name tokens ``(E, L)`` (right-padded) and lengths ``(E,)``:
        ``pool`` projected to the KG space."""
        return F.normalize(self.entity_projection(self.pool(names, lengths, frozen)), dim=-1)

    def pool(self, names: Tensor, lengths: Tensor, frozen: Tensor | None = None) -> Tensor:
        """The names' final (normed) hidden states mean-pooled over their tokens, ``(E, H)``.

        ``frozen`` ``(E, L, H)``, the names' states after the frozen blocks (``frozen_states``), skips those
        blocks: the same states for about ``top_layers / layers`` of the cost."""
        width = int(lengths.max())
        mask = (torch.arange(width, device=names.device) < lengths.unsqueeze(-1)).float()
        if frozen is None:
            hidden = self.hidden_states(names[:, :width], mask.long())
        else:
            top = self.run_blocks(frozen[:, :width], mask.long(), self.frozen_blocks)
            hidden = self.causal_lm.model.norm(top)
        return (hidden * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The losses of the objectives present in ``batch``:

        * ``lm``: ``input_ids``, ``labels`` ``(B, T)``;
        * ``link`` and ``rel``: ``names`` ``(E, L)``, ``lengths`` ``(E,)`` for the distinct entities of the batch
          (optionally ``frozen`` ``(E, L, H)``, their cached states after the frozen blocks); ``head``,
          ``relation``, ``tail`` ``(P,)`` positives as rows of ``names``; ``head_ok``, ``tail_ok`` ``(P, E)``,
          which batch entities may stand in the head or tail of each positive's relation (type constraint,
          the true answer excluded). Link loss: cross-entropy of the true tail among every allowed entity of
          the batch, and the same for the head (``kg_scoring.in_batch_loss``); relation loss: cross-entropy
          of the relation from the positive pair.
        """
        losses: dict[str, Tensor] = {}
        if "input_ids" in batch:
            losses["lm"] = self.lm_loss(batch["input_ids"], batch["labels"])
        if "names" in batch:
            e = self.encode_entities(batch["names"], batch["lengths"], batch.get("frozen"))
            h, t, r = e[batch["head"]], e[batch["tail"]], batch["relation"]
            rel = self.relation(r)
            pos = self.scale * self.score(h, rel, t)
            tails = self.scale * self.score(h, rel, e.unsqueeze(0))  # (P, E): every batch entity as the tail
            heads = self.scale * self.score(e.unsqueeze(0), rel, t)  # (P, E): ... as the head
            losses["link"] = 0.5 * (in_batch_loss(pos, tails, batch["tail_ok"])
                                    + in_batch_loss(pos, heads, batch["head_ok"]))
            pair = torch.cat([h, t, h * t, h - t], dim=-1)
            losses["rel"] = F.cross_entropy(self.relation_classifier(pair), r)
        return losses

    def trainable_parameters(self) -> list[tuple[str, nn.Parameter]]:
        return [(name, p) for name, p in self.named_parameters() if p.requires_grad]

    def merged_language_model(self) -> nn.Module:
        """A plain ``LlamaForCausalLM`` with any LoRA adapter merged in (a copy: this model is unchanged)."""
        import copy

        lm = copy.deepcopy(self.lm)
        if hasattr(lm, "merge_and_unload"):
            lm = lm.merge_and_unload()
        return lm.requires_grad_(False)


@torch.no_grad()
def frozen_entity_states(model: KGLanguageModel, names: np.ndarray, lengths: np.ndarray,
                         batch_size: int = 512) -> Tensor:
    """Every entity name's states after the frozen blocks, ``(n, L, H)`` (zeros past each name's end), computed
    once in batches of similar length; ``LinkBatches`` hands them to ``encode_entities`` so a training step
    runs only the trainable blocks on names (46k names x 16 x 576 floats: 1.7 GB for the full KG)."""
    hidden = model.causal_lm.config.hidden_size
    out = torch.zeros(len(names), names.shape[1], hidden)
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        rows = torch.from_numpy(order[start:start + batch_size])
        width = int(lengths[rows.numpy()].max())
        ids = torch.from_numpy(names[rows.numpy(), :width].astype(np.int64))
        out[rows, :width] = model.frozen_states(ids, torch.from_numpy(lengths[rows.numpy()].astype(np.int64)))
    return out


def cached_entity_states(model: KGLanguageModel, names: np.ndarray, lengths: np.ndarray, directory: Path,
                         check: int = 8) -> np.ndarray:
    """``frozen_entity_states`` kept in ``directory`` (``frozen_states_<blocks>.npy``, memory-mapped), so the
    6 minutes they take on this CPU for the full KG are spent once per prepared data set, not once per run. The
    file is trusted only if its shape fits and ``check`` spread-out names recomputed now agree with it;
    otherwise it is rebuilt."""
    path = Path(directory) / f"frozen_states_{model.frozen_blocks}.npy"
    shape = (len(names), names.shape[1], model.causal_lm.config.hidden_size)
    if path.is_file():
        states = np.load(path, mmap_mode="r")
        rows = np.linspace(0, len(names) - 1, check).astype(np.int64)
        if states.shape == shape:
            fresh = frozen_entity_states(model, names[rows], lengths[rows])
            kept = torch.from_numpy(np.asarray(states[rows]))
            real = (torch.arange(shape[1]) < torch.from_numpy(lengths[rows].astype(np.int64)).unsqueeze(-1))
            if torch.allclose(fresh[real], kept[real], rtol=1e-4, atol=1e-4):  # states past a name's end never count
                return states
        log.warning("%s does not match the model or the entities: recomputing it", path)
    states = frozen_entity_states(model, names, lengths).numpy()
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, states)
    os.replace(tmp, path)
    return np.load(path, mmap_mode="r")
