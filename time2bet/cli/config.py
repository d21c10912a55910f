"""`time2bet config show`: the configuration an environment resolves to (conf/, Hydra), secrets masked."""

from __future__ import annotations

import click

from time2bet.settings import ENVIRONMENTS, load_config, masked, overridden_keys


@click.group()
def config() -> None:
    """The composed configuration (conf/): environments dev, staging, prod."""


@config.command("show")
@click.option("--env", "environment", type=click.Choice(ENVIRONMENTS), default=None,
              help="the environment to resolve (default: TIME2BET_ENV, else dev)")
@click.argument("overrides", nargs=-1)
def config_show(environment: str | None, overrides: tuple[str, ...]) -> None:
    """Print the resolved configuration; OVERRIDES are Hydra's key=value (e.g. serving.challenger_share=0.2).
    Variables set in this environment override keys when the settings are built: they are listed after it."""
    from omegaconf import OmegaConf

    try:
        cfg = load_config(environment=environment, overrides=overrides)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(OmegaConf.to_yaml(OmegaConf.create(masked(OmegaConf.to_container(cfg)))), nl=False)
    for key, (variable, value) in sorted(overridden_keys().items()):
        click.echo(f"# {key} is overridden by {variable}={masked(value)}")
