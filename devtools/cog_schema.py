"""The OpenAPI schema ``cog build`` would give a predictor, and what Cog's server does with it.

Since Cog CLI 0.20 a model's schema is built by parsing ``predict.py`` without running it; the
only generator is Go code in the ``cog`` CLI, and neither Docker nor the CLI runs here. This is a
port of that parser to Python's :mod:`ast` (replicate/cog, read at commit 6110c912, files named
below), so that the tests can check ``predict.py`` against Cog's build rules and serve the
predictor with the schema a built image carries:

* ``pkg/schema/python/literals.go``: which expressions are literals. A string's value is its
  *source text* between the quotes: no escape processing, and an implicitly concatenated string
  keeps the quotes and the whitespace between its parts; ``b``/``f``/``u`` prefixes, calls,
  names, attributes and parenthesized expressions are not literals.
* ``module_scope.go``: top-level ``NAME = literal`` of the predictor's own file; ``choices=``,
  ``default=`` and ``description=`` may name one, ``ge``/``le``/``regex`` may not.
* ``inputs.go``: the parameters and their ``Input()`` keywords. An unresolvable ``choices`` or
  plain default stops the build; an unresolvable ``default=`` *silently* becomes ``None``, and an
  unresolvable description or bound is *silently* dropped (:attr:`Predictor.dropped` lists those).
* ``annotations.go``, ``types.go``: type annotations, matched by name.
* ``openapi_spec.go``: the document; ``T = Input(default=None)`` without ``Optional``/``| None``
  is *required* (a None default on a non-nullable type is no default).
* ``target.go``: ``run()`` is preferred to ``predict()``, which is accepted with a warning.
* ``crates/coglet/src/input_validation.rs`` (:func:`coglet_check`): what the server does with a
  request before ``predict`` sees it: unknown inputs removed without an error, then JSON Schema
  validation (HTTP 422 naming each input), then ``null`` for omitted nullable inputs.

Not ported (a :class:`NotPorted` error says so): BaseModel/TypedDict inputs and outputs, the
``Input`` registry of class attributes, ``@cog.concurrent``/``@cog.streaming``, training.

``python -m devtools.cog_schema predict.py:Predictor [-o .cog/openapi_schema.json]``.
"""
from __future__ import annotations

import argparse
import ast
import json
import math
import re
import sys
import typing as tp
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SchemaError", "NotPorted", "InputType", "InputField", "Predictor", "parse_predictor",
           "openapi_schema", "dumps", "coglet_check", "CogletVerdict", "main"]

# The CLI version the document names (info.version); the schema is the same from 0.20 on.
CLI_VERSION = "0.23.1"
PRIMITIVES = {"bool": {"type": "boolean"}, "float": {"type": "number"}, "int": {"type": "integer"},
              "str": {"type": "string"}, "Path": {"type": "string", "format": "uri"},
              "File": {"type": "string", "format": "uri"},
              "Secret": {"type": "string", "format": "password", "writeOnly": True, "x-cog-secret": True},
              "Any": {"type": "object"}}
_MISSING = object()


class _Ordered(dict):
    """A map Go keeps in insertion order (its other maps are written with sorted keys)."""


class SchemaError(Exception):
    """What ``cog build`` stops with (the message as Cog words it)."""


class NotPorted(SchemaError):
    """A construct this port does not model; Cog may or may not accept it."""


# -- literals (literals.go) ----------------------------------------------------------------------


class _Source:
    """The module's text with helpers to read nodes as tree-sitter sees them."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.splitlines(keepends=True)
        self._offsets = [0]
        for line in self.lines:
            self._offsets.append(self._offsets[-1] + len(line.encode()))
        self._raw = text.encode()

    def _offset(self, line: int, col: int) -> int:
        return self._offsets[line - 1] + col  # ast columns are UTF-8 byte offsets

    def segment(self, node: ast.AST) -> str:
        start = self._offset(node.lineno, node.col_offset)
        end = self._offset(node.end_lineno, node.end_col_offset)
        return self._raw[start:end].decode()

    def parenthesized(self, node: ast.AST, opener: ast.AST | None = None) -> bool:
        """Whether ``node`` is wrapped in parentheses of its own (tree-sitter's
        ``parenthesized_expression``); ``opener`` is an enclosing node whose own ``(`` may
        precede it (a parenthesized tuple's first element)."""
        position = self._offset(node.lineno, node.col_offset) - 1
        while position >= 0 and chr(self._raw[position]) in " \t\r\n\\":
            position -= 1
        if position < 0 or chr(self._raw[position]) != "(":
            return False
        return opener is None or position != self._offset(opener.lineno, opener.col_offset)


def _string_literal(node: ast.AST, source: _Source) -> str | None:
    """``parseStringLiteral``: the text between the quotes of a (possibly concatenated) string
    literal, raw; None for anything else (prefixed strings, f-strings, bytes included)."""
    if not (isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes))) \
            and not isinstance(node, ast.JoinedStr):
        return None
    text = source.segment(node)
    for quote in ('"""', "'''"):
        if text.startswith(quote):
            return text[3:-3] if len(text) >= 6 else None
    if text[:1] in ('"', "'"):
        return text[1:-1] if len(text) >= 2 else None
    if text[:2] in ('r"', "r'"):
        return text[2:-1] if len(text) >= 3 else None
    return None


