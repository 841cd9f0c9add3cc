"""Constraint expressions (``model.n_embd % model.n_head == 0``) without eval.

A search space's constraints are small boolean expressions over dotted config keys. They are
parsed with ``ast`` and walked by the interpreter below, which knows a fixed handful of node
types: names (dotted config keys, resolved against a dict, never as Python attributes), numbers
and strings, ``+ - * / // %``, comparisons, ``and``/``or``/``not`` and ``in`` over a literal tuple.
Anything else (calls, subscripts, lambdas, attribute access on a value, ``**``) is refused when
the space is loaded, so a constraint can read config values and nothing more.
"""

from __future__ import annotations

import ast
import operator
from dataclasses import dataclass
from typing import Any, Callable, Collection

MAX_LENGTH = 500  # characters; constraints are one-liners

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_CMPOPS: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%"}


class ConstraintSyntaxError(ValueError):
    """A constraint uses something the interpreter does not allow, or names an unknown key."""


class ConstraintEvalError(ValueError):
    """A constraint could not be evaluated on these values (missing key, division by zero, bad type)."""


@dataclass(frozen=True)
class Constraint:
    """One parsed constraint. ``names`` are the dotted config keys it reads, in order of appearance."""

    source: str
    names: tuple[str, ...]
    _tree: ast.Expression

    @classmethod
    def parse(cls, source: str, known_keys: Collection[str] | None = None) -> "Constraint":
        """Parse and check ``source``; raise ``ConstraintSyntaxError`` naming what is not allowed."""
        if not isinstance(source, str) or not source.strip():
            raise ConstraintSyntaxError("a constraint must be a non-empty expression")
        if len(source) > MAX_LENGTH:
            raise ConstraintSyntaxError(f"a constraint is at most {MAX_LENGTH} characters")
        try:
            tree = ast.parse(source.strip(), mode="eval")
        except SyntaxError as err:
            raise ConstraintSyntaxError(f"not an expression ({err.msg})") from None
        names: list[str] = []
        _check(tree.body, names)
        if known_keys is not None:
            for name in names:
                if name not in known_keys:
                    raise ConstraintSyntaxError(f"{name!r} is not a config key")
        return cls(source.strip(), tuple(dict.fromkeys(names)), tree)

    def evaluate(self, values: dict[str, Any]) -> bool:
        """True when the constraint holds; ``ConstraintEvalError`` when it cannot be decided."""
        result = _eval(self._tree.body, values)
        if not isinstance(result, bool):
            raise ConstraintEvalError(f"evaluates to {type(result).__name__}, not true/false")
        return result


def _dotted(node: ast.AST) -> str | None:
    """``model.n_embd`` parses as Attribute(Name('model'), 'n_embd'): turn it back into the key."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    key = ".".join(reversed(parts))
    return None if "__" in key else key


def _check(node: ast.AST, names: list[str]) -> None:
    if isinstance(node, (ast.Name, ast.Attribute)):
        key = _dotted(node)
        if key is None:
            raise ConstraintSyntaxError("only dotted config keys may be read (no attribute access on values)")
        names.append(key)
    elif isinstance(node, ast.Constant):
        if node.value is None or not isinstance(node.value, (bool, int, float, str)):
            raise ConstraintSyntaxError(f"constant {node.value!r} is not a number, string or boolean")
    elif isinstance(node, ast.BoolOp):
        for v in node.values:
            _check(v, names)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.Not, ast.USub, ast.UAdd)):
            raise ConstraintSyntaxError(f"operator {type(node.op).__name__} is not allowed")
        _check(node.operand, names)
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BINOPS:
            raise ConstraintSyntaxError(f"operator {type(node.op).__name__} is not allowed (use + - * / // %)")
        _check(node.left, names)
        _check(node.right, names)
    elif isinstance(node, ast.Compare):
        _check(node.left, names)
        for op, right in zip(node.ops, node.comparators):
            if type(op) not in _CMPOPS:
                raise ConstraintSyntaxError(f"comparison {type(op).__name__} is not allowed")
            if isinstance(op, (ast.In, ast.NotIn)):
                if not isinstance(right, ast.Tuple) or not all(isinstance(e, ast.Constant) for e in right.elts):
                    raise ConstraintSyntaxError("'in' needs a literal tuple of constants, e.g. x in (1, 2)")
                for e in right.elts:
                    _check(e, names)
            else:
                _check(right, names)
    elif isinstance(node, ast.Call):
        raise ConstraintSyntaxError("function calls are not allowed")
    else:
        raise ConstraintSyntaxError(f"{type(node).__name__} expressions are not allowed")


def _number(v: Any, what: str) -> float | int:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConstraintEvalError(f"{what} needs numbers, got {type(v).__name__}")
    return v


def _eval(node: ast.AST, values: dict[str, Any]) -> Any:
    if isinstance(node, (ast.Name, ast.Attribute)):
        key = _dotted(node)
        if key not in values:
            raise ConstraintEvalError(f"{key} has no value")
        return values[key]
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Tuple):
        return tuple(_eval(e, values) for e in node.elts)
    if isinstance(node, ast.BoolOp):  # short-circuits, so "x == 0 or y % x == 0" is safe
        if isinstance(node.op, ast.And):
            return all(_truth(_eval(v, values)) for v in node.values)
        return any(_truth(_eval(v, values)) for v in node.values)
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, values)
        if isinstance(node.op, ast.Not):
            return not _truth(operand)
        operand = _number(operand, "unary minus")
        return -operand if isinstance(node.op, ast.USub) else +operand
    if isinstance(node, ast.BinOp):
        symbol = _SYMBOLS[type(node.op)]
        left = _number(_eval(node.left, values), symbol)
        right = _number(_eval(node.right, values), symbol)
        try:
            return _BINOPS[type(node.op)](left, right)
        except ZeroDivisionError:
            raise ConstraintEvalError(f"division by zero in '{symbol}'") from None
    if isinstance(node, ast.Compare):
        left = _eval(node.left, values)
        for op, right_node in zip(node.ops, node.comparators):
            right = _eval(right_node, values)
            try:
                ok = _CMPOPS[type(op)](left, right)
            except TypeError as err:
                raise ConstraintEvalError(f"cannot compare ({err})") from None
            if not ok:
                return False
            left = right
        return True
    raise ConstraintEvalError(f"{type(node).__name__} is not allowed")  # _check rules this out


def _truth(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ConstraintEvalError(f"and/or/not need true/false, got {type(v).__name__}")
    return v
