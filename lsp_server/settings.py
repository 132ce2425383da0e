"""Server settings: nested dataclasses with defaults, read from ``initializationOptions`` and
``workspace/didChangeConfiguration``; each invalid value falls back to its default and is named.

Users write flat names under an ``infill`` section (VS Code ``settings.json``: ``"infill.debounceMs"``;
Neovim: ``init_options = { debounce_ms = 100 }``); camelCase and snake_case both work, and the
nested form (``{"completion": {"debounceMs": 100}}``) is accepted too. Unknown names are logged,
not shown (editors send their own client-side keys in the same section). Full reference with
examples: ``lsp_server/SETTINGS.md``.

    infill.model            str|null  null     checkpoint directory or cached hub id (null: the shipped starter)
    infill.device           str       "auto"   auto | cpu | cuda | cuda:N
    infill.dtype            str       "auto"   auto | float32 | bfloat16 | float16 (auto: bf16 on a GPU or AMX CPU)
    infill.steps            int       0        model calls per fill (0: the sampler decides)
    infill.speculate        int       0        canvases per model call for exact self-speculative decoding (0: off)
    infill.copyPrior        bool      true     mix n-gram copies from the context into the model's scores
    infill.maxTokens        int       64       largest completion canvas, in tokens (up to 1024)
    infill.threads          int       0        torch threads in the worker (0: torch default)
    infill.enable           bool      true     answer completion requests at all
    infill.languages        [str]     all      languages served (python, javascript, typescript, ...)
    infill.debounceMs       int       150      wait after an automatic trigger before working
    infill.latencyBudgetMs  int       2000     per-request time budget; past it model work stops
    infill.minConfidence    float     0.7      drop completions whose tokens' mean probability is lower
    infill.maxSuggestions   int       3        inline items per request, best first (1 to 10)
    infill.maxContextChars  int       16000    bound on the text sent on each side of the span
    infill.cacheSize        int       256      suggestions kept in the LRU cache
    infill.workerAddress    str|null  null     "unix:/path" or "tcp:HOST:PORT" (null: start our own)
    infill.workerToken      str|null  null     shared secret of a TCP worker
    infill.workspaceIndex   bool      true     index the workspace folders for related snippets
    infill.workspaceMaxFiles int      5000     files the workspace index holds
    infill.workspaceMaxBytes int      32000000 text the workspace index holds, in bytes
    infill.relatedChars     int       4000     related snippets sent with each fill, in characters (0: none)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from infill.engine import EngineConfig
from infill.syntax import LANGUAGES, UnknownLanguage, normalize_language
from infill.workspace import WorkspaceConfig
from model.config import DTYPE_NAMES
from model.protocol import MAX_CANVAS_TOKENS, MAX_RELATED_CHARS, MAX_SPECULATE, MAX_STEPS, FillOptions

DEVICES = ("auto", "cpu", "cuda")


@dataclass
class ModelSettings:
    """Which checkpoint the worker loads and how it samples. Each field reaches one place: ``path``,
    ``device``, ``dtype`` and ``threads`` the worker's command line (``WorkerOptions``); ``steps``,
    ``speculate`` and ``copy_prior`` every fill message (``fill_options``, a ``model.protocol.FillOptions``);
    ``max_tokens`` the engine's canvas cap (``infill.canvas.CanvasConfig.max_tokens``)."""

    path: str | None = None  # checkpoint directory or cached hub id; None = the shipped starter model
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16 (model.modeling.pick_dtype)
    steps: int = 0  # model calls per fill; 0 lets the sampler choose (threshold + schedule)
    speculate: int = 0  # canvases per model call (self-speculative decoding, same output); 0 = off
    max_tokens: int = 64  # completion canvas cap in tokens; the worker refuses (and the user is told) one it cannot fit
    threads: int = 0  # torch intra-op threads in the worker; 0 = torch default
    copy_prior: bool = True  # the worker's copy prior (model.copy_prior, its weight there); False turns it off


