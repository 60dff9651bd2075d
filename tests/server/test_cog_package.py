"""The Cog package against Cog's build rules, read from replicate/cog's source (commit 6110c912;
each test names the file it mirrors): no Docker and no ``cog`` CLI run here.

* ``predict.py`` is parsed as ``cog build`` parses it (:mod:`devtools.cog_schema`, a port of
  ``pkg/schema/``): every ``Input()`` argument must resolve statically, and the schema's inputs
  (names, types, defaults, choices, bounds) must be what the Predictor validates and what the
  README's input table says;
* ``cog.yaml`` against Cog's config schema, its torch/CUDA table, its Dockerfile generator;
* ``.dockerignore`` against what ``COPY . /src`` must and must not take into the image.
"""
from __future__ import annotations

import asyncio
import inspect
import json
import pathlib
import re
import typing as tp
from pathlib import Path

import pytest
import yaml
from cog.input import FieldInfo

from devtools.cog_schema import dumps, openapi_schema, parse_predictor
from remixer import doctor, requests
from remixer.sent_files import FetchLimits
from remixer.workdirs import RequestDirs

ROOT = Path(__file__).resolve().parents[2]
# pkg/config/data/config_schema_v1.0.json: both levels have additionalProperties false.
COG_KEYS = {"build", "concurrency", "environment", "image", "model", "predict", "run", "train", "weights"}
COG_BUILD_KEYS = {"cuda", "cudnn", "gpu", "pre_install", "python_packages", "python_requirements",
                  "python_version", "run", "sdk_version", "system_packages"}
# pkg/config/env.go environmentVariableDenyList.
ENV_DENIED = ("PATH", "LD_LIBRARY_PATH", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONUNBUFFERED", "R8_*", "REPLICATE_*",
              "LIBRARY_PATH", "CUDA_*", "NVIDIA_*", "NV_*", "PGET_*", "HF_ENDPOINT", "HF_HUB_ENABLE_HF_TRANSFER",
              "KUBERNETES_*")
# pkg/config/torch_compatibility.json: the CUDA builds of torch 2.11.0 (Cog >= 0.20).
TORCH_CUDA = {"2.11.0": ("12.6", "12.8", "12.9", "13.0")}
# Numbers whose allowed values are not one interval: the schema leaves them unbounded and our
# checks answer (see the README's input table).
UNBOUNDED = {"beat_sync_threshold": "seconds > 0, or -1", "audio_end": "after audio_start, or -1"}
# Text limits stay out of the schema: Cog's 422 would echo a 100 KB value whole, ours do not.
TEXT_LIMITS = {"prompt": requests.MAX_PROMPT_CHARS, "section_prompts": requests.MAX_SECTION_PROMPTS_CHARS,
               "text_chords": requests.MAX_TEXT_CHORDS_CHARS, "time_sig": 16}


def _config() -> dict:
    return yaml.safe_load((ROOT / "cog.yaml").read_text())


def _pins(name: str) -> dict[str, str]:
    pins = {}
    for line in (ROOT / name).read_text().splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line.strip())
        if match:
            pins[match[1].lower()] = match[2]
    return pins


@pytest.fixture(scope="module")
def predictor():
    """predict.py as ``cog build`` reads it (pkg/schema/python/parser.go)."""
    return parse_predictor((ROOT / "predict.py").read_text(), "Predictor")


@pytest.fixture(scope="module")
def schema(predictor) -> dict:
    return openapi_schema(predictor)


def _props(schema: dict) -> dict[str, dict]:
    """Each input's schema with its enum component merged in."""
    components = schema["components"]["schemas"]
    merged = {}
    for name, prop in components["Input"]["properties"].items():
        prop = dict(prop)
        for ref in prop.pop("allOf", []):
            prop.update(components[ref["$ref"].rsplit("/", 1)[1]])
        merged[name] = prop
    return merged


# -- predict.py as Cog parses it -----------------------------------------------------------------


