"""Small expression algebra over libcst nodes: building, substituting, inspecting.

Extracted expressions mention only parameter names, the placeholders of ``model``, canonical
``torch``/``math`` names and literals, so substitution is by name and parentheses are added only
where an operand would otherwise bind differently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import libcst as cst

ATOMS = (
    cst.Name,
    cst.Attribute,
    cst.Call,
    cst.Subscript,
    cst.Integer,
    cst.Float,
    cst.Imaginary,
    cst.SimpleString,
    cst.ConcatenatedString,
    cst.Tuple,
    cst.List,
)

_PRECEDENCE: dict[type[cst.CSTNode], int] = {
    cst.Power: 9,
    cst.Multiply: 7,
    cst.Divide: 7,
    cst.FloorDivide: 7,
    cst.Modulo: 7,
    cst.MatrixMultiply: 7,
    cst.Add: 6,
    cst.Subtract: 6,
    cst.LeftShift: 5,
    cst.RightShift: 5,
    cst.BitAnd: 4,
    cst.BitXor: 3,
    cst.BitOr: 2,
}


def precedence(node: cst.BaseExpression) -> int:
    if node.lpar or isinstance(node, ATOMS):
        return 11
    if isinstance(node, cst.BinaryOperation):
        return _PRECEDENCE[type(node.operator)]
    if isinstance(node, cst.UnaryOperation):
        return -1 if isinstance(node.operator, cst.Not) else 8
    if isinstance(node, cst.Comparison):
        return 1
    if isinstance(node, cst.BooleanOperation):
        return -2
    return -5


def paren(node: cst.BaseExpression) -> cst.BaseExpression:
    return node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])


def wrap_below(node: cst.BaseExpression, level: int) -> cst.BaseExpression:
    return paren(node) if precedence(node) < level else node


def atomic(node: cst.BaseExpression) -> cst.BaseExpression:
    """Parenthesize unless the node is an atom (safe to put anywhere)."""
    if isinstance(node, cst.UnaryOperation) and not node.lpar:
        return paren(node)
    return wrap_below(node, 11)


def binop(
    left: cst.BaseExpression, op: cst.BaseBinaryOp, right: cst.BaseExpression
) -> cst.BinaryOperation:
    level = _PRECEDENCE[type(op)]
    right_assoc = isinstance(op, cst.Power)
    left_level = level + 1 if right_assoc else level
    right_level = level if right_assoc else level + 1
    if right_assoc and isinstance(left, cst.UnaryOperation):
        left_level = 11
    return cst.BinaryOperation(
        left=wrap_below(left, left_level), operator=op, right=wrap_below(right, right_level)
    )


def mul(left: cst.BaseExpression, right: cst.BaseExpression) -> cst.BaseExpression:
    return binop(left, cst.Multiply(), right)


def name(value: str) -> cst.Name:
    return cst.Name(value)


def dotted(path: str) -> cst.BaseExpression:
    head, *rest = path.split(".")
    node: cst.BaseExpression = cst.Name(head)
    for part in rest:
        node = cst.Attribute(value=node, attr=cst.Name(part))
    return node


def call(func: str | cst.BaseExpression, *args: cst.BaseExpression) -> cst.Call:
    callee = dotted(func) if isinstance(func, str) else func
    return cst.Call(func=callee, args=[cst.Arg(a) for a in args])


def method(obj: cst.BaseExpression, attr: str, *args: cst.BaseExpression) -> cst.Call:
    return cst.Call(
        func=cst.Attribute(value=atomic(obj), attr=cst.Name(attr)), args=[cst.Arg(a) for a in args]
    )


def code(node: cst.CSTNode) -> str:
    return cst.Module(body=[]).code_for_node(node)


def names_in(node: cst.CSTNode) -> set[str]:
    """Free names: attribute fields and keyword names are not names."""
    found: set[str] = set()

    class Visitor(cst.CSTVisitor):
        def visit_Name(self, n: cst.Name) -> None:
            found.add(n.value)

        def visit_Attribute(self, n: cst.Attribute) -> bool:
            n.value.visit(self)
            return False

        def visit_Arg(self, n: cst.Arg) -> bool:
            n.value.visit(self)
            return False

    node.visit(Visitor())
    return found


def mentions(node: cst.CSTNode, symbol: str) -> bool:
    return symbol in names_in(node)


def substitute(
    node: cst.BaseExpression, mapping: Mapping[str, cst.BaseExpression]
) -> cst.BaseExpression:
    """Replace free names; non-atomic replacements get parentheses."""
    if not mapping:
        return node

    class Transformer(cst.CSTTransformer):
        def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.BaseExpression:
            replacement = mapping.get(original.value)
            if replacement is None:
                return updated
            return atomic(replacement).with_changes(
                lpar=[*original.lpar, *atomic(replacement).lpar],
                rpar=[*atomic(replacement).rpar, *original.rpar],
            )

        def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.Attribute:
            return updated.with_changes(attr=original.attr)

        def leave_Arg(self, original: cst.Arg, updated: cst.Arg) -> cst.Arg:
            return updated.with_changes(keyword=original.keyword)

    result = node.visit(Transformer())
    assert isinstance(result, cst.BaseExpression)
    return result


def walk(node: cst.CSTNode, visit: Callable[[cst.CSTNode], None]) -> None:
    class Visitor(cst.CSTVisitor):
        def on_visit(self, n: cst.CSTNode) -> bool:
            visit(n)
            return True

    node.visit(Visitor())


def rebound_names(func: cst.FunctionDef) -> set[str]:
    """Names assigned anywhere in ``func``'s body (parameters rebound included)."""
    names: set[str] = set()

    def visit(node: cst.CSTNode) -> None:
        targets: list[cst.BaseExpression] = []
        if isinstance(node, cst.AssignTarget):
            targets.append(node.target)
        elif isinstance(node, (cst.AugAssign, cst.AnnAssign)):
            targets.append(node.target)
        elif isinstance(node, (cst.For, cst.CompFor)):
            targets.append(node.target)
        elif isinstance(node, cst.AsName):
            targets.append(node.name)
        elif isinstance(node, cst.NamedExpr):
            targets.append(node.target)
        while targets:
            target = targets.pop()
            if isinstance(target, cst.Name):
                names.add(target.value)
            elif isinstance(target, (cst.Tuple, cst.List)):
                targets.extend(e.value for e in target.elements)
            elif isinstance(target, cst.StarredElement):
                targets.append(target.value)

    walk(func.body, visit)
    return names


