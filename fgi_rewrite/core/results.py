"""The results the stages produce and the Report consumes, in one place so that ``report`` needs
no stage to know them: a rewritten call site (``rewrite``), a file's before and after
(``pipeline``), what a run says of each Function (``analysis``), a verification verdict
(``verify``) and a ``--verify-modules`` check (``verify.module_check``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fgi_rewrite.core.model import Location, StrEnum


class CallStyle(StrEnum):
    """How one call site was rewritten."""

    INLINE = "inline"  # FGI statements before the statement
    FUNCTION = "function"  # a call of the generated function
    REFERENCE = "reference"  # ``Fn.apply`` not called here (stored, passed): the function's name


@dataclass(frozen=True)
class CallSite:
    surrogate: str  # qualname
    location: Location
    style: CallStyle


class FunctionVerdict(StrEnum):
    """What a run says of one autograd.Function."""

    SURROGATE = "surrogate"  # extracted: its call sites are rewritten
    REFUSED = "refused"  # a surrogate-like Function fgi-rewrite cannot express (code says why)
    NOT_SURROGATE = "not_surrogate"  # not elementwise (a kernel, plumbing): left alone


@dataclass(frozen=True)
class FunctionRecord:
    """One ``autograd.Function`` subclass met in the given files (or used by their call sites)."""

    qualname: str
    location: Location
    verdict: FunctionVerdict
    params: tuple[str, ...] = ()
    f: str | None = None  # the forward value, as code over the params
    g: tuple[tuple[str, str | None], ...] = ()  # param -> d(value)/d(param) factor, or None
    code: str | None = None  # refusal (or note) code when not a surrogate
    message: str | None = None


@dataclass(frozen=True)
class FileResult:
    path: Path
    before: bytes
    after: bytes
    call_sites: tuple[CallSite, ...] = ()

    @property
    def changed(self) -> bool:
        return self.before != self.after


class VerificationStatus(StrEnum):
    """The outcome of verifying one surrogate."""

    VERIFIED = "verified"
    FAILED = "failed"  # values or gradients differ: never written
    UNSCRIPTABLE = "unscriptable"  # TorchScript (or compile/export) fails
    UNVERIFIED = "unverified"  # no torch, a timeout, a crash of the verification process
    ISOLATION = "isolation"  # the original cannot be rebuilt without importing user code


@dataclass(frozen=True)
class Verification:
    """What verification found for one surrogate (``checks``: name -> ``ok``/``fail``/``-``)."""

    surrogate: str  # qualname
    name: str
    paths: tuple[Path, ...]  # files where its call sites were to be rewritten
    checks: tuple[tuple[str, str], ...] = ()
    original: tuple[str, ...] = ()  # the original Function's own script/export results
    hyper: str = ""  # the hyperparameter values used, and where they came from
    status: VerificationStatus = VerificationStatus.VERIFIED
    detail: str = ""
    written: bool = True
    seconds: float = 0.0
    plot: str = ""  # the PNG drawn with --plot (as the user named its directory)
    notes: tuple[str, ...] = ()  # what the comparison found but accepted (non-finite, shapes)
    imported: str = ""  # the user's module the original came from (--verify-import-user-code)

    def line(self) -> str:
        marks = {"ok": "✓", "fail": "✗", "-": "–"}
        parts = [f"{name} {marks.get(state, state)}" for name, state in self.checks]
        text = f"verify {self.name}: " + ("  ".join(parts) if parts else "not verified")
        if self.status in (VerificationStatus.UNVERIFIED, VerificationStatus.ISOLATION):
            text += f" ({self.detail})"
        if self.original:
            text += f" (original: {'; '.join(self.original)})"
        if self.imported:
            text += f" (original imported from {self.imported})"
        if self.hyper:
            text += f" [{self.hyper}]"
        if not self.written:
            text += " -> left unchanged"
        return text


MARKS = {"ok": "✓", "fail": "✗"}


@dataclass(frozen=True)
class ModuleCheck:
    """One ``nn.Module`` class of a rewritten file (``qualname`` is '' when the module itself
    could not be imported): ``state`` ok, fail or skipped (not built without arguments)."""

    path: Path
    qualname: str
    state: str
    detail: str = ""
    original: str = ""  # the same check on the original file: ok, fail or skipped
    original_detail: str = ""

    def line(self) -> str:
        name = self.qualname or f"{self.path} (import)"
        if self.state == "skipped":
            return f"module {name}: not checked ({self.detail})"
        text = f"module {name}: script {MARKS.get(self.state, self.state)}"
        if self.state == "fail":
            text += f" ({self.detail})"
        if self.original and self.original != self.state:
            was = self.original_detail.split(": ", 1)[0]  # "torch.jit.save fails"
            text += f" (original: {was})"
        return text

    @property
    def regression(self) -> bool:
        """It failed after the rewrite, where the original passed."""
        return self.state == "fail" and self.original == "ok"


def verifications_for(verifications: Sequence[Verification], path: Path) -> list[Verification]:
    """The verdicts of the surrogates whose call sites in ``path`` were (to be) rewritten."""
    return [v for v in verifications if path in v.paths]