def test_every_input_argument_resolves_statically():
    # inputs.go parseInputCall, literals.go, module_scope.go: choices that do not resolve stop the
    # build; defaults, descriptions and bounds that do not are dropped or mangled without a word.
    predictor = parse_predictor((ROOT / "predict.py").read_text(), "Predictor")  # raises where cog build stops
    assert predictor.dropped == []
    assert predictor.warnings == ["cog: warning: Predictor.predict() is deprecated; use run() instead"]


def test_no_input_is_required_and_none_defaults_are_nullable(schema):
    # openapi_spec.go buildInputSchema: `T = Input(default=None)` without Optional is required.
    assert "required" not in schema["components"]["schemas"]["Input"]
    for name, prop in _props(schema).items():
        assert "default" in prop, name
        assert prop.get("nullable", False) == (prop["default"] is None), name


def test_the_target_is_one_async_method_returning_files(predictor):
    # target.go (run() preferred, predict() accepted), predictor.rs (not both), build.go
    # (concurrency.max > 1 needs an async method), schema_type.go (list[Path]).
    from predict import Predictor

    assert [name for name in ("run", "predict") if name in vars(Predictor)] == ["predict"]
    assert predictor.method == "predict" and predictor.is_async
    assert _config()["concurrency"]["max"] > 1
    assert predictor.output == {"type": "array", "items": {"type": "string", "format": "uri"}, "title": "Output"}


def test_file_inputs_are_plain_paths_so_the_predictor_fetches_them(schema):
    # coglet-python/src/input.rs fetches URLs only for parameters typed cog.Path; ours are
    # pathlib.Path, so the URL or data URI reaches predict() and remixer.sent_files fetches it with
    # a deadline, a size cap and the request's cancel. pkg/schema/types.go matches `Path` by name:
    # the schema still offers a file (format uri, an upload in Replicate's form).
    import pathlib

    from predict import Predictor

    hints = tp.get_type_hints(Predictor.predict)
    assert hints["music_input"] == hints["input_audio"] == (pathlib.Path | None)
    for name in ("music_input", "input_audio"):
        assert (_props(schema)[name]["type"], _props(schema)[name]["format"]) == ("string", "uri")


# -- the schema is what the Predictor validates --------------------------------------------------


@pytest.fixture(scope="module")
def sent_file():
    """A file input as coglet hands it to predict: the data URI the client sent, untouched."""
    return "data:audio/wav;base64,UklGRiQAAABXQVZF"


@pytest.fixture(scope="module")
def verdict(sent_file, tmp_path_factory):
    """``verdict(name, value)``: the message our checks refuse ``name=value`` with, or None.

    Runs predict.py's own mapping and checks (no model: the request it builds is the result),
    on a remix for remix-only inputs and a generation otherwise."""
    from predict import Predictor

    runner = Predictor.__new__(Predictor)
    runner.dirs, runner.fetch_limits = RequestDirs(tmp_path_factory.mktemp("requests")), FetchLimits()

    async def serve(request, workdir, files):
        return request

    runner._serve = serve
    defaults = {name: p.default.default if isinstance(p.default, FieldInfo) else p.default
                for name, p in inspect.signature(Predictor.predict).parameters.items() if name != "self"}

    def check(name: str, value: tp.Any) -> str | None:
        if name in requests.REMIX_ONLY or name == "music_input":
            base = {"prompt": "rock", "music_input": sent_file}
        elif name in ("audio_start", "audio_end", "continuation", "input_audio"):
            base = {"prompt": "rock", "input_audio": sent_file, "model_version": "chord"}
        else:
            base = {"prompt": "rock", "bpm": 120, "model_version": "chord"}
        try:
            asyncio.run(runner.predict(**{**defaults, **base, name: value}))
        except requests.InputError as error:
            return str(error)
        return None
    return check