@dataclass
class CompletionSettings:
    """When and how completions are computed."""

    enable: bool = True
    languages: list[str] = field(default_factory=lambda: list(LANGUAGES))
    debounce_ms: int = 150  # automatic triggers wait this long; a newer request supersedes
    latency_budget_ms: int = 2000  # whole request, model included; past it model work stops
    # Completions (not commands) below this mean token probability are dropped; the default is the
    # engine's, the floor chosen on the development set (``infill.engine.EngineConfig.min_confidence``)
    min_confidence: float = EngineConfig.min_confidence
    max_suggestions: int = EngineConfig.max_suggestions  # inline/completion items per request, best first
    # Bound on the prefix and on the suffix text in a fill message (a message size bound: the context
    # budget, in tokens, is ``infill.types.ContextBudget``, and it cuts far earlier at the default)
    max_context_chars: int = 16000
    cache_size: int = 256


@dataclass
class WorkerSettings:
    """Where the model worker runs; by default the server starts its own on a private unix socket."""

    address: str | None = None  # "unix:/path" or "tcp:HOST:PORT"
    token: str | None = None  # required by a TCP worker


@dataclass
class WorkspaceSettings:
    """The workspace index (``lsp_server/workspace.py``) and the related snippets sent with each fill:
    ``max_files`` and ``max_bytes`` reach ``infill.workspace.WorkspaceConfig``, ``related_chars`` each
    request's ``FillRequest.related`` (bounded by ``model.protocol.MAX_RELATED_CHARS``)."""

    enable: bool = True  # scan the workspace folders; open documents are related texts either way
    max_files: int = WorkspaceConfig.max_files
    max_bytes: int = WorkspaceConfig.max_total_bytes
    related_chars: int = WorkspaceConfig.related_chars  # 0: no related texts