def _go_int(text: str) -> int | None:
    """Go's ``strconv.ParseInt(text, 0, 64)``."""
    try:
        value = int(text, 0)
    except ValueError:
        return None
    return value if -2 ** 63 <= value < 2 ** 63 else None


def _go_float(text: str) -> float | None:
    """Go's ``strconv.ParseFloat(text, 64)`` (Python's float() takes the same literals here)."""
    try:
        return float(text) if text == text.strip() else None
    except ValueError:
        return None


def _literal(node: ast.AST, source: _Source, opener: ast.AST | None = None) -> tp.Any:
    """``parseDefaultValue``: the value of a literal expression, or ``_MISSING``.

    Floats stay floats (1.0 is written as ``1`` in the document, as Go writes float64).
    """
    if source.parenthesized(node, opener):
        return _MISSING  # parenthesized_expression
    if isinstance(node, ast.Constant):
        value = node.value
        if value is None or isinstance(value, bool):
            return value
        text = source.segment(node)
        if isinstance(value, int):
            parsed = _go_int(text)
            return _MISSING if parsed is None else parsed
        if isinstance(value, float):
            parsed = _go_float(text)
            return _MISSING if parsed is None else parsed
    if isinstance(node, (ast.Constant, ast.JoinedStr)):  # strings, bytes, f-strings
        string = _string_literal(node, source)
        return _MISSING if string is None else string
    if isinstance(node, (ast.List, ast.Set)):
        items = [_literal(item, source) for item in node.elts]
        return _MISSING if any(item is _MISSING for item in items) else items
    if isinstance(node, ast.Tuple):  # unparseable items are dropped silently
        items = [_literal(item, source, opener=node) for item in node.elts]
        return [item for item in items if item is not _MISSING]
    if isinstance(node, ast.Dict):  # so are unparseable pairs
        pairs = [(_literal(k, source), _literal(v, source)) for k, v in zip(node.keys, node.values)
                 if k is not None]
        return {_dict_key(k): v for k, v in pairs if k is not _MISSING and v is not _MISSING}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        text = source.segment(node).strip()
        for parse in (_go_int, _go_float):
            value = parse(text)
            if value is not None:
                return value
    return _MISSING


def _dict_key(key: tp.Any) -> str:
    return key if isinstance(key, str) else json.dumps(key)


# -- module scope, imports (module_scope.go, imports.go) -----------------------------------------


@dataclass(frozen=True)
class _Bound:
    """A module-scope name: the value Cog reads, and the expression Python evaluates."""

    value: tp.Any
    node: ast.AST


def _module_scope(tree: ast.Module, source: _Source) -> dict[str, _Bound]:
    scope: dict[str, _Bound] = {}
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target, value = statement.targets[0], statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            target, value = statement.target, statement.value
        else:
            continue
        if isinstance(target, ast.Name):
            literal = _literal(value, source)
            if literal is not _MISSING:
                scope[target.id] = _Bound(literal, value)
    return scope


def _python_value(node: ast.AST, scope: dict[str, _Bound]) -> tp.Any:
    """What Python makes of a literal (or a module-scope name of one); ``_MISSING`` otherwise.
    Tuples and sets are lists, as in the document."""
    if isinstance(node, ast.Name) and node.id in scope:
        node = scope[node.id].node
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _MISSING

    def plain(item: tp.Any) -> tp.Any:
        if isinstance(item, (tuple, list, set, frozenset)):
            return [plain(x) for x in item]
        if isinstance(item, dict):
            return {_dict_key(k): plain(v) for k, v in item.items()}
        return item
    return plain(value)