def test_names_order_types_and_defaults_are_the_signatures(schema):
    from predict import Predictor

    parameters = [p for name, p in inspect.signature(Predictor.predict).parameters.items() if name != "self"]
    hints = tp.get_type_hints(Predictor.predict)
    types = {str: "string", int: "integer", float: "number", bool: "boolean", pathlib.Path: "string"}
    props = _props(schema)
    assert list(props) == [p.name for p in parameters]
    for order, parameter in enumerate(parameters):
        prop, hint = props[parameter.name], hints[parameter.name]
        base = next(arg for arg in tp.get_args(hint) if arg is not type(None)) if tp.get_args(hint) else hint
        assert (prop["x-order"], prop["type"], prop.get("format") == "uri") == (order, types[base], base is pathlib.Path)
        assert prop["default"] == parameter.default.default, parameter.name


def test_defaults_are_the_request_records_defaults(schema):
    # Literals in predict.py now, so they must not drift from remixer.requests: a default that is
    # not among an input's "unset" values would make every request of the other kind refused.
    import dataclasses

    props = _props(schema)
    unset = {**requests.REMIX_ONLY, **requests.GENERATION_ONLY}
    for name, values in unset.items():
        assert any(props[name]["default"] == value for value in values), name
    records = {"format": "output_format", "normalization": "normalization_strategy"}
    for record in (requests.Sampling, requests.Output, requests.RemixRequest, requests.GenerateRequest):
        for item in dataclasses.fields(record):
            name = records.get(item.name, item.name)
            if name in props and item.default is not dataclasses.MISSING:
                assert props[name]["default"] == item.default, (record.__name__, name)


def test_choices_are_the_request_rules_and_each_one_passes_them(schema, verdict):
    props = _props(schema)
    assert props["model_version"]["enum"] == list(requests.CHORD_VERSIONS + requests.MELODY_VERSIONS)
    assert props["normalization_strategy"]["enum"] == list(requests.NORMALIZATIONS)
    assert props["output_format"]["enum"] == list(requests.OUTPUT_FORMATS)
    for name in ("normalization_strategy", "output_format"):
        assert all(verdict(name, choice) is None for choice in props[name]["enum"])
        assert name in verdict(name, "nope")
    assert [verdict("model_version", v) for v in requests.CHORD_VERSIONS] == [None] * 4
    assert "model_version" in verdict("model_version", "nope")


def test_each_bound_is_where_our_checks_refuse(schema, verdict):
    for name, prop in _props(schema).items():
        step = 1 if prop["type"] == "integer" else 1e-6
        if "minimum" in prop:
            assert verdict(name, prop["minimum"]) is None, name
            assert name in (verdict(name, prop["minimum"] - step) or ""), name
        if "maximum" in prop:
            assert verdict(name, prop["maximum"]) is None, name
            assert name in (verdict(name, prop["maximum"] + step) or ""), name


def test_numbers_we_bound_are_bounded_in_the_schema_or_listed(schema, verdict):
    for name, prop in _props(schema).items():
        if prop["type"] not in ("integer", "number"):
            continue
        refused = {side for side, value in (("minimum", -1e9), ("maximum", 1e9))
                   if side not in prop and verdict(name, int(value) if prop["type"] == "integer" else value)}
        assert not refused or name in UNBOUNDED, (name, refused)


def test_text_limits_are_ours_alone(schema, verdict):
    props = _props(schema)
    for name, limit in TEXT_LIMITS.items():
        assert "maxLength" not in props[name]
        assert f"at most {limit}" in (verdict(name, "x" * (limit + 1)) or ""), name


@pytest.mark.parametrize("json_type, wrong", [("string", 5), ("integer", "5"), ("number", "5"), ("boolean", "yes")])
def test_a_value_of_the_wrong_type_is_refused_naming_the_input(schema, verdict, json_type, wrong):
    # Without Cog's schema (a bare `python -m cog.server.http`) every value reaches predict.
    names = [name for name, prop in _props(schema).items() if prop["type"] == json_type]
    assert names
    for name in names:
        message = verdict(name, wrong)
        assert message is not None and name in message, (name, message)


