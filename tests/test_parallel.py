"""``--jobs``: worker processes give the same reports, diffs and written files as one process;
an internal error in a worker is reported for its file, a dead worker does not hang the run,
Ctrl-C exits 130; and the progress line on stderr (terminals only)."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from fgi_rewrite import cli, progress
from fgi_rewrite.cli import main
from fgi_rewrite.pipeline import parallel
from fgi_rewrite.pipeline.options import ANALYZING, CHECKING, VERIFYING
from fgi_rewrite.pipeline.report import EXIT_ERROR, EXIT_INTERRUPTED
from fgi_rewrite.progress import ProgressLine
from fgi_rewrite.project.index import ProjectIndex
from tests import worker_hooks
from tests.sources import DEFINITION, REFUSED, SURROGATE

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


@pytest.fixture(autouse=True)
def _no_verification(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FGI_REWRITE_VERIFY", "none")  # the verification has its own tests


@pytest.fixture
def workers(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Use workers for runs of any size; the list records the worker count of each pool."""
    started: list[int] = []
    original = parallel.Workers.__init__

    def counting(self: parallel.Workers, jobs: int, *args: Any) -> None:
        started.append(jobs)
        original(self, jobs, *args)

    monkeypatch.setattr(parallel, "MIN_WORK", 0)
    monkeypatch.setattr(parallel.Workers, "__init__", counting)
    return started


def invoke(*args: str | Path, input: str | None = None) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


SCALED = """
class ScaledSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, alpha=2.0):
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x > 0).float()

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * ctx.alpha / (1.0 + ctx.alpha * x.abs()) ** 2, None


class FourierSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, n_terms):
        ctx.save_for_backward(x)
        ctx.n_terms = n_terms
        return (x > 0).float()

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        g = torch.zeros_like(x)
        for k in range(1, ctx.n_terms + 1):
            g = g + torch.cos((2 * k - 1) * x)
        return grad_output * g / ctx.n_terms, None
"""

USERS = (
    "from .surrogates import SpikeFn\n\n\ndef f(v):\n    return SpikeFn.apply(v - {i}.0)\n",
    "from .aliases import spike\n\n\ndef f(v):\n    return spike(v * {i})\n",
    "from snnpkg.surrogates import ScaledSpike\n\n\n"
    "def f(v):\n    return ScaledSpike.apply(v, {i}.5)\n",
    "from . import surrogates as s\n\n\ndef f(v):\n    return s.NormFn.apply(v)\n",
    "from .surrogates import FourierSpike\n\n\n"
    "def f(v):\n    return FourierSpike.apply(v, {n})  # specialized per literal\n",
    "import torch\n\n\ndef f(v):\n    return torch.sigmoid(v)  # nothing to do\n",
)


def generated_tree(root: Path, modules: int = 30) -> Path:
    """A package whose surrogates are used across modules in every way the index resolves."""
    write(root / "pyproject.toml", "[project]\nname = 'demo'\n")
    package = root / "snnpkg"
    write(package / "__init__.py", "")
    refused = REFUSED[REFUSED.index("class NormFn") : REFUSED.index("\n\ndef fire")]
    write(package / "surrogates.py", DEFINITION + SCALED + "\n\n" + refused + "\n")
    aliases = '"""Function aliases."""\nfrom .surrogates import SpikeFn\n\nspike = SpikeFn.apply\n'
    write(package / "aliases.py", aliases)
    for i in range(modules):
        text = USERS[i % len(USERS)].format(i=i, n=1 + i // len(USERS) % 3)
        write(package / f"layer_{i:02d}" / "__init__.py", "")
        write(package / f"layer_{i:02d}" / "model.py", text.replace("from .", "from .."))
    write(package / "broken.py", "def f(:\n    pass\n")  # FGI901
    write(package / "generated.py", "# @generated\n" + USERS[0].format(i=0))
    write(package / "local.py", SURROGATE)  # a second SpikeFn, in another module
    return root


def compare_runs(root: Path, *options: str) -> dict[str, Any]:
    """The JSON report (with diffs) of one process and of two workers: identical."""
    one = invoke("--format", "json", "--diff", "--jobs", "1", *options, root)
    two = invoke("--format", "json", "--diff", "--jobs", "2", *options, root)
    assert one.stdout == two.stdout
    assert one.exit_code == two.exit_code
    report: dict[str, Any] = json.loads(two.stdout)
    return report


def test_example_project_same_report_and_diff(tmp_path: Path, workers: list[int]) -> None:
    root = tmp_path / "examples"  # as its own project (in place, the whole repository is one)
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns("__pycache__"))
    write(root / "pyproject.toml", "[project]\nname = 'snn-demo'\n")
    report = compare_runs(root)
    assert workers == [2]  # --jobs 1 used no pool
    assert report["summary"]["call_sites_rewritten"] >= 2
    assert report["files"] and all(f["diff"] for f in report["files"])


