"""Worker initializers for tests/test_parallel.py: the workers are spawned processes, so a test
cannot monkeypatch them; it points ``parallel._start_worker`` at one of these (they are found by
reference in the worker, as the task functions are) and each patches the worker it starts in.

Kept apart from the test module so that a worker does not import pytest.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import fgi_rewrite.pipeline.targets as targets_module
from fgi_rewrite.pipeline import parallel

_start = parallel._start_worker


def failing_on_bad(root: Path, files: tuple[Path, ...], read: Any) -> None:
    """Rewriting a file named ``bad.py`` raises, as an internal error would."""
    _start(root, files, read)
    original = targets_module.rewrite_file

    def failing(index: Any, context: Any, module: Any) -> Any:
        if module.path.name == "bad.py":
            raise RuntimeError("boom in a worker")
        return original(index, context, module)

    targets_module.rewrite_file = failing


def stalling(root: Path, files: tuple[Path, ...], read: Any) -> None:
    """Checking a file writes ``$FGI_TEST_MARKER`` (``started <pid>``) and hangs for a minute."""
    _start(root, files, read)

    def stall(*args: Any, **kwargs: Any) -> Any:
        with open(os.environ["FGI_TEST_MARKER"], "a") as marker:
            marker.write(f"started {os.getpid()}\n")
        time.sleep(60)
        raise AssertionError("not interrupted")

    targets_module.process_target = stall  # type: ignore[assignment]


def exit_on_item(index: Any, context: str, item: str) -> str:
    """A task that kills its worker for the item ``context`` names."""
    if item == context:
        os._exit(3)
    return item.upper()
