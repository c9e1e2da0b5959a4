"""Stage 1b: the link-prediction head fitted over every link-training edge, on the language model's own states.

Stage 1 trains the KG objective through the transformer, but each step encodes its entities' names with the
trainable blocks, so on this CPU it sees 32 edges a step: 7,680 of the 310k link-training edges in 240 steps,
about 2.5% of one epoch. PyKEEN's baselines see every edge five to seven times. This stage gives the
link-prediction part the same data: the stage-1 model's pooled final hidden state of every entity's name,
``(n, H)``, is computed once (``pooled_states``), and only the head on top of it trains, in whole epochs:

* ``KGHead``: a two-layer MLP ``H -> hidden -> D`` (the stage-1 projection is one linear layer) on the
  standardised states, L2-normalised, plus relation vectors ``(R, D)`` under DistMult, the interaction stage 1
  chose by measurement;
* loss: cross-entropy of the true tail (and head) among ``negatives`` entities drawn from the relation's
  type-constrained candidates (``kg_scoring.in_batch_loss``); every batch holds edges of one relation.

Entities are still represented by the language model: the head sees nothing but the LM's pooled state of
the entity's name, and with ``definitions=True`` beside it the pooled state of its ``"<name>: <definition>"``
(KEPLER's entity text; Disease Ontology and HPO terms have definitions, drugs and genes have none here; a
definition naming both ends of a held-out edge is left out, as in the corpus). Two controls: the same fit on
the base model's states (``base=True``, the adapter switched off) tells what stage 1's KG training added; the
same fit on seeded random vectors (``random=576``) tells how much the head makes of entity identities alone,
without any language model. ``medkg pretrain eval --head ... --head ...`` (once per head) ranks each, named by
what it was fitted on. The generator's weights do not change.

    medkg pretrain fit-head --checkpoint=runs/kg240.pt --out=runs/kg_head/head.pt [--base] [--definitions]
"""

from __future__ import annotations

import json
import logging
import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kg.artefacts import sha256_file
from pretrain.config import parse_config
from pretrain.data import EdgeSplit
from pretrain.kg_scoring import in_batch_loss
from pretrain.linkpred import EmbeddingScorer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeadConfig:
    checkpoint: str = "runs/kg/ckpt.pt"  # the stage-1 checkpoint whose pooled states are the entity features
    base: bool = False  # the control: the same fit on the base model's states (the adapter switched off)
    random: int = 0  # > 0, the other control: seeded random vectors of this width (576: SmolLM2's) for the states
    definitions: bool = False  # beside the name's state, the pooled "<name>: <definition>" (KEPLER); 26 min once
    data_dir: str = "data/pretrain"
    out: str = "runs/kg_head.pt"
    hidden: int = 2048
    kg_dim: int = 256
    epochs: int = 15  # measured (README): names + definitions 0.102 MRR at 6 epochs, 0.164 at 15
    batch_size: int = 2048  # positive edges per step, all of one relation
    negatives: int = 1024  # per step, drawn from the relation's candidates; shared by the step's positives
    lr: float = 2e-3  # cosine-decayed to lr / 10 over all epochs
    seed: int = 0
    threads: int = 0
    resume: bool = False  # go on from ``out`` (the epochs done are in it)
    stop_after: int = 0  # end this session after so many epochs (checkpointed; --resume goes on), 0: never
    progress: bool = True  # a progress bar over the steps, the loss of the last epoch beside it

    def __post_init__(self) -> None:
        if min(self.hidden, self.kg_dim, self.epochs, self.batch_size, self.negatives) < 1:
            raise ValueError("hidden, kg_dim, epochs, batch_size and negatives must be positive")


def pool_entities(model, names: np.ndarray, lengths: np.ndarray, frozen: np.ndarray | None, base: bool = False,
                  batch_size: int = 512) -> np.ndarray:
    """Mean-pooled final (normed) hidden states ``(n, H)`` of every entity name, the representation
    ``KGLanguageModel.encode_entities`` projects (``KGLanguageModel.pool``); ``base`` switches the LoRA adapter
    off."""
    from pretrain.evaluate import entity_vectors

    if base and not hasattr(model.lm, "disable_adapter"):
        raise ValueError("the base control needs a LoRA checkpoint (its adapter is switched off)")
    with model.lm.disable_adapter() if base else nullcontext():
        return entity_vectors(model, names, lengths, batch_size, frozen, pooled=True).numpy()


