"""The sampler on a scripted step function (token ids only, no model)."""

import math

import pytest
import torch

from model.sampler import SamplerOptions, denoise, score, tokens_to_commit

MASK, STOP, V = 0, 1, 12


def scripted(target: list[int], conf: list[float]):
    """logits whose argmax is ``target`` with probability ``conf`` per position."""
    calls = []

    def step(x, cols=slice(None)):
        calls.append(x.clone())
        B, L = x.shape
        logits = torch.full((B, L, V), -10.0)
        for j, (t, c) in enumerate(zip(target, conf)):
            logits[:, j, t] = torch.log(torch.tensor(c / (1 - c + 1e-9))) + 0.0
            logits[:, j, (t + 1) % V or 2] = 0.0
        return logits[:, cols]

    return step, calls


def test_one_token_per_step_without_threshold():
    step, calls = scripted([5, 6, 7, 8], [0.6, 0.9, 0.7, 0.8])
    res = denoise(step, torch.zeros(1, 4, dtype=torch.long), MASK, SamplerOptions(threshold=None))
    assert res.tokens.tolist() == [[5, 6, 7, 8]]
    assert res.model_calls == 4 and res.committed_per_step == [1, 1, 1, 1]
    # confidence order: position 1 first, then 3, 2, 0
    assert (calls[1] != MASK).nonzero()[:, 1].tolist() == [1]
    assert (calls[2] != MASK).nonzero()[:, 1].tolist() == [1, 3]


def test_threshold_commits_several_tokens_per_call():
    step, _ = scripted([5, 6, 7, 8, 9, 10], [0.99, 0.98, 0.97, 0.5, 0.95, 0.6])
    res = denoise(step, torch.zeros(1, 6, dtype=torch.long), MASK, SamplerOptions(threshold=0.9, window=0))
    assert res.tokens.tolist() == [[5, 6, 7, 8, 9, 10]]
    assert res.committed_per_step[0] == 4 and res.model_calls == 3
    # with a window only its confident positions commit together (position 4 waits for the frontier)
    near = denoise(step, torch.zeros(1, 6, dtype=torch.long), MASK, SamplerOptions(threshold=0.9, window=4))
    assert near.tokens.tolist() == [[5, 6, 7, 8, 9, 10]] and near.committed_per_step[0] == 3


def test_step_budget_is_respected():
    step, _ = scripted(list(range(2, 10)), [0.5] * 8)
    res = denoise(step, torch.zeros(2, 8, dtype=torch.long), MASK, SamplerOptions(steps=2, threshold=None))
    assert res.model_calls == 2 and (res.tokens != MASK).all()


def test_max_per_step_caps_threshold_commits():
    step, _ = scripted([5] * 6, [0.99] * 6)
    res = denoise(step, torch.zeros(1, 6, dtype=torch.long), MASK, SamplerOptions(threshold=0.5, max_per_step=2))
    assert res.committed_per_step == [2, 2, 2]


def test_stop_token_fills_the_tail():
    step, _ = scripted([5, STOP, 7, 8], [0.9, 0.99, 0.4, 0.4])
    res = denoise(step, torch.zeros(1, 4, dtype=torch.long), MASK, SamplerOptions(threshold=None),
                  stop_ids=(STOP,))
    assert res.tokens.tolist() == [[5, STOP, STOP, STOP]] and res.model_calls == 2


def test_invalid_positions_are_left_alone():
    step, _ = scripted([5, 6, 7], [0.9, 0.9, 0.9])
    valid = torch.tensor([[True, True, False]])
    res = denoise(step, torch.zeros(1, 3, dtype=torch.long), MASK, SamplerOptions(threshold=None), valid=valid)
    assert res.tokens.tolist() == [[5, 6, MASK]]


def test_strategies_and_quota():
    probs = torch.tensor([[[0.5, 0.4, 0.1], [0.6, 0.2, 0.2]]])
    chosen = probs.argmax(-1)
    assert torch.allclose(score(probs, chosen, "margin"), torch.tensor([[0.1, 0.4]]))
    assert score(probs, chosen, "entropy")[0, 1] > score(probs, chosen, "entropy")[0, 0] - 1  # defined, finite
    assert tokens_to_commit(10, 3, SamplerOptions(), 0) == 4
    assert tokens_to_commit(10, 3, SamplerOptions(), 7) == 7
    with pytest.raises(ValueError):
        SamplerOptions(strategy="nope").validate()


def test_cancel_stops_between_steps():
    from infill.types import CancelToken, Cancelled

    tok = CancelToken()
    step, calls = scripted([5, 6, 7], [0.5] * 3)

    def cancelling(x, cols=slice(None)):
        tok.cancel()
        return step(x, cols)

    with pytest.raises(Cancelled):
        denoise(cancelling, torch.zeros(1, 3, dtype=torch.long), MASK, SamplerOptions(threshold=None), cancel=tok)
    assert len(calls) == 1


