"""devtools.cog_schema against Cog's own rules: cases from replicate/cog's Go tests (file and test
named for each), at commit 6110c912, and what coglet 0.23.1 does with a request (measured on the
installed coglet by tests/server/test_cog_schema_http.py)."""
from __future__ import annotations

import json
import textwrap

import pytest

from devtools.cog_schema import NotPorted, SchemaError, coglet_check, dumps, openapi_schema, parse_predictor


def _parse(body: str, header: str = "from cog import BasePredictor, Input, Path, Secret\n"):
    return parse_predictor(header + textwrap.dedent(body))


def _inputs(body: str, header: str = "from cog import BasePredictor, Input, Path, Secret\n") -> dict:
    return openapi_schema(_parse(body, header))["components"]["schemas"]["Input"]


def _one(default_expr: str, scope: str = "", annotation: str = "str") -> dict:
    return _inputs(f"""
{scope}
class Predictor(BasePredictor):
    def predict(self, x: {annotation} = {default_expr}) -> str:
        pass
""")["properties"]["x"]


# -- choices (parser_test.go TestChoices*, module_scope_test.go) ---------------------------------

@pytest.mark.parametrize("scope, expr, choices", [
    ("", 'Input(choices=["a", "b"])', ["a", "b"]),                              # TestChoicesLiteralList
    ('COLORS = ["red", "blue"]', "Input(choices=COLORS)", ["red", "blue"]),      # TestChoicesModuleLevelListVar
    ('COLORS = ("red", "blue")', "Input(choices=COLORS)", ["red", "blue"]),      # a tuple becomes a list
    ('D = {"a": 1, "b": 2}', "Input(choices=list(D.keys()))", ["a", "b"]),       # TestChoicesListDictKeys
    ('D = {"a": "x", "b": "y"}', "Input(choices=list(D.values()))", ["x", "y"]),  # TestChoicesListDictValues
    ('A = ["a"]\nB = ["b"]', "Input(choices=A + B)", ["a", "b"]),                # TestChoicesConcatTwoVars
    ('D = {"a": 1}', 'Input(choices=list(D.keys()) + ["z"])', ["a", "z"]),     # TestChoicesDictKeysPlusLiteral
])
def test_choices_that_resolve_statically(scope, expr, choices):
    prop = _inputs(f"""
{scope}
class Predictor(BasePredictor):
    def predict(self, x: str = {expr}) -> str:
        pass
""")["properties"]["x"]
    # openapi_spec.go: a choices input refers to an enum component named after it.
    assert prop == {"allOf": [{"$ref": "#/components/schemas/x"}], "x-order": 0}
    assert openapi_schema(_parse(f"""
{scope}
class Predictor(BasePredictor):
    def predict(self, x: str = {expr}) -> str:
        pass
"""))["components"]["schemas"]["x"] == {"title": "x", "description": "An enumeration.", "enum": choices,
                                         "type": "string"}


@pytest.mark.parametrize("scope, expr", [
    ('NOT_A_LIST = "oops"', "NOT_A_LIST"),                      # TestChoicesVarNotAListErrors
    ("", "DOES_NOT_EXIST"),                                     # TestChoicesUndefinedVarErrors
    ("", "get_choices()"),                                      # TestChoicesArbitraryCallErrors
    ("", '[f"{i}x" for i in range(5)]'),                        # TestChoicesListComprehensionErrors
    ('def helper():\n    NESTED = ["a"]', "NESTED"),           # TestChoicesNestedVarNotInScope
    ('COLORS = ["red"]', "tuple(COLORS)"),                      # TestResolveChoicesExprRejectsUnsupported...
    ('COLORS = ["red"]', "list(COLORS)"),                       # ours before issue 20
    ("from remixer.requests import OUTPUT_FORMATS", "OUTPUT_FORMATS"),  # imported: not in module scope
    ("", '("a", "b")'),                                         # a tuple literal is not a list literal
])
def test_choices_that_stop_the_build(scope, expr):
    with pytest.raises(SchemaError, match="parameter 'my_param': choices expression cannot be statically resolved"):
        _parse(f"""
{scope}
class Predictor(BasePredictor):
    def predict(self, my_param: str = Input(choices={expr})) -> str:
        pass
""")


# -- defaults (parser_test.go TestDefault*, inputs.go parseInputCall) ---------------------------

