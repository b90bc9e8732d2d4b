"""``mlptrain configs``: the configs and sweep specs that ship with mlptrain, listed and printed."""

from __future__ import annotations

import click

from mlptrain.cli.common import Group


@click.group(cls=Group, invoke_without_command=True)
@click.pass_context
def configs(ctx: click.Context) -> None:
    """List the shipped configs, or print one (to read, or to copy and edit).

    Each one is usable by name from anywhere: mlptrain fit --config NAME
    (sweep specs: mlptrain sweep NAME). A file on disk of the same name wins.

    \b
    Examples:
        mlptrain configs
        mlptrain configs show original-problem
        mlptrain configs show relu > my-relu.yaml
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_)


@configs.command("list")
def list_() -> None:
    """List the shipped configs with the first sentence of each one's comment.

    \b
    Example:
        mlptrain configs list
    """
    import shutil
    import textwrap

    from mlptrain.configfile import describe_config, shipped_configs

    shipped = shipped_configs()
    width = max(map(len, shipped))
    indent = " " * (width + 10)
    columns = max(min(shutil.get_terminal_size().columns, 100), 60)  # as Click's help: at most 100 wide
    for name, path in shipped.items():
        kind, about = describe_config(path)
        # Not click.wrap_text: it breaks words at their hyphens ("pure-" / "MLP"), which reads as a typo here.
        click.echo(textwrap.fill(about, columns, initial_indent=f"{name:<{width}}  {kind:<6}  ",
                                 subsequent_indent=indent, break_on_hyphens=False, break_long_words=False))
    click.echo("use one: mlptrain fit --config NAME (sweep: mlptrain sweep NAME); print it: mlptrain configs show NAME")


@configs.command()
@click.argument("name")
def show(name: str) -> None:
    """Print the shipped config NAME as it is on disk, comments included.

    \b
    Example:
        mlptrain configs show original-problem
    """
    from mlptrain.configfile import shipped_config

    click.echo(shipped_config(name).read_text(encoding="utf-8"), nl=False)