def cascading_step(x, cols=slice(None)):
    """A toy model whose "span ended" grows leftwards: a position before a committed stop (or the
    last position) predicts a stop with p=0.95; any other predicts content 5+j (p ~ 0.6-0.7), stop second."""
    B, L = x.shape
    logits = torch.full((B, L, V), -10.0)
    for j in range(L):
        ends = j == L - 1 or bool((x[:, j + 1] == STOP).all())
        if ends:
            logits[:, j, STOP] = 3.0
            logits[:, j, 5 + j] = 0.0
        else:
            logits[:, j, 5 + j] = 1.0 + 0.1 * j
            logits[:, j, STOP] = 0.5
    return logits[:, cols]


def test_stop_at_frontier_prevents_the_delete_cascade():
    canvas = torch.zeros(1, 4, dtype=torch.long)
    old = denoise(cascading_step, canvas, MASK, SamplerOptions(threshold=None, stop_at_frontier=False),
                  stop_ids=(STOP,))
    assert old.tokens.tolist() == [[STOP] * 4]  # the far stop commits first and drags the end to 0
    new = denoise(cascading_step, canvas, MASK, SamplerOptions(threshold=None), stop_ids=(STOP,))
    assert new.tokens.tolist() == [[5, 6, 7, STOP]]
    assert (new.tokens != MASK).all()


def test_stop_at_frontier_keeps_a_confident_stop_at_the_left_edge():
    # the leftmost masked position may still end the span (an empty fill is a legitimate answer)
    step, _ = scripted([STOP, 6, 7], [0.99, 0.5, 0.5])
    res = denoise(step, torch.zeros(1, 3, dtype=torch.long), MASK, SamplerOptions(threshold=None), stop_ids=(STOP,))
    assert res.tokens.tolist() == [[STOP, STOP, STOP]] and res.model_calls == 1


def test_a_stop_never_precedes_committed_content():
    # content at positions 2 and 3 commits first; the stop the model wants at 1 may not cut between
    step, _ = scripted([5, STOP, 7, 8], [0.5, 0.99, 0.95, 0.96])
    res = denoise(step, torch.zeros(1, 4, dtype=torch.long), MASK, SamplerOptions(threshold=None), stop_ids=(STOP,))
    row = res.tokens[0].tolist()
    assert STOP not in row and row[2:] == [7, 8]


def test_a_committed_line_end_ends_a_single_line_row():
    NL = 4
    step, calls = scripted([5, NL, 7, 8], [0.6, 0.99, 0.5, 0.5])
    canvas = torch.zeros(2, 4, dtype=torch.long)
    res = denoise(step, canvas, MASK, SamplerOptions(threshold=None), stop_ids=(STOP,),
                  end_ids=torch.tensor([NL]), end_rows=torch.tensor([True, False]))
    assert res.tokens[0].tolist() == [5, NL, STOP, STOP]  # nothing after the line end is computed
    assert res.tokens[1].tolist() == [5, NL, 7, 8]  # a multi-line row goes on
    assert res.model_calls == 4 and res.committed_per_step[0] == 2 + 2  # both rows' line end, row 0's tail


def test_stop_bias_ends_a_span_where_the_model_only_half_wanted_to():
    # at position 1 the model prefers content (6) to the stop by odds 2:1; a bias of +2 (e^2 > 2) flips it
    def step(x, cols=slice(None)):
        B, L = x.shape
        logits = torch.full((B, L, V), -10.0)
        logits[:, 0, 5] = 3.0
        for j in range(1, L):
            logits[:, j, 5 + j] = 0.0
            logits[:, j, STOP] = -0.7
        return logits[:, cols]

    canvas = torch.zeros(1, 4, dtype=torch.long)
    plain = denoise(step, canvas, MASK, SamplerOptions(threshold=None), stop_ids=(STOP,))
    assert plain.tokens.tolist() == [[5, 6, 7, 8]]
    biased = denoise(step, canvas, MASK, SamplerOptions(threshold=None, stop_bias=2.0), stop_ids=(STOP,))
    assert biased.tokens.tolist() == [[5, STOP, STOP, STOP]] and biased.model_calls == 2


def test_window_commits_only_near_the_frontier():
    # the far positions are the most confident; with a window of 2 they wait for the frontier
    step, calls = scripted([5, 6, 7, 8, 9, 10], [0.5, 0.55, 0.6, 0.7, 0.8, 0.9])
    res = denoise(step, torch.zeros(1, 6, dtype=torch.long), MASK, SamplerOptions(threshold=None, window=2))
    assert res.tokens.tolist() == [[5, 6, 7, 8, 9, 10]]
    order = [int((c != MASK).sum()) for c in calls]
    assert order == [0, 1, 2, 3, 4, 5]
    assert (calls[1] != MASK).nonzero()[:, 1].tolist() == [1]  # position 1 (inside the window) beat 0
    assert (calls[2] != MASK).nonzero()[:, 1].tolist() == [0, 1]  # then 0, never the far 5
    free = denoise(step, torch.zeros(1, 6, dtype=torch.long), MASK, SamplerOptions(threshold=None, window=0))
    assert free.tokens.tolist() == res.tokens.tolist()


def test_window_and_stop_bias_are_validated():
    with pytest.raises(ValueError):
        SamplerOptions(window=-1).validate()
    with pytest.raises(ValueError):
        SamplerOptions(stop_bias=float("nan")).validate()


