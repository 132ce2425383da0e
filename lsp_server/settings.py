"""Server settings: nested dataclasses with defaults, read from ``initializationOptions`` and
``workspace/didChangeConfiguration``; each invalid value falls back to its default and is named.

The user-facing names are camelCase under an ``infill`` section (VS Code ``settings.json`` keys
like ``infill.completion.debounceMs``; Neovim ``init_options``/``settings`` tables). Every setting,
with type, default and examples, is documented in ``lsp_server/SETTINGS.md``:

    infill.model.path               str|null   null (the shipped starter model)  checkpoint directory
    infill.model.device             str        "auto"   auto | cpu | cuda | cuda:N
    infill.model.steps              int        0        model calls per fill (0 = sampler decides)
    infill.model.maxTokens          int        64       largest canvas (tokens) the model may fill
    infill.model.threads            int        0        torch threads in the worker (0 = torch default)
    infill.completion.enable        bool       true     answer inline completion / completion at all
    infill.completion.languages     [str]      all      languages served (python, javascript, ...)
    infill.completion.debounceMs    int        150      wait after an automatic trigger before working
    infill.completion.latencyBudgetMs int      2000     per-request time budget; later work is cancelled
    infill.completion.maxContextChars int      16000    text on each side of the span sent to the model
    infill.completion.cacheSize     int        256      suggestions kept in the LRU cache
    infill.worker.address           str|null   null     "unix:/path" or "tcp:HOST:PORT"; null = start one
    infill.worker.token             str|null   null     shared secret for a TCP worker
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any

from infill.syntax import LANGUAGES, UnknownLanguage, normalize_language

DEVICES = ("auto", "cpu", "cuda")


@dataclass
class ModelSettings:
    """Which checkpoint the worker loads and how it samples."""

    path: str | None = None  # checkpoint directory; None = the shipped starter model
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    steps: int = 0  # model calls per fill; 0 lets the sampler choose (threshold + schedule)
    max_tokens: int = 64  # canvas cap in tokens
    threads: int = 0  # torch intra-op threads in the worker; 0 = torch default


@dataclass
class CompletionSettings:
    """When and how completions are computed."""

    enable: bool = True
    languages: list[str] = field(default_factory=lambda: list(LANGUAGES))
    debounce_ms: int = 150  # automatic triggers wait this long; a newer request supersedes
    latency_budget_ms: int = 2000  # whole request, model included; past it the work is cancelled
    max_context_chars: int = 16000  # cap on prefix and on suffix text sent to the model
    cache_size: int = 256


@dataclass
class WorkerSettings:
    """Where the model worker runs; by default the server starts its own on a private unix socket."""

    address: str | None = None  # "unix:/path" or "tcp:HOST:PORT"
    token: str | None = None  # required by a TCP worker


@dataclass
class Settings:
    model: ModelSettings = field(default_factory=ModelSettings)
    completion: CompletionSettings = field(default_factory=CompletionSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)


# (section, field) -> (check(value) -> normalized value or raise ValueError, description of the valid values)
def _int_range(lo: int, hi: int):
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ValueError(f"an integer from {lo} to {hi}")
        return value
    return check


def _opt_str(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 4096 or "\x00" in value:
        raise ValueError("a string or null")
    return value


def _device(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("one of auto, cpu, cuda, cuda:N")
    v = value.strip().lower()
    if v in DEVICES or (v.startswith("cuda:") and v[5:].isdigit()):
        return v
    raise ValueError("one of auto, cpu, cuda, cuda:N")


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("true or false")
    return value


def _languages(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"a list of language names ({', '.join(LANGUAGES)})")
    out = []
    for name in value:
        try:
            out.append(normalize_language(name))
        except UnknownLanguage:
            raise ValueError(f"a list of language names ({', '.join(LANGUAGES)}); {name!r} is unknown") from None
    return sorted(set(out), key=out.index)


def _address(value: Any) -> str | None:
    v = _opt_str(value)
    if v is None or v.startswith(("unix:", "/")):
        return v
    host, sep, port = v.removeprefix("tcp:").rpartition(":")
    if sep and host and port.isdigit() and 0 < int(port) < 65536:
        return v
    raise ValueError('"unix:/path/to/socket" or "tcp:HOST:PORT"')


CHECKS: dict[str, dict[str, Any]] = {
    "model": {"path": _opt_str, "device": _device, "steps": _int_range(0, 512),
              "max_tokens": _int_range(1, 1024), "threads": _int_range(0, 256)},
    "completion": {"enable": _bool, "languages": _languages, "debounce_ms": _int_range(0, 5000),
                   "latency_budget_ms": _int_range(50, 120_000), "max_context_chars": _int_range(256, 1_000_000),
                   "cache_size": _int_range(0, 100_000)},
    "worker": {"address": _address, "token": _opt_str},
}


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def setting_name(section: str, name: str) -> str:
    """The user-facing name, e.g. ``infill.completion.debounceMs``."""
    return f"infill.{section}.{camel(name)}"


def parse_settings(raw: Any, base: Settings | None = None) -> tuple[Settings, list[str]]:
    """Settings from a JSON-like object; returns (settings, problems) where each problem names a setting.

    ``raw`` may be the ``infill`` section itself or an object holding it under ``"infill"``. Values
    missing from ``raw`` keep ``base`` (or the defaults); invalid ones get the default.
    """
    settings = dataclasses.replace(base or Settings())
    settings.model = dataclasses.replace(settings.model)
    settings.completion = dataclasses.replace(settings.completion)
    settings.worker = dataclasses.replace(settings.worker)
    problems: list[str] = []
    if raw is None:
        return settings, problems
    if isinstance(raw, dict) and isinstance(raw.get("infill"), dict):
        raw = raw["infill"]
    if not isinstance(raw, dict):
        return settings, [f"infill: expected an object of settings, got {type(raw).__name__}; using defaults"]
    defaults = Settings()
    for section, value in raw.items():
        if section not in CHECKS:
            problems.append(f"infill.{section}: unknown setting (ignored)")
            continue
        if not isinstance(value, dict):
            problems.append(f"infill.{section}: expected an object; using defaults")
            continue
        target, default_section = getattr(settings, section), getattr(defaults, section)
        by_camel = {camel(f.name): f.name for f in fields(target)}
        for key, item in value.items():
            attr = by_camel.get(key) or (key if key in CHECKS[section] else None)
            if attr is None:
                problems.append(f"infill.{section}.{key}: unknown setting (ignored)")
                continue
            try:
                setattr(target, attr, CHECKS[section][attr](item))
            except ValueError as exc:
                default = getattr(default_section, attr)
                setattr(target, attr, default)
                problems.append(f"{setting_name(section, attr)}: expected {exc}, got {_show(item)}; "
                                f"using the default {_show(default)}")
    return settings, problems


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def problems_message(problems: list[str]) -> str:
    """One user-facing sentence for all invalid settings."""
    if len(problems) == 1:
        return f"infill: invalid setting {problems[0]}"
    return "infill: invalid settings: " + "; ".join(problems)
