"""``medkg pretrain``: prepare the arrays, train, export the adapter, build the runtime generator, evaluate.

Thin edge over ``pretrain.*``: errors are raised here and turned into one-line messages by ``assistant.cli``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kg.store import DEFAULT_DATA_DIR

app = typer.Typer(help="The KG-pretrained generator: data, training, export, evaluation.", no_args_is_help=True)

DATA = Path("data/pretrain")


@app.command("prepare")
def prepare_cmd(out: Annotated[Path, typer.Option(help="where the arrays go")] = DATA,
                data_dir: Annotated[Path, typer.Option(help="the built KG")] = DEFAULT_DATA_DIR,
                seed: int = 0,
                passages: Annotated[int, typer.Option(help="literature passages in the corpus (-1: all)")] = 6000,
                instructions: Annotated[Path, typer.Option(help="stage-2 examples, when built")
                                        ] = DATA / "instructions") -> None:
    """Held-out split, LM corpus, entity name tokens and stage-2 examples as arrays (training only reads them)."""
    from pretrain.prepare import main

    main(["--out", str(out), "--data-dir", str(data_dir), "--seed", str(seed), "--passages", str(passages),
          "--instructions", str(instructions)])


@app.command("train", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train_cmd(ctx: typer.Context) -> None:
    """One training stage; flags as ``--key=value`` (``--stage=sft``, ``--model.lora_rank=8``, ``--resume``).
    Several processes: ``torchrun --nproc_per_node N -m pretrain.train ...``."""
    from pretrain.train import main

    last = main(list(ctx.args))
    typer.echo(" ".join(f"{k}={v}" for k, v in last.items()))


@app.command("fit-head", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def fit_head_cmd(ctx: typer.Context) -> None:
    """Stage 1b: fit the link-prediction head over every link-training edge on a stage-1 checkpoint's pooled
    entity states; flags as ``--key=value`` (``--checkpoint=runs/kg240.pt --out=runs/kg_head.pt``, ``--base``)."""
    from pretrain.kg_head import main

    last = main(list(ctx.args))
    typer.echo(" ".join(f"{k}={v}" for k, v in last.items()))


@app.command("export")
def export_cmd(checkpoint: Annotated[Path, typer.Option(help="a LoRA training checkpoint")] = Path("runs/sft/ckpt.pt"),
               out: Annotated[Path | None, typer.Option(help="adapter folder (default: bundle/generator)")] = None
               ) -> None:
    """Write the checkpoint's LoRA adapter (the committed artefact) and its training summary."""
    from pretrain.generator import ADAPTER_DIR, save_adapter

    typer.echo(f"adapter written to {save_adapter(checkpoint, out or ADAPTER_DIR)}")


@app.command("build")
def build_cmd(if_missing: Annotated[bool, typer.Option("--if-missing", help="do nothing when the build is current")
                                    ] = False,
              dtype: Annotated[str, typer.Option(help="GGUF weight type: q8_0, f16 or f32")] = "q8_0") -> None:
    """Merge the committed adapter into the base SmolLM2 and write the GGUF + transformers folder it runs."""
    from kg.artefacts import build_lock
    from pretrain.export import ExportMismatchError
    from pretrain.generator import (
        ADAPTER_DIR,
        BUILD_COMMAND,
        BUILT_DIR,
        adapter_digest,
        build_generator,
        generator_lock,
        trained_model_path,
    )

    if adapter_digest() is None:
        typer.echo(f"no adapter committed in {ADAPTER_DIR}: the assistant uses the base model")
        return
    with build_lock(BUILT_DIR, BUILD_COMMAND, generator_lock(BUILT_DIR)) as lock:  # before the build is checked
        if if_missing:
            try:
                typer.echo(f"generator is built: {trained_model_path()}")
                return
            except ExportMismatchError:
                pass
        typer.echo(f"generator built: {build_generator(dtype=dtype, lock=lock)}")