def pooled_states(checkpoint: Path, data_dir: Path, base: bool = False,
                  definitions: bool = False) -> tuple[np.ndarray, str]:
    """``pool_entities`` for a checkpoint, kept in ``data_dir`` as
    ``pooled_<checkpoint sha256[:12]>[_base][_definitions].npy`` beside a ``.json`` with the sha256 of the token
    file it was pooled from (a changed file is pooled again); returns the states and that file's key.

    Names: 4-5 minutes on this CPU for the full KG (the frozen blocks' cached states are reused). ``definitions``:
    the texts of ``definitions.npz`` (``"<name>: <definition>"``, up to 64 tokens) through all 30 blocks, about 26
    minutes at 2 threads; rows of entities without a usable definition are zero."""
    from pretrain.evaluate import load_trained
    from pretrain.model import cached_entity_states

    key = sha256_file(Path(checkpoint))[:12] + ("_base" if base else "") + ("_definitions" if definitions else "")
    path = Path(data_dir) / f"pooled_{key}.npy"
    source = Path(data_dir) / ("definitions.npz" if definitions else "entities.npz")
    if not source.is_file():
        raise FileNotFoundError(f"{source} is missing: rebuild the prepared data with "
                                f"'python -m pretrain.prepare --out {data_dir}'")
    with np.load(source) as arrays:
        texts, lengths = (arrays["tokens"] if definitions else arrays["names"]), arrays["lengths"]
    made_from = {"checkpoint": str(checkpoint), source.name: sha256_file(source)}
    sidecar = path.with_suffix(".json")
    if path.is_file():
        if sidecar.is_file() and json.loads(sidecar.read_text()).get(source.name) == made_from[source.name]:
            return np.load(path), key
        log.warning("%s was not pooled from this %s: recomputing it", path, source)
    model, _ = load_trained(Path(checkpoint))
    started = time.perf_counter()
    if definitions:
        rows = np.flatnonzero(lengths > 0)
        states = np.zeros((len(texts), model.causal_lm.config.hidden_size), dtype=np.float32)
        states[rows] = pool_entities(model, texts[rows], lengths[rows], None, base=base, batch_size=64)
    else:
        frozen = cached_entity_states(model, texts, lengths, Path(data_dir)) if model.frozen_blocks else None
        rows = np.arange(len(texts))
        states = pool_entities(model, texts, lengths, frozen, base=base)
    log.info("pooled %d entity %s in %.0fs", len(rows), "definitions" if definitions else "names",
             time.perf_counter() - started)
    np.save(path, states)
    sidecar.write_text(json.dumps(made_from) + "\n")
    return states, key


def random_states(n: int, width: int, seed: int = 0) -> tuple[np.ndarray, str]:
    """Standard-normal vectors ``(n, width)`` in place of the LM's states: what the head makes of entity
    identities alone, the control that tells how much the language model's states carry."""
    return np.random.default_rng(seed).standard_normal((n, width), dtype=np.float32), f"random_{seed}_{n}x{width}"


def entity_states(checkpoint: Path, data_dir: Path, base: bool = False, random: int = 0,
                  definitions: bool = False) -> tuple[np.ndarray, str]:
    """The features a head fits on: ``pooled_states`` of the checkpoint's entity names (``base``: the adapter off);
    with ``definitions``, beside them the pooled state of each entity's ``"<name>: <definition>"`` (KEPLER's
    text), the name's again where there is none, ``(n, 2H)``; or, when ``random`` > 0, ``random_states`` of that
    width."""
    if random:
        with np.load(Path(data_dir) / "entities.npz") as arrays:
            return random_states(len(arrays["lengths"]), random)
    states, key = pooled_states(Path(checkpoint), Path(data_dir), base)
    if not definitions:
        return states, key
    text, key = pooled_states(Path(checkpoint), Path(data_dir), base, definitions=True)
    with np.load(Path(data_dir) / "definitions.npz") as arrays:
        defined = arrays["lengths"] > 0
    return np.concatenate([states, np.where(defined[:, None], text, states)], axis=1), key