def contains(tree: cst.CSTNode, node: cst.CSTNode) -> bool:
    found = False

    def visit(n: cst.CSTNode) -> None:
        nonlocal found
        found = found or n is node

    walk(tree, visit)
    return found


def call_ids(node: cst.CSTNode) -> set[int]:
    ids: set[int] = set()
    walk(node, lambda n: ids.add(id(n)) if isinstance(n, cst.Call) else None)
    return ids


def calls_in_evaluation_order(node: cst.CSTNode) -> list[cst.Call]:
    """Calls in the order they finish evaluating (post-order, left to right)."""
    order: list[cst.Call] = []

    class Visitor(cst.CSTVisitor):
        def leave_Call(self, original_node: cst.Call) -> None:
            order.append(original_node)

    node.visit(Visitor())
    return order


def literal_value(node: cst.BaseExpression) -> object:
    """Python value of a literal-only expression, or ``NotImplemented``."""
    allowed = (
        cst.Integer,
        cst.Float,
        cst.SimpleString,
        cst.BinaryOperation,
        cst.UnaryOperation,
        cst.Comparison,
        cst.BooleanOperation,
        cst.ComparisonTarget,
        cst.Name,
        cst.Tuple,
        cst.Element,
        cst.LeftParen,
        cst.RightParen,
        cst.Comma,
        cst.ParenthesizedWhitespace,
        cst.SimpleWhitespace,
        cst.BaseBinaryOp,
        cst.BaseUnaryOp,
        cst.BaseCompOp,
        cst.BaseBooleanOp,
    )
    ok = True

    def check(n: cst.CSTNode) -> None:
        nonlocal ok
        if not isinstance(n, allowed):
            ok = False
        if isinstance(n, cst.Name) and n.value not in ("True", "False", "None"):
            ok = False

    walk(node, check)
    if not ok:
        return NotImplemented
    try:
        return eval(
            code(node), {"__builtins__": {}}, {}
        )  # noqa: S307 - literals only, checked above
    except Exception:
        return NotImplemented


def is_zero(node: cst.BaseExpression) -> bool:
    value = literal_value(node)
    return value is not NotImplemented and not isinstance(value, bool) and value == 0


