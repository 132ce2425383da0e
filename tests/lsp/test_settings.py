"""Settings validation without a server: defaults, camelCase names, fallbacks that name the setting."""

from __future__ import annotations

from infill.syntax import LANGUAGES
from lsp_server.settings import Settings, parse_settings, problems_message, setting_name


def test_no_options_means_defaults():
    settings, problems = parse_settings(None)
    assert settings == Settings() and problems == []
    assert settings.completion.languages == list(LANGUAGES)


def test_valid_values_are_taken_with_or_without_the_infill_section():
    raw = {"model": {"device": "CPU", "steps": 4, "maxTokens": 32}, "completion": {"debounceMs": 0,
           "languages": ["py", "typescriptreact"]}, "worker": {"address": "tcp:127.0.0.1:9000", "token": "t"}}
    for wrapped in (raw, {"infill": raw}):
        s, problems = parse_settings(wrapped)
        assert problems == []
        assert (s.model.device, s.model.steps, s.model.max_tokens) == ("cpu", 4, 32)
        assert s.completion.debounce_ms == 0 and s.completion.languages == ["python", "tsx"]
        assert s.worker.address == "tcp:127.0.0.1:9000" and s.worker.token == "t"


def test_invalid_values_fall_back_to_defaults_and_are_named():
    s, problems = parse_settings({"model": {"device": "tpu", "steps": -1, "maxTokens": "many"},
                                  "completion": {"debounceMs": True, "languages": ["cobol"]},
                                  "worker": {"address": "nowhere"}})
    assert s == Settings()
    names = " ".join(problems)
    for name in ("infill.model.device", "infill.model.steps", "infill.model.maxTokens",
                 "infill.completion.debounceMs", "infill.completion.languages", "infill.worker.address"):
        assert name in names
    assert len(problems) == 6
    message = problems_message(problems)
    assert message.startswith("infill: invalid settings") and "infill.model.device" in message


def test_unknown_names_and_wrong_shapes_are_reported_not_fatal():
    s, problems = parse_settings({"model": {"colour": "red"}, "bogus": {}, "completion": 3})
    assert s == Settings()
    assert any("infill.model.colour" in p for p in problems)
    assert any("infill.bogus" in p for p in problems)
    assert any("infill.completion" in p for p in problems)
    _, problems = parse_settings(["not", "an", "object"])
    assert len(problems) == 1


def test_a_change_keeps_earlier_values_it_does_not_mention():
    first, _ = parse_settings({"completion": {"debounceMs": 10}})
    second, problems = parse_settings({"model": {"steps": 8}}, base=first)
    assert problems == [] and second.completion.debounce_ms == 10 and second.model.steps == 8
    assert first.model.steps == 0  # the base is not mutated


def test_setting_names_are_camel_case():
    assert setting_name("completion", "latency_budget_ms") == "infill.completion.latencyBudgetMs"
