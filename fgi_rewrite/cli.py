"""Command line: ``fgi-rewrite [--diff|--check] [--style inline|function] PATH...``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from fgi_rewrite import __version__
from fgi_rewrite.codes import ALL_CODES, Severity
from fgi_rewrite.report import EXIT_ERROR, Report, unified_diff
from fgi_rewrite.run import Options, run


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--diff", is_flag=True, help="Print a unified diff; write nothing.")
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 if a file would change or a surrogate was refused.")
@click.option("--style", type=click.Choice(["inline", "function"]), default="inline",
              show_default=True,
              help="inline: FGI code at each call site; function: one generated function.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.option("-v", "--verbose", is_flag=True, help="Also informational notes (FGI0xx).")
@click.option("--explain", metavar="CODE", help="Explain a diagnostic code and exit.")
@click.version_option(__version__, prog_name="fgi-rewrite")
def main(
    paths: tuple[Path, ...],
    diff: bool,
    check: bool,
    style: str,
    quiet: bool,
    verbose: bool,
    explain: str | None,
) -> None:
    """Rewrite surrogate-gradient autograd.Functions into forward gradient injection code."""
    if explain is not None:
        code = ALL_CODES.get(explain.upper())
        if code is None:
            click.echo(f"unknown code {explain}; known: {', '.join(sorted(ALL_CODES))}", err=True)
            sys.exit(2)
        click.echo(code.explain())
        sys.exit(0)
    if not paths:
        click.echo("No paths given; nothing to do.", err=True)
        sys.exit(0)
    try:
        report = run(paths, Options(style=style, check=check, diff=diff))
    except Exception as exc:  # an internal error must never leave a half-written tree
        click.echo(f"error: internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(EXIT_ERROR)
    _print(report, diff=diff, check=check, quiet=quiet, verbose=verbose)
    sys.exit(report.exit_code())


def _print(report: Report, *, diff: bool, check: bool, quiet: bool, verbose: bool) -> None:
    if diff:
        for result in report.changed:
            click.echo(unified_diff(result), nl=False)
    for diagnostic in report.diagnostics_sorted():
        severity = diagnostic.code.severity
        if severity is Severity.INFO and not verbose:
            continue
        if quiet and severity is not Severity.ERROR:
            continue
        click.echo(diagnostic.render(), err=True)
    if not quiet:
        if not diff and not check:
            for result in report.changed:
                click.echo(f"rewrote {result.path}", err=True)
        elif check and not diff:
            for result in report.changed:
                click.echo(f"would rewrite {result.path}", err=True)
        click.echo(report.summary(wrote=not (diff or check)), err=True)
