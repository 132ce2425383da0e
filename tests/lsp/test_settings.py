"""Settings validation without a server: defaults, camelCase names, fallbacks that name the setting."""

from __future__ import annotations

import dataclasses

from infill.syntax import LANGUAGES
from infill.types import FillRequest
from lsp_server.settings import SETTINGS, Settings, fill_options, parse_settings, problems_message, setting_name
from model import protocol as P


def test_no_options_means_defaults():
    settings, problems = parse_settings(None)
    assert settings == Settings() and problems == []
    assert settings.completion.languages == list(LANGUAGES)


def test_flat_camel_snake_and_nested_forms_are_all_accepted():
    flat = {"device": "CPU", "dtype": "BFloat16", "steps": 4, "speculate": 4, "maxTokens": 32, "debounceMs": 0, "languages": ["py", "typescriptreact"],
            "workerAddress": "tcp:127.0.0.1:9000", "workerToken": "t", "model": "/models/m", "minConfidence": 0.3}
    snake = {"device": "cpu", "dtype": "bfloat16", "steps": 4, "speculate": 4, "max_tokens": 32, "debounce_ms": 0, "languages": ["python", "tsx"],
             "worker_address": "tcp:127.0.0.1:9000", "worker_token": "t", "model": "/models/m", "min_confidence": 0.3}
    nested = {"model": {"path": "/models/m", "device": "cpu", "dtype": "bfloat16", "steps": 4, "speculate": 4, "maxTokens": 32},
              "completion": {"debounceMs": 0, "languages": ["python", "tsx"], "minConfidence": 0.3},
              "worker": {"address": "tcp:127.0.0.1:9000", "token": "t"}}
    for raw in (flat, {"infill": flat}, snake, nested):
        s, problems = parse_settings(raw)
        assert problems == [], raw
        assert (s.model.path, s.model.device, s.model.steps, s.model.max_tokens) == ("/models/m", "cpu", 4, 32)
        assert s.model.dtype == "bfloat16"
        assert s.completion.debounce_ms == 0 and s.completion.languages == ["python", "tsx"]
        assert s.completion.min_confidence == 0.3 and s.model.speculate == 4
        assert s.worker.address == "tcp:127.0.0.1:9000" and s.worker.token == "t"


def test_invalid_values_fall_back_to_defaults_and_are_named():
    s, problems = parse_settings({"device": "tpu", "steps": -1, "maxTokens": "many", "debounceMs": True,
                                  "languages": ["cobol"], "workerAddress": "nowhere", "minConfidence": 1.5,
                                  "speculate": 17, "dtype": "int8"})
    assert s == Settings()
    names = " ".join(problems)
    for name in ("infill.device", "infill.steps", "infill.maxTokens", "infill.debounceMs", "infill.languages",
                 "infill.workerAddress", "infill.minConfidence", "infill.speculate", "infill.dtype"):
        assert name in names
    assert len(problems) == 9
    message = problems_message(problems)
    assert message.startswith("infill: invalid settings") and "infill.device" in message
    _, problems = parse_settings({"debounce_ms": "slow"})
    assert problems_message(problems).startswith("infill: invalid setting infill.debounceMs: expected an integer")


def test_unknown_names_are_logged_not_reported():
    unknown: list[str] = []
    s, problems = parse_settings({"trace": {"server": "verbose"}, "server": {"path": "x"}, "colour": "red",
                                  "completion": {"shiny": 1}}, unknown=unknown)
    assert s == Settings() and problems == []
    assert set(unknown) == {"infill.trace", "infill.server", "infill.colour", "infill.completion.shiny"}
    _, problems = parse_settings(["not", "an", "object"])
    assert len(problems) == 1


def test_a_change_keeps_earlier_values_it_does_not_mention():
    first, _ = parse_settings({"debounceMs": 10})
    second, problems = parse_settings({"steps": 8}, base=first)
    assert problems == [] and second.completion.debounce_ms == 10 and second.model.steps == 8
    assert first.model.steps == 0  # the base is not mutated


def test_setting_names_are_the_user_facing_ones():
    assert setting_name("completion", "latency_budget_ms") == "infill.latencyBudgetMs"
    assert setting_name("worker", "address") == "infill.workerAddress"


def test_the_model_gate_sends_the_sampler_settings_with_each_fill():
    from collections import Counter

    from infill.types import FillRequest, FillResult
    from lsp_server.gate import ModelGate

    sent = []

    class Client:
        def fill(self, requests, cancel=None, options=None):
            sent.append(options)
            return [FillResult(text="x", model_calls=2, tokens=1) for _ in requests]

    settings = Settings()
    gate = ModelGate(Client(), settings, Counter())
    req = FillRequest("a = ", "\n", 4, "python")
    gate.fill([req])
    settings.model.steps, settings.model.speculate = 8, 4
    gate.fill([req])
    assert sent == [None, P.FillOptions(steps=8, speculate=4)]
    assert P.fill_message(1, [req], options=sent[1])["options"] == {"steps": 8, "speculate": 4}


def test_ranges_are_the_protocols():
    # one bound per setting: a value the settings accept is one the worker's schema accepts
    for name, limit in (("maxTokens", P.MAX_CANVAS_TOKENS), ("steps", P.MAX_STEPS), ("speculate", P.MAX_SPECULATE)):
        s, problems = parse_settings({name: limit})
        assert problems == [], name
        _, problems = parse_settings({name: limit + 1})
        assert len(problems) == 1 and f"to {limit}," in problems[0], problems
    s, _ = parse_settings({"maxTokens": 512, "steps": P.MAX_STEPS, "speculate": P.MAX_SPECULATE})
    assert s.model.max_tokens == 512
    msg = P.fill_message(1, [FillRequest("a", "b", s.model.max_tokens)], options=fill_options(s.model))
    assert P.check_request(msg)["requests"][0]["canvas_tokens"] == 512


def test_each_field_has_one_name():
    fields = [(section, attr) for section, attr, _ in SETTINGS.values()]
    assert len(fields) == len(set(fields))
    declared = {(f.name, g.name) for f in dataclasses.fields(Settings)
                for g in dataclasses.fields(type(getattr(Settings(), f.name)))}
    assert declared == set(fields)


def test_fill_options_leave_zero_to_the_worker():
    s, _ = parse_settings({"steps": 0, "speculate": 0})
    assert fill_options(s.model) is None  # 0 = the worker's own choice, so nothing is sent
    s, _ = parse_settings({"steps": 6})
    assert fill_options(s.model) == P.FillOptions(steps=6)
