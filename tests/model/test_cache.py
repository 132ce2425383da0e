"""Context cache and text denoiser on a tiny random checkpoint."""

import dataclasses

import pytest
import torch

from infill.types import FillRequest
from model.cache import CanvasModel, Row
from model.errors import CanvasTooLong
from model.modeling import load_denoiser
from model.text_denoiser import DenoiserOptions, TextDenoiser


def test_first_cached_step_equals_full_forward_and_bidirectional(tiny_checkpoint):
    torch.set_num_threads(1)
    d = load_denoiser(tiny_checkpoint, device="cpu", dtype="float32")
    cfg = d.config
    tok = d.tokenizer
    row = Row(tok.encode("def add(a, b):\n    return"), tok.encode("\n\nprint(add(1, 2))\n"), 6)
    cached = CanvasModel(d.model, [row], cfg.mask_id, cfg.pad_id, cfg.shift, cfg.eof_id, use_cache=True)
    full = CanvasModel(d.model, [row], cfg.mask_id, cfg.pad_id, cfg.shift, cfg.eof_id, use_cache=False)
    x = cached.initial_canvas(cfg.mask_id)
    assert torch.allclose(cached(x), full(x), atol=1e-5)
    # later steps reuse the context: only the block is recomputed, the result stays close
    x[0, :3] = torch.tensor(tok.encode(" a + b")[:3])
    assert cached(x).shape == full(x).shape == (1, 6, tok.vocab_size)
    # bidirectional: the suffix changes the canvas logits
    other = Row(row.prefix, tok.encode("\n\nprint(add(3, 4))  # other\n"), 6)
    o = CanvasModel(d.model, [other], cfg.mask_id, cfg.pad_id, cfg.shift, cfg.eof_id, use_cache=False)
    assert not torch.allclose(o(o.initial_canvas(cfg.mask_id)), full(full.initial_canvas(cfg.mask_id)))


def test_batched_rows_equal_single_rows(tiny_checkpoint):
    d = load_denoiser(tiny_checkpoint, device="cpu", dtype="float32")
    cfg, tok = d.config, d.tokenizer
    a = Row(tok.encode("x = 1\ny ="), tok.encode("\nprint(y)\n"), 4)
    b = Row(tok.encode("def f():\n    return"), [], 7)
    both = CanvasModel(d.model, [a, b], cfg.mask_id, cfg.pad_id, cfg.shift, cfg.eof_id, use_cache=False)
    lb = both(both.initial_canvas(cfg.mask_id))
    for i, r in enumerate((a, b)):
        one = CanvasModel(d.model, [r], cfg.mask_id, cfg.pad_id, cfg.shift, cfg.eof_id, use_cache=False)
        lo = one(one.initial_canvas(cfg.mask_id))
        assert torch.allclose(lb[i, : r.canvas], lo[0], atol=1e-5)


def test_repeated_rows_are_computed_once_and_step_as_their_own(tiny_checkpoint):
    """The first call computes a row that repeats another (the engine's sampled retry) once; every
    row still gets its own outputs and keys/values, so later steps score each as when computed apart."""
    d = load_denoiser(tiny_checkpoint, device="cpu", dtype="float32")
    cfg, tok = d.config, d.tokenizer
    a = Row(tok.encode("x = 1\ny ="), tok.encode("\nprint(y)\n"), 4)
    b = Row(tok.encode("def f():\n    return"), [], 4)
    rows = [a, a, b, a]
    batch = CanvasModel(d.model, rows, cfg.mask_id, cfg.pad_id, cfg.shift, cfg.eof_id)
    widths = []
    hook = d.model.model.register_forward_pre_hook(lambda m, args, kw: widths.append(kw["input_ids"].shape[0]),
                                                   with_kwargs=True)
    try:
        first = batch(batch.initial_canvas(cfg.mask_id))
        step = batch.initial_canvas(cfg.mask_id)
        step[:, 0] = torch.tensor(tok.encode("a")[:1] * 2 + tok.encode("b")[:1] * 2)  # the copies of a now differ
        second = batch(step)
    finally:
        hook.remove()
    assert widths == [2, 4]  # a and b once, then all four rows
    for i, r in enumerate(rows):
        one = CanvasModel(d.model, [r], cfg.mask_id, cfg.pad_id, cfg.shift, cfg.eof_id)
        assert torch.allclose(first[i], one(one.initial_canvas(cfg.mask_id))[0], atol=1e-5)
        assert torch.allclose(second[i], one(step[i:i + 1])[0], atol=1e-5)


