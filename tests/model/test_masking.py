import numpy as np

from model.training.masking import MaskingConfig, ar_batch, make_batch

MASK, DELETE = 1, 2


def _stream(n=5000, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(10, 300, size=n).astype(np.uint16)


def test_random_rows_mask_with_weights_one_over_t():
    tokens = _stream()
    cfg = MaskingConfig(seq_len=64, span_fraction=0.0)
    b = make_batch(tokens, np.zeros((0, 2), np.int64), 4, np.random.default_rng(0), cfg, MASK, DELETE)
    assert b.input_ids.shape == b.targets.shape == b.loss_mask.shape == (4, 64)
    assert (b.input_ids[b.loss_mask] == MASK).all()
    assert (b.input_ids[~b.loss_mask] == b.targets[~b.loss_mask]).all()
    assert not b.loss_mask[:, 0].any()  # nothing predicts position 0 under the logit shift
    for r in range(4):
        w = b.weights[r][b.loss_mask[r]]
        assert np.allclose(w, w[0]) and w[0] >= 1.0
    assert b.n_eligible == 4 * 63


def test_span_rows_put_the_span_then_delete_tokens_on_the_canvas():
    tokens = _stream()
    spans = np.array([[1000, 1010], [2000, 2030], [3000, 3003]], dtype=np.int64)
    cfg = MaskingConfig(seq_len=96, span_fraction=1.0, max_extra_delete=8)
    rng = np.random.default_rng(1)
    b = make_batch(tokens, spans, 16, rng, cfg, MASK, DELETE)
    for r in range(16):
        tgt, lm = b.targets[r], b.loss_mask[r]
        assert lm.any()
        canvas = np.flatnonzero(lm)
        lo, hi = canvas.min(), canvas.max()
        # deletes only at the canvas tail, after the span's real tokens
        dels = np.flatnonzero(tgt == DELETE)
        if len(dels):
            assert dels.min() >= lo and (np.diff(dels) == 1).all()
            assert tgt[dels.max() + 1] != DELETE if dels.max() + 1 < 96 else True
        assert (b.input_ids[r][lm] == MASK).all()
        assert hi - lo < 30 + 8 + 1


def test_ar_batch_shape():
    w = ar_batch(_stream(), 3, np.random.default_rng(0), 32)
    assert w.shape == (3, 33)


def test_multi_hole_rows_splice_several_canvases_into_the_stream():
    tokens = np.arange(20_000, dtype=np.int64) % 60_000 + 10  # position-identifying stream
    rng0 = np.random.default_rng(3)
    starts = np.sort(rng0.choice(np.arange(100, 19_000), size=3000, replace=False))
    spans = np.stack([starts, starts + rng0.integers(1, 12, size=len(starts))], axis=1)
    cfg = MaskingConfig(seq_len=128, span_fraction=1.0, max_extra_delete=6, max_holes=4)
    b = make_batch(tokens, spans, 64, np.random.default_rng(5), cfg, MASK, DELETE)
    several = 0
    for r in range(64):
        tgt, lm = b.targets[r], b.loss_mask[r]
        # without its delete tokens a row is a contiguous slice of the stream: nothing lost or reordered
        kept = tgt[tgt != DELETE]
        assert (np.diff(kept) == 1).all()
        # count the canvases that end in delete tokens
        runs = np.split(np.flatnonzero(tgt == DELETE), np.flatnonzero(np.diff(np.flatnonzero(tgt == DELETE)) > 1) + 1)
        several += sum(1 for run in runs if len(run)) >= 2
        assert lm.any() and (b.input_ids[r][lm] == MASK).all()
    assert several >= 8  # several rows really carry more than one canvas
    # one hole per row when max_holes is 1
    one = make_batch(tokens, spans, 32, np.random.default_rng(5),
                     MaskingConfig(seq_len=128, span_fraction=1.0, max_extra_delete=6), MASK, DELETE)
    for r in range(32):
        dels = np.flatnonzero(one.targets[r] == DELETE)
        assert len(dels) == 0 or (np.diff(dels) == 1).all()


def test_engine_sized_canvases_follow_the_engine_canvas_lengths():
    from infill.canvas import CanvasConfig, canvas_lengths
    from infill.spans import Span
    from model.config import SHAPE_CANVAS
    from model.training.masking import engine_canvas_sizes

    sizes = engine_canvas_sizes()
    # every length the engine places for a completion span is among them (base and extra candidates)
    text = "def f(x):\n    y = x\n    return y\n"
    for kind, multiline in (("line", False), ("args", False), ("expression", False), ("block", True)):
        for n in canvas_lengths(Span(14, 19, kind, multiline, ""), text, CanvasConfig(), candidates=4):
            assert n in sizes, (kind, n, sizes)
    assert set(SHAPE_CANVAS.values()) <= set(sizes)  # and batch fills' (infill eval's) canvases
    tokens = np.arange(5000, dtype=np.int64) + 10  # position-identifying stream
    spans = np.array([[1000, 1005], [2000, 2030], [3000, 3003]], dtype=np.int64)
    cfg = MaskingConfig(seq_len=160, span_fraction=1.0, max_extra_delete=2, engine_canvas_fraction=1.0)
    b = make_batch(tokens, spans, 32, np.random.default_rng(2), cfg, MASK, DELETE)
    canvases = set()
    for r in range(32):
        tgt = b.targets[r]
        dels = np.flatnonzero(tgt == DELETE)
        end = int(tgt[dels[0] - 1]) - 10 + 1  # the span ends at the token before its deletes
        span_len = next(int(e - s) for s, e in spans if e == end)
        canvases.add(span_len + len(dels))
    assert canvases <= set(sizes) and len(canvases) >= 4  # all engine-sized, and of several sizes
