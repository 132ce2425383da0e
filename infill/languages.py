"""Which languages the project knows, by name and by file extension: plain tables, no tree-sitter.

``infill.syntax`` loads the grammars named here; the command line checks a file's language with
these tables before anything heavy is imported.
"""

from __future__ import annotations


class UnknownLanguage(ValueError):
    """The language has no grammar in this installation."""


# language id -> (module, function returning the grammar pointer)
GRAMMARS: dict[str, tuple[str, str]] = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "java": ("tree_sitter_java", "language"),
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
}

# LSP languageId / common aliases -> our language id
_ALIASES = {
    "py": "python", "python3": "python",
    "js": "javascript", "javascriptreact": "javascript", "jsx": "javascript",
    "ts": "typescript", "typescriptreact": "tsx",
    "golang": "go", "rs": "rust",
    "h": "c", "c++": "cpp", "cc": "cpp", "cxx": "cpp", "hpp": "cpp", "cuda": "cpp",
}

# file extension -> language id
EXTENSIONS = {
    ".py": "python", ".pyi": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx",
    ".go": "go", ".rs": "rust", ".java": "java",
    ".c": "c", ".h": "c",
    ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp", ".hxx": "cpp",
}

LANGUAGES: tuple[str, ...] = tuple(GRAMMARS)


def normalize_language(name: str | None) -> str:
    """Map an LSP languageId, alias or extension to one of ``LANGUAGES``; raise UnknownLanguage."""
    if not name:
        raise UnknownLanguage("no language given")
    key = name.strip().lower()
    if key.startswith(".") and key in EXTENSIONS:
        return EXTENSIONS[key]
    key = _ALIASES.get(key, key)
    if key not in GRAMMARS:
        raise UnknownLanguage(f"unsupported language {name!r}; supported: {', '.join(LANGUAGES)}")
    return key


def language_for_path(path: str) -> str | None:
    """The language id for a file path from its extension, or None."""
    dot = path.rfind(".")
    return EXTENSIONS.get(path[dot:].lower()) if dot >= 0 else None
