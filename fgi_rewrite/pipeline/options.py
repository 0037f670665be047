"""What a run is asked to do: its options (the Python API's; the CLI fills them from the command
line and the configuration file) and the stages it reports progress for."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fgi_rewrite.core.model import RunMode, Style, VerifyLevel

STDIN = "-"


@dataclass(frozen=True)
class Options:
    style: Style = Style.INLINE
    check: bool = False
    diff: bool = False
    # Regexes, or sequences of regexes (any one matching excludes a path): ``exclude`` replaces
    # discover.DEFAULT_EXCLUDE.
    exclude: str | Sequence[str] | None = None
    extend_exclude: str | Sequence[str] | None = None
    force_exclude: str | Sequence[str] | None = None
    gitignore: bool = True
    # Source read from standard input (``-``): rewritten in memory, never written to disk.
    stdin: bytes | None = None
    stdin_filename: str | None = None  # its name, for the project index and messages
    # Verification (verify/stage.py). The API default is none; the CLI's is script. A surrogate
    # failing the gradient check is never rewritten.
    verify: VerifyLevel = VerifyLevel.NONE
    # A rewrite that could not be verified (no torch, a timeout, a Function that cannot be
    # isolated) is not written (FGI305) unless ``allow_unverified`` (FGI303/FGI304).
    # ``require_verify`` is that default, spelled out; it wins over ``allow_unverified``.
    allow_unverified: bool = False
    require_verify: bool = False
    allow_unscriptable: bool = False  # write rewrites that fail TorchScript/compile/export
    verify_timeout: float | None = None  # seconds for the whole verification subprocess
    remove_unused: bool = False  # drop Functions, aliases and imports nothing uses any more
    # The exact form for every surrogate, also where the project shows no higher-order use
    # (project/higher_order.py decides otherwise): a library whose users differentiate twice.
    exact_higher_order: bool = False
    # A directory for one PNG per verified surrogate (value and gradient, original vs FGI), drawn
    # by the verification child; it implies at least ``verify="grad"``.
    plot: Path | None = None
    # Opt-in checks that execute the user's code: import each rewritten file and script its
    # nn.Modules; take the original Function from its module when it cannot be isolated.
    verify_modules: bool = False
    verify_import_user_code: bool = False
    # Worker processes for a large run (parallel.py); results never depend on it. The API
    # default is one process; the CLI's is the number of CPUs.
    jobs: int = 1

    def __post_init__(self) -> None:
        # The Python API also takes the plain strings (``Options(style="function")``).
        object.__setattr__(self, "style", Style(self.style))
        object.__setattr__(self, "verify", VerifyLevel(self.verify))

    @property
    def writes_unverified(self) -> bool:
        """Whether a rewrite that could not be verified is written (``--allow-unverified``)."""
        return self.allow_unverified and not self.require_verify

    @property
    def mode(self) -> RunMode:
        return RunMode.from_flags(self.check, self.diff)


# ``progress(stage, done, total)``: ANALYZING (files that may define a Function), CHECKING (the
# files given), then VERIFYING (once, before the verification subprocess: total rewrites).
Progress = Callable[[str, int, int], None]
ANALYZING, CHECKING, VERIFYING = "analyzing", "checking", "verifying"


def no_progress(stage: str, done: int, total: int) -> None:
    pass


def stdin_display(options: Options) -> Path:
    """The path under which the stdin source appears in the report."""
    return Path(options.stdin_filename or STDIN)
