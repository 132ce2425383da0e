"""Context windows: budgets cut at line boundaries, nearest text kept, enclosing headers restored."""

from __future__ import annotations

from infill.context import ContextConfig, build_context, default_count_tokens, enclosing_headers


def chars(s: str) -> int:
    """A token counter of one token per character, so budgets are easy to reason about."""
    return len(s)


def numbered(n: int, indent: str = "    ") -> str:
    return "".join(f"{indent}v{i} = {i}\n" for i in range(n))


def test_default_count_is_about_three_and_a_half_chars_per_token():
    assert default_count_tokens("") == 0
    assert default_count_tokens("x" * 35) == 10
    assert default_count_tokens("x" * 36) == 11


def test_prefix_and_suffix_are_cut_at_line_boundaries_keeping_the_nearest_lines():
    text = numbered(100, indent="")
    offset = text.index("v50 = 50") + len("v50 = ")
    win = build_context(text, offset, offset, None, ContextConfig(prefix_tokens=40, suffix_tokens=30),
                        count_tokens=chars)
    assert text[win.prefix_start:offset] == win.prefix  # no headers without a language
    assert win.prefix_start > 0 and text[win.prefix_start - 1] == "\n"  # starts at a line start
    assert win.prefix.endswith("v49 = 49\nv50 = ")  # the nearest lines are kept
    assert chars(win.prefix) <= 40
    assert win.suffix == text[offset:win.suffix_end]
    assert win.suffix.startswith("50\nv51 = 51\n") and win.suffix.endswith("\n")  # ends at a line end
    assert chars(win.suffix) <= 30
    # One more line would have overflowed each budget.
    prev_line_start = text.rfind("\n", 0, win.prefix_start - 1) + 1
    assert chars(text[prev_line_start:offset]) > 40
    next_line_end = text.index("\n", win.suffix_end) + 1
    assert chars(text[offset:next_line_end]) > 30


def test_whole_document_fits_and_nothing_is_added():
    text = "def f(x):\n    return x\n"
    offset = text.index("return x") + len("return ")
    win = build_context(text, offset, offset, "python", ContextConfig(), count_tokens=chars)
    assert win.prefix == text[:offset] and win.suffix == text[offset:]
    assert win.headers == () and win.prefix_start == 0 and win.suffix_end == len(text)


def test_span_range_is_excluded_from_both_sides():
    text = "a = 1\nb = 2\nc = 3\n"
    start, end = text.index("b"), text.index("c")
    win = build_context(text, start, end, "python", ContextConfig(), count_tokens=chars)
    assert win.prefix == "a = 1\n" and win.suffix == "c = 3\n"


def test_python_headers_of_enclosing_definitions_are_kept_outermost_first():
    text = ("import os\n\n\nclass Store:\n    \"\"\"Doc.\"\"\"\n\n    def load(self, path):\n"
            + numbered(60, indent="        ") + "        return \n\n    def save(self):\n        pass\n")
    offset = text.index("return ") + len("return ")
    win = build_context(text, offset, offset, "python", ContextConfig(prefix_tokens=120, suffix_tokens=40),
                        count_tokens=chars)
    assert win.headers == ("class Store:", "    def load(self, path):")
    assert win.prefix.startswith("class Store:\n    def load(self, path):\n        v")
    assert win.prefix.endswith("        v59 = 59\n        return ")
    assert "import os" not in win.prefix  # not an enclosing definition
    assert chars(win.prefix) <= 120  # headers are paid from the prefix budget
    kept = win.prefix[len("class Store:\n    def load(self, path):\n"):]
    assert text[win.prefix_start:offset] == kept


def test_multiline_signature_header_is_kept_whole():
    text = "def compute(\n    a,\n    b,\n):\n" + numbered(50) + "    return \n"
    offset = text.rindex("return ") + len("return ")
    win = build_context(text, offset, offset, "python", ContextConfig(prefix_tokens=100), count_tokens=chars)
    assert win.headers == ("def compute(\n    a,\n    b,\n):",)


