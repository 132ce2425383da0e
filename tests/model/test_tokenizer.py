from hypothesis import given, settings
from hypothesis import strategies as st

from model.config import SPECIAL_TOKENS


def test_special_tokens_have_the_first_ids(tiny_tokenizer):
    assert [tiny_tokenizer.token_id(t) for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_every_string_round_trips(tiny_tokenizer, text):
    assert tiny_tokenizer.decode(tiny_tokenizer.encode(text)) == text


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_every_byte_sequence_round_trips_through_its_text(tiny_tokenizer, data):
    # Editors send text; arbitrary bytes arrive decoded (invalid UTF-8 as surrogate escapes or U+FFFD).
    text = data.decode("utf-8", errors="replace")
    assert tiny_tokenizer.decode(tiny_tokenizer.encode(text)) == text


def test_offsets_cover_the_text(tiny_tokenizer):
    text = "def add(a, b):\n    return a + b  # é\n"
    ids, offsets = tiny_tokenizer.encode_with_offsets(text)
    assert len(ids) == len(offsets)
    assert offsets[0][0] == 0 and offsets[-1][1] == len(text)
    assert all(a <= b for a, b in offsets)
