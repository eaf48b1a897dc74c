"""``vsrkit train``: train a network with a YAML recipe, on one process or under torchrun."""

from __future__ import annotations

from pathlib import Path

import click

from vsrkit.cli.common import say


@click.command()
@click.argument("config", type=click.Path(path_type=Path))
@click.option("--resume", is_flag=True,
              help="Continue exactly from the newest checkpoint in the config's output folder.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config key by its dotted name, e.g. --set train.batch_size=2 (repeatable).")
def train(config: Path, resume: bool, overrides: tuple[str, ...]) -> None:
    """Train with the recipe in CONFIG (configs/train/*.yml).

    One process: vsrkit train CONFIG. Several GPUs or machines: torchrun --nproc_per_node=N -m vsrkit.cli.main
    train CONFIG (gloo on CPU, NCCL on GPU); train.batch_size is per process. Checkpoints, log.jsonl and
    TensorBoard events go to the config's output folder; --resume continues from the newest checkpoint there.
    """
    from vsrkit.train.config import load_config
    from vsrkit.train.loop import run

    cfg = load_config(config, list(overrides))
    run(cfg, resume=resume, say=say)