class KGHead(nn.Module):
    """Entity vectors from pooled LM states: standardise, ``Linear(H, hidden) -> GELU -> Linear(hidden, D)``,
    L2-normalise; relation vectors ``(R, D)`` for DistMult; a learnt temperature for the softmax loss."""

    def __init__(self, mean: Tensor, std: Tensor, n_relations: int, hidden: int, kg_dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", mean.float())
        self.register_buffer("std", std.float())
        self.mlp = nn.Sequential(nn.Linear(len(mean), hidden), nn.GELU(), nn.Linear(hidden, kg_dim))
        self.relation = nn.Parameter(torch.randn(n_relations, kg_dim) * 0.1 + 1.0)  # near the identity relation
        self.scale = nn.Parameter(torch.tensor(10.0))

    def forward(self, states: Tensor) -> Tensor:
        """``(E, H)`` pooled states -> ``(E, D)`` unit entity vectors."""
        return F.normalize(self.mlp((states - self.mean) / self.std), dim=-1)

    @torch.no_grad()
    def scorer(self, states: Tensor, chunk: int = 8192) -> EmbeddingScorer:
        """Every entity encoded once, behind the evaluator's ``Scorer`` protocol (DistMult)."""
        vectors = torch.cat([self(states[i:i + chunk]) for i in range(0, len(states), chunk)])
        return EmbeddingScorer(vectors, self.relation.detach(), "distmult")


def relation_candidates(split: EdgeSplit) -> tuple[list[Tensor], list[Tensor]]:
    """The type constraint the evaluator uses (``linkpred``): per relation, the entities seen as its head,
    and as its tail, in any edge of the split."""
    every = {name: np.concatenate([getattr(split.train, name), getattr(split.held_out, name)]).astype(np.int64)
             for name in ("head", "relation", "tail")}
    return tuple([torch.from_numpy(np.unique(every[side][every["relation"] == r])) for r in range(len(split.relations))]
                 for side in ("head", "tail"))


def _new_head(states: Tensor, split: EdgeSplit, config: HeadConfig) -> KGHead:
    return KGHead(states.mean(0), states.std(0) + 1e-5, len(split.relations), config.hidden, config.kg_dim)


def load_head(path: Path, states: Tensor, split: EdgeSplit, key: str | None = None) -> KGHead:
    """A fitted head from ``path``; ``key`` (from ``pooled_states``) must be the states it was fitted on."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    if key is not None and checkpoint["states_key"] != key:
        raise ValueError(f"{path} was fitted on pooled states {checkpoint['states_key']}, not {key}: refit it with "
                         f"'medkg pretrain fit-head --checkpoint=... --out={path}'")
    if list(checkpoint["entities"]) != [str(e) for e in split.entities[:5]] or checkpoint["n"] != len(states):
        raise ValueError(f"{path} was fitted on another entity split: refit it with 'medkg pretrain fit-head'")
    config = HeadConfig(**checkpoint["config"])
    head = _new_head(states, split, config)
    head.load_state_dict(checkpoint["head"])
    return head.eval()


def fitted_head_config(path: Path) -> HeadConfig:
    """The configuration a head was fitted with, which says what states it reads."""
    return HeadConfig(**torch.load(path, map_location="cpu", weights_only=False)["config"])


def fitted_head_scorer(path: Path, checkpoint: Path, data_dir: Path, split: EdgeSplit) -> EmbeddingScorer:
    """The evaluator's ``Scorer`` of a head fitted by ``fit_head``, on the states its configuration names (the
    stage-1 ``checkpoint``'s pooled names, with ``base`` the base model's, with ``definitions`` the definitions
    beside them, or random vectors), refusing a head fitted on another checkpoint's states."""
    config = fitted_head_config(Path(path))
    states, key = entity_states(Path(checkpoint), Path(data_dir), config.base, config.random, config.definitions)
    states = torch.from_numpy(states)
    return load_head(Path(path), states, split, key).scorer(states)


def describe_head(config: HeadConfig, model: str) -> str:
    """A results-table row name for a head fitted with ``config`` on ``model``'s states, with its epochs."""
    texts = "names + definitions" if config.definitions else "names"
    if config.random:
        return f"random vectors + fitted head ({config.epochs} ep)"
    states = "base SmolLM2" if config.base else model
    return f"{states} + fitted head ({texts}, {config.epochs} ep)"


def fitted_head_seconds(path: Path) -> float:
    """The wall time of the head's fit, summed over its sessions (the pooling not counted)."""
    history = torch.load(path, map_location="cpu", weights_only=False)["history"]
    return float(history[-1]["seconds"]) if history else 0.0


