"""The copy prior: the n-gram index over context token ids, its mixing weight, the sampler hook,
and the ``related`` texts a fill request carries over the worker protocol."""

from __future__ import annotations

import math

import pytest
import torch

from infill.types import FillRequest
from model import protocol as P


# ---------------------------------------------------------------- protocol: ``related``

def test_protocol_carries_related_texts():
    req = FillRequest("def f(", "):\n", 4, "python", related=("def g(x):\n    return x\n", "import os\n"))
    msg = P.fill_message(3, [req, FillRequest("a", "b", 2)])
    assert P.check_request(msg) is msg
    assert "related" not in msg["requests"][1]  # none: the field stays off the wire
    assert P.requests_from_message(msg) == [req, FillRequest("a", "b", 2)]


def test_protocol_refuses_oversize_related_with_a_clear_error():
    big = ("x" * (P.MAX_RELATED_CHARS // 2 + 1),) * 2
    with pytest.raises(P.ProtocolError, match="characters in all; at most"):
        P.fill_message(1, [FillRequest("a", "b", 2, related=big)])
    msg = {"id": 1, "op": "fill", "requests": [{"prefix": "a", "suffix": "b", "canvas_tokens": 2,
                                                 "related": list(big)}]}
    with pytest.raises(P.ProtocolError, match=r"requests\[0\]\.related has \d+ characters"):
        P.check_request(msg)
    many = {**msg, "requests": [{**msg["requests"][0], "related": ["x"] * (P.MAX_RELATED_TEXTS + 1)}]}
    with pytest.raises(P.ProtocolError, match="texts; at most"):
        P.check_request(many)
    for bad in ("text", [1, 2], {"a": "b"}):
        with pytest.raises(P.ProtocolError, match="list of strings"):
            P.check_request({**msg, "requests": [{**msg["requests"][0], "related": bad}]})


# ---------------------------------------------------------------- the index and lambda

from model.copy_prior import CopyIndex, CopyPrior, CopyPriorConfig
from model.sampler import SamplerOptions, denoise

CFG = CopyPriorConfig(weight=0.8, min_match=2, max_order=6, tau=2.0, length_decay=1.0)


def test_index_finds_the_longest_match_and_counts_what_followed():
    # "1 2 3" is followed by 4 twice and by 9 once; only "7 1 2 3" (k = 4) is followed by 4
    index = CopyIndex([[1, 2, 3, 4, 5, 1, 2, 3, 9], [7, 1, 2, 3, 4]], CFG)
    k, ids, probs = index.match([7, 1, 2, 3])
    assert k == 4
    # occurrences: m=3 -> 4, m=3 -> 9, m=4 -> 4; weights exp(-(4-m)): 4 gets e^-1 + 1, 9 gets e^-1
    w4, w9 = math.exp(-1) + 1, math.exp(-1)
    assert ids.tolist() == [4, 9]
    assert probs.tolist() == pytest.approx([w4 / (w4 + w9), w9 / (w4 + w9)])
    # a huge length decay keeps only the longest match
    k, ids, probs = CopyIndex([[1, 2, 3, 4, 5, 1, 2, 3, 9], [7, 1, 2, 3, 4]],
                              CopyPriorConfig(min_match=2, max_order=6, length_decay=50.0)).match([7, 1, 2, 3])
    assert ids.tolist() == [4, 9] and probs[0] > 0.999


def test_index_does_not_match_across_sequences_or_past_their_end():
    index = CopyIndex([[5, 6], [7, 8]], CFG)
    assert index.match([6, 7])[0] == 0  # 6 ends one sequence and 7 starts the next
    assert index.match([7, 8])[0] == 0  # an occurrence at a sequence's end has no next token
    assert index.match([5, 6])[0] == 0
    assert CopyIndex([[1, 2, 3]], CFG).match([1, 2])[1].tolist() == [3]
    assert CopyIndex([], CFG).match([1, 2])[0] == 0


def test_match_length_is_capped_at_max_order():
    seq = list(range(10, 30))
    k, ids, _ = CopyIndex([seq], CFG).match(seq[:12])
    assert k == CFG.max_order and ids.tolist() == [22]


def test_lambda_is_zero_below_min_match_and_grows_with_the_match():
    cfg = CopyPriorConfig(weight=0.6, min_match=3, tau=2.0)
    assert cfg.mix_weight(2) == 0.0 and cfg.mix_weight(0) == 0.0
    grows = [cfg.mix_weight(k) for k in range(3, 12)]
    assert all(a < b for a, b in zip(grows, grows[1:])) and grows[-1] < 0.6
    assert cfg.mix_weight(3) == pytest.approx(0.6 * (1 - math.exp(-1 / 2.0)))
    assert CopyPriorConfig(weight=0.0).mix_weight(12) == 0.0


@pytest.mark.parametrize("bad", [dict(weight=1.5), dict(weight=-0.1), dict(min_match=0), dict(min_match=9, max_order=8),
                                 dict(tau=0.0), dict(max_related_tokens=-1)])
def test_config_is_validated(bad):
    with pytest.raises(ValueError):
        CopyPriorConfig(**bad).validate()


# ---------------------------------------------------------------- the sampler hook

MASK, STOP, V = 0, 1, 16


def uniform_step(x, cols=slice(None)):
    """A model that knows nothing: the same logits for every token at every position."""
    B, L = x.shape
    return torch.zeros(B, L, V)[:, cols]


def contextual_step(x, cols=slice(None)):
    """Logits that depend on the whole canvas (so a wrong draft would show), favouring token 3 + j."""
    B, L = x.shape
    logits = torch.zeros(B, L, V)
    for j in range(L):
        logits[:, j, (3 + j) % (V - 2) + 2] = 1.0 + 0.1 * (x != MASK).sum(-1).float()  # (B,)
        logits[:, j, STOP] = 0.5
    return logits[:, cols]


PREFIX = [5, 6, 7, 8, 9, 10, 4, 5, 6, 7]  # "5 6 7" repeats: after it came 8


def test_the_prior_makes_a_uniform_model_copy_a_repeated_ngram():
    prior = CopyPrior(CFG, [PREFIX], [[PREFIX, []]])
    res = denoise(uniform_step, torch.zeros(1, 4, dtype=torch.long), MASK, SamplerOptions(threshold=None),
                  stop_ids=(STOP,), prior=prior)
    assert res.tokens.tolist() == [[8, 9, 10, 4]]  # the run after the first "5 6 7", copied on
    assert prior.hits == [4]
    without = denoise(uniform_step, torch.zeros(1, 4, dtype=torch.long), MASK, SamplerOptions(threshold=None),
                      stop_ids=(STOP,))
    assert without.tokens.tolist() != res.tokens.tolist()


def test_related_texts_are_copied_from():
    related = [11, 12, 13, 14, 15]
    prefix = [2, 3, 11, 12]  # "11 12" is only in the related text
    prior = CopyPrior(CFG, [prefix], [[prefix, [], related]])
    res = denoise(uniform_step, torch.zeros(1, 3, dtype=torch.long), MASK, SamplerOptions(threshold=None), prior=prior)
    assert res.tokens.tolist() == [[13, 14, 15]]
    alone = CopyPrior(CFG, [prefix], [[prefix, []]])
    assert denoise(uniform_step, torch.zeros(1, 3, dtype=torch.long), MASK, SamplerOptions(threshold=None),
                   prior=alone).tokens.tolist() != [[13, 14, 15]]


def test_weight_zero_gives_bit_identical_output():
    off = CopyPrior(CopyPriorConfig(weight=0.0, min_match=2), [PREFIX] * 2, [[PREFIX, []]] * 2)
    for opts in (SamplerOptions(), SamplerOptions(threshold=None, window=0), SamplerOptions(temperature=0.7, seed=3)):
        a = denoise(contextual_step, torch.zeros(2, 6, dtype=torch.long), MASK, opts, stop_ids=(STOP,))
        b = denoise(contextual_step, torch.zeros(2, 6, dtype=torch.long), MASK, opts, stop_ids=(STOP,), prior=off)
        assert torch.equal(a.tokens, b.tokens) and torch.equal(a.confidence, b.confidence)
        assert a.committed_per_step == b.committed_per_step and off.hits == [0, 0]


def test_the_prior_respects_first_allowed_and_a_copied_line_end_ends_the_row():
    prior = CopyPrior(CFG, [PREFIX], [[PREFIX, []]])
    first = torch.ones(1, V, dtype=torch.bool)
    first[0, 8] = False  # token healing forbids the copy's first token
    res = denoise(uniform_step, torch.zeros(1, 3, dtype=torch.long), MASK, SamplerOptions(threshold=None),
                  stop_ids=(STOP,), first_allowed=first, prior=prior)
    assert res.tokens[0, 0] != 8
    # token 9 stands for a line break: a single-line row ends once the copy commits it
    res = denoise(uniform_step, torch.zeros(1, 5, dtype=torch.long), MASK, SamplerOptions(threshold=None),
                  stop_ids=(STOP,), end_ids=torch.tensor([9]), end_rows=torch.tensor([True]),
                  prior=CopyPrior(CFG, [PREFIX], [[PREFIX, []]]))
    assert res.tokens.tolist() == [[8, 9, STOP, STOP, STOP]]


def test_speculation_with_the_prior_gives_the_plain_loops_output():
    """The prior is computed for every canvas a speculative call scores, drafts included."""
    rows = [PREFIX, [4, 5, 6, 7, 8, 3, 2, 4, 5]]
    changed = False
    for opts in (SamplerOptions(threshold=None, window=0), SamplerOptions(), SamplerOptions(threshold=0.3)):
        plain = denoise(contextual_step, torch.zeros(2, 7, dtype=torch.long), MASK, opts, stop_ids=(STOP,),
                        prior=CopyPrior(CFG, rows, [[r, []] for r in rows]))
        spec_prior = CopyPrior(CFG, rows, [[r, []] for r in rows])
        spec = denoise(contextual_step, torch.zeros(2, 7, dtype=torch.long), MASK,
                       SamplerOptions(**{**opts.__dict__, "speculate": 3}), stop_ids=(STOP,), prior=spec_prior)
        assert torch.equal(plain.tokens, spec.tokens)
        assert spec.model_calls <= plain.model_calls and sum(spec_prior.hits) > 0
        changed |= not torch.equal(plain.tokens, denoise(contextual_step, torch.zeros(2, 7, dtype=torch.long), MASK,
                                                         opts, stop_ids=(STOP,)).tokens)
    assert changed  # the prior decided something the model alone would not have


# ---------------------------------------------------------------- the text denoiser

def _denoiser(tiny_checkpoint, **copy):
    from model.text_denoiser import DenoiserOptions, TextDenoiser

    return TextDenoiser(tiny_checkpoint, options=DenoiserOptions(copy_prior=CopyPriorConfig(**copy)))


RELATED = "def scale(point, factor):\n    return Point(point.x * factor, point.y * factor)\n"


def test_the_denoiser_indexes_related_texts_and_reports_the_prior_at_work(tiny_checkpoint):
    den = _denoiser(tiny_checkpoint, weight=0.9, min_match=2)
    prefix = "def scale(point, factor):\n    return Point(point.x"
    without = den.fill([FillRequest(prefix, "\n", 8, "python", single_line=True)])[0]
    with_related = den.fill([FillRequest(prefix, "\n", 8, "python", single_line=True, related=(RELATED,))])[0]
    assert with_related.timings["copy_hits"] > without.timings["copy_hits"]
    assert with_related.text.startswith(" * factor")  # a random model, but the copy's pull is strong
    off = _denoiser(tiny_checkpoint, weight=0.0)
    assert off.fill([FillRequest(prefix, "\n", 8, "python", related=(RELATED,))])[0].timings["copy_hits"] == 0


def test_related_tokens_are_capped_and_tokenized_once(tiny_checkpoint, monkeypatch):
    den = _denoiser(tiny_checkpoint, max_related_tokens=10, related_cache_entries=2)
    n = len(den.tokenizer.encode(RELATED))
    assert n > 10
    seqs, dropped = den.related_tokens([RELATED, "x = 1\n"], den.options.copy_prior)
    assert [len(s) for s in seqs] == [10] and dropped == n - 10 + len(den.tokenizer.encode("x = 1\n"))
    assert seqs[0] == den.tokenizer.encode(RELATED)[:10]
    calls = []
    encode = den.m.tokenizer.encode
    monkeypatch.setattr(den.m.tokenizer, "encode", lambda text: calls.append(text) or encode(text))
    den.related_tokens([RELATED], den.options.copy_prior)
    assert calls == []  # kept by content hash
    den.related_tokens(["a = 2\n", "b = 3\n"], den.options.copy_prior)  # two more: the cache holds 2
    den.related_tokens([RELATED], den.options.copy_prior)
    assert calls == ["a = 2\n", "b = 3\n", RELATED]
    res = den.fill([FillRequest("x = ", "\n", 4, "python", related=(RELATED,))])[0]
    assert res.timings["related_dropped"] == n - 10


def test_the_worker_turns_the_prior_off_when_a_fill_asks(tiny_checkpoint):
    from model.worker import Worker, WorkerConfig

    den = _denoiser(tiny_checkpoint, weight=0.9, min_match=2)
    worker = Worker(WorkerConfig(device="cpu", threads=1), load=lambda config: den)
    worker.denoiser = den
    req = FillRequest("def scale(point, factor):\n    return Point(point.x", "\n", 8, "python", related=(RELATED,))
    on = worker._fill([req], None, P.FillOptions())
    off = worker._fill([req], None, P.FillOptions.from_wire({"copy_prior": False}))
    assert on[0].timings["copy_hits"] > 0 and off[0].timings["copy_hits"] == 0
    assert den.options.copy_prior.weight == 0.9  # for that call only
    with pytest.raises(P.ProtocolError, match="'copy_prior' must be a boolean"):
        P.FillOptions.from_wire({"copy_prior": 1})


def test_the_prior_leaves_the_models_odds_of_ending_the_span():
    """The stop token keeps the model's probability: a span the model ends, ends with the prior too."""
    def ending_step(x, cols=slice(None)):
        B, L = x.shape
        logits = torch.zeros(B, L, V)
        logits[..., STOP] = math.log(0.6 * (V - 2) / 0.4)  # p(stop) = 0.6, the rest uniform
        return logits[:, cols]

    prior = CopyPrior(CFG, [PREFIX], [[PREFIX, []]])
    res = denoise(ending_step, torch.zeros(1, 4, dtype=torch.long), MASK, SamplerOptions(threshold=None),
                  stop_ids=(STOP,), prior=prior)
    assert res.tokens.tolist() == [[STOP] * 4] and prior.hits == [1]
    assert float(res.confidence[0]) == pytest.approx(0.6)


def test_the_worker_client_refuses_oversize_related_before_connecting():
    from lsp_server.worker_client import WorkerClient, WorkerError

    client = WorkerClient()
    big = FillRequest("a", "b", 2, related=("x" * (P.MAX_RELATED_CHARS + 1),))
    with pytest.raises(WorkerError, match="refused before sending: .*characters in all"):
        client.fill([big])
    assert client.starts == 0  # no worker was started for it