@pytest.mark.parametrize("scope, expr, default", [
    ("", "Input(default=-1.5)", -1.5),                               # TestNegativeNumberDefault
    ("", "Input(default=True)", True),                               # TestBoolDefault
    ("", "Input(default=0)", 0),                                     # TestDefaultZeroInt
    ("", 'Input(default="")', ""),                                   # TestDefaultEmptyString
    ('NAME = "hi"', "Input(default=NAME)", "hi"),                    # TestDefaultModuleLevelStringInInput
    ("COUNT: int = 3", "Input(default=COUNT)", 3),                   # annotated assignment
    ('NAME = "hi"', "NAME", "hi"),                                   # TestDefaultModuleLevelVarPlain
    ("", "Input(default=0x10)", 16),                                 # Go's ParseInt(text, 0, 64)
])
def test_defaults_that_resolve(scope, expr, default):
    prop = _one(expr, scope, "int" if isinstance(default, int) and not isinstance(default, bool) else "str")
    assert prop["default"] == default


@pytest.mark.parametrize("scope, expr", [
    ("from remixer.requests import DEFAULT_DURATION", "Input(default=DEFAULT_DURATION)"),
    ("class K:\n    V = 8.0", "Input(default=K.V)"),
    ("", "Input(default=1 / 3)"),
])
def test_an_unresolvable_input_default_silently_becomes_none(scope, expr):
    # inputs.go parseInputCall: no error, the default is None, and a None default on a
    # non-nullable type is no default at all: the input becomes required.
    predictor = _parse(f"""
{scope}
class Predictor(BasePredictor):
    def predict(self, x: float = {expr}) -> str:
        pass
""")
    schema = openapi_schema(predictor)["components"]["schemas"]["Input"]
    assert "default" not in schema["properties"]["x"] and schema["required"] == ["x"]
    assert predictor.dropped == [f"x: default `{expr[14:-1]}` is not a literal: Cog makes it None"]


def test_an_unresolvable_plain_default_stops_the_build():
    # parser_test.go TestDefaultUndefinedVarPlainErrors
    with pytest.raises(SchemaError, match="parameter 'x': default `UNDEFINED` cannot be statically resolved"):
        _one("UNDEFINED")


def test_default_factory_stops_the_build():
    # parser_test.go TestDefaultFactoryError
    with pytest.raises(SchemaError, match="default_factory is not supported"):
        _one("Input(default_factory=list)")


# -- None defaults and nullability (openapi_spec.go buildInputSchema, openapi_spec_test.go) -----

def test_none_default_without_optional_makes_the_input_required():
    # openapi_spec_test.go TestNoneDefaultOnRequiredTypeIsRequired: the trap of `seed: int = Input(default=None)`
    schema = _inputs("""
class Predictor(BasePredictor):
    def predict(self, seed: int = Input(default=None), music: Path = Input(default=None),
                a: int | None = Input(default=None), b: "Optional[str]" = Input(default=None),
                key: Secret = Input(default=None)) -> str:
        pass
""")
    assert schema["required"] == ["seed", "music"]
    props = schema["properties"]
    assert "default" not in props["seed"] and "nullable" not in props["seed"]
    assert props["a"]["nullable"] is True and props["a"]["default"] is None
    assert props["b"]["nullable"] is True and props["b"]["type"] == "string"
    # TestSecretWithDefaultNoneIsOptional: the one exception
    assert props["key"]["nullable"] is True and props["key"]["x-cog-secret"] is True


def test_optional_without_a_default_is_not_required_and_has_no_default():
    # parser_test.go TestOptionalInputOpenAPINotRequired
    schema = _inputs("""
from typing import Optional
class Predictor(BasePredictor):
    def predict(self, value: Optional[str]) -> str:
        pass
""")
    assert "required" not in schema
    assert schema["properties"]["value"] == {"nullable": True, "title": "Value", "type": "string", "x-order": 0}


# -- strings and numbers read from the source text (literals.go, inputs.go) ----------------------

def test_implicitly_concatenated_descriptions_are_kept_as_source_text():
    predictor = _parse('''
class Predictor(BasePredictor):
    def predict(self, x: str = Input(description="abc "
                                                 "def")) -> str:
        pass
''')
    assert predictor.inputs[0].description == 'abc "\n                                                 "def'
    assert predictor.dropped[0].startswith("x: Cog reads description as")