@pytest.mark.parametrize(
    "options", [(), ("--style", "function"), ("--style", "function", "--remove-unused")]
)
def test_generated_tree_same_report_and_diffs(
    tmp_path: Path, workers: list[int], options: tuple[str, ...]
) -> None:
    report = compare_runs(generated_tree(tmp_path), *options)
    assert workers == [2]
    summary = report["summary"]
    assert summary["files_scanned"] == 2 * 30 + 5
    assert summary["errors"] == 1  # broken.py
    assert summary["refused"] >= 1  # NormFn
    codes = {d["code"] for d in report["diagnostics"]}
    assert {"FGI901", "FGI101"} <= codes
    rewritten = {f["path"] for f in report["files"]}
    # The user modules but the plain and the refused ones, local.py, and with the function style
    # the module where the generated functions are defined.
    assert len(rewritten) == 21 + ("function" in options)
    surrogates = {s["surrogate"] for f in report["files"] for s in f["call_sites"]}
    assert {s for s in surrogates if "FourierSpike[" in s} == {  # specialized in the workers
        f"snnpkg.surrogates.FourierSpike[n_terms={n}]" for n in (1, 2, 3)
    }
    if "--remove-unused" in options:
        assert any(f["path"].endswith("surrogates.py") for f in report["files"])


def test_generated_tree_same_written_files(tmp_path: Path, workers: list[int]) -> None:
    one = generated_tree(tmp_path / "one")
    two = generated_tree(tmp_path / "two")
    before = tree(one)
    assert invoke("--style", "function", "-j", "1", one).exit_code == EXIT_ERROR  # broken.py
    assert invoke("--style", "function", "-j", "2", two).exit_code == EXIT_ERROR
    assert workers == [2]
    assert tree(one) == tree(two) != before


@pytest.mark.slow
def test_fixture_corpus_same_report(tmp_path: Path, workers: list[int]) -> None:
    """Every fixture case as one project (modules of the same name in many directories)."""
    root = tmp_path / "fixtures"
    shutil.copytree(REPO / "fixtures", root, ignore=shutil.ignore_patterns("expected*"))
    report = compare_runs(root)
    assert workers == [2]
    assert report["summary"]["call_sites_rewritten"] > 50


def test_small_runs_stay_in_one_process(tmp_path: Path) -> None:
    started: list[int] = []
    original = parallel.Workers.__init__

    def counting(self: parallel.Workers, jobs: int, *args: Any) -> None:
        started.append(jobs)
        original(self, jobs, *args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parallel.Workers, "__init__", counting)
        assert invoke("--check", "-j", "4", generated_tree(tmp_path)).exit_code == EXIT_ERROR
    assert started == []
    assert not parallel.worth_workers(targets=37, function_files=2)
    assert parallel.worth_workers(targets=1000, function_files=0)
    assert parallel.worth_workers(targets=10, function_files=7)


def test_stdin_in_workers_as_in_one_process(tmp_path: Path, workers: list[int]) -> None:
    """The workers read the stdin source (not the file on disk) through the index's reader."""
    root = generated_tree(tmp_path)
    target = root / "snnpkg" / "layer_00" / "model.py"
    source = target.read_text()
    target.write_text("")  # what is on disk must not matter
    one = invoke("-j", "1", "-", "--stdin-filename", target, input=source)
    two = invoke("-j", "2", "-", "--stdin-filename", target, input=source)
    assert workers == [2]
    assert one.exit_code == two.exit_code == 0
    assert "SpikeFn.apply" not in two.stdout and "_fgi" in two.stdout
    assert one.stdout == two.stdout


def test_internal_error_in_a_worker_is_reported_for_its_file(
    tmp_path: Path, workers: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parallel, "_start_worker", worker_hooks.failing_on_bad)
    root = generated_tree(tmp_path)
    bad = write(root / "snnpkg" / "bad.py", USERS[0].format(i=7))
    result = invoke("--check", "-j", "2", root)
    assert workers == [2]
    assert result.exit_code == EXIT_ERROR
    assert (
        f"error: internal error: {bad}: rewriting: RuntimeError: boom in a worker; "
        "the file is left unchanged"
    ) in result.stderr
    assert "would rewrite" in result.stderr  # the other files are still processed
    assert f"would rewrite {bad}" not in result.stderr


