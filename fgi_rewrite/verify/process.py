"""The verification subprocess: start it with a job, collect what it says.

The child (``child/checks.py``) runs with ``sys.executable`` or ``$FGI_REWRITE_VERIFY_PYTHON``, in
a temporary directory, in a session of its own (so that a timeout kills its compile workers too);
it reads the job as JSON on stdin and prints one JSON message per line behind ``MARKER``. Nothing
here imports torch.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fgi_rewrite.core.model import VerifyLevel
from fgi_rewrite.verify.job import Job

CHILD = Path(__file__).parent / "child" / "checks.py"
MARKER = "@@fgi-verify@@ "
_BOOT = "import runpy, sys; p = sys.argv[1]; sys.argv = [p]; runpy.run_path(p, run_name='__main__')"


@dataclass
class ChildOutput:
    torch_ok: bool | None = None
    torch_error: str = ""
    torch_seconds: float = 0.0
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    problem: str = ""  # timeout or crash of the child itself
    plot_error: str = ""  # matplotlib could not be imported (--plot)
    modules: list[dict[str, Any]] = field(default_factory=list)  # --verify-modules, per class


def default_timeout(level: VerifyLevel, cases: int) -> float:
    override = os.environ.get("FGI_REWRITE_VERIFY_TIMEOUT")
    if override:
        return float(override)
    return 60.0 + cases * (90.0 if level is VerifyLevel.FULL else 10.0)


def run_job(job_data: Job, timeout: float, python: str | None = None) -> ChildOutput:
    """Run one job in the verification subprocess and collect its messages."""
    python = python or os.environ.get("FGI_REWRITE_VERIFY_PYTHON") or sys.executable
    job = json.dumps(job_data.to_json()).encode()
    output = ChildOutput()
    with tempfile.TemporaryDirectory(prefix="fgi-verify-") as cwd:
        try:
            process = subprocess.Popen(
                [python, "-c", _BOOT, str(CHILD)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=cwd,
                start_new_session=hasattr(os, "killpg"),
            )
        except OSError as exc:
            output.torch_ok, output.torch_error = False, f"cannot start {python}: {exc}"
            return output
        try:
            stdout, stderr = process.communicate(job, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(process)
            stdout, stderr = process.communicate()
            output.problem = f"verification timed out after {timeout:g} s"
    for line in stdout.decode("utf-8", errors="replace").splitlines():
        if not line.startswith(MARKER):
            continue
        message = json.loads(line[len(MARKER) :])
        if message.get("kind") == "torch":
            output.torch_ok = bool(message["ok"])
            output.torch_error = message.get("error", "")
            output.torch_seconds = float(message.get("seconds", 0.0))
        elif message.get("kind") == "case":
            output.results[message["id"]] = message
        elif message.get("kind") == "module":
            output.modules.append(message)
        elif message.get("kind") == "plot" and not message.get("ok"):
            output.plot_error = message.get("error", "") or "matplotlib is not importable"
    if output.torch_ok is None and not output.problem:
        tail = stderr.decode("utf-8", errors="replace").strip().splitlines()[-1:]
        why = "; ".join(tail) or f"exit status {process.returncode}"
        output.problem = f"the verification process failed ({why})"
    return output


def _kill(process: subprocess.Popen[bytes]) -> None:
    try:
        if hasattr(os, "killpg"):
            os.killpg(process.pid, signal.SIGKILL)  # with its compile workers
        else:
            process.kill()
    except (ProcessLookupError, PermissionError):
        pass
