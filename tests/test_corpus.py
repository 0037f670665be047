"""Real-world coverage on the 9-library SNN corpus (``benchmarks/corpus.py``).

The corpus is fetched from PyPI into ``$FGI_CORPUS_DIR`` (default ``~/.cache/fgi-rewrite-corpus``)
by ``../shared/tools/get_corpus.sh`` (``$FGI_GET_CORPUS`` overrides the path); when that is not
possible (no network, no script) the corpus tests are skipped with the reason. Then every package
is run as a user would (``python -m fgi_rewrite --diff --format json --verify script PKG``), the
diffs are applied to a copy and ``--check`` runs again. The tests fail when coverage falls below
``benchmarks/corpus_baseline.json``: fewer surrogates rewritten and verified in a package, a crash,
a rewrite of a non-elementwise or plumbing Function, any change in bindsnet, a second run that
still changes something. About 4 minutes on 2 cores; deselect with ``-m "not corpus"``.

The tests without the marker check the committed facts and the diff applier and take no time.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


def _load_benchmark() -> ModuleType:
    name = "fgi_corpus_benchmark"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / "corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


bench = _load_benchmark()


# ---- committed facts (fast, always run) --------------------------------------------------------


def test_expected_categories_match_the_corpus_facts() -> None:
    rows = bench.load_expected()
    categories = [r.category for r in rows]
    assert set(categories) <= {*bench.SURROGATE_CATEGORIES, "other-elementwise", *bench.LEAVE_ALONE}
    assert categories.count("surrogate-binary") == 44
    assert categories.count("surrogate-multilevel") == 10
    assert categories.count("surrogate-stochastic") == 3
    assert categories.count("other-elementwise") == 18
    # 110 real Functions plus norse's CobaLIFAdjointFunction, whose base torch.nn.Function
    # does not exist
    assert len(rows) == 111
    assert not [r for r in rows if r.package == bench.NEGATIVE_CONTROL]
    assert {r.package for r in rows} == set(bench.PACKAGES) - {bench.NEGATIVE_CONTROL}
    assert len({(r.package, r.path, r.qualname) for r in rows}) == len(rows)


def test_baseline_names_every_package() -> None:
    baseline = json.loads(bench.BASELINE.read_text())
    assert set(baseline["per_package"]) == set(bench.PACKAGES)
    assert baseline["crashes"] == 0 and baseline["leave_alone_rewritten"] == 0
    assert baseline["bindsnet_unchanged"] is True and baseline["idempotent"] is True
    total = sum(v["surrogates_rewritten_verified"] for v in baseline["per_package"].values())
    assert total == baseline["surrogates_rewritten_verified"]


@pytest.mark.parametrize(
    "before, after",
    [
        ("a\nb\nc\n", "a\nB\nc\n"),
        ("a\r\nb\r\n", "a\r\nx\r\ny\r\nb\r\n"),
        ("a\nb", "a\nb\nc"),
        ("", "new\n"),
        ("only\n", ""),
        ("\n".join(map(str, range(40))) + "\n", "\n".join(map(str, range(3, 45))) + "\n"),
    ],
)
def test_apply_unified_diff(before: str, after: str) -> None:
    import difflib

    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        "f\t(original)",
        "f\t(rewritten)",
    )
    diff = "".join(x if x.endswith("\n") else x + "\n\\ No newline at end of file\n" for x in lines)
    assert bench.apply_unified_diff(before, diff) == after


def test_apply_unified_diff_rejects_wrong_context() -> None:
    diff = "--- f\n+++ f\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n"
    with pytest.raises(bench.PatchError):
        bench.apply_unified_diff("a\nx\n", diff)


# ---- the corpus run (marker: corpus) -----------------------------------------------------------


@pytest.fixture(scope="module")
def corpus() -> dict[str, Any]:
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed: --verify script cannot verify anything")
    start = time.perf_counter()
    try:
        found = bench.fetch_corpus(bench.default_corpus_dir(), bench.default_get_corpus())
    except bench.CorpusUnavailable as exc:
        pytest.skip(f"the SNN corpus cannot be fetched: {exc}")
    results = bench.run_corpus(found, "script", timeout=600, idempotent=True)
    score = bench.score(bench.load_expected(), results)
    text = (
        f"{bench.package_table(results)}\n\n{bench.score_text(score)}\n\n"
        f"corpus run: {time.perf_counter() - start:.0f} s"
    )
    print("\n" + text)
    return {
        "results": results,
        "score": score,
        "text": text,
        "baseline": json.loads(bench.BASELINE.read_text()),
    }


@pytest.mark.corpus
def test_corpus_no_crash(corpus: dict[str, Any]) -> None:
    assert not corpus["score"]["crashes"], corpus["text"]


@pytest.mark.corpus
def test_corpus_leaves_non_elementwise_functions_alone(corpus: dict[str, Any]) -> None:
    assert not corpus["score"]["leave_alone_rewritten"], corpus["text"]
    # Kernels and plumbing are noted (FGI001), not refused: --check must pass on them.
    assert not corpus["score"]["leave_alone_refused"], corpus["text"]
    assert not corpus["score"]["leave_alone_detected_as_surrogate"], corpus["text"]


@pytest.mark.corpus
def test_corpus_bindsnet_unchanged(corpus: dict[str, Any]) -> None:
    assert corpus["score"]["bindsnet_unchanged"] is True, corpus["text"]


@pytest.mark.corpus
def test_corpus_rewrite_is_idempotent(corpus: dict[str, Any]) -> None:
    bad = {
        name: r.idempotence_detail
        for name, r in corpus["results"].items()
        if r.idempotent is not True
    }
    assert not bad, f"{bad}\n{corpus['text']}"


@pytest.mark.corpus
def test_corpus_coverage_not_below_baseline(corpus: dict[str, Any]) -> None:
    bad = bench.regressions(corpus["score"], corpus["baseline"])
    assert not bad, (
        "below benchmarks/corpus_baseline.json:\n  " + "\n  ".join(bad) + "\n" + corpus["text"]
    )