def test_finished_rows_are_dropped_and_the_rest_fill_as_before(tiny_checkpoint):
    """A batch whose rows end at different steps: once a row is done, CanvasModel computes only the
    open ones (``keep_rows``), and every row's fill is what it is when all rows are computed to the end."""
    from model.sampler import SamplerOptions, denoise

    d = load_denoiser(tiny_checkpoint, device="cpu", dtype="float32")
    cfg, tok = d.config, d.tokenizer
    rows = [Row(tok.encode("x = 1\ny ="), tok.encode("\nprint(y)\n"), n) for n in (2, 9, 5)]
    opts = SamplerOptions(threshold=None)
    fills, widths = [], []
    for dropping in (False, True):
        cm = CanvasModel(d.model, rows, cfg.mask_id, cfg.pad_id, cfg.shift, cfg.eof_id, canvas_cache=True)

        def step(x, cols, cm=cm):
            widths.append((dropping, x.shape[0]))
            return cm(x, cols)

        if dropping:
            step.keep_rows = cm.keep_rows
        res = denoise(step, cm.initial_canvas(cfg.mask_id), cfg.mask_id, opts, valid=cm.canvas_valid)
        fills.append((res.tokens, res.model_calls))
    assert torch.equal(fills[0][0], fills[1][0]) and fills[0][1] == fills[1][1] == 9
    assert [w for on, w in widths if not on] == [3] * 9
    assert [w for on, w in widths if on] == [3, 3, 2, 2, 2, 1, 1, 1, 1]  # the 2-token row after 2 steps, then the 5


def test_text_denoiser_fills_and_reuses_context(tiny_checkpoint):
    td = TextDenoiser(tiny_checkpoint, device="cpu", dtype="float32")
    req = FillRequest("def add(a, b):\n    return", "\n", 5, "python")
    r1 = td.fill([req])[0]
    r2 = td.fill([req])[0]
    assert isinstance(r1.text, str) and r1.model_calls >= 1 and r1.text == r2.text
    assert td.stats["cache_hits"] == 1
    # a canvas is never shortened: the far context gives way to fit the model's 256 positions
    many = td.fill([req, FillRequest("", "", 3), FillRequest("x" * 5000, "y" * 5000, 200)],
                   sampler=dataclasses.replace(td.options.sampler, steps=4))
    assert len(many) == 3 and many[2].timings["canvas_tokens"] == 200
    assert many[2].timings["context_tokens"] == 256 - 200 - 1 and many[2].timings["context_dropped"] > 0
    with pytest.raises(CanvasTooLong, match="256 positions"):
        td.fill([FillRequest("x", "y", 300)])
    assert td.fill([]) == []


def test_a_request_temperature_samples_reproducibly_and_keeps_batch_order(tiny_checkpoint):
    td = TextDenoiser(tiny_checkpoint, device="cpu", dtype="float32")
    greedy = FillRequest("def add(a, b):\n    return", "\n", 8, "python")
    hot = dataclasses.replace(greedy, temperature=1.5)
    g, h1 = td.fill([greedy])[0], td.fill([hot])[0]
    assert td.fill([hot])[0].text == h1.text  # seeded: the same request, the same fill
    # mixed temperatures in one call: each request gets what it would get alone, in order
    mixed = td.fill([hot, greedy, FillRequest("", "", 3)])
    assert [mixed[0].text, mixed[1].text] == [h1.text, g.text] and len(mixed) == 3
    # an untrained model's distribution is wide: sampling at 1.5 differs from greedy somewhere
    others = [td.fill([dataclasses.replace(greedy, canvas_tokens=n, temperature=1.5)])[0].text
              != td.fill([dataclasses.replace(greedy, canvas_tokens=n)])[0].text for n in (6, 8, 10, 12)]
    assert any(others)


