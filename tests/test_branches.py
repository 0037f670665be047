"""Run-time branches and loops (analysis/branches.py, core/ir.py, rewrite/control_flow.py) and
dead temporaries (liveness.py): the pure parts, without torch. The fixtures runtime_branch_hyper,
corpus_dispatch_runtime_id, corpus_runtime_bool_hyper, corpus_fourier_loop_runtime_n and
corpus_dead_temporary_forward run them end to end."""

from __future__ import annotations

import libcst as cst

from fgi_rewrite.analysis import branches, liveness
from fgi_rewrite.core import ir
from fgi_rewrite.core import symbolic as sym
from fgi_rewrite.rewrite import control_flow


def expr(code: str) -> cst.BaseExpression:
    return cst.parse_expression(code)


def lines(tree: control_flow.Leaf | control_flow.Branch) -> list[str]:
    return control_flow.render(tree, lambda e: [f"out = {sym.code(e[0])}"], "    ")


def test_an_if_chain_on_one_name_is_an_elif_chain_without_impossible_branches() -> None:
    g = expr('(a if k == "x" else (b if k == "y" else c)) * (2 if k == "y" else 1)')
    assert lines(control_flow.split([g])) == [
        'if k == "x":',
        "    out = a * 1",
        'elif k == "y":',
        "    out = b * 2",
        "else:",
        "    out = c * 1",
    ]


def test_literal_tests_fold_and_raise_markers_become_raise() -> None:
    marker = sym.code(ir.raise_marker(expr('ValueError("bad id")')))
    g = expr(f"(a if 2 == 1 else ({marker} if k == 0 else b))")
    assert lines(control_flow.split([g])) == [
        "if k == 0:",
        '    raise ValueError("bad id")',
        "else:",
        "    out = b",
    ]


def test_only_builtin_exceptions_from_literals_are_kept() -> None:
    kept = ir.raise_marker(expr("ValueError('x')"))
    replaced = ir.raise_marker(expr("MyError(x)"))
    assert sym.code(kept.args[0].value) == "ValueError('x')"
    assert "RuntimeError" in sym.code(replaced.args[0].value)


def test_flags_carried_through_a_tensor_fold_into_the_test() -> None:
    flag = expr("torch.tensor((1 if g is True else 0), dtype=v.dtype).detach() > 0.5")
    assert sym.code(branches.simplify(flag)) == "(g is True)"
    # backward: ``graded = True if flag > 0.5 else False`` then ``if graded is False``, folded
    # inside out as the interpreter builds them
    graded = branches.simplify(expr("True if (g is True) else False"))
    back = cst.Comparison(graded, [cst.ComparisonTarget(cst.Is(), cst.Name("False"))])
    assert sym.code(branches.simplify(back)) == "(not (g is True))"
    # a number compared with a float is left alone: rounding in the tensor's dtype could matter
    kept = expr("torch.tensor(alpha) > 0.5")
    assert branches.simplify(kept) is kept


def test_a_test_and_its_negation_are_one_decision() -> None:
    g = expr("(a if g is True else b) + (c if not (g is True) else d)")
    assert lines(control_flow.split([g])) == [
        "if g is True:",
        "    out = a + d",
        "else:",
        "    out = b + c",
    ]


def test_loops_are_hoisted_with_a_tensor_start() -> None:
    update = expr(f"{ir.ACC} + torch.cos({ir.INDEX} * x)")
    g = sym.mul(ir.loop([expr("1"), expr("n")], expr("0.0"), update), expr("2.0"))
    names = iter(["acc", "i"])
    statements, (result,) = control_flow.hoist([g], lambda base: next(names), expr("x"), "    ")
    assert statements == [
        "acc = torch.zeros_like(x) + 0.0",
        "for i in range(1, n, 1):",
        "    acc = acc + torch.cos(i * x)",
    ]
    assert sym.code(result) == "acc * 2.0"
    assert ir.range_names([g]) == {"n"}


def test_dead_temporaries_and_nothing_else() -> None:
    body = cst.parse_module(
        "tmp = torch.zeros_like(v)\n"
        "tmp[..., 1:] = v[..., :-1]\n"
        "if mode:\n"
        "    tmp = tmp * 2\n"
        "    out = v > 0\n"
        "else:\n"
        "    out = v > 1\n"
        "v[0] = 1.0\n"
        "ctx.keep = tmp2 = v\n"
        "return out\n"
    ).body
    dead = liveness.dead_statements(body, frozenset({"v"}))
    dead_code = sorted(
        cst.Module([]).code_for_node(s).strip()
        for s in [*body, *body[2].body.body]  # type: ignore[attr-defined]
        if id(s) in dead
    )
    # the parameter update and the ctx store stay; so does everything ``out`` needs
    assert dead_code == ["tmp = tmp * 2", "tmp = torch.zeros_like(v)", "tmp[..., 1:] = v[..., :-1]"]