def _same(a: tp.Any, b: tp.Any) -> bool:
    """Equal as JSON values (1 and 1.0 alike; True is not 1)."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b and isinstance(a, (int, float)) == isinstance(b, (int, float))


def _imports(tree: ast.Module) -> dict[str, tuple[str, str]]:
    """Local name -> (module, original name), top-level imports only, plus the builtins."""
    names: dict[str, tuple[str, str]] = {}
    for statement in tree.body:
        if isinstance(statement, ast.ImportFrom):
            module = "." * statement.level + (statement.module or "")
            for alias in statement.names:
                names[alias.asname or alias.name] = (module, alias.name)
        elif isinstance(statement, ast.Import):
            for alias in statement.names:
                names[alias.asname or alias.name] = (alias.name, alias.name)
    for builtin in ("str", "int", "float", "bool", "list", "dict", "set", "None"):
        names.setdefault(builtin, ("builtins", builtin))
    return names


# -- types (annotations.go, types.go) ------------------------------------------------------------


@dataclass(frozen=True)
class _Annotation:
    kind: str  # "simple", "generic", "union"
    name: str = ""
    args: tuple[_Annotation, ...] = ()


def _annotation(node: ast.AST, source: _Source) -> _Annotation:
    if isinstance(node, ast.Name):
        return _Annotation("simple", node.id)
    if isinstance(node, ast.Attribute):
        return _Annotation("simple", source.segment(node))
    if isinstance(node, ast.Subscript):
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        args = tuple(_annotation(item, source) for item in items)
        outer = source.segment(node.value)
        return _Annotation("generic", outer, args) if args else _Annotation("simple", outer)
    if isinstance(node, ast.BinOp):
        if not isinstance(node.op, ast.BitOr):
            raise SchemaError("unsupported: non-union binary operator in type annotation")
        members: list[_Annotation] = []
        for side in (_annotation(node.left, source), _annotation(node.right, source)):
            members.extend(side.args if side.kind == "union" else (side,))
        return _Annotation("union", args=tuple(members))
    if isinstance(node, ast.Constant) and node.value is None:
        return _Annotation("simple", "None")
    text = source.segment(node)
    inner = text.strip("\"'") if isinstance(node, ast.Constant) and isinstance(node.value, str) else text
    parsed = _annotation_from_text(inner)
    if parsed is None:
        raise SchemaError(f"unsupported: string annotation: {text}")
    return parsed


def _annotation_from_text(text: str) -> _Annotation | None:
    """``parseTypeFromString``: quoted (forward-reference) annotations."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return _annotation_from_text(text[1:-1])
    parts = _split_top_level(text, "|")
    if len(parts) > 1:
        members = [_annotation_from_text(part) for part in parts]
        return None if None in members else _Annotation("union", args=tuple(members))
    if "[" in text and text.endswith("]"):
        outer, inner = text[:text.index("[")].strip(), text[text.index("[") + 1:-1]
        args = [_annotation_from_text(part) for part in _split_top_level(inner, ",")]
        return None if None in args or not args else _Annotation("generic", outer, tuple(args))
    if all(part and re.fullmatch(r"\w+", part, re.A) for part in text.split(".")):
        return _Annotation("simple", text)
    return None


