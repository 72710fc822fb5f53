"""Entry point: global flags, configuration, and turning errors into messages and exit codes."""

from __future__ import annotations

import sys
import traceback

import click

from orchestrator.cli import commands
from orchestrator.config import load_config
from orchestrator.context import AppContext
from orchestrator.errors import EXIT_ERROR, OrchestratorError
from orchestrator.redact import redact
from orchestrator.textsafe import clean


def _message(text: str) -> str:
    """An error line for stderr: passwords of URLs hidden, control characters escaped (host
    text can reach error messages)."""
    return clean(redact(text))


def _version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        number = version("orchestrator")
    except PackageNotFoundError:
        number = "unknown (not installed; run pip install -e .)"
    click.echo(f"orchestrator {number}")
    ctx.exit(0)


def _print_traceback() -> None:
    """--verbose: the traceback, with passwords hidden and control characters escaped."""
    from orchestrator.textsafe import clean_block

    click.echo(clean_block(redact(traceback.format_exc())).rstrip("\n"), err=True)


@click.group(cls=commands.LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), help="orchestrator.yml to use."
)
@click.option("--policies", type=click.Path(), help="Policy directory (overrides configuration).")
@click.option("--inventory", type=click.Path(), help="Ansible inventory (overrides configuration).")
@click.option("--state", help="State store URL: sqlite:///PATH or postgresql://...")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    help="Output format; json goes to stdout alone, logs to stderr.",
)
@click.option(
    "--verbose", "-v", is_flag=True, help="More detail; tracebacks for unexpected errors."
)
@click.option("--quiet", "-q", is_flag=True, help="Only results and errors.")
@click.option("--no-progress", is_flag=True, help="Never show progress.")
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_version,
              help="Print the version and exit.")
@click.pass_context
def cli(
    ctx: click.Context,
    config_path: str | None,
    policies: str | None,
    inventory: str | None,
    state: str | None,
    output_format: str,
    verbose: bool,
    quiet: bool,
    no_progress: bool,
) -> None:
    """Maintenance orchestrator: baselines, patches, firmware, windows and a change log."""
    config = load_config(config_path, policies=policies, inventory=inventory, state=state)
    app = AppContext(
        config=config,
        output_format=output_format,
        verbose=verbose,
        quiet=quiet,
        progress=not no_progress and sys.stdout.isatty(),
    )
    ctx.obj = app
    ctx.call_on_close(app.close)


commands.register(cli)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every OrchestratorError becomes one line on stderr and its exit code."""
    verbose = "--verbose" in (argv or sys.argv) or "-v" in (argv or sys.argv)
    try:
        result = cli.main(args=argv, prog_name="orchestrator", standalone_mode=False)
    except OrchestratorError as exc:
        if verbose:
            _print_traceback()
        problems = getattr(exc, "problems", None)
        for line in problems or [exc.message]:
            click.echo(f"error: {_message(line)}" if not problems else _message(line), err=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.message = _message(exc.message)
        exc.show()
        return exc.exit_code if exc.exit_code != 2 else EXIT_ERROR
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return EXIT_ERROR
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except BrokenPipeError:
        return EXIT_ERROR
    except Exception as exc:  # a bug of ours: still one line, the traceback on request
        if verbose:
            _print_traceback()
        click.echo(
            _message(f"internal error: {type(exc).__name__}: {exc} (run with --verbose for "
                     "details and report it)"),
            err=True,
        )
        return EXIT_ERROR
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