def test_a_dead_worker_loses_its_items_and_nothing_hangs(tmp_path: Path) -> None:
    items = [f"item{i}" for i in range(40)]
    pool = parallel.Workers(2, tmp_path, ())
    try:
        done: list[int] = []
        results = pool.map(
            worker_hooks.exit_on_item,
            "item5",
            items,
            done.append,
            lost=lambda item, reason: f"lost {item}: {reason}",
        )
        assert len(results) == len(items) and sum(done) == len(items)
        assert results[5].startswith("lost item5: a worker process died")
        assert all(
            r == i.upper() or r.startswith(f"lost {i}") for r, i in zip(results, items, strict=True)
        )
        with pytest.raises(BrokenProcessPool):  # without ``lost``: an error of the whole run
            pool.map(worker_hooks.exit_on_item, "item5", items, done.append)
    finally:
        pool.stop()


def test_results_keep_the_order_of_the_items(tmp_path: Path) -> None:
    items = [f"{'x' * (i * 7 % 13)}{i}" for i in range(50)]
    pool = parallel.Workers(2, tmp_path, ())
    try:
        results = pool.map(worker_hooks.exit_on_item, "none", items, lambda n: None, weight=len)
    finally:
        pool.stop()
    assert results == [i.upper() for i in items]


def test_chunks_cover_every_item_once_heaviest_first() -> None:
    weights = [1] * 100 + [500, 3, 900]
    groups = parallel.chunks(weights, jobs=2)
    flat = [i for group in groups for i in group]
    assert sorted(flat) == list(range(len(weights)))
    assert groups[0] == [102] and groups[1] == [100]  # heavy items alone, first
    assert all(len(g) <= parallel.MAX_CHUNK for g in groups)
    assert parallel.chunks([], jobs=2) == []
    assert parallel.chunks([0, 0, 0], jobs=4) == [[0, 1, 2]]


def test_in_process_mapper_calls_the_task_with_the_index(tmp_path: Path) -> None:
    index = ProjectIndex(tmp_path, ())
    seen: list[int] = []
    mapper = parallel.InProcess(index)
    assert mapper.map(worker_hooks.exit_on_item, "-", ["a", "b"], seen.append) == ["A", "B"]
    assert seen == [1, 1]


def test_default_jobs_is_the_cpu_count() -> None:
    assert 1 <= parallel.default_jobs() <= parallel.MAX_JOBS
    if hasattr(os, "sched_getaffinity"):
        assert parallel.default_jobs() == min(len(os.sched_getaffinity(0)), parallel.MAX_JOBS)


def test_jobs_from_the_configuration(tmp_path: Path, workers: list[int]) -> None:
    root = generated_tree(tmp_path, modules=6)
    write(root / "pyproject.toml", "[project]\nname = 'demo'\n\n[tool.fgi-rewrite]\njobs = 2\n")
    assert invoke("--check", root).exit_code == EXIT_ERROR
    assert invoke("--check", "--jobs", "1", root).exit_code == EXIT_ERROR  # the flag wins
    assert workers == [2]