@pytest.mark.parametrize("expr, description, note", [
    ('"plain"', "plain", False),
    ("'single'", "single", False),
    ('"""triple"""', "triple", False),
    ('r"raw"', "raw", False),
    ('"tab\\tescaped"', "tab\\tescaped", True),      # no escape processing: backslash, t
    ('DESCRIPTION', "from scope", False),            # parser_test.go TestDescriptionFromModuleLevelVar
    ('("paren" "thesized")', None, True),            # parenthesized_expression: dropped
    ('f"f{1}"', None, True),
    ('u"unicode"', None, True),
])
def test_descriptions(expr, description, note):
    predictor = _parse(f"""
DESCRIPTION = "from scope"
class Predictor(BasePredictor):
    def predict(self, x: str = Input(description={expr})) -> str:
        pass
""")
    assert predictor.inputs[0].description == description
    assert bool(predictor.dropped) == note, predictor.dropped


def test_bounds_must_be_number_literals():
    # parser_test.go TestInputConstraints; inputs.go: ge/le are parsed from their text only.
    predictor = _parse("""
LOW = 1
class Predictor(BasePredictor):
    def predict(self, a: int = Input(ge=-1, le=2.5), b: int = Input(ge=LOW, le=(3)),
                t: str = Input(min_length=1, max_length=100, regex="^[a-z]+$")) -> str:
        pass
""")
    a, b, t = predictor.inputs
    assert (a.ge, a.le) == (-1.0, 2.5) and (b.ge, b.le) == (None, None)
    assert (t.min_length, t.max_length, t.regex) == (1, 100, "^[a-z]+$")
    assert predictor.dropped == ["b: ge=`LOW` is not a number literal: Cog drops it",
                                 "b: le=`3` is not a number literal: Cog drops it"]
    props = openapi_schema(predictor)["components"]["schemas"]["Input"]["properties"]
    assert (props["a"]["minimum"], props["a"]["maximum"]) == (-1, 2.5)
    assert (props["t"]["minLength"], props["t"]["maxLength"], props["t"]["pattern"]) == (1, 100, "^[a-z]+$")


# -- types (types.go) ----------------------------------------------------------------------------

@pytest.mark.parametrize("annotation, fragment", [
    ("str", {"type": "string"}), ("int", {"type": "integer"}), ("float", {"type": "number"}),
    ("bool", {"type": "boolean"}), ("Path", {"type": "string", "format": "uri"}),
    ("list[Path]", {"type": "array", "items": {"type": "string", "format": "uri"}}),
    ("pathlib.Path", {"type": "string", "format": "uri"}),  # matched by name only
    ("dict", {"type": "object"}),
    ("str | float", {"anyOf": [{"type": "string"}, {"type": "number"}]}),  # TestUnionInputStringFloat
])
def test_input_types(annotation, fragment):
    prop = _inputs(f"""
import pathlib
class Predictor(BasePredictor):
    def predict(self, x: {annotation}) -> str:
        pass
""")["properties"]["x"]
    assert {key: value for key, value in prop.items() if key not in ("title", "x-order")} == fragment


@pytest.mark.parametrize("annotation, message", [
    ("Literal['a', 'b']", "unsupported type: Literal[...] is not a supported input type"),
    ("list[str | None]", "unsupported type: nested generics like List[Optional[X]] are not supported"),
    ("str | Path", "unsupported type: Path is not supported in union inputs"),  # TestUnionInputRejectsPathString
    ("AudioPath", "unsupported type: AudioPath"),  # an alias is not resolved
    ("Tensor", "cannot resolve type 'Tensor' (imported from 'torch')"),
])
def test_unsupported_input_types_stop_the_build(annotation, message):
    with pytest.raises(SchemaError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")
                       .replace(")", r"\)").replace("|", r"\|")):
        _parse(f"""
from typing import Literal
from torch import Tensor
AudioPath = Path
class Predictor(BasePredictor):
    def predict(self, x: {annotation}) -> str:
        pass
""")


def test_constraints_on_a_union_stop_the_build():
    with pytest.raises(SchemaError, match="constraints and choices are not supported on union inputs"):
        _one('Input(default="a", choices=["a"])', annotation="str | int")


def test_a_parameter_without_annotation():
    # parser_test.go TestMissingTypeAnnotation; without a default it is silently left out.
    with pytest.raises(SchemaError, match="parameter 'x' on predict has no type annotation"):
        _parse("""
class Predictor(BasePredictor):
    def predict(self, x=Input(default=1)) -> str:
        pass
""")
    predictor = _parse("""
class Predictor(BasePredictor):
    def predict(self, x, y: int) -> str:
        pass
""")
    assert [i.name for i in predictor.inputs] == ["y"] and predictor.inputs[0].order == 0