def _split_top_level(text: str, separator: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        depth += (char == "[") - (char == "]")
        if char == separator and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    return parts + [text[start:]]


@dataclass(frozen=True)
class InputType:
    """An input's type: a primitive (``str``, ``int``, ``float``, ``bool``, ``Path``, ...),
    ``Any``, an array of one, or a union of JSON-native ones; ``nullable`` from ``Optional``
    / ``| None``."""

    kind: str  # "primitive", "any", "array", "union"
    primitive: str = "Any"
    elem: InputType | None = None
    variants: tuple[InputType, ...] = ()
    nullable: bool = False

    def json_schema(self) -> dict[str, tp.Any]:
        """``inputTypeJSONSchema``."""
        if self.kind == "primitive":
            schema = dict(PRIMITIVES[self.primitive])
        elif self.kind == "array":
            schema = {"type": "array", "items": self.elem.json_schema() if self.elem else {"type": "object"}}
        elif self.kind == "union":
            schema = {"anyOf": [dict(v.json_schema(), **({"nullable": True} if self.nullable else {}))
                                for v in self.variants]}
        else:
            schema = {"type": "object"}
        if self.nullable:
            schema["nullable"] = True
        return schema


def _qualified(name: str, imports: dict[str, tuple[str, str]]) -> tuple[str, str | None]:
    """``ResolveQualifiedName``: ``alias.Type`` -> (``Type``, the alias's module or "")."""
    if "." not in name:
        return name, None
    head, _, tail = name.partition(".")
    return tail, imports.get(head, ("", ""))[0]


def _is_annotated(name: str, imports: dict[str, tuple[str, str]]) -> bool:
    resolved, module = _qualified(name, imports)
    if module is not None:
        return resolved == "Annotated" and module in ("typing", "typing_extensions")
    entry = imports.get(name)
    return entry is not None and entry[0] in ("typing", "typing_extensions") and entry[1] == "Annotated"


def _unsupported(message: str) -> SchemaError:
    return SchemaError(f"unsupported type: {message}")


def _unresolvable_imported(name: str, module: str) -> SchemaError:
    return SchemaError(f"cannot resolve type '{name}' (imported from '{module}') - external types cannot be "
                       f"statically analyzed. If this is a JSON-shaped third-party type, mark it opaque with "
                       f"`from typing import Annotated`, `from cog import Opaque`, and `field: Annotated[{name}, "
                       f"Opaque]`. Otherwise define it as a BaseModel subclass in your predict file, or provide "
                       f"a .pyi stub")


def _input_type(ann: _Annotation, imports: dict[str, tuple[str, str]]) -> InputType:
    """``resolveInputType``."""
    if ann.kind == "generic" and _is_annotated(ann.name, imports) and len(ann.args) >= 2:
        raise NotPorted("Annotated[..., Opaque] inputs")
    if ann.kind == "simple":
        name, module = _qualified(ann.name, imports)
        if name in ("dict", "Dict"):
            return InputType("any")
        if name not in PRIMITIVES:
            if module:
                raise _unresolvable_imported(name, module)
            if name in imports:
                raise _unresolvable_imported(name, imports[name][0])
            raise _unsupported(name)
        return InputType("any") if name == "Any" else InputType("primitive", name)
    if ann.kind == "generic":
        outer, _ = _qualified(ann.name, imports)
        if outer in ("dict", "Dict"):
            return InputType("any")
        if outer == "Optional":
            if len(ann.args) != 1:
                raise _unsupported(f"Optional expects exactly 1 type argument, got {len(ann.args)}")
            inner = _input_type(ann.args[0], imports)
            return InputType(inner.kind, inner.primitive, inner.elem, inner.variants, nullable=True)
        if outer == "Union":
            return _input_union(ann.args, imports)
        if _is_annotated(ann.name, imports):
            return _input_type(ann.args[0], imports)
        if outer in ("List", "list"):
            if len(ann.args) != 1:
                raise _unsupported(f"List expects exactly 1 type argument, got {len(ann.args)}")
            inner = _input_type(ann.args[0], imports)
            if inner.nullable or inner.kind in ("array", "union"):
                raise _unsupported("nested generics like List[Optional[X]] are not supported")
            return InputType("array", elem=inner)
        raise _unsupported(f"{outer}[...] is not a supported input type")
    return _input_union(ann.args, imports)


def _input_union(args: tp.Sequence[_Annotation], imports: dict[str, tuple[str, str]]) -> InputType:
    variants, nullable = [], False
    for arg in args:
        if arg.kind == "simple" and arg.name == "None":
            nullable = True
            continue
        if arg.kind == "union" or (arg.kind == "generic" and arg.name == "Union"):
            raise _unsupported("nested union inputs are not supported")
        variant = _input_type(arg, imports)
        if variant.kind == "union":
            raise _unsupported("nested union inputs are not supported")
        variants.append(variant)
    if not variants:
        raise _unsupported("union inputs must include at least one non-None type")
    if len(variants) == 1:
        only = variants[0]
        return InputType(only.kind, only.primitive, only.elem, only.variants, only.nullable or nullable)
    for variant in variants:
        _check_union_variant(variant)
    return InputType("union", variants=tuple(variants), nullable=nullable)


def _check_union_variant(variant: InputType) -> None:
    if variant.nullable:
        raise _unsupported("nested nullable variants are not supported in union inputs")
    if variant.kind == "primitive" and variant.primitive in ("Path", "File", "Secret"):
        raise _unsupported(f"{variant.primitive} is not supported in union inputs")
    if variant.kind == "array" and variant.elem is not None:
        _check_union_variant(variant.elem)


def _output_schema(ann: _Annotation, imports: dict[str, tuple[str, str]]) -> dict[str, tp.Any]:
    """``ResolveSchemaType`` for primitives, lists and iterators (models are not ported)."""
    def core(ann: _Annotation) -> dict[str, tp.Any]:
        if ann.kind == "union":
            raise NotPorted("union outputs")
        name, module = _qualified(ann.name, imports)
        if ann.kind == "simple":
            if name in ("Any", "dict", "Dict"):
                return {"type": "object"}
            if name in ("list", "List"):
                return {"type": "array", "items": {"type": "object"}}
            if name in PRIMITIVES:
                return dict(PRIMITIVES[name])
            raise NotPorted(f"output type {ann.name} (models are not ported)")
        if name == "Optional":
            raise SchemaError("unsupported output type: Optional is not allowed as a return type")
        if name in ("list", "List") and len(ann.args) == 1:
            return {"type": "array", "items": core(ann.args[0])}
        if name in ("Iterator", "AsyncIterator") and len(ann.args) == 1:
            return {"type": "array", "items": core(ann.args[0]), "x-cog-array-type": "iterator"}
        raise NotPorted(f"output type {ann.name}[...]")
    return dict(core(ann), title="Output")


# -- inputs (inputs.go) --------------------------------------------------------------------------


@dataclass
class InputField:
    """One input as Cog sees it (``InputField`` in types.go); unset keywords are None."""

    name: str
    order: int
    type: InputType
    default: tp.Any = _MISSING
    description: str | None = None
    ge: float | None = None
    le: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    regex: str | None = None
    choices: list[tp.Any] | None = None
    deprecated: bool | None = None
    accept: str | None = None

    @property
    def has_default(self) -> bool:
        """Whether the schema gives it a default: a None default counts only on a nullable type."""
        return self.default is not _MISSING and (self.default is not None or self.nullable)

    @property
    def nullable(self) -> bool:
        secret_none = (self.type.kind == "primitive" and self.type.primitive == "Secret"
                       and not self.type.nullable and self.default is None)
        return self.type.nullable or secret_none

    @property
    def required(self) -> bool:
        return not self.has_default and (self.type.kind == "union" or not self.type.nullable)


@dataclass
class Predictor:
    """What the parser extracts: the inputs in order, the output, and what Cog would drop."""

    method: str
    is_async: bool
    inputs: list[InputField]
    output: dict[str, tp.Any]
    dropped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _is_input_call(node: ast.AST, source: _Source, imports: dict[str, tuple[str, str]]) -> bool:
    if not isinstance(node, ast.Call):
        return False
    callee = source.segment(node.func)
    return callee == "Input" or imports.get(callee, ("", ""))[0:2] == ("cog", "Input")


def _input_call(call: ast.Call, source: _Source, name: str, scope: dict[str, _Bound],
                info: InputField, dropped: list[str]) -> None:
    """``parseInputCall``: read the keywords of ``Input(...)`` into ``info``; note in ``dropped``
    each keyword whose value Cog reads differently from Python (or not at all)."""
    for keyword in call.keywords:
        if keyword.arg is None:
            continue
        key, value = keyword.arg, keyword.value
        text = source.segment(value)
        if key == "default":
            resolved = _resolve(value, source, scope)
            if resolved is _MISSING:
                dropped.append(f"{name}: default `{text}` is not a literal: Cog makes it None")
                resolved = None
            else:
                _compare(name, key, resolved, value, scope, dropped)
            info.default = resolved
        elif key == "default_factory":
            raise SchemaError(f"parameter '{name}': default_factory is not supported in static schema generation")
        elif key == "description":
            info.description = _resolve_string(value, source, scope)
            if info.description is None:
                dropped.append(f"{name}: description `{text[:40]}` is not one plain string literal: Cog drops it")
            else:
                _compare(name, key, info.description, value, scope, dropped)
        elif key in ("ge", "le", "min_length", "max_length"):
            number = None if source.parenthesized(value) else _go_float(text.strip())
            if number is None:
                dropped.append(f"{name}: {key}=`{text}` is not a number literal: Cog drops it")
            setattr(info, key, number if number is None or key in ("ge", "le") else int(number))
        elif key in ("regex", "accept"):
            string = None if source.parenthesized(value) else _string_literal(value, source)
            if string is None:
                dropped.append(f"{name}: {key}=`{text}` is not a string literal: Cog drops it")
            else:
                _compare(name, key, string, value, scope, dropped)
            setattr(info, key, string)
        elif key == "choices":
            info.choices = _resolve_choices(value, source, scope)
            if info.choices is None:
                raise SchemaError(f"parameter '{name}': choices expression cannot be statically resolved")
            if _python_value(value, scope) is not _MISSING:
                _compare(name, key, info.choices, value, scope, dropped)
        elif key == "deprecated":
            flag = value.value if isinstance(value, ast.Constant) and isinstance(value.value, bool) \
                and not source.parenthesized(value) else None
            if flag is None:
                dropped.append(f"{name}: deprecated=`{text}` is not True or False: Cog drops it")
            info.deprecated = flag


def _compare(name: str, key: str, cog: tp.Any, node: ast.AST, scope: dict[str, _Bound],
             dropped: list[str]) -> None:
    """Note where Cog's reading of a literal differs from Python's: an implicitly concatenated
    string (Cog keeps the quotes and whitespace between the parts), a backslash escape (kept
    as typed), a tuple item that is not a literal (left out)."""
    python = _python_value(node, scope)
    if not _same(cog, python):
        shown = repr(cog) if len(repr(cog)) < 80 else repr(cog)[:77] + "..."
        dropped.append(f"{name}: Cog reads {key} as {shown}, not as Python does")


def _resolve(node: ast.AST, source: _Source, scope: dict[str, _Bound]) -> tp.Any:
    """``resolveDefaultExpr``: a literal, or a name bound to one in module scope."""
    value = _literal(node, source)
    if value is _MISSING and isinstance(node, ast.Name) and node.id in scope and not source.parenthesized(node):
        return scope[node.id].value
    return value


def _resolve_string(node: ast.AST, source: _Source, scope: dict[str, _Bound]) -> str | None:
    """``resolveStringExpr``: a string literal (read from its text), or a name bound to one."""
    if source.parenthesized(node):
        return None
    string = _string_literal(node, source)
    if string is None and isinstance(node, ast.Name) and isinstance(getattr(scope.get(node.id), "value", None), str):
        string = scope[node.id].value
    return string


def _resolve_choices(node: ast.AST, source: _Source, scope: dict[str, _Bound]) -> list[tp.Any] | None:
    """``resolveChoicesExpr``: a list literal, a module-scope name bound to a list or tuple,
    ``list(D.keys())``/``list(D.values())`` of a module-scope dict, or a ``+`` of those."""
    if source.parenthesized(node):
        return None
    if isinstance(node, ast.List):
        value = _literal(node, source)
        return None if value is _MISSING else value
    if isinstance(node, ast.Name):
        value = getattr(scope.get(node.id), "value", None)
        return value if isinstance(value, list) else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _resolve_choices(node.left, source, scope), _resolve_choices(node.right, source, scope)
        return None if left is None or right is None else left + right
    if (isinstance(node, ast.Call) and source.segment(node.func) == "list" and node.args
            and isinstance(node.args[0], ast.Call) and isinstance(node.args[0].func, ast.Attribute)
            and isinstance(node.args[0].func.value, ast.Name)):
        method = node.args[0].func.attr
        owner = getattr(scope.get(node.args[0].func.value.id), "value", None)
        if isinstance(owner, dict) and method in ("keys", "values"):
            return list(owner.keys() if method == "keys" else owner.values())
    return None


def _parameters(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[tuple[ast.arg, ast.AST | None]]:
    args = function.args
    positional = [*args.posonlyargs, *args.args]
    defaults: list[ast.AST | None] = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    return [*zip(positional, defaults), *zip(args.kwonlyargs, args.kw_defaults)]


def _extract_inputs(function: ast.FunctionDef | ast.AsyncFunctionDef, source: _Source,
                    imports: dict[str, tuple[str, str]], scope: dict[str, _Bound],
                    dropped: list[str]) -> list[InputField]:
    parameters = _parameters(function)
    if parameters and parameters[0][0].arg == "self":
        parameters = parameters[1:]
    if function.args.vararg is not None and function.args.vararg.annotation is not None or \
            function.args.kwarg is not None and function.args.kwarg.annotation is not None:
        raise SchemaError("typed_parameter has no identifier")
    inputs: list[InputField] = []
    for parameter, value in parameters:
        name = parameter.arg
        if parameter.annotation is None:
            if value is not None:
                raise SchemaError(f"parameter '{name}' on {function.name} has no type annotation")
            dropped.append(f"{name}: no annotation and no default: Cog leaves it out of the schema")
            continue
        info = InputField(name, len(inputs), _input_type(_annotation(parameter.annotation, source), imports))
        if value is not None:
            if _is_input_call(value, source, imports):
                _input_call(value, source, name, scope, info, dropped)
            elif isinstance(value, (ast.Attribute, ast.Call)) and isinstance(
                    getattr(value, "func", value), ast.Attribute):
                raise NotPorted(f"parameter '{name}': an Input registry reference ({source.segment(value)})")
            else:
                info.default = _resolve(value, source, scope)
                if info.default is _MISSING:
                    raise SchemaError(f"parameter '{name}': default `{source.segment(value)}` cannot be "
                                      f"statically resolved")
        _validate_field(info)
        inputs.append(info)
    return inputs


def _validate_field(info: InputField) -> None:
    """``ValidateInputField`` and the accept rule."""
    constrained = (info.choices, info.ge, info.le, info.min_length, info.max_length, info.regex)
    if info.type.kind == "union" and any(item is not None for item in constrained):
        raise _unsupported("constraints and choices are not supported on union inputs")
    if info.accept is not None and not (info.type.kind == "primitive" and info.type.primitive in ("Path", "File")):
        raise SchemaError(f"accept is only valid on Path or File inputs (parameter '{info.name}')")


# -- the target and the document (target.go, parser.go, openapi_spec.go) ------------------------


def parse_predictor(text: str, class_name: str = "Predictor") -> Predictor:
    """Parse a predictor module's ``text`` as ``cog build`` does.

    Raises
    ------
    SchemaError
        Where ``cog build`` stops, with Cog's message.
    NotPorted
        For a construct this port does not model.
    """
    tree = ast.parse(text)
    source = _Source(text)
    imports, scope = _imports(tree), _module_scope(tree, source)
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == class_name]
    if not classes:
        raise SchemaError(f"predictor not found: {class_name}")
    methods = {node.name: node for node in classes[-1].body
               if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    warnings = []
    function = methods.get("run")
    if function is None:
        function = methods.get("predict")
        if function is None:
            raise NotPorted(f"{class_name} defines neither run() nor predict() (inherited ones are not ported)")
        warnings.append(f"cog: warning: {class_name}.predict() is deprecated; use run() instead")
    if any(word in source.segment(d) for d in function.decorator_list for word in ("concurrent", "streaming")):
        raise NotPorted("@cog.concurrent / @cog.streaming")
    dropped: list[str] = []
    inputs = _extract_inputs(function, source, imports, scope, dropped)
    if function.returns is None:
        raise SchemaError(function.name)  # ErrMissingReturnType carries only the method name
    output = _output_schema(_annotation(function.returns, source), imports)
    return Predictor(function.name, isinstance(function, ast.AsyncFunctionDef), inputs, output,
                     dropped, warnings)


def _title(name: str) -> str:
    return " ".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _property(info: InputField, enums: dict[str, dict[str, tp.Any]]) -> dict[str, tp.Any]:
    prop: dict[str, tp.Any] = {"x-order": info.order}
    if info.choices:
        # The enum's type is the field's primitive (an array's item), "object" for anything else.
        primitive = info.type.elem.primitive if info.type.kind == "array" and info.type.elem else info.type.primitive
        enum_type = PRIMITIVES[primitive if info.type.kind in ("primitive", "array") else "Any"]["type"]
        enums[info.name] = {"title": info.name, "description": "An enumeration.", "enum": info.choices,
                            "type": enum_type}
        prop["allOf"] = [{"$ref": f"#/components/schemas/{info.name}"}]
    else:
        prop["title"] = _title(info.name)
        prop.update(info.type.json_schema())
    if info.has_default:
        prop["default"] = info.default
    if info.nullable:
        prop["nullable"] = True
    for key, attribute in (("description", "description"), ("minimum", "ge"), ("maximum", "le"),
                           ("minLength", "min_length"), ("maxLength", "max_length"), ("pattern", "regex")):
        if getattr(info, attribute) is not None:
            prop[key] = getattr(info, attribute)
    if info.deprecated:
        prop["deprecated"] = True
    if info.accept is not None:
        prop["x-cog-accept"] = info.accept
    return prop


def openapi_schema(predictor: Predictor, version: str = CLI_VERSION) -> dict[str, tp.Any]:
    """The OpenAPI 3.0.2 document ``cog build`` writes to ``.cog/openapi_schema.json``."""
    enums: dict[str, dict[str, tp.Any]] = {}
    properties = _Ordered((info.name, _property(info, enums)) for info in predictor.inputs)
    input_schema: dict[str, tp.Any] = {"properties": properties, "title": "Input", "type": "object"}
    required = [info.name for info in predictor.inputs if info.required]
    if required:
        input_schema["required"] = required
    ref = {"$ref": "#/components/schemas/HTTPValidationError"}
    validation = {"description": "Validation Error", "content": {"application/json": {"schema": ref}}}
    anything = {"description": "Successful Response", "content": {"application/json": {"schema": {}}}}
    components: dict[str, tp.Any] = _Ordered(Input=input_schema, Output=predictor.output, **enums)
    components["PredictionRequest"] = {"properties": {"id": {"title": "Id", "type": "string"},
                                                      "input": {"$ref": "#/components/schemas/Input"}},
                                       "title": "PredictionRequest", "type": "object"}
    timestamps = {name: {"format": "date-time", "title": _title(name), "type": "string"}
                  for name in ("created_at", "started_at", "completed_at")}
    components["PredictionResponse"] = {"properties": {
        "completed_at": timestamps["completed_at"], "created_at": timestamps["created_at"],
        "error": {"title": "Error", "type": "string"}, "id": {"title": "Id", "type": "string"},
        "input": {"$ref": "#/components/schemas/Input"}, "logs": {"title": "Logs", "type": "string"},
        "metrics": {"title": "Metrics", "type": "object"}, "output": {"$ref": "#/components/schemas/Output"},
        "started_at": timestamps["started_at"], "status": {"title": "Status", "type": "string"},
        "version": {"title": "Version", "type": "string"}}, "title": "PredictionResponse", "type": "object"}
    components["Status"] = {"description": "An enumeration.",
                            "enum": ["starting", "processing", "succeeded", "canceled", "failed"],
                            "title": "Status", "type": "string"}
    components["HTTPValidationError"] = {"properties": {"detail": {
        "items": {"$ref": "#/components/schemas/ValidationError"}, "title": "Detail", "type": "array"}},
        "title": "HTTPValidationError", "type": "object"}
    components["ValidationError"] = {"properties": {
        "loc": {"items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}, "title": "Location", "type": "array"},
        "msg": {"title": "Message", "type": "string"}, "type": {"title": "Error Type", "type": "string"}},
        "required": ["loc", "msg", "type"], "title": "ValidationError", "type": "object"}
    paths = _Ordered({
        "/": {"get": {"operationId": "root__get", "responses": {"200": anything}, "summary": "Root"}},
        "/health-check": {"get": {"operationId": "healthcheck_health_check_get", "responses": {"200": anything},
                                  "summary": "Healthcheck"}},
        "/predictions": {"post": {
            "description": "Run a single prediction on the model", "operationId": "predict_predictions_post",
            "requestBody": {"content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/PredictionRequest"}}}},
            "responses": {"200": {"content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/PredictionResponse"}}},
                "description": "Successful Response"}, "422": validation},
            "summary": "Predict"}},
        "/predictions/{prediction_id}/cancel": {"post": {
            "operationId": "cancel_predictions__prediction_id__cancel_post",
            "parameters": [{"in": "path", "name": "prediction_id", "required": True,
                            "schema": {"title": "Prediction Id", "type": "string"}}],
            "responses": {"200": anything, "422": validation}, "summary": "Cancel"}},
    })
    return {"components": {"schemas": components}, "info": {"title": "Cog", "version": version},
            "openapi": "3.0.2", "paths": paths}


