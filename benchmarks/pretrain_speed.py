"""Training throughput of the trainable-part choices on this CPU, measured in one run against a full fine-tune.

    .venv/bin/python benchmarks/pretrain_speed.py [--data data/pretrain] [--steps 6] [--threads 2]

Each setup trains SmolLM2-135M for ``--steps`` steps of the stage-1 objective (8 windows of 128 tokens + 16 edges
with 8 negatives each) after one warm-up step, on the same batches; tokens/s counts the LM tokens and the entity
name tokens each step runs through the model. Prints tokens/s per setup and its ratio to the full fine-tune.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from pretrain.batches import LinkBatches, LMBatches
from pretrain.data import EdgeSplit
from pretrain.model import KGLanguageModel, ModelConfig, load_language_model
from pretrain.prepare import read_manifest

SETUPS = {
    "full": ModelConfig(trainable="full"),
    "top-8 blocks": ModelConfig(trainable="top", top_layers=8),
    "LoRA r16, all 30 blocks": ModelConfig(trainable="lora", top_layers=30),
    "LoRA r16, top 8 blocks": ModelConfig(trainable="lora", top_layers=8),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path("data/pretrain"))
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    vocab = read_manifest(args.data, check=False)["vocab_size"]
    split = EdgeSplit.load(args.data)
    with np.load(args.data / "entities.npz") as arrays:
        names, lengths = arrays["names"], arrays["lengths"]
    generator = torch.Generator().manual_seed(0)
    text = LMBatches(args.data / "lm_train.bin", 128, 8, generator)
    link = LinkBatches(split, names, lengths, 16, 8, generator)
    batches = [{**next(text), **next(link)} for _ in range(args.steps + 1)]
    tokens = [b["input_ids"].numel() + int(b["lengths"].sum()) for b in batches]

    rates = {}
    for label, config in SETUPS.items():
        model = KGLanguageModel(load_language_model(config, vocab), len(split.relations), config)
        params = [p for _, p in model.trainable_parameters()]
        optimizer = torch.optim.AdamW(params, lr=1e-4)
        for i, batch in enumerate(batches):
            if i == 1:
                started = time.perf_counter()
            losses = model(batch)
            loss = losses["lm"] + 0.5 * losses["link"] + 0.2 * losses["rel"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        elapsed = time.perf_counter() - started
        rates[label] = sum(tokens[1:]) / elapsed
        trainable = sum(p.numel() for p in params)
        print(f"{label:26s} {rates[label]:7.1f} tokens/s  ({elapsed / args.steps:5.2f} s/step, "
              f"{trainable / 1e6:6.2f} M trainable)", flush=True)
        del model, optimizer
    base = rates["full"]
    print("\nratio to the full fine-tune (same run, same batches):")
    for label, rate in rates.items():
        print(f"  {label:26s} {rate / base:4.2f}x")


if __name__ == "__main__":
    main()