def test_partial_word_is_healed_and_not_repeated(tiny_checkpoint):
    td = TextDenoiser(tiny_checkpoint, device="cpu", dtype="float32")
    prefix, heal = td._split_heal("def add(a, b):\n    ret")
    assert (prefix, heal) == ("def add(a, b):\n   ", " ret")
    allowed = td._first_allowed(["", heal])
    assert allowed[0].all() and allowed[1].any() and not allowed[1].all()
    assert all(td._vocab_pieces()[i].startswith(" ret") for i in allowed[1].nonzero().flatten().tolist())
    res = td.fill([FillRequest("def add(a, b):\n    ret", "\n", 4, "python")])[0]
    # the model re-generated " ret..." itself; only the part after the typed word is returned
    assert not res.text.startswith(" ret")
    # a word no token can start is left in the prefix
    assert td._split_heal("x = qqqqzzzz") == ("x = qqqqzzzz", "")


def test_a_trailing_newline_or_space_is_healed_but_indentation_is_not(tiny_checkpoint):
    td = TextDenoiser(tiny_checkpoint, device="cpu", dtype="float32")
    # BPE merges a newline with the next line's indentation: the model re-generates the newline token
    prefix, heal = td._split_heal("def add(a, b):\n")
    assert (prefix, heal) == ("def add(a, b):", "\n")
    allowed = td._first_allowed([heal])
    pieces = td._vocab_pieces()
    assert allowed[0].any() and all(pieces[i].startswith("\n") for i in allowed[0].nonzero().flatten().tolist())
    assert td._split_heal("x =") == ("x =", "")
    assert td._split_heal("x = ") == ("x =", " ")
    # indentation after a newline stays: healing it would only allow deeper indentation
    assert td._split_heal("def add(a, b):\n    ")[1] == ""



def test_a_whole_line_hole_lends_its_newline_to_the_suffix(tiny_checkpoint):
    from model.text_denoiser import _is_line_hole

    assert _is_line_hole(FillRequest("def f(x):\n", "    return x\n", 8))
    assert not _is_line_hole(FillRequest("def f(x):\n", "\n    return x\n", 8))  # suffix starts a line already
    assert not _is_line_hole(FillRequest("def f(x):", "    return x\n", 8))
    td = TextDenoiser(tiny_checkpoint, device="cpu", dtype="float32")
    seen = []
    real = td._row
    td._row = lambda req, heal="": seen.append(req.suffix) or real(req, heal)
    res = td.fill([FillRequest("def f(x):\n", "    return x\n", 8, "python")])[0]
    assert seen == ["\n    return x\n"]  # the model sees the suffix as it tokenizes in a file
    assert not res.text.strip() or res.text.endswith("\n")  # ... and a real fill gets the newline back


def _spy_on_fill_ids(td: TextDenoiser) -> dict:
    """Record the keyword arguments of each ``td.fill_ids`` call (the latest wins) and pass them on."""
    seen: dict = {}
    real = td.fill_ids

    def spy(rows, cancel=None, **kwargs):
        seen.update(kwargs)
        return real(rows, cancel, **kwargs)

    td.fill_ids = spy
    return seen


def test_a_single_line_fill_ends_at_its_first_line_break(tiny_checkpoint):
    td = TextDenoiser(tiny_checkpoint, device="cpu", dtype="float32")
    ends = td.line_end_ids().tolist()
    pieces = td._vocab_pieces()
    assert ends and all("\n" in pieces[i] for i in ends)
    assert all(i in ends for i, p in enumerate(pieces) if "\n" in p)
    seen = _spy_on_fill_ids(td)
    reqs = [FillRequest("x = (", ")\n", 12, "python", single_line=True),
            FillRequest("def f(x):\n", "    return x\n", 12, "python", single_line=True),  # heals a newline
            FillRequest("x = (", ")\n", 12, "python")]
    out = td.fill(reqs)
    # a healed line break is the fill's first token, so that row may not end at it
    assert seen["single_line"] == [True, False, False]
    assert "\n" not in out[0].text.rstrip("\n")