def test_ctrl_c_with_workers_exits_130_and_stops_them(tmp_path: Path) -> None:
    """SIGINT to the whole process group, as a terminal's Ctrl-C sends it, while the workers
    are busy: exit 130 at once, no traceback, no worker left behind."""
    root = generated_tree(tmp_path / "project")
    marker = tmp_path / "marker"
    script = (
        "from fgi_rewrite.pipeline import parallel; from tests import worker_hooks; "
        "parallel.MIN_WORK = 0; parallel._start_worker = worker_hooks.stalling; "
        "from fgi_rewrite.cli import main; main()"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "FGI_TEST_MARKER": str(marker)}
    process = subprocess.Popen(
        [sys.executable, "-c", script, "--check", "-j", "2", str(root)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (marker.exists() and marker.read_text().count("started") >= 2):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        pids = [int(line.split()[1]) for line in marker.read_text().splitlines()]
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == EXIT_INTERRUPTED
    assert stderr.decode() == (
        "Interrupted: files already written are complete, the others untouched.\n"
    )
    time.sleep(0.2)
    for pid in pids:
        assert not _running(pid), f"worker {pid} still running"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split(")")[-1].split()[0] == "Z")


# ---- progress ---------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_line_waits_then_redraws_in_place_and_clears() -> None:
    stream, clock = io.StringIO(), Clock()
    line = ProgressLine(stream, clock)
    line(ANALYZING, 0, 3)
    clock.now = 0.5
    line(ANALYZING, 1, 3)
    assert stream.getvalue() == ""  # a quick run shows nothing
    clock.now = 1.2
    line(ANALYZING, 2, 3)
    analyzing = "fgi-rewrite: analyzing Functions, 2/3 files"
    assert stream.getvalue() == "\r" + analyzing
    line(CHECKING, 0, 1000)  # a new stage is drawn at once, over the longer line
    assert stream.getvalue().endswith("\r" + "fgi-rewrite: 0/1000 files".ljust(len(analyzing)))
    clock.now = 1.25
    line(CHECKING, 3, 1000)  # too soon to redraw
    line(CHECKING, 1000, 1000)  # but the last step always is
    assert "3/1000" not in stream.getvalue()
    assert stream.getvalue().endswith("\r" + "fgi-rewrite: 1000/1000 files".ljust(len(analyzing)))
    clock.now = 1.4
    line(CHECKING, 1000, 1000)
    line.clear()
    assert stream.getvalue().endswith("\r" + " " * len(analyzing) + "\r")
    drawn = stream.getvalue()
    line.clear()
    assert stream.getvalue() == drawn  # once


def test_progress_announces_verification_at_once() -> None:
    stream = io.StringIO()
    line = ProgressLine(stream, Clock())
    line(VERIFYING, 0, 0)  # nothing to verify
    assert stream.getvalue() == ""
    line(VERIFYING, 0, 1)
    assert stream.getvalue() == "\rfgi-rewrite: verifying 1 rewrite"
    line(ANALYZING, 1, 2)
    assert "analyzing" not in stream.getvalue()


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "stderr_is_terminal", lambda: True)
    monkeypatch.setattr(progress, "DELAY", 0.0)


def test_progress_on_a_terminal(tmp_path: Path, terminal: None) -> None:
    root = generated_tree(tmp_path, modules=6)
    result = invoke("--check", root)
    assert result.exit_code == EXIT_ERROR
    assert "\rfgi-rewrite: analyzing Functions, 2/2 files" in result.stderr
    assert "\rfgi-rewrite: 17/17 files" in result.stderr
    drawn, rest = result.stderr.rsplit("\r", 1)
    assert drawn.endswith(" " * len("fgi-rewrite: analyzing Functions, 2/2 files"))
    assert "\r" not in rest and rest.startswith(str(root))  # cleared before the messages
    assert "\r" not in result.stdout


@pytest.mark.parametrize("options", [("--format", "json"), ("-q",)])
def test_no_progress_with_json_or_quiet(
    tmp_path: Path, terminal: None, options: tuple[str, ...]
) -> None:
    result = invoke("--check", *options, generated_tree(tmp_path, modules=6))
    assert "fgi-rewrite:" not in result.stderr and "\r" not in result.stderr
    if "json" in options:
        json.loads(result.stdout)


def test_no_progress_when_stderr_is_not_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress, "DELAY", 0.0)
    result = invoke("--check", generated_tree(tmp_path, modules=6))
    assert result.exit_code == EXIT_ERROR
    assert "fgi-rewrite:" not in result.stderr and "\r" not in result.stderr


def test_progress_with_workers(tmp_path: Path, terminal: None, workers: list[int]) -> None:
    result = invoke("--check", "-j", "2", generated_tree(tmp_path, modules=6))
    assert workers == [2]
    assert result.exit_code == EXIT_ERROR
    assert "\rfgi-rewrite: 17/17 files" in result.stderr


def test_progress_cleared_before_the_interrupt_message(
    tmp_path: Path, terminal: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(paths: Any, options: Any, progress: Any) -> None:
        progress(CHECKING, 5, 10)
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "run", interrupted)
    result = invoke("--check", write(tmp_path / "snn.py", SURROGATE))
    assert result.exit_code == EXIT_INTERRUPTED
    line = "fgi-rewrite: 5/10 files"
    assert result.stderr == f"\r{line}\r{' ' * len(line)}\rInterrupted: " + (
        "files already written are complete, the others untouched.\n"
    )
