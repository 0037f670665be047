"""``--verify-modules``: script the ``nn.Module`` classes of every rewritten file (opt-in).

The per-rewrite checks (``stage.py``) never import the user's code. This check does: after the
gate has decided what is written, the rewritten text of each changed file is imported in a
verification subprocess (``child/modules.py``, loaded by ``verify/child/checks.py``) through an
import hook that serves the rewritten source in place of the file on disk (the other modules of
the project come from disk), and every ``nn.Module`` subclass defined in it that can be built
without arguments goes through ``torch.jit.script`` + ``torch.jit.save`` + ``torch.jit.load``
with no ``prim::PythonOp`` in its graph. The same is done with the original files, so that each
class's line says what the rewrite changed: ``module pkg.model.Net: script ✓ (original:
torch.jit.save fails)``. A class that scripted before the rewrite and does not after it is
reported ``FGI308``; nothing else changes (the files are written, or not, as before).
"""

from __future__ import annotations

import io
import tokenize
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fgi_rewrite.core import codes
from fgi_rewrite.core.model import Diagnostic, Location, VerifyLevel
from fgi_rewrite.core.results import FileResult, ModuleCheck
from fgi_rewrite.project.notebook import is_notebook
from fgi_rewrite.project.source_module import module_name_for
from fgi_rewrite.verify.isolate import import_root
from fgi_rewrite.verify.job import Job, ModuleSource
from fgi_rewrite.verify.process import default_timeout, run_job


def _text(data: bytes) -> str:
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    return data.decode(encoding).lstrip("\ufeff")


def module_job(results: Sequence[FileResult]) -> Job | None:
    """The child's job: the rewritten source of every changed file, under its module name."""
    sources = []
    for result in results:
        if not result.changed or result.path.name == "-":  # stdin without --stdin-filename
            continue
        if is_notebook(result.path):  # no import reaches a notebook's code
            continue
        name, _, is_package = module_name_for(result.path)
        try:
            text = _text(result.after)
        except (SyntaxError, UnicodeDecodeError, LookupError):
            continue
        root = str(import_root(result.path))
        sources.append(ModuleSource(name, str(result.path), text, is_package, root))
    if not sources:
        return None
    return Job("modules", modules=tuple(sources))


def judge_modules(
    messages: Sequence[dict[str, Any]], problem: str, first: Path | None
) -> tuple[list[ModuleCheck], list[Diagnostic]]:
    """Module checks from the child's messages, and the FGI308 warnings for regressions (or an
    FGI303 when the check could not run at all)."""
    checks = [
        ModuleCheck(
            Path(m["path"]),
            m["class"],
            m["state"],
            m.get("detail", ""),
            m.get("original", ""),
            m.get("original_detail", ""),
        )
        for m in messages
    ]
    diagnostics = [
        Diagnostic(
            codes.ModuleNotScriptable,
            Location(check.path, 1, 1),
            f"{check.qualname or check.path}: {check.detail} after the rewrite; the original "
            "scripts, saves and loads",
        )
        for check in checks
        if check.regression
    ]
    if problem and first is not None:
        diagnostics.append(
            Diagnostic(
                codes.Unverified,
                Location(first, 1, 1),
                f"--verify-modules: not checked ({problem})",
            )
        )
    return checks, diagnostics


def verify_modules(
    results: Sequence[FileResult], timeout: float | None = None, python: str | None = None
) -> tuple[list[ModuleCheck], list[Diagnostic]]:
    """Import every changed file's rewritten text (and then the original) in one verification
    subprocess and script its ``nn.Module`` classes; see the module docstring."""
    job = module_job(results)
    if job is None:
        return [], []
    child = run_job(job, timeout or default_timeout(VerifyLevel.SCRIPT, len(job.modules)), python)
    problem = child.problem
    if child.torch_ok is False:
        problem = f"torch is not importable: {child.torch_error}"
    first = Path(job.modules[0].path)
    return judge_modules(child.modules, problem, first)