def dumps(document: tp.Any) -> str:
    """JSON as Go's ``encoding/json`` writes it: compact, integral floats without ``.0``, and
    ``<``, ``>``, ``&`` escaped."""
    def go(value: tp.Any) -> tp.Any:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 1e21:
            return int(value)
        if isinstance(value, dict):
            items = value.items() if isinstance(value, _Ordered) else sorted(value.items())
            return {key: go(item) for key, item in items}
        if isinstance(value, list):
            return [go(item) for item in value]
        return value
    text = json.dumps(go(document), separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# -- what coglet does with a request (input_validation.rs) ---------------------------------------


@dataclass(frozen=True)
class CogletVerdict:
    """What coglet 0.23.1 does with a request's input before ``predict`` runs.

    ``stripped``: unknown names removed without an error (only the server's log says so);
    ``errors``: (input name, JSON Schema keyword) for each violation: any makes the answer an
    HTTP 422; ``passed``: the input ``predict`` receives otherwise (nullable inputs without a
    default that were omitted are sent as ``null``).
    """

    stripped: tuple[str, ...]
    errors: tuple[tuple[str, str], ...]
    passed: dict[str, tp.Any]


_JSON_TYPES: dict[str, tp.Callable[[tp.Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: not isinstance(v, bool) and (isinstance(v, int) or isinstance(v, float) and v.is_integer()),
    "number": lambda v: not isinstance(v, bool) and isinstance(v, (int, float)),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}


def coglet_check(document: dict[str, tp.Any], payload: dict[str, tp.Any]) -> CogletVerdict:
    """Mirror coglet's strip -> validate -> inject on ``payload`` (the request's ``input``), for
    the JSON Schema keywords Cog's schemas use (``type``, ``enum`` via ``allOf``/``$ref``,
    ``minimum``, ``maximum``, ``minLength``, ``maxLength``, ``pattern``, ``required``). OpenAPI's
    ``nullable`` is not JSON Schema: an explicit ``null`` fails the input's ``type``."""
    schemas = document["components"]["schemas"]
    schema = schemas["Input"]
    properties = schema["properties"]
    stripped = tuple(name for name in payload if name not in properties)
    kept = {name: value for name, value in payload.items() if name in properties}
    errors = [(name, "required") for name in schema.get("required", []) if name not in kept]
    for name, value in kept.items():
        prop = dict(properties[name])
        for part in prop.pop("allOf", []):
            prop.update(schemas[part["$ref"].rsplit("/", 1)[1]])
        errors.extend((name, keyword) for keyword in _violations(prop, value))
    passed = dict(kept)
    if not errors:
        for name, prop in properties.items():
            if prop.get("nullable") and "default" not in prop and name not in schema.get("required", []):
                passed.setdefault(name, None)
    return CogletVerdict(stripped, tuple(errors), passed)


def _violations(prop: dict[str, tp.Any], value: tp.Any) -> list[str]:
    if "type" in prop and not _JSON_TYPES[prop["type"]](value):
        return ["type"]
    found = []
    if "enum" in prop and not any(_same(choice, value) for choice in prop["enum"]):
        found.append("enum")
    if "minimum" in prop and _JSON_TYPES["number"](value) and value < prop["minimum"]:
        found.append("minimum")
    if "maximum" in prop and _JSON_TYPES["number"](value) and value > prop["maximum"]:
        found.append("maximum")
    if isinstance(value, str):
        if "minLength" in prop and len(value) < prop["minLength"]:
            found.append("minLength")
        if "maxLength" in prop and len(value) > prop["maxLength"]:
            found.append("maxLength")
        if "pattern" in prop and re.search(prop["pattern"], value) is None:
            found.append("pattern")
    return found


def main(argv: tp.Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.cog_schema", description=__doc__.splitlines()[0])
    parser.add_argument("ref", nargs="?", default="predict.py:Predictor", help="FILE.py:Class (default %(default)s)")
    parser.add_argument("-o", "--output", type=Path, help="write the document here (default: stdout)")
    args = parser.parse_args(argv)
    path, _, class_name = args.ref.partition(":")
    try:
        predictor = parse_predictor(Path(path).read_text(), class_name or "Predictor")
    except SchemaError as error:
        print(f"image build failed: {error}", file=sys.stderr)
        return 1
    for line in predictor.warnings + [f"silently: {note}" for note in predictor.dropped]:
        print(line, file=sys.stderr)
    text = dumps(openapi_schema(predictor))
    if args.output is None:
        print(text)
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
