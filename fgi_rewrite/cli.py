"""Command line: ``fgi-rewrite [--diff|--check] [--style inline|function] PATH...``.

Every long option except ``--config``, ``--stdin-filename``, ``--explain``, ``--version`` and
``--help`` can also be set in ``[tool.fgi-rewrite]`` of pyproject.toml (see ``config.py``); the
command line wins. Exit codes are decided in one place, ``Report.exit_code``
(see ``pipeline/report.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import traceback
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from fgi_rewrite import __version__
from fgi_rewrite.config import ConfigError, load_config
from fgi_rewrite.core.codes import ALL_CODES, Severity
from fgi_rewrite.core.model import Style, VerifyLevel
from fgi_rewrite.pipeline.options import STDIN, Options, stdin_display
from fgi_rewrite.pipeline.parallel import default_jobs
from fgi_rewrite.pipeline.report import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    Report,
    color_diff,
    to_json,
    unified_diff,
)
from fgi_rewrite.pipeline.run import run
from fgi_rewrite.progress import ProgressLine
from fgi_rewrite.project.discover import compile_regex

# Options that make no sense in a configuration file.
NOT_CONFIGURABLE = frozenset({"help", "version", "explain", "config", "stdin_filename"})
# Keys that also take ruff's list form in the configuration file: a list of regexes, a path
# matching any of them is excluded.
LIST_KEYS = frozenset({"exclude", "extend_exclude", "force_exclude"})
Regexes = str | tuple[str, ...] | None


def _regex(ctx: click.Context, param: click.Parameter, value: Regexes) -> Regexes:
    for pattern in (value,) if isinstance(value, str) else value or ():
        try:
            compile_regex(pattern)
        except re.error as exc:
            glob = " (a regular expression, as black's, not a glob)" if "*" in pattern else ""
            raise click.BadParameter(
                f"not a valid regular expression: {pattern!r}: {exc}{glob}"
            ) from exc
    return value


def _existing_paths(
    ctx: click.Context, param: click.Parameter, value: tuple[Path, ...]
) -> tuple[Path, ...]:
    """A mistyped path is a usage error before anything runs (exit 2, as black and ruff)."""
    for path in value:
        if str(path) == STDIN or path.exists():
            continue
        if path.is_symlink():
            raise click.BadParameter(
                f"'{path}' is a broken symbolic link (to {os.readlink(path)})", ctx, param
            )
        raise click.BadParameter(f"'{path}': no such file or directory", ctx, param)
    return value


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path), callback=_existing_paths)
@click.option("--diff", is_flag=True, help="Print a unified diff (sorted by path); write nothing.")
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 if a file would change or a surrogate was refused.",
)
@click.option(
    "--style",
    type=click.Choice([s.value for s in Style]),
    default=Style.INLINE.value,
    show_default=True,
    help="inline: FGI code at each call site; function: one generated function.",
)
@click.option(
    "--remove-unused",
    is_flag=True,
    help="Also remove the Function classes, apply aliases and imports that nothing in the "
    "project uses any more after the rewrite (they may be public API: off by default).",
)
@click.option(
    "--exact-higher-order",
    is_flag=True,
    help="Emit the exact form (second derivatives as the original's, a slower backward) for "
    "every surrogate, also when the project shows no create_graph=True, Hessian or torch.func "
    "use (when it does, the exact form is chosen anyway: FGI401).",
)
@click.option(
    "--format",
    "format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one JSON report on stdout (schema in README.md) instead of text.",
)
@click.option(
    "--color/--no-color",
    default=None,
    help="Color the diff. Default: only when stdout is a terminal and NO_COLOR is unset.",
)
@click.option(
    "--exclude",
    metavar="REGEX",
    callback=_regex,
    help="Regex of paths to skip when walking directories; replaces the default "
    "(.git, .venv, build, dist, ...). Matched against /relative/path, as black.",
)
@click.option(
    "--extend-exclude",
    metavar="REGEX",
    callback=_regex,
    help="Regex of paths to skip in addition to --exclude.",
)
@click.option(
    "--force-exclude",
    metavar="REGEX",
    callback=_regex,
    help="Like --extend-exclude, but also for files given explicitly (pre-commit).",
)
@click.option(
    "--stdin-filename",
    metavar="PATH",
    help="With '-': the path of the source read from stdin, for the project index, "
    "configuration lookup, --force-exclude and messages.",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    help="Worker processes for large projects [default: the number of CPUs]; 1: one process. "
    "Runs of fewer than about 200 files stay in one process. The result never depends on it.",
)
@click.option(
    "--verify",
    type=click.Choice([level.value for level in VerifyLevel]),
    default=VerifyLevel.SCRIPT.value,
    show_default=True,
    envvar="FGI_REWRITE_VERIFY",
    help="Check every rewrite in a subprocess before writing: grad (values and "
    "gradients equal the original's), script (+ TorchScript script/save/load), "
    "full (+ torch.compile and torch.export). Needs torch: without it nothing is written "
    "(FGI309, FGI305) unless --allow-unverified. none: write without verifying. A gradient "
    "failure is never written.",
)
@click.option(
    "--allow-unverified",
    is_flag=True,
    help="Write rewrites that could not be verified (no torch, a timeout, a Function that "
    "cannot be rebuilt in isolation), reported as FGI303/FGI304. Default: leave them "
    "unchanged (FGI305) and exit 1.",
)
@click.option(
    "--require-verify",
    is_flag=True,
    help="Leave every rewrite that could not be verified unchanged (FGI305): the default, "
    "spelled out; overrides allow-unverified from the configuration.",
)
@click.option(
    "--allow-unscriptable",
    is_flag=True,
    help="Write rewrites whose values and gradients verify but that fail the "
    "TorchScript (or compile/export) check (FGI306 instead of FGI302).",
)
@click.option(
    "--verify-modules",
    is_flag=True,
    help="Also import each rewritten file in the verification process and script every "
    "nn.Module class it defines that can be built without arguments (report per class). "
    "Executes your code: opt-in.",
)
@click.option(
    "--verify-import-user-code",
    is_flag=True,
    help="When a Function cannot be rebuilt in an isolated verification module, import its "
    "module to get the original instead (executes your code: opt-in).",
)
@click.option(
    "--plot",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Draw one PNG per verified surrogate into DIR (created if needed): forward value and "
    "gradient of the original next to the FGI rewrite on x in [-3, 3]. Needs matplotlib "
    "(pip install 'fgi-rewrite[plot]'); implies at least --verify grad.",
)
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read options from this file instead of the nearest pyproject.toml.",
)
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.option("-v", "--verbose", is_flag=True, help="Also informational notes (FGI0xx).")
@click.option("--explain", metavar="CODE", help="Explain a diagnostic code and exit.")
@click.version_option(__version__, prog_name="fgi-rewrite")
@click.pass_context
def main(ctx: click.Context, /, **params: Any) -> None:
    """Rewrite surrogate-gradient autograd.Functions into forward gradient injection code.

    PATH may be files or directories; '-' reads a source from stdin and writes the result to
    stdout. Exit status: 0 ok, 1 --check found changes or refusals (or, in any mode, a rewrite
    could not be verified and was left unchanged), 2 usage error (also a path that does not
    exist), 123 a file could not be read, parsed or written (or internal error), 130
    interrupted.
    """
    if params["explain"] is not None:
        _explain(params["explain"])
    paths: tuple[Path, ...] = params["paths"]
    use_stdin = any(str(p) == STDIN for p in paths)
    stdin_filename: str | None = params["stdin_filename"]
    if stdin_filename is not None and not use_stdin:
        raise click.UsageError("--stdin-filename is only meaningful with '-' as a path")
    lookup = [p for p in paths if str(p) != STDIN]
    if stdin_filename is not None:
        lookup.append(Path(stdin_filename))
    try:
        config_path, config = load_config(lookup, params["config"])
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    params = _apply_config(ctx, params, config, config_path)
    if params["plot"] is not None and params["verify"] == VerifyLevel.NONE:
        verify_source = ctx.get_parameter_source("verify")
        where = f" (from {config_path})"
        if verify_source is ParameterSource.COMMANDLINE:
            where = ""
        elif verify_source is ParameterSource.ENVIRONMENT:
            where = " (from FGI_REWRITE_VERIFY)"
        raise click.UsageError(
            f"--plot draws its figures while verifying: it cannot be used with --verify none"
            f"{where}; use --verify grad, the quickest level that plots"
        )
    params = _unverified_choice(ctx, params)
    as_json = params["format"] == "json"
    if use_stdin and as_json and not (params["check"] or params["diff"]):
        raise click.UsageError(
            "'-' writes the rewritten source to stdout: with --format json, "
            "use --check or --diff"
        )
    if params["verbose"] and not as_json:
        if config_path is not None:
            click.echo(f"Using configuration from {config_path}.", err=True)

    source = sys.stdin.buffer.read() if use_stdin else None
    options = Options(
        style=params["style"],
        check=params["check"],
        diff=params["diff"],
        exclude=params["exclude"],
        extend_exclude=params["extend_exclude"],
        force_exclude=params["force_exclude"],
        stdin=source,
        stdin_filename=stdin_filename,
        verify=params["verify"],
        allow_unverified=params["allow_unverified"],
        require_verify=params["require_verify"],
        allow_unscriptable=params["allow_unscriptable"],
        remove_unused=params["remove_unused"],
        exact_higher_order=params["exact_higher_order"],
        plot=params["plot"],
        verify_modules=params["verify_modules"],
        verify_import_user_code=params["verify_import_user_code"],
        jobs=params["jobs"] or default_jobs(),
    )
    if not paths and not as_json and not params["quiet"]:
        click.echo("No paths given; nothing to do.", err=True)
    progress = ProgressLine(sys.stderr) if _shows_progress(params) else None
    try:
        with progress or contextlib.nullcontext():  # the line is cleared before any message
            report = run(paths, options, progress)
    except KeyboardInterrupt:
        click.echo(
            "Interrupted: files already written are complete, the others untouched.", err=True
        )
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # an internal error must never leave a half-written tree
        click.echo(f"error: internal error: {type(exc).__name__}: {exc}", err=True)
        if params["verbose"]:
            click.echo(traceback.format_exc(), err=True)
        sys.exit(EXIT_ERROR)

    if source is not None and not (options.check or options.diff):
        _write_stdout(report, stdin_display(options), source)
    if as_json:
        click.echo(json.dumps(to_json(report, options.mode, diffs=options.diff), indent=2))
    else:
        _print(report, options, params, to_stdout=source is None or options.diff)
    sys.exit(report.exit_code())


def _unverified_choice(ctx: click.Context, params: dict[str, Any]) -> dict[str, Any]:
    """``--allow-unverified`` and ``--require-verify`` contradict each other: both on the
    command line is a usage error; otherwise the one given on the command line wins over the
    configuration file (with both from the file, ``require-verify``)."""
    if not (params["allow_unverified"] and params["require_verify"]):
        return params
    given = {
        name
        for name in ("allow_unverified", "require_verify")
        if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE
    }
    if len(given) == 2:
        raise click.UsageError("--allow-unverified and --require-verify contradict each other")
    if given == {"allow_unverified"}:
        return {**params, "require_verify": False}
    return {**params, "allow_unverified": False}


def _shows_progress(params: dict[str, Any]) -> bool:
    """Progress goes to stderr, only for a person watching it: never with --quiet or
    --format json, never when stderr is not a terminal (CI logs, pre-commit, pipes)."""
    return not params["quiet"] and params["format"] != "json" and stderr_is_terminal()


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


def _explain(name: str) -> None:
    code = ALL_CODES.get(name.strip().upper())
    if code is None:
        click.echo(f"unknown code {name}; known: {', '.join(sorted(ALL_CODES))}", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(code.explain(), nl=False)
    sys.exit(EXIT_OK)


def configurable_keys(command: click.Command) -> list[str]:
    """The keys ``[tool.fgi-rewrite]`` accepts: the long options, spelled as on the command line."""
    keys = []
    for param in command.params:
        if isinstance(param, click.Option) and param.name not in NOT_CONFIGURABLE:
            long = [o for o in param.opts if o.startswith("--")]
            keys.append(long[0][2:] if long else str(param.name))
    return sorted(keys)


def _apply_config(
    ctx: click.Context, params: dict[str, Any], config: dict[str, Any], path: Path | None
) -> dict[str, Any]:
    """Config values for every option left at its default (the command line wins); every key is
    checked, also those the command line overrides."""
    options = {
        p.name: p
        for p in ctx.command.params
        if isinstance(p, click.Option) and p.name not in NOT_CONFIGURABLE
    }
    merged = dict(params)
    for key, value in config.items():
        param = options.get(key)
        if param is None or param.name is None:
            known = ", ".join(configurable_keys(ctx.command))
            raise click.UsageError(
                f"{path}: unknown key '{key.replace('_', '-')}' in [tool.fgi-rewrite]; "
                f"known keys: {known}"
            )
        try:
            cast = _config_value(ctx, param, value)
        except click.BadParameter as exc:
            raise click.UsageError(
                f"{path}: bad value for '{key.replace('_', '-')}' in [tool.fgi-rewrite]: "
                f"{exc.message}"
            ) from exc
        source = ctx.get_parameter_source(param.name)
        if source in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP):
            merged[param.name] = cast  # else the command line (or an environment variable) wins
    return merged


def _config_value(ctx: click.Context, param: click.Option, value: object) -> Any:
    """A configuration value checked against its TOML type before click converts it: click
    would take ``1`` for true, ``2.5`` for 2 and ``["x"]`` for the regex ``['x']``."""
    if isinstance(param.type, click.types.BoolParamType):
        expected, ok = "true or false", isinstance(value, bool)
    elif isinstance(param.type, click.types.IntParamType):
        expected, ok = "an integer", isinstance(value, int) and not isinstance(value, bool)
    elif param.name in LIST_KEYS:
        expected = "a regular expression, or a list of them"
        ok = isinstance(value, str) or (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        )
        if ok and isinstance(value, list):
            return _regex(ctx, param, tuple(value))
    else:
        expected, ok = "a string", isinstance(value, str)
    if not ok:
        raise click.BadParameter(f"expected {expected}, got {_toml(value)}")
    cast = param.type_cast_value(ctx, value)
    return param.callback(ctx, param, cast) if param.callback is not None else cast


def _toml(value: object) -> str:
    """A value as it is written in TOML, with its type: ``1 (an integer)``."""
    kinds = {bool: "a boolean", int: "an integer", float: "a float", str: "a string"}
    if isinstance(value, bool):
        shown = "true" if value else "false"
    elif isinstance(value, str):
        shown = json.dumps(value)
    elif isinstance(value, list):
        odd = next((v for v in value if not isinstance(v, str)), None)
        return "a list of strings" if odd is None else f"a list holding {_toml(odd)}"
    elif isinstance(value, dict):
        return "a table"
    else:
        shown = str(value)
    return f"{shown} ({kinds.get(type(value), type(value).__name__)})"


def use_color(color: bool | None) -> bool:
    """--color/--no-color win; otherwise color only a terminal, and never when NO_COLOR is set."""
    if color is not None:
        return color
    if os.environ.get("NO_COLOR"):
        return False
    return sys.stdout.isatty()


def _write_stdout(report: Report, shown: Path, source: bytes) -> None:
    """The rewritten stdin source, or the source unchanged (also when it could not be parsed)."""
    data = source
    for result in report.results:
        if result.path == shown:
            data = result.after
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _print(report: Report, options: Options, params: dict[str, Any], to_stdout: bool) -> None:
    quiet, verbose = params["quiet"], params["verbose"]
    if options.diff and to_stdout:  # stdout is the patch alone (``git apply``, ``patch -p0``)
        color = use_color(params["color"])
        for result in report.changed:
            text = unified_diff(result)
            click.echo(color_diff(text) if color else text, nl=False, color=color)
    for diagnostic in report.diagnostics_sorted():
        severity = diagnostic.code.severity
        if severity is Severity.INFO and not verbose:
            continue
        if quiet and severity is not Severity.ERROR:
            continue
        click.echo(diagnostic.render(), err=True)
    for error in report.internal_errors:
        click.echo(f"error: internal error: {error}", err=True)
    if not quiet:
        if not options.diff and not options.check:
            shown = stdin_display(options) if options.stdin is not None else None
            for result in report.changed:
                if result.path != shown:
                    click.echo(f"rewrote {result.path}", err=True)
        elif options.check and not options.diff:
            for result in report.changed:
                click.echo(f"would rewrite {result.path}", err=True)
        for verification in report.verifications:  # verdicts go to stderr, as black's messages
            click.echo(verification.line(), err=True)
        for check in report.module_checks:
            click.echo(check.line(), err=True)
        for verification in report.verifications:
            if verification.plot:
                click.echo(f"plot: {verification.plot}", err=True)
        click.echo(report.summary(wrote=not (options.diff or options.check)), err=True)