# -- target and output (target.go, parser.go, schema_type.go) ------------------------------------

def test_run_is_preferred_and_predict_is_a_deprecated_fallback():
    # parser_test.go TestRunMethodPreferredOverLegacyPredict, TestLegacyPredictMethodFallback
    both = _parse("""
class Predictor(BasePredictor):
    def predict(self, a: str) -> str:
        pass
    async def run(self, b: str) -> str:
        pass
""")
    assert (both.method, both.is_async, [i.name for i in both.inputs], both.warnings) == ("run", True, ["b"], [])
    legacy = _parse("""
class Predictor(BasePredictor):
    def predict(self, a: str) -> str:
        pass
""")
    assert legacy.method == "predict" and not legacy.is_async
    assert legacy.warnings == ["cog: warning: Predictor.predict() is deprecated; use run() instead"]


@pytest.mark.parametrize("returns, output", [
    ("list[Path]", {"type": "array", "items": {"type": "string", "format": "uri"}, "title": "Output"}),
    ("Path", {"type": "string", "format": "uri", "title": "Output"}),
    ("Iterator[str]", {"type": "array", "items": {"type": "string"}, "x-cog-array-type": "iterator",
                       "title": "Output"}),
])
def test_outputs(returns, output):
    assert _parse(f"""
from typing import Iterator
class Predictor(BasePredictor):
    def predict(self) -> {returns}:
        pass
""").output == output


@pytest.mark.parametrize("signature, message", [
    ("def predict(self) -> Optional[str]:", "Optional is not allowed as a return type"),  # TestOptionalOutputErrors
    ("def predict(self):", "predict"),  # TestMissingReturnType: the message is the method's name
])
def test_outputs_that_stop_the_build(signature, message):
    with pytest.raises(SchemaError, match=message):
        _parse(f"""
from typing import Optional
class Predictor(BasePredictor):
    {signature}
        pass
""")


def test_what_the_port_does_not_model_says_so():
    with pytest.raises(NotPorted):
        _parse("""
class Base(BasePredictor):
    def predict(self, a: str) -> str:
        pass
class Predictor(Base):
    pass
""")


# -- the document (openapi_spec.go) and Go's JSON --------------------------------------------------

def test_the_document_has_cogs_shape_and_go_json():
    predictor = _parse("""
class Predictor(BasePredictor):
    def predict(self, music_input: Path | None = Input(description="Song <wav>", default=None),
                top_k: int = Input(default=250, ge=0), scale: float = Input(default=1.0)) -> str:
        pass
""")
    document = openapi_schema(predictor)
    assert document["openapi"] == "3.0.2" and document["info"]["title"] == "Cog"
    assert list(document["paths"]) == ["/", "/health-check", "/predictions", "/predictions/{prediction_id}/cancel"]
    assert list(document["components"]["schemas"])[:2] == ["Input", "Output"]
    text = dumps(document)
    # Go writes float64 1.0 as 1, escapes < and >, and sorts the keys of plain maps.
    assert '"scale":{"default":1,"title":"Scale","type":"number","x-order":2}' in text
    assert '"description":"Song \\u003cwav\\u003e"' in text
    assert '"Music Input"' in text and json.loads(text) == json.loads(json.dumps(document))


# -- what coglet does with a request (input_validation.rs) ---------------------------------------

def test_coglet_check_strips_validates_and_fills_nulls():
    document = openapi_schema(_parse("""
class Predictor(BasePredictor):
    def predict(self, hint: str | None, prompt: str | None = Input(default=None),
                n: int = Input(default=1, ge=0, le=5), fmt: str = Input(default="wav", choices=["wav", "mp3"]),
                need: str = Input()) -> str:
        pass
"""))
    verdict = coglet_check(document, {"need": "x", "promt": "typo", "n": 2.0})
    assert verdict.stripped == ("promt",) and verdict.errors == ()
    # `hint` is nullable with no default key: coglet sends null; `prompt` keeps its default.
    assert verdict.passed == {"need": "x", "n": 2.0, "hint": None}
    bad = coglet_check(document, {"prompt": None, "n": 6, "fmt": "ogg"})
    assert sorted(bad.errors) == [("fmt", "enum"), ("n", "maximum"), ("need", "required"), ("prompt", "type")]
    assert coglet_check(document, {"need": "x", "n": True}).errors == (("n", "type"),)
