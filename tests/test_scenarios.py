"""Scenario tests: a small research-style project whose driver changes state between training
steps runs in a fresh interpreter before and after ``python -m fgi_rewrite <project>`` (default
options: verification in a torch subprocess); the two records must agree (values bit for bit,
gradients at the verifier's tolerance, ``.grad is None`` exactly) and the tool must do what the
scenario's ``scenario.toml`` declares. See ``scenarios/README.md``."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from tests.scenario_harness import (
    DRIVER_TIMEOUT_S,
    TOOL_TIMEOUT_S,
    Finished,
    Scenario,
    ScenarioMismatch,
    changed_files,
    check_record_is_evidence,
    compare_records,
    copy_project,
    failure_message,
    finish,
    outcome_problems,
    parse_record,
    scenarios,
    start_driver,
    start_tool,
)

torch = pytest.importorskip("torch")

SCENARIOS = scenarios()


def _param(scenario: Scenario) -> Any:
    marks = []
    if scenario.xfail:
        # raises=: only the tool's failure is expected; a broken scenario is still an error.
        marks.append(pytest.mark.xfail(strict=True, raises=ScenarioMismatch, reason=scenario.xfail))
    return pytest.param(scenario, id=scenario.name, marks=marks)


@pytest.mark.parametrize("scenario", [_param(s) for s in SCENARIOS])
def test_scenario_computes_the_same_after_the_rewrite(scenario: Scenario, tmp_path: Path) -> None:
    for module in scenario.requires:
        pytest.importorskip(module)
    before_dir = copy_project(scenario, tmp_path / "before")
    after_dir = copy_project(scenario, tmp_path / "after")
    # The tool and the first driver run are independent: run them side by side.
    tool_process = start_tool(after_dir)
    before = finish(start_driver(scenario, before_dir), DRIVER_TIMEOUT_S)
    tool = finish(tool_process, TOOL_TIMEOUT_S)
    steps_before = parse_record(before)
    assert steps_before is not None, (
        f"{scenario.name}: the driver fails on the original project "
        f"(exit {before.returncode}):\n{before.stderr[-4000:]}"
    )
    check_record_is_evidence(steps_before, scenario)

    diffs = changed_files(before_dir, after_dir)
    problems = outcome_problems(scenario, tool, diffs)
    after = finish(start_driver(scenario, after_dir), DRIVER_TIMEOUT_S)
    steps_after = parse_record(after)
    if steps_after is None:
        problems.append(
            f"the driver fails after the rewrite (exit {after.returncode}):\n"
            f"{after.stderr[-3000:].rstrip()}"
        )
    else:
        problems.extend(compare_records(steps_before, steps_after))
    if problems:
        raise ScenarioMismatch(failure_message(scenario, problems, tool, diffs, limit=12))


# ---- the harness can fail --------------------------------------------------------------------

PATTERNS = {
    # issue 14 items 1-7, higher-order gradients; issue 15 item 3; class/instance attributes;
    # the controls.
    "global_setter",
    "setattr_config_helper",
    "module_constant_from_other_module",
    "list_entry",
    "dict_entry",
    "parameter_hyperparameter",
    "shadowed_math_parameter",
    "shadowed_torch_local",
    "caller_binds_math_to_numpy",
    "gradient_penalty",
    "hessian_vector_product",
    "func_meta_gradient",
    "runtime_config_object",
    "runtime_argparse_namespace",
    "runtime_module_namespace",
    "class_attribute_set_outside",
    "module_attribute_changed",
    "control_literal",
    "control_refused",
    # issue 15 items 4 and 9; the rules of the rebinding proof (project/rebinding.py)
    "saved_scalar_tensor",
    "callable_hyperparameter",
    "package_alias_rebinds_global",
    "globals_write",
    "list_mutating_call",
    "setattr_module_from_config",
    "classmethod_configures_class",
    "control_constants_inlined",
}


def test_every_pattern_has_a_scenario() -> None:
    assert {s.name for s in SCENARIOS} >= PATTERNS


def test_controls_are_not_expected_to_fail() -> None:
    controls = [s for s in SCENARIOS if s.name.startswith("control_")]
    assert {s.expect for s in controls} >= {"rewritten", "refused"}
    assert all(s.xfail is None for s in controls)


def test_xfail_reasons_name_the_issue() -> None:
    for scenario in SCENARIOS:
        assert scenario.xfail is None or scenario.xfail.startswith("issue "), scenario.name


def _encoded(tensor: Any) -> dict[str, Any]:
    data = tensor.contiguous()
    return {
        "dtype": str(data.dtype).removeprefix("torch."),
        "shape": list(data.shape),
        "data": base64.b64encode(data.numpy().tobytes()).decode("ascii"),
    }


def _record(value: Any, grad: Any | None, step: str = "1 alpha=5.0") -> list[dict[str, Any]]:
    fixed = _encoded(torch.ones(2))
    return [
        {"step": "0", "values": {"out": fixed}, "grads": {"w.grad": fixed}},
        {
            "step": step,
            "values": {"out": _encoded(value)},
            "grads": {"w.grad": None if grad is None else _encoded(grad)},
        },
    ]


def test_comparison_accepts_rounding_in_gradients_only() -> None:
    x = torch.linspace(-2.0, 2.0, 9)
    assert compare_records(_record(x, x), _record(x, x * (1 + 2e-7))) == []
    problems = compare_records(_record(x, x), _record(x * (1 + 2e-7), x))
    assert len(problems) == 1
    assert "step '1 alpha=5.0', value 'out'" in problems[0] and "max abs diff" in problems[0]


def test_comparison_names_step_tensor_and_max_difference() -> None:
    x = torch.linspace(-2.0, 2.0, 9, dtype=torch.float64)
    problems = compare_records(_record(x, x), _record(x, x + 3.0 * (x > 1.5)))
    assert len(problems) == 1
    assert problems[0].startswith("step '1 alpha=5.0', gradient 'w.grad':")
    assert "max abs diff 3" in problems[0] and "rtol 1e-10" in problems[0]


def test_comparison_checks_none_parity_dtype_and_steps() -> None:
    x = torch.ones(3)
    assert compare_records(_record(x, None), _record(x, torch.zeros(3))) == [
        "step '1 alpha=5.0', gradient 'w.grad': None before, a tensor after"
    ]
    assert (
        "float32[3] became float64[3]" in compare_records(_record(x, x), _record(x, x.double()))[0]
    )
    assert "recorded steps differ" in compare_records(_record(x, x), _record(x, x, step="1"))[0]
    signed = compare_records(_record(torch.zeros(3), x), _record(-torch.zeros(3), x))
    assert len(signed) == 1 and "value 'out'" in signed[0]
    nan = torch.tensor([float("nan"), 1.0])
    assert compare_records(_record(nan, nan), _record(nan, nan)) == []


def test_a_record_without_gradients_is_no_evidence() -> None:
    scenario = SCENARIOS[0]
    empty = _record(torch.ones(2), None)
    empty[0]["grads"] = {}
    with pytest.raises(AssertionError, match="no step recorded a gradient"):
        check_record_is_evidence(empty, scenario)
    with pytest.raises(AssertionError, match="recorded nothing"):
        check_record_is_evidence(parse_record(Finished(1, "", "Traceback")), scenario)


def _scenario(expect: str, codes: tuple[str, ...] = ()) -> Scenario:
    return Scenario("s", Path("."), "test", "train.py", expect, codes)  # type: ignore[arg-type]


def test_outcome_is_checked_against_the_declaration() -> None:
    written = {"model.py": "diff"}
    quiet = Finished(0, "", "")
    refused = Finished(0, "", "surrogate.py:3:1: FGI111 class attribute reassigned")
    assert outcome_problems(_scenario("rewritten"), quiet, written) == []
    assert outcome_problems(_scenario("rewritten"), quiet, {}) != []
    assert outcome_problems(_scenario("refused", ("FGI111",)), refused, {}) == []
    assert outcome_problems(_scenario("refused", ("FGI107",)), refused, {}) != []
    assert outcome_problems(_scenario("refused", ("FGI111",)), refused, written) != []
    assert outcome_problems(_scenario("either"), refused, {}) == []
    assert outcome_problems(_scenario("either"), quiet, written) == []
    assert "silent miss" in outcome_problems(_scenario("either"), quiet, {})[0]
    assert "exit status 123" in outcome_problems(_scenario("either"), Finished(123, "", ""), {})[0]


def test_changed_files_and_message_show_what_the_tool_did(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "m.py").write_text("y = Fn.apply(x)\n")
    (tmp_path / "b" / "m.py").write_text("y = x > 0\n")
    diffs = changed_files(tmp_path / "a", tmp_path / "b")
    assert list(diffs) == ["m.py"] and "+y = x > 0" in diffs["m.py"]
    message = failure_message(
        _scenario("rewritten"), ["step '0', value 'out': ..."], Finished(0, "out", "err"), diffs, 5
    )
    assert "step '0'" in message and "err" in message and "+y = x > 0" in message