class _OneLine(cst.CSTTransformer):
    """Every line break of an expression (inside brackets, with its comments, or a backslash
    continuation) becomes one space, and the space just inside brackets goes, so that the
    expression reads the same wherever it is moved; nothing but whitespace changes."""

    def leave_ParenthesizedWhitespace(
        self, original: cst.ParenthesizedWhitespace, updated: cst.ParenthesizedWhitespace
    ) -> cst.SimpleWhitespace:
        return cst.SimpleWhitespace(" ")

    def leave_SimpleWhitespace(
        self, original: cst.SimpleWhitespace, updated: cst.SimpleWhitespace
    ) -> cst.SimpleWhitespace:
        return cst.SimpleWhitespace(" ") if updated.value else updated

    def leave_LeftParen(self, original: cst.LeftParen, updated: cst.LeftParen) -> cst.LeftParen:
        return updated.with_changes(whitespace_after=_NONE)

    def leave_RightParen(self, original: cst.RightParen, updated: cst.RightParen) -> cst.RightParen:
        return updated.with_changes(whitespace_before=_NONE)

    def leave_LeftSquareBracket(
        self, original: cst.LeftSquareBracket, updated: cst.LeftSquareBracket
    ) -> cst.LeftSquareBracket:
        return updated.with_changes(whitespace_after=_NONE)

    def leave_RightSquareBracket(
        self, original: cst.RightSquareBracket, updated: cst.RightSquareBracket
    ) -> cst.RightSquareBracket:
        return updated.with_changes(whitespace_before=_NONE)

    def leave_LeftCurlyBrace(
        self, original: cst.LeftCurlyBrace, updated: cst.LeftCurlyBrace
    ) -> cst.LeftCurlyBrace:
        return updated.with_changes(whitespace_after=_NONE)

    def leave_RightCurlyBrace(
        self, original: cst.RightCurlyBrace, updated: cst.RightCurlyBrace
    ) -> cst.RightCurlyBrace:
        return updated.with_changes(whitespace_before=_NONE)

    def leave_Dot(self, original: cst.Dot, updated: cst.Dot) -> cst.Dot:
        return updated.with_changes(whitespace_before=_NONE, whitespace_after=_NONE)

    def leave_Comma(self, original: cst.Comma, updated: cst.Comma) -> cst.Comma:
        return updated.with_changes(whitespace_before=_NONE)

    def leave_Arg(self, original: cst.Arg, updated: cst.Arg) -> cst.Arg:
        return updated.with_changes(whitespace_after_arg=_NONE)

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        args = list(updated.args)
        if args and isinstance(args[-1].comma, cst.Comma):  # a trailing comma means nothing here
            args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return updated.with_changes(
            args=args, whitespace_after_func=_NONE, whitespace_before_args=_NONE
        )

    def leave_Subscript(self, original: cst.Subscript, updated: cst.Subscript) -> cst.Subscript:
        return updated.with_changes(whitespace_after_value=_NONE)


_NONE = cst.SimpleWhitespace("")


def one_line(node: cst.BaseExpression) -> cst.BaseExpression:
    """``node`` with its whitespace normalized to one line (see ``_OneLine``): how an expression
    is rendered anywhere but its own place. A trailing comma before a closing bracket stays
    (``(x,)`` is a tuple), with no space before the bracket."""
    result = node.visit(_OneLine())
    assert isinstance(result, cst.BaseExpression)
    return result.visit(_TightTrailingComma())  # type: ignore[return-value]


class _TightTrailingComma(cst.CSTTransformer):
    """``(a, b, )`` -> ``(a, b,)``: the space a line break left after a trailing comma."""

    def _last(self, elements: Sequence[cst.CSTNode]) -> list[cst.CSTNode]:
        items = list(elements)
        comma = getattr(items[-1], "comma", None) if items else None
        if isinstance(comma, cst.Comma):
            items[-1] = items[-1].with_changes(comma=comma.with_changes(whitespace_after=_NONE))
        return items

    def leave_Tuple(self, original: cst.Tuple, updated: cst.Tuple) -> cst.Tuple:
        return updated.with_changes(elements=self._last(updated.elements))

    def leave_List(self, original: cst.List, updated: cst.List) -> cst.List:
        return updated.with_changes(elements=self._last(updated.elements))

    def leave_Set(self, original: cst.Set, updated: cst.Set) -> cst.Set:
        return updated.with_changes(elements=self._last(updated.elements))

    def leave_Dict(self, original: cst.Dict, updated: cst.Dict) -> cst.Dict:
        return updated.with_changes(elements=self._last(updated.elements))

    def leave_Subscript(self, original: cst.Subscript, updated: cst.Subscript) -> cst.Subscript:
        return updated.with_changes(slice=self._last(updated.slice))