def test_a_request_stop_bias_reaches_its_row_and_ends_it(tiny_checkpoint):
    td = TextDenoiser(tiny_checkpoint, device="cpu", dtype="float32")
    seen = _spy_on_fill_ids(td)
    reqs = [FillRequest("x = (", ")\n", 8, "python"),  # no partial word to heal: any token may come first
            FillRequest("x = (", ")\n", 8, "python", stop_bias=20.0)]
    out = td.fill(reqs)
    assert seen["stop_bias"] == [0.0, 20.0]  # the sampler's default for a request without one
    assert out[1].text == "" and out[1].tokens == 0  # a stop that certain ends the span at once
    td.fill(reqs[:1])
    assert seen["stop_bias"] is None  # no bias anywhere: the sampler's fast path


def test_windowed_steps_compute_few_columns_and_fill_exactly_as_full_ones(tiny_checkpoint):
    from model.sampler import SamplerOptions, denoise

    d = load_denoiser(tiny_checkpoint, device="cpu", dtype="float32")
    cfg, tok = d.config, d.tokenizer
    rows = [Row(tok.encode("x = 1\ny ="), tok.encode("\nprint(y)\n"), 10),
            Row(tok.encode("def f():\n    return"), [], 16)]
    widths = []

    def narrow(x, cols):  # the head on the requested columns only
        widths.append(cols.stop - cols.start)
        return cm(x, cols)

    def full(x, cols):  # every column computed, then the requested ones kept
        return cm2(x)[:, cols]

    stops = tuple(i for i in (cfg.delete_id, cfg.eof_id, cfg.pad_id) if i is not None)
    for opts in (SamplerOptions(threshold=None, window=4), SamplerOptions(threshold=0.5, window=2),
                 SamplerOptions(threshold=None, window=3, steps=4)):  # a quota beyond the window: full columns
        cm = CanvasModel(d.model, rows, cfg.mask_id, cfg.pad_id, cfg.shift, cfg.eof_id)
        cm2 = CanvasModel(d.model, rows, cfg.mask_id, cfg.pad_id, cfg.shift, cfg.eof_id)
        canvas = cm.initial_canvas(cfg.mask_id)
        valid = cm.canvas_valid
        widths.clear()
        a = denoise(narrow, canvas, cfg.mask_id, opts, stops, valid=valid)
        b = denoise(full, canvas, cfg.mask_id, opts, stops, valid=valid)
        assert a.tokens.tolist() == b.tokens.tolist() and a.model_calls == b.model_calls
        if opts.steps:
            assert widths[0] == 16  # 16 masked in 4 steps needs 4 a step, more than the window of 3
        else:
            assert max(widths) <= opts.window + 6  # the two rows' windows, never the 16 columns


def test_canvas_cache_recomputes_only_around_the_window(tiny_checkpoint):
    d = load_denoiser(tiny_checkpoint, device="cpu", dtype="float32")
    cfg, tok = d.config, d.tokenizer
    row = Row(tok.encode("def add(a, b):\n    return"), tok.encode("\n\nprint(add(1, 2))\n"), 12)
    cc = CanvasModel(d.model, [row], cfg.mask_id, cfg.pad_id, cfg.shift, cfg.eof_id, canvas_cache=True, refresh_span=8)
    plain = CanvasModel(d.model, [row], cfg.mask_id, cfg.pad_id, cfg.shift, cfg.eof_id)
    x = cc.initial_canvas(cfg.mask_id)
    assert torch.allclose(cc(x), plain(x), atol=1e-5)  # the first step computes the whole block
    # nothing committed since: the cached block is exact, so a windowed step equals a whole one
    assert torch.allclose(cc(x, slice(2, 6)), plain(x, slice(2, 6)), atol=1e-5)
    assert (cc.calls, cc.partial_calls) == (2, 1)
    x[0, 0] = tok.encode(" a")[0]
    assert cc(x, slice(1, 5)).shape == (1, 4, tok.vocab_size) and cc.partial_calls == 2  # positions 0..4
    x[0, 1:10] = x[0, 0]  # more changed than refresh_span: the whole block again
    cc(x, slice(10, 12))
    assert cc.partial_calls == 2 and cc.calls == 4
    cc(x)  # every column asked for: the whole block
    assert cc.partial_calls == 2 and cc.calls == 5
    # the context alone is what a later request with the same context may reuse
    ctx = cc.context_cache()
    assert ctx.get_seq_length() == cc.C
    again = CanvasModel(d.model, [row], cfg.mask_id, cfg.pad_id, cfg.shift, cfg.eof_id, canvas_cache=True)
    again.cache = ctx
    y = again.initial_canvas(cfg.mask_id)
    assert torch.allclose(again(y), plain(y), atol=1e-5)