def test_a_quota_beyond_the_window_takes_the_best_of_the_rest():
    # 3 per step with a window of 1: the frontier, then the two most confident of the others
    step, calls = scripted([5, 6, 7, 8, 9, 10], [0.5, 0.55, 0.6, 0.7, 0.8, 0.9])
    res = denoise(step, torch.zeros(1, 6, dtype=torch.long), MASK,
                  SamplerOptions(threshold=None, steps=2, window=1))
    assert res.tokens.tolist() == [[5, 6, 7, 8, 9, 10]] and res.model_calls == 2
    assert (calls[1] != MASK).nonzero()[:, 1].tolist() == [0, 4, 5]


def test_a_per_row_stop_bias_overrides_the_options():
    step, _ = scripted([5, 6, 7], [0.9, 0.6, 0.6])
    canvas = torch.zeros(2, 3, dtype=torch.long)
    res = denoise(step, canvas, MASK, SamplerOptions(threshold=None), stop_ids=(STOP,),
                  stop_bias=torch.tensor([0.0, 20.0]))
    assert res.tokens[0].tolist() == [5, 6, 7]
    assert res.tokens[1].tolist() == [STOP] * 3  # the biased row ends at once
    with pytest.raises(ValueError):
        denoise(step, canvas, MASK, SamplerOptions(), stop_ids=(STOP,), stop_bias=torch.tensor([0.0, math.inf]))


def state_dependent_step(seed: int):
    """A toy model whose scores at each position depend on the whole canvas (a hash of it), so a
    committed token changes every other position's prediction, like a real bidirectional model."""
    def step(x, cols=slice(None)):
        B, L = x.shape
        out = torch.empty(B, L, V)
        stable = 3 * torch.randn(L, V, generator=torch.Generator().manual_seed(seed))  # drafts are often right
        for b in range(B):
            g = torch.Generator().manual_seed(hash((seed, tuple(x[b].tolist()))) % (2**31))
            out[b] = stable + torch.randn(L, V, generator=g)
        return out[:, cols]
    return step


@pytest.mark.parametrize("opts", [
    SamplerOptions(threshold=None),
    SamplerOptions(threshold=None, window=0),
    SamplerOptions(threshold=0.5, window=2),
    SamplerOptions(threshold=None, steps=5, window=1),
    SamplerOptions(threshold=None, strategy="margin", stop_bias=1.0),
])
def test_speculation_changes_the_calls_never_the_output(opts):
    import dataclasses

    NL = 4
    canvas = torch.zeros(3, 9, dtype=torch.long)
    valid = torch.ones(3, 9, dtype=torch.bool)
    valid[2, 6:] = False  # a shorter row
    first = torch.ones(3, V, dtype=torch.bool)
    first[1, 5:] = False  # token healing on row 1
    kw = dict(stop_ids=(STOP,), valid=valid, first_allowed=first, end_ids=torch.tensor([NL]),
              end_rows=torch.tensor([True, False, False]))
    total_plain = total_spec = 0
    for seed in range(6):
        plain = denoise(state_dependent_step(seed), canvas, MASK, opts, **kw)
        for depth in (2, 4):
            spec = denoise(state_dependent_step(seed), canvas, MASK, dataclasses.replace(opts, speculate=depth), **kw)
            assert spec.tokens.tolist() == plain.tokens.tolist()
            assert spec.steps == plain.steps == plain.model_calls and spec.model_calls <= plain.model_calls
            assert torch.allclose(spec.confidence, plain.confidence)
            assert sum(spec.committed_per_step) == sum(plain.committed_per_step)
        total_plain += plain.model_calls
        total_spec += spec.model_calls
    assert total_spec < total_plain  # the stable part makes some drafts right


def test_speculation_takes_whole_runs_of_steps_when_the_scores_do_not_move():
    step, calls = scripted([5, 6, 7, 8, 9, 10, 11, 2], [0.5, 0.55, 0.6, 0.7, 0.8, 0.9, 0.6, 0.6])
    canvas = torch.zeros(1, 8, dtype=torch.long)
    plain = denoise(step, canvas, MASK, SamplerOptions(threshold=None, window=2))
    calls.clear()
    spec = denoise(step, canvas, MASK, SamplerOptions(threshold=None, window=2, speculate=4))
    assert spec.tokens.tolist() == plain.tokens.tolist() and plain.model_calls == 8
    # the first call has no scores to draft from; then each call checks 3 drafts and takes all + 1
    assert [len(c) for c in calls] == [1, 4, 4] and spec.committed_per_step == [1, 4, 3]


def test_sampling_does_not_speculate():
    step, calls = scripted([5, 6, 7], [0.5, 0.6, 0.7])
    res = denoise(step, torch.zeros(1, 3, dtype=torch.long), MASK,
                  SamplerOptions(threshold=None, temperature=1.0, speculate=4))
    assert res.model_calls == 3 and all(len(c) == 1 for c in calls)
    with pytest.raises(ValueError):
        SamplerOptions(speculate=-1).validate()