def fit_head(config: HeadConfig) -> dict:
    """Fit a ``KGHead`` on the pooled states of ``config.checkpoint``; a checkpoint (head, optimizer, epoch,
    config, the states' key) is written to ``config.out`` after every epoch. Returns the last epoch's log."""
    torch.manual_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    split = EdgeSplit.load(Path(config.data_dir))
    states_np, key = entity_states(Path(config.checkpoint), Path(config.data_dir), config.base, config.random,
                                   config.definitions)
    states = torch.from_numpy(states_np)
    head = _new_head(states, split, config)
    optimizer = torch.optim.Adam(head.parameters(), lr=config.lr)
    out = Path(config.out)
    done, history = 0, []
    if config.resume and out.is_file():
        checkpoint = torch.load(out, map_location="cpu", weights_only=False)
        if checkpoint["states_key"] != key:
            raise ValueError(f"{out} was fitted on other states ({checkpoint['states_key']}); drop --resume")
        head.load_state_dict(checkpoint["head"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        done, history = checkpoint["epoch"], checkpoint["history"]
    edges = split.link_train()
    h, r, t = (torch.from_numpy(getattr(edges, name).astype(np.int64)) for name in ("head", "relation", "tail"))
    heads, tails = relation_candidates(split)
    generator = torch.Generator().manual_seed(config.seed)
    steps_per_epoch = sum(math.ceil(int((r == k).sum()) / config.batch_size) for k in range(len(split.relations)))
    total = steps_per_epoch * config.epochs
    started = time.perf_counter() - (history[-1]["seconds"] if history else 0.0)  # wall time over all sessions
    bar = None
    if config.progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=done * steps_per_epoch, desc="stage 1b head", dynamic_ncols=True)
    for epoch in range(done, config.epochs):
        generator.manual_seed(config.seed * 1000 + epoch)  # the same batches whether or not the run resumed
        order = torch.randperm(len(h), generator=generator)
        losses = []
        for k in range(len(split.relations)):
            rows = order[r[order] == k]
            for start in range(0, len(rows), config.batch_size):
                step = epoch * steps_per_epoch + len(losses)
                for group in optimizer.param_groups:  # cosine from lr to lr / 10
                    group["lr"] = config.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * step / total)))
                batch = rows[start:start + config.batch_size]
                ends = head(states[torch.cat([h[batch], t[batch]])])  # each end encoded once, for both sides
                eh, et = ends[:len(batch)], ends[len(batch):]
                loss = 0.5 * sum(_side_loss(head, states, q, k, a, answer, candidates, config.negatives, generator)
                                 for q, a, answer, candidates in ((eh, et, t[batch], tails[k]),
                                                                  (et, eh, h[batch], heads[k])))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
                if bar is not None:
                    bar.update()
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "seconds": time.perf_counter() - started})
        log.info("head epoch %d/%d: loss %.4f (%.0fs)", epoch + 1, config.epochs, history[-1]["loss"],
                 history[-1]["seconds"])
        if bar is not None:
            bar.set_postfix(epoch=epoch + 1, loss=f"{history[-1]['loss']:.4f}")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        torch.save({"head": head.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1,
                    "history": history, "config": asdict(config), "states_key": key, "n": len(states),
                    "entities": [str(e) for e in split.entities[:5]]}, tmp)
        tmp.replace(out)
        if config.stop_after and epoch + 1 - done >= config.stop_after:
            break
    if bar is not None:
        bar.close()
    (out.with_suffix(".json")).write_text(json.dumps({"config": asdict(config), "states_key": key,
                                                      "history": history}, indent=2) + "\n")
    return history[-1] if history else {}


def _side_loss(head: KGHead, states: Tensor, query: Tensor, relation: int, true: Tensor, answer: Tensor,
               candidates: Tensor, negatives: int, generator: torch.Generator) -> Tensor:
    """Softmax cross-entropy of each true answer (vectors ``true`` of entities ``answer``) against ``negatives``
    candidates of the relation's type, for the query vectors ``query`` (DistMult is symmetric in head and tail,
    so one function serves both sides)."""
    drawn = candidates[torch.randint(len(candidates), (negatives,), generator=generator)]
    q = query * head.relation[relation]
    pos = head.scale * (q * true).sum(-1)
    scores = head.scale * (q @ head(states[drawn]).T)
    return in_batch_loss(pos, scores, drawn.unsqueeze(0) != answer.unsqueeze(1))  # a drawn true answer is no negative


def main(argv: list[str] | None = None) -> dict:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    return fit_head(parse_config(HeadConfig, argv))


if __name__ == "__main__":
    main()
