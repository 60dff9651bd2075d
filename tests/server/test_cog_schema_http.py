"""The predictor served as a built image serves it: Cog's schema checks names and types first.

A built image carries the OpenAPI schema ``cog build`` generates from ``predict.py`` (here
:mod:`devtools.cog_schema`'s port of it), and coglet 0.23.1 applies it to every request before
``predict`` runs (``crates/coglet/src/input_validation.rs``):

* an input the schema does not name is dropped without an error (the server logs "Stripped
  unknown input fields"): Replicate's API has always ignored unknown inputs (cog PR #2943);
* a value of the wrong type, outside a bound or not among the choices gets HTTP 422 with one
  ``{"loc": ["body", "input", NAME], "msg": ...}`` per input;
* ``null`` is a wrong type even for an optional input (leave the key out instead).

Everything else reaches ``predict`` and our own checks, as on a server without the schema:
the hostile corpus of ``test_hostile.py`` (served there without the schema) is replayed here,
each case answered by the layer :func:`devtools.cog_schema.coglet_check` says answers it.
"""
from __future__ import annotations

import json

import pytest

from devtools.cog_schema import coglet_check, dumps
from fixtures.cog_server import CogServer, decode_output, refusal
# The corpus, its files (built beside this module's server) and their placeholders.
from test_hostile import CORPUS, _fill, files, hostile_server, web  # noqa: F401 (files, web: fixtures)

# What coglet's validator writes for each JSON Schema keyword (jsonschema crate 0.29).
MESSAGES = {"type": "is not of type", "enum": "is not one of", "minimum": "is less than the minimum of",
            "maximum": "is greater than the maximum of", "required": "Field required"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with hostile_server(tmp_path_factory, schema=True) as running:
        yield running


def _stripped(server: CogServer) -> list[list[str]]:
    """The input names coglet dropped, request by request, from its log."""
    found = []
    for line in server.log_path.read_text().splitlines():
        try:
            fields = json.loads(line)["fields"]
        except (ValueError, KeyError):
            continue
        if fields.get("message") == "Stripped unknown input fields":
            found.append(json.loads(fields["fields"]))
    return found


def test_coglet_serves_and_applies_the_generated_schema(server):
    assert server.openapi() == json.loads(dumps(server.schema))
    assert "Loaded OpenAPI schema from .cog/openapi_schema.json" in server.log_path.read_text()


@pytest.mark.parametrize("payload, expected", CORPUS, ids=[f"bad{i}" for i in range(len(CORPUS))])
def test_each_bad_input_is_refused_clearly_by_cog_or_by_us(server, files, payload, expected):
    payload = _fill(payload, files)
    verdict = coglet_check(server.schema, payload)
    status, reply = server.submit(payload)
    if verdict.errors:  # Cog's schema answers first: every bad input named, with what is wrong
        assert status == 422, reply
        found = {(item["loc"][2], item["msg"]) for item in reply["detail"]}
        assert [item["loc"][:2] for item in reply["detail"]] == [["body", "input"]] * len(found)
        assert {name for name, _ in found} == {name for name, _ in verdict.errors}, reply
        for name, keyword in verdict.errors:
            assert any(item == name and MESSAGES[keyword] in msg for item, msg in found), (keyword, reply)
        return
    if verdict.stripped:  # dropped, and the request is answered as if they had not been sent
        without = {key: value for key, value in payload.items() if key not in verdict.stripped}
        assert refusal(reply) == refusal(server.predict(without))
        assert _stripped(server)[-1] == list(verdict.stripped)
        return
    assert status == 200 and reply["status"] == "failed", reply
    for text in expected:
        assert text in reply["error"], reply["error"]


def test_cog_echoes_a_whole_refused_value_in_its_422(server, files):
    # Known limit (README): our own messages cut a client's long value short, Cog's do not.
    status, reply = server.submit({"prompt": "rock", "music_input": files["SONG"], "model_version": "m" * 100_000})
    assert status == 422 and reply["detail"][0]["loc"] == ["body", "input", "model_version"]
    assert len(reply["detail"][0]["msg"]) > 100_000


def test_an_unknown_input_is_dropped_and_the_request_runs_as_if_it_were_not_sent(server):
    # "durration" is not an input: Cog drops it, the generation keeps duration's 0.5 s; a whole
    # float for an integer input (top_k) passes Cog's schema and ours.
    reply = server.predict({"prompt": "calm", "duration": 0.5, "durration": 9, "model_version": "chord",
                            "top_k": 40.0, "seed": 1})
    assert reply["status"] == "succeeded", reply.get("error")
    audio, rate = decode_output(reply["output"][0])
    assert audio.shape[1] == rate // 2
    assert _stripped(server)[-1] == ["durration"]


def test_mistyped_inputs_get_422_naming_each_input_and_what_is_wrong(server):
    payload = {"prompt": "calm", "top_k": "abc", "return_stems": "yes", "output_format": "ogg", "seed": None,
               "duration": 0.01, "key_shift": 2.5}
    status, reply = server.submit(payload)
    assert status == 422
    assert sorted((item["loc"][2], item["msg"]) for item in reply["detail"]) == [
        ("duration", "0.01 is less than the minimum of 0.1"),
        ("key_shift", '2.5 is not of type "integer"'),
        ("output_format", '"ogg" is not one of ["wav","mp3","flac"]'),
        ("return_stems", '"yes" is not of type "boolean"'),
        ("seed", 'null is not of type "integer"'),
        ("top_k", '"abc" is not of type "integer"'),
    ]
    assert sorted(coglet_check(server.schema, payload).errors) == [
        ("duration", "minimum"), ("key_shift", "type"), ("output_format", "enum"), ("return_stems", "type"),
        ("seed", "type"), ("top_k", "type")]