def test_text_denoiser_fills_with_the_canvas_cache(tiny_checkpoint):
    den = TextDenoiser(tiny_checkpoint, dtype="float32", options=DenoiserOptions(canvas_cache=True))
    reqs = [FillRequest("def add(a, b):\n    return ", "\n", 8, "python"),
            FillRequest("x = [1, 2,", "]\n", 5, "python")]
    first = den.fill(reqs)
    assert len(first) == 2 and all(r.model_calls >= 1 and "<|mask|>" not in r.text for r in first)
    assert [r.text for r in den.fill(reqs)] == [r.text for r in first]  # deterministic, cache reuse included


def test_several_canvases_per_row_score_as_each_alone(tiny_checkpoint):
    d = load_denoiser(tiny_checkpoint, device="cpu", dtype="float32")
    cfg, tok = d.config, d.tokenizer
    rows = [Row(tok.encode("x = 1\ny ="), tok.encode("\nprint(y)\n"), 6),
            Row(tok.encode("def f():\n    return"), [], 8)]
    for use_cache in (True, False):
        cm = CanvasModel(d.model, rows, cfg.mask_id, cfg.pad_id, cfg.shift, cfg.eof_id, use_cache=use_cache)
        x = cm.initial_canvas(cfg.mask_id)
        cm(x)  # the first step (the context cache, when used)
        drafts = x.repeat_interleave(3, 0)  # (B*3, L): each row's canvas and two drafts
        drafts[1, 0] = drafts[4, 1] = tok.encode(" a")[0]
        drafts[2, :2] = drafts[5, 2:4] = tok.encode(" b")[0]
        got = cm(drafts, slice(1, 5))  # (6, 4, V)
        for i in range(6):
            alone = CanvasModel(d.model, [rows[i // 3]], cfg.mask_id, cfg.pad_id, cfg.shift, cfg.eof_id,
                                use_cache=use_cache)
            alone(alone.initial_canvas(cfg.mask_id))  # its context cache, made as the batch's was
            assert torch.allclose(got[i], alone(drafts[i:i + 1, :rows[i // 3].canvas])[0, 1:5], atol=1e-5)
        assert cm.cache is None or cm.cache.get_seq_length() == cm.C  # the row cache is left as it was


def test_speculation_fills_as_one_token_per_step(tiny_checkpoint):
    from model.sampler import SamplerOptions

    reqs = [FillRequest("def add(a, b):\n    return ", "\n", 8, "python"),
            FillRequest("x = [1, 2,", "]\n", 5, "python", single_line=True)]
    plain = TextDenoiser(tiny_checkpoint, dtype="float32", options=DenoiserOptions(canvas_cache=False)).fill(
        reqs, sampler=SamplerOptions(threshold=None))
    # no context at all (an empty file): nothing cached to repeat for the drafts
    d = load_denoiser(tiny_checkpoint, device="cpu", dtype="float32")
    empty = CanvasModel(d.model, [Row([], [], 6)], d.config.mask_id, d.config.pad_id, d.config.shift, d.config.eof_id)
    x = empty.initial_canvas(d.config.mask_id)
    one = empty(x)  # (1, 6, V)
    assert torch.allclose(empty(x.repeat_interleave(3, 0)), one.expand(3, -1, -1), atol=1e-5)
    # the canvas cache is approximate; a speculating denoiser leaves it off whatever its options say
    den = TextDenoiser(tiny_checkpoint, dtype="float32", options=DenoiserOptions(canvas_cache=True))
    spec = den.fill(reqs, sampler=SamplerOptions(threshold=None, speculate=4))
    assert [r.text for r in spec] == [r.text for r in plain]
    assert spec[0].model_calls <= plain[0].model_calls


def test_plan_reuse_takes_a_slid_or_extended_prefix_and_nothing_else():
    from model.cache import plan_reuse

    old = Row(prefix=[10, 11, 12, 13, 14, 15, 16, 17, 18, 19], suffix=[30, 31], canvas=4)
    typed = Row(prefix=[10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21], suffix=[30, 31], canvas=4)
    p = plan_reuse(old, typed, shift=True, max_fresh=8)
    # shifted: the last prefix token starts the block, so context prefixes are 9 and 11 tokens long
    assert p.keep == list(range(9)) + [11, 12] and p.take == list(range(9)) + [9, 10] and p.fresh == [9, 10]
    slid = Row(prefix=[13, 14, 15, 16, 17, 18, 19, 20], suffix=[30, 31], canvas=4)  # window start moved by 3
    p = plan_reuse(old, slid, shift=True, max_fresh=8)
    assert p.take[:6] == [3, 4, 5, 6, 7, 8] and p.keep[:6] == list(range(6)) and p.fresh == [6]
    assert plan_reuse(old, Row(typed.prefix, [30, 32], 4), True, 8) is None  # the suffix changed
    assert plan_reuse(old, Row(typed.prefix, [30, 31], 5), True, 8).keep[-2:] == [11, 12]  # a longer canvas
    assert plan_reuse(old, typed, True, max_fresh=1) is None  # more new tokens than allowed
    assert plan_reuse(old, Row([50, 51, 52, 53], [30, 31], 4), True, 8) is None  # nothing shared


def moved_context(d, repeat: int, cut: int, slide: int):
    """A context computed for one row, then moved to the next keystroke's row (the prefix slid by
    ``slide`` tokens, " y = 3" typed): (old row, new row, entry, plan, moved cache, slot order)."""
    from model.cache import ContextEntry, plan_reuse, reuse

    cfg, tok = d.config, d.tokenizer
    text = "def add(a, b):\n    total = a + b\n    return total\n\nx = add(1, 2)\n" * repeat
    old = Row(tok.encode(text[:cut]), tok.encode("\nprint(x)\n" * repeat), 6)
    new = Row(tok.encode(text[:cut])[slide:] + tok.encode(" y = 3"), old.suffix, 6)
    first = CanvasModel(d.model, [old], cfg.mask_id, cfg.pad_id, cfg.shift, cfg.eof_id)
    first(first.initial_canvas(cfg.mask_id))
    entry = ContextEntry(old, first.context_cache(), first.order)
    plan = plan_reuse(old, new, cfg.shift, max_fresh=16)
    cache, order = reuse(d.model, entry, new, plan, cfg.shift)
    return old, new, entry, plan, cache, order


def test_reused_keys_move_to_their_new_positions(tiny_checkpoint):
    d = load_denoiser(tiny_checkpoint, device="cpu", dtype="float32")
    cfg = d.config
    _, new, _, plan, cache, order = moved_context(d, repeat=1, cut=40, slide=2)
    fresh = CanvasModel(d.model, [new], cfg.mask_id, cfg.pad_id, cfg.shift, cfg.eof_id)
    fresh(fresh.initial_canvas(cfg.mask_id))
    # the first layer's keys/values depend on a token and its position only: moved, they are exact
    k0, v0 = cache.layers[0].keys, cache.layers[0].values  # (1, H, R, D)
    want = fresh.context_cache().layers[0]
    idx = torch.tensor(plan.keep)
    assert torch.allclose(k0, want.keys[:, :, idx], atol=1e-5) and torch.allclose(v0, want.values[:, :, idx], atol=1e-6)
    # and a model given them computes the fresh tokens in its first step, close to a whole computation
    cm = CanvasModel(d.model, [new], cfg.mask_id, cfg.pad_id, cfg.shift, cfg.eof_id)
    cm.adopt(cache, order, pending=len(plan.fresh))
    x = cm.initial_canvas(cfg.mask_id)
    got = cm(x)
    assert cm.pending == 0 and cm.cache.get_seq_length() == cm.C
    assert (got.argmax(-1) == fresh(x).argmax(-1)).float().mean() > 0.5


def test_typing_reuses_the_previous_context(tiny_checkpoint):
    text = "def add(a, b):\n    total = a + b\n    return total\n\nresult = add(1, 2)\nprint(result"
    reqs = [FillRequest(text[:n], ")\n", 6, "python", single_line=True) for n in range(len(text) - 8, len(text) + 1, 2)]
    on = TextDenoiser(tiny_checkpoint, dtype="float32", options=DenoiserOptions(reuse_max_generations=2))
    for r in reqs:
        assert "<|mask|>" not in on.fill([r])[0].text
    # every request after the first reuses a kept context, never one already reused twice (it takes an older one)
    assert on.stats["context_reuses"] == 4
    assert sorted(e.generation for e in on._contexts.values()) == [0, 1, 2, 2, 2]
    off = TextDenoiser(tiny_checkpoint, dtype="float32", options=DenoiserOptions(reuse_context=False))
    for r in reqs:
        off.fill([r])
    assert off.stats["context_reuses"] == 0
    assert on.fill(reqs[:1])[0].text == off.fill(reqs[:1])[0].text  # a context kept whole is exact again
    # by default only float32 weights reuse (in bf16 the moved keys round twice; asked for, bf16 does: test_dtype)
    half = TextDenoiser(tiny_checkpoint, dtype="bfloat16")
    for r in reqs:
        half.fill([r])
    assert (on.reuses_context, half.reuses_context, half.stats["context_reuses"]) == (True, False, 0)


def test_keys_are_moved_only_under_a_plain_rotation(tiny_checkpoint):
    from model.cache import rotary_reusable

    d = load_denoiser(tiny_checkpoint, device="cpu", dtype="float32")
    rot = d.model.model.rotary_emb
    assert rotary_reusable(d.model)
    rot.attention_scaling = 1.2  # YaRN folds a scale into cos/sin: rotating twice would apply it twice
    assert not rotary_reusable(d.model)
    rot.attention_scaling, rot.rope_type = 1.0, "dynamic"  # frequencies that depend on the length
    assert not rotary_reusable(d.model)



def test_reused_keys_move_within_one_bf16_rounding(tiny_checkpoint):
    """In bf16 the move is computed in float32 and rounded once: each moved key is the cached key
    turned by the exact angle, to within one bf16 rounding (cos/sin in bf16 would add their own)."""
    from model.cache import context_positions

    d = load_denoiser(tiny_checkpoint, device="cpu", dtype="bfloat16")
    cfg = d.config
    old, new, entry, plan, cache, _ = moved_context(d, repeat=3, cut=150, slide=5)
    old_pos, new_pos = context_positions(old, cfg.shift), context_positions(new, cfg.shift)
    slot = {c: i for i, c in enumerate(entry.order)}
    delta = torch.tensor([new_pos[k] - old_pos[t] for k, t in zip(plan.keep, plan.take)], dtype=torch.float64)
    assert delta.abs().max() > 0  # the suffix moved
    inv_freq = d.model.model.rotary_emb.inv_freq.double()
    angle = torch.cat([delta[:, None] * inv_freq[None]] * 2, -1)  # (R, D)
    for layer, got in zip(entry.cache.layers, cache.layers):
        k = layer.keys[:, :, torch.tensor([slot[t] for t in plan.take])].double()  # (1, H, R, D)
        half = k.shape[-1] // 2
        want = k * angle.cos() + torch.cat([-k[..., half:], k[..., :half]], -1) * angle.sin()
        err = (got.keys.double() - want).abs()
        assert got.keys.dtype == torch.bfloat16
        assert (err <= torch.finfo(torch.bfloat16).eps / 2 * want.abs() * 1.01 + 1e-6).all(), err.max()