def test_whole_floats_pass_integer_inputs_as_coglet_lets_them_through(schema, verdict):
    for name, prop in _props(schema).items():
        if prop["type"] == "integer":
            assert verdict(name, float(prop.get("minimum", 0) + 2)) is None, name


def _shown(value: tp.Any) -> str:
    """A value as the README writes it: JSON as Go writes it (1.0 is 1), strings unquoted."""
    text = json.dumps(json.loads(dumps(value)))
    return text[1:-1] if text.startswith('"') else text


def _readme_row(name: str, prop: dict) -> str:
    kind = ("file" if prop.get("format") == "uri" else "choice" if "enum" in prop
            else {"string": "text", "integer": "integer", "number": "number", "boolean": "bool"}[prop["type"]])
    shown = "unset" if prop["default"] is None else f"`{_shown(prop['default'])}`"
    if kind in ("file", "bool"):
        allowed = "a URL or data URI" if kind == "file" else "`true`, `false`"
    elif "enum" in prop:
        allowed = ", ".join(f"`{choice}`" for choice in prop["enum"])
    elif "minimum" in prop and "maximum" in prop:
        allowed = f"{_shown(prop['minimum'])} to {_shown(prop['maximum'])}"
    elif "minimum" in prop:
        allowed = f"≥ {_shown(prop['minimum'])}"
    else:
        allowed = UNBOUNDED.get(name, f"at most {TEXT_LIMITS[name]} characters" if name in TEXT_LIMITS else "")
    return f"| `{name}` | {kind} | {shown} | {allowed} |"


def test_the_readme_documents_the_schemas_inputs(schema):
    readme = (ROOT / "README.md").read_text()
    rows = [line for line in readme.splitlines() if re.match(r"\| `[a-z_]+` \|", line)]
    expected = [_readme_row(name, prop) for name, prop in _props(schema).items()]
    assert rows == expected, "\n".join(expected)


# -- cog.yaml ------------------------------------------------------------------------------------


def test_cog_yaml_is_a_gpu_build_with_keys_cog_knows():
    # config_schema_v1.0.json; validate.go (run and predict exclusive, python >= 3.11 with
    # concurrency). A GPU build names its CUDA and its SDK: left unset, Cog picks the newest.
    config = _config()
    assert set(config) <= COG_KEYS and set(config["build"]) <= COG_BUILD_KEYS
    assert {"gpu", "cuda", "sdk_version"} <= set(config["build"])
    assert not {"run", "predict"} <= set(config)
    path, _, name = config["predict"].partition(":")
    assert path == "predict.py" and f"class {name}(" in (ROOT / path).read_text()
    assert tuple(map(int, str(config["build"]["python_version"]).split("."))) >= (3, 11)
    assert config["build"]["gpu"] is True and config["build"]["python_requirements"] == "requirements.txt"
    assert set(config["concurrency"]) <= {"max", "default_target"} and config["concurrency"]["max"] >= 1


def test_environment_entries_are_allowed_and_unquoted():
    # pkg/config/env.go (format, duplicates, deny list); the ENV line is written unquoted.
    names = []
    for entry in _config()["environment"]:
        name, _, value = entry.partition("=")
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) and value and not re.search(r"\s", value), entry
        assert not any(name == denied or denied.endswith("*") and name.startswith(denied[:-1])
                       for denied in ENV_DENIED), name
        names.append(name)
    assert len(names) == len(set(names))
    assert f"{doctor.DEVICE_ENV}=cuda" in _config()["environment"]


def test_run_steps_install_as_cogs_own_steps_do():
    # standard_generator.go: each step is one RUN line (no newline after trimming), run before
    # the source is copied, on a Python uv manages (PEP 668): install with uv and
    # --break-system-packages, never a bare `pip`/`python` that may not exist.
    steps = _config()["build"]["run"]
    assert steps
    for step in steps:
        command = (step["command"] if isinstance(step, dict) else step).strip()
        assert "\n" not in command, command
        assert not re.match(r"(pip|pip3|python)\s", command), command
        if "install" in command:
            assert command.startswith("uv pip install --break-system-packages"), command
        assert not re.search(r"requirements|third_party|\./|predict\.py|remixer/", command), command
    audiocraft = next(step for step in steps if "audiocraft" in step)
    assert f"audiocraft=={_pins('requirements-nodeps.txt')['audiocraft']}" in audiocraft