@app.command("eval")
def eval_cmd(
    kg_checkpoint: Annotated[Path, typer.Option(help="stage-1 checkpoint (link prediction, perplexity)")
                             ] = Path("runs/kg/ckpt.pt"),
    checkpoint: Annotated[Path | None, typer.Option(help="final (stage-2) checkpoint, for its perplexity")] = None,
    data_dir: Annotated[Path, typer.Option(help="prepared arrays")] = DATA,
    limit: Annotated[int, typer.Option(help="held-out edges ranked (stratified sample; 0: all)")] = 4000,
    baselines: Annotated[bool, typer.Option(help="train and rank the PyKEEN baselines")] = True,
    baseline_budget: Annotated[float, typer.Option(help="seconds of PyKEEN training in all (0: no limit)")] = 600.0,
    baseline_epochs: Annotated[int, typer.Option(help="epochs of each PyKEEN model (0: its default)")] = 0,
    head: Annotated[list[Path] | None, typer.Option(help="a head fitted by fit-head on --kg-checkpoint (stage 1b; "
                                                         "repeat it for the controls)")] = None,
    answers: Annotated[int, typer.Option(help="questions of the answer harness per model (0: skip)")] = 0,
) -> None:
    """Link prediction against PyKEEN, perplexity base vs trained, and the answer harness base vs trained."""
    from pretrain.data import EdgeSplit
    from pretrain.evaluate import link_scorer, load_trained, perplexity
    from pretrain.kg_head import describe_head, fitted_head_config, fitted_head_scorer, fitted_head_seconds
    from pretrain.linkpred import compare_baselines, evaluate, format_table

    split = EdgeSplit.load(data_dir)
    model, config = load_trained(kg_checkpoint)
    ours = f"SmolLM2-KG ({config.model.interaction})"
    rows = [(ours, evaluate(link_scorer(model, data_dir), split, limit=limit or None))]
    times = {}
    for path in head or ():
        name = describe_head(fitted_head_config(path), ours)
        rows.append((name, evaluate(fitted_head_scorer(path, kg_checkpoint, data_dir, split), split,
                                    limit=limit or None)))
        times[name] = fitted_head_seconds(path)
    if baselines:
        for run in compare_baselines(split, baseline_budget or None, limit=limit or None,
                                     epochs=baseline_epochs or None):
            name = f"{run.name} ({run.info.epochs_run} ep)"  # under a time budget, the epochs it reached
            rows.append((name, run.result))
            times[name] = run.info.wall_s
    typer.echo(f"Link prediction on held-out edges (filtered, type-constrained; {rows[0][1].edges} edges, "
               "both directions)\n" + format_table(rows, times))

    table = [("base SmolLM2-135M", perplexity(model, data_dir, base=True)),
             (f"stage 1 ({kg_checkpoint})", perplexity(model, data_dir))]
    if checkpoint is not None:
        final, _ = load_trained(checkpoint)
        table.append((f"final ({checkpoint})", perplexity(final, data_dir)))
    typer.echo("\nPerplexity of held-out verbalisations (lower is better)")
    typer.echo("\n".join(f"  {name:50s} {value:8.2f}  ({value / table[0][1]:.2f}x base)" for name, value in table))
    if answers:
        typer.echo("\nAnswer harness, base vs trained generator")
        typer.echo(compare_answers(answers))


def compare_answers(limit: int, threads: int | None = None) -> str:
    """The answer harness on the first ``limit`` questions of the dev sets, base model then trained generator."""
    from dataclasses import fields

    from assistant.answer import Assistant
    from assistant.answer_eval import EvalReport, Ratio, default_question_sets, evaluate, read_question_set, run
    from assistant.generation import resolve_model
    from kg.store import KnowledgeGraph

    rows = read_question_set(*default_question_sets())[:limit]
    reports = {}
    for weights in ("base", "trained"):
        assistant = Assistant.open(generator="llama-cpp", clinician_writer="model", path=resolve_model(weights),
                                   threads=threads)
        outcomes = run(assistant, rows)
        with KnowledgeGraph.open(DEFAULT_DATA_DIR) as kg:
            reports[weights] = evaluate(outcomes, kg)
    lines = [f"  {'metric':28s} {'base':>18s} {'trained':>18s}"]
    for field in fields(EvalReport):
        values = [getattr(reports[w], field.name) for w in ("base", "trained")]
        if isinstance(values[0], Ratio):
            shown = ["n/a" if v.value is None else f"{100 * v.value:.1f}% ({v.hits}/{v.total})" for v in values]
            lines.append(f"  {field.name:28s} {shown[0]:>18s} {shown[1]:>18s}")
    grades = [reports[w].patient_grade for w in ("base", "trained")]
    lines.append(f"  {'patient_grade (FK mean)':28s} {_grade(grades[0]):>18s} {_grade(grades[1]):>18s}")
    return "\n".join(lines)


def _grade(readability) -> str:
    value = getattr(readability, "mean", None)
    return "n/a" if value is None else f"{value:.1f}"