def test_header_inside_the_window_is_not_repeated():
    text = "class A:\n" + numbered(10) + "    def f(self):\n        x = 1\n        return \n"
    offset = text.index("return ") + len("return ")
    win = build_context(text, offset, offset, "python", ContextConfig(prefix_tokens=60), count_tokens=chars)
    # "    def f(self):" fits in the window; only the class header had to be restored.
    assert win.headers == ("class A:",)
    assert win.prefix.count("def f(self):") == 1


def test_keep_headers_false_keeps_only_the_window():
    text = "class A:\n    def f(self):\n" + numbered(40, indent="        ") + "        return \n"
    offset = text.index("return ") + len("return ")
    win = build_context(text, offset, offset, "python", ContextConfig(prefix_tokens=60, keep_headers=False),
                        count_tokens=chars)
    assert win.headers == () and win.prefix == text[win.prefix_start:offset]


def test_blank_line_after_a_python_body_still_belongs_to_the_function():
    text = "def f():\n    a = 1\n    b = 2\n\n    \n"
    offset = len(text) - 1  # on the indented blank line
    assert [h for _, h in enclosing_headers(text, offset, "python")] == ["def f():"]
    # At column 0 after the body the function is over.
    text2 = "def f():\n    a = 1\n\n"
    assert enclosing_headers(text2, len(text2), "python") == []


def test_javascript_headers():
    body = "".join(f"    total += {i};\n" for i in range(40))
    text = f"class Cart {{\n  sum(items) {{\n    let total = 0;\n{body}    return \n  }}\n}}\n"
    offset = text.index("return ") + len("return ")
    win = build_context(text, offset, offset, "javascript", ContextConfig(prefix_tokens=100), count_tokens=chars)
    assert win.headers == ("class Cart {", "  sum(items) {")
    assert win.prefix.endswith("    return ")


def test_go_headers():
    body = "".join(f"\tx{i} := {i}\n" for i in range(40))
    text = f"package main\n\nfunc (s *Server) Handle(w Writer, r *Request) error {{\n{body}\treturn \n}}\n"
    offset = text.index("return ") + len("return ")
    win = build_context(text, offset, offset, "go", ContextConfig(prefix_tokens=160), count_tokens=chars)
    assert win.headers == ("func (s *Server) Handle(w Writer, r *Request) error {",)
    assert "package main" not in win.prefix


def test_huge_single_line_is_cut_inside_the_line():
    text = "x = [" + ", ".join(str(i) for i in range(5000)) + "]\n"
    offset = len(text) - 2
    win = build_context(text, offset, offset, "python", ContextConfig(prefix_tokens=100, suffix_tokens=10),
                        count_tokens=chars)
    assert 0 < len(win.prefix) <= 100 and text[:offset].endswith(win.prefix)


def test_injected_counter_sets_the_budget():
    text = numbered(100, indent="")
    offset = len(text)
    words = lambda s: len(s.split())  # noqa: E731 - three "tokens" per line
    win = build_context(text, offset, offset, None, ContextConfig(prefix_tokens=30), count_tokens=words)
    assert win.prefix.count("\n") == 10


def test_headers_use_at_most_half_the_budget_and_keep_the_innermost():
    depth = 8
    text = "".join("    " * i + f"def level_{i}_with_a_long_name():\n" for i in range(depth))
    text += numbered(30, indent="    " * depth) + "    " * depth + "return \n"
    offset = text.index("return ") + len("return ")
    win = build_context(text, offset, offset, "python", ContextConfig(prefix_tokens=200), count_tokens=chars)
    assert win.headers, "some headers are restored"
    assert sum(len(h) + 1 for h in win.headers) <= 100
    assert win.headers[-1].strip() == f"def level_{depth - 1}_with_a_long_name():"


def test_rust_impl_and_fn_headers():
    body = "".join(f"        let x{i} = {i};\n" for i in range(40))
    text = f"struct Foo;\n\nimpl Foo {{\n    fn bar(&self) -> i32 {{\n{body}        \n    }}\n}}\n"
    offset = text.index("        \n    }") + 8
    win = build_context(text, offset, offset, "rust", ContextConfig(prefix_tokens=160), count_tokens=chars)
    assert win.headers == ("impl Foo {", "    fn bar(&self) -> i32 {")