def test_the_sdk_is_pinned_with_sdk_version_not_in_requirements():
    # standard_generator.go filterManagedPackages strips cog/coglet from requirements.txt;
    # build.sdk_version pins the SDK (>= 0.17.0 for the static schema, generate.go).
    sdk = str(_config()["build"]["sdk_version"])
    assert sdk == doctor.COG_VERSION and tuple(map(int, sdk.split("."))) >= (0, 17, 0)
    assert not {"cog", "coglet"} & set(_pins("requirements.txt"))
    assert _pins("requirements-dev.txt")["cog"] == _pins("requirements-dev.txt")["coglet"] == sdk
    assert f"COGLET_WHEEL=pypi:{sdk}" in (ROOT / "README.md").read_text()


def test_cuda_is_one_torch_has_wheels_for_and_that_drivers_before_580_run():
    # config.go validateAndCompleteCUDA / torch_compatibility.json: unset, Cog picks 13.0 for
    # torch 2.11 (a driver >= 580); 12.8 gets the cu128 index (drivers >= 525.60.13).
    cuda = str(_config()["build"]["cuda"])
    torch = _pins("requirements.txt")["torch"]
    assert _pins("requirements.txt")["torchaudio"] == torch
    assert cuda in TORCH_CUDA[torch] and cuda.startswith("12.")
    floor = doctor.DRIVER_MINIMUMS[12]
    assert floor == "525.60.13" and floor in (ROOT / "README.md").read_text()


# -- the build context ---------------------------------------------------------------------------


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rules (moby patternmatcher): the last matching pattern wins, a
    pattern matching a directory matches everything under it, ``**`` spans directories."""
    def regex(pattern: str) -> str:
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                out, i = out + ".*", i + 2
            else:
                out += {"*": "[^/]*", "?": "[^/]"}.get(pattern[i], re.escape(pattern[i]))
                i += 1
        return out
    parents = [path] + ["/".join(path.split("/")[:n]) for n in range(1, path.count("/") + 1)]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        core = pattern.lstrip("!").strip("/")
        if any(re.fullmatch(regex(core), candidate) for candidate in parents):
            ignored = not negate
    return ignored


@pytest.mark.parametrize("path, ignored", [
    (".venv/lib/python3.11/site-packages/torch/lib/libtorch_cuda.so", True), (".git/HEAD", True),
    ("tests/conftest.py", True), ("bench/results/remix.json", True), ("devtools/synth.py", True),
    ("remixer/__pycache__/pipeline.cpython-311.pyc", True), (".pytest_cache/v/cache/nodeids", True),
    ("example_output/remix.wav", True), ("weights/musicgen-chord/musicgen-stereo-chord.th.part", True),
    ("predict.py", False), ("cog.yaml", False), ("requirements.txt", False), ("LICENSE_weights", False),
    ("remixer/pipeline.py", False), ("remixer/weights/store.py", False), ("btc/model.py", False),
    ("weights/manifest.json", False), ("weights/musicgen-chord/musicgen-stereo-chord.th", False),
])
def test_dockerignore_keeps_the_image_to_what_serving_needs(path, ignored):
    # standard_generator.go: the image ends with `COPY . /src`; Cog itself leaves out only .cog/.
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert _ignored(path, patterns) == ignored


def test_everything_predict_imports_reaches_the_image():
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    product = [path.relative_to(ROOT).as_posix() for pattern in ("remixer/**/*.py", "btc/*.py")
               for path in ROOT.glob(pattern)]
    assert len(product) > 30
    assert [path for path in product if _ignored(path, patterns)] == []