@dataclass
class Settings:
    model: ModelSettings = field(default_factory=ModelSettings)
    completion: CompletionSettings = field(default_factory=CompletionSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    workspace: WorkspaceSettings = field(default_factory=WorkspaceSettings)


# (section, field) -> (check(value) -> normalized value or raise ValueError, description of the valid values)
def _int_range(lo: int, hi: int):
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ValueError(f"an integer from {lo} to {hi}")
        return value
    return check


def _unit_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError("a number from 0 to 1")
    return float(value)


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


def _dtype(value: Any) -> str:
    v = value.strip().lower() if isinstance(value, str) else None
    if v not in DTYPE_NAMES:
        raise ValueError(f"one of {', '.join(DTYPE_NAMES)}")
    return v


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


# user-facing name -> (section, field, check(value) -> normalized value, raising ValueError("expected ..."))
SETTINGS: dict[str, tuple[str, str, Any]] = {
    "model": ("model", "path", _opt_str),
    "device": ("model", "device", _device),
    "dtype": ("model", "dtype", _dtype),
    "steps": ("model", "steps", _int_range(0, MAX_STEPS)),
    "speculate": ("model", "speculate", _int_range(0, MAX_SPECULATE)),
    "maxTokens": ("model", "max_tokens", _int_range(1, MAX_CANVAS_TOKENS)),
    "copyPrior": ("model", "copy_prior", _bool),
    "threads": ("model", "threads", _int_range(0, 256)),
    "enable": ("completion", "enable", _bool),
    "languages": ("completion", "languages", _languages),
    "debounceMs": ("completion", "debounce_ms", _int_range(0, 5000)),
    "latencyBudgetMs": ("completion", "latency_budget_ms", _int_range(50, 120_000)),
    "minConfidence": ("completion", "min_confidence", _unit_float),
    "maxSuggestions": ("completion", "max_suggestions", _int_range(1, 10)),
    "maxContextChars": ("completion", "max_context_chars", _int_range(256, 1_000_000)),
    "cacheSize": ("completion", "cache_size", _int_range(0, 100_000)),
    "workerAddress": ("worker", "address", _address),
    "workerToken": ("worker", "token", _opt_str),
    "workspaceIndex": ("workspace", "enable", _bool),
    "workspaceMaxFiles": ("workspace", "max_files", _int_range(1, 1_000_000)),
    "workspaceMaxBytes": ("workspace", "max_bytes", _int_range(100_000, 1_000_000_000)),
    "relatedChars": ("workspace", "related_chars", _int_range(0, MAX_RELATED_CHARS)),
}
_BY_FIELD = {(section, attr): name for name, (section, attr, _) in SETTINGS.items()}


def fill_options(model: ModelSettings) -> FillOptions | None:
    """The sampler settings every fill message carries (None: all at the worker's defaults)."""
    options = FillOptions(steps=model.steps or None, speculate=model.speculate or None,
                          copy_prior=None if model.copy_prior else False)
    return options if options.to_wire() else None


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


_ALIASES = {**{n: n for n in SETTINGS}, **{_snake(n): n for n in SETTINGS}}


def setting_name(section: str, attr: str) -> str:
    """The user-facing name of a dataclass field, e.g. ``infill.debounceMs``."""
    return f"infill.{_BY_FIELD[(section, attr)]}"


def _flatten(raw: dict, unknown: list[str]) -> dict[str, Any]:
    """Flat ``{name: value}`` from flat or nested input (``{"completion": {"debounceMs": 1}}``)."""
    flat: dict[str, Any] = {}
    for key, value in raw.items():
        key = str(key)
        if key in ("completion", "worker", "workspace") or (key == "model" and isinstance(value, dict)):
            if not isinstance(value, dict):
                unknown.append(f"infill.{key}")
                continue
            for sub, item in value.items():
                sub = str(sub)
                attr = _snake(sub)
                name = _BY_FIELD.get((key, attr)) or _BY_FIELD.get((key, "path" if attr == "id" else attr))
                if name is None:
                    unknown.append(f"infill.{key}.{sub}")
                else:
                    flat[name] = item
        elif key in _ALIASES:
            flat[_ALIASES[key]] = value
        else:
            unknown.append(f"infill.{key}")
    return flat


def parse_settings(raw: Any, base: Settings | None = None, unknown: list[str] | None = None
                   ) -> tuple[Settings, list[str]]:
    """Settings from a JSON-like object; returns (settings, problems) where each problem names a setting.

    ``raw`` may be the ``infill`` section itself or an object holding it under ``"infill"``. Values
    missing from ``raw`` keep ``base`` (or the defaults); invalid ones get the default. Unknown
    names are appended to ``unknown`` (for the log), not reported as problems.
    """
    settings = dataclasses.replace(base or Settings())
    settings.model = dataclasses.replace(settings.model)
    settings.completion = dataclasses.replace(settings.completion)
    settings.worker = dataclasses.replace(settings.worker)
    settings.workspace = dataclasses.replace(settings.workspace)
    problems: list[str] = []
    unknown = unknown if unknown is not None else []
    if raw is None:
        return settings, problems
    if isinstance(raw, dict) and isinstance(raw.get("infill"), dict):
        raw = raw["infill"]
    if not isinstance(raw, dict):
        return settings, [f"infill: expected an object of settings, got {type(raw).__name__}; using defaults"]
    defaults = Settings()
    for name, value in _flatten(raw, unknown).items():
        section, attr, check = SETTINGS[name]
        try:
            setattr(getattr(settings, section), attr, check(value))
        except ValueError as exc:
            default = getattr(getattr(defaults, section), attr)
            setattr(getattr(settings, section), attr, default)
            problems.append(f"infill.{name}: expected {exc}, got {_show(value)}; using the default {_show(default)}")
    return settings, problems


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def problems_message(problems: list[str]) -> str:
    """One user-facing sentence for all invalid settings."""
    if len(problems) == 1:
        return f"infill: invalid setting {problems[0]}"
    return "infill: invalid settings: " + "; ".join(problems)
