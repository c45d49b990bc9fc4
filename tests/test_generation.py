"""Decoding strategies and the KV cache."""

import math

import pytest
import torch

from llmcourse.generation import (
    KVCache,
    apply_repetition_penalty,
    ban_repeated_ngrams,
    filter_top_k,
    filter_top_p,
    generate,
    generate_text,
    next_token,
)
from llmcourse.rnn import RecurrentLanguageModel
from llmcourse.transformer import TransformerConfig, TransformerLM


def model(family="gpt", block_size=32, **kw):
    torch.manual_seed(0)
    settings = dict(n_layer=2, n_head=4, n_embd=32)
    settings.update(kw)
    return TransformerLM(getattr(TransformerConfig, family)(40, block_size, **settings)).eval()


# ---------------------------------------------------------------------------------------------------- filters


def test_top_k_keeps_the_k_largest():
    logits = torch.tensor([1.0, 5.0, 3.0, 4.0, 2.0])
    out = filter_top_k(logits, 2)
    assert torch.isfinite(out).tolist() == [False, True, False, True, False]
    assert torch.equal(filter_top_k(logits, 10), logits)


def test_top_p_keeps_the_smallest_nucleus():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    logits = probs.log()
    assert torch.isfinite(filter_top_p(logits, 0.5)).tolist() == [True, False, False, False]
    assert torch.isfinite(filter_top_p(logits, 0.6)).tolist() == [True, True, False, False]
    assert torch.isfinite(filter_top_p(logits, 0.8)).tolist() == [True, True, False, False]
    assert torch.isfinite(filter_top_p(logits, 0.81)).tolist() == [True, True, True, False]
    assert torch.equal(filter_top_p(logits, 1.0), logits)
    shuffled = logits[[2, 0, 3, 1]]  # order of the vocabulary does not matter
    assert torch.isfinite(filter_top_p(shuffled, 0.6)).tolist() == [False, True, False, True]


def test_repetition_penalty_lowers_seen_tokens_both_signs():
    logits = torch.tensor([2.0, -2.0, 1.0])
    out = apply_repetition_penalty(logits, torch.tensor([0, 1, 1]), 2.0)
    assert out.tolist() == [1.0, -4.0, 1.0]
    assert torch.equal(apply_repetition_penalty(logits, torch.tensor([0]), 1.0), logits)


def test_no_repeat_ngram_bans_the_completion():
    logits = torch.zeros(5)
    out = ban_repeated_ngrams(logits, [1, 2, 3, 4, 1, 2], 3)  # "1 2 3" occurred; text ends in "1 2"
    assert torch.isinf(out).tolist() == [False, False, False, True, False]
    assert torch.isinf(ban_repeated_ngrams(logits, [1, 2, 3], 1)).tolist() == [False, True, True, True, False]


def test_sampling_follows_the_filtered_distribution():
    g = torch.Generator().manual_seed(0)
    logits = torch.tensor([0.0, 1.0, 2.0, 3.0])
    draws = [next_token(logits, 1.0, top_k=2, generator=g) for _ in range(400)]
    assert set(draws) == {2, 3}
    share = draws.count(3) / len(draws)
    assert abs(share - 1 / (1 + math.exp(-1))) < 0.08  # p(3 | {2,3}) = e³ / (e² + e³) ≈ 0.73
    assert next_token(logits, 0.0) == 3


# ---------------------------------------------------------------------------------------------------- the KV cache


@pytest.mark.parametrize("family, kw", [("gpt", {}), ("llama", {}), ("llama", dict(n_kv_head=2)),
                                        ("gpt", dict(position="sinusoidal"))])
def test_cached_forward_equals_full_forward(family, kw):
    m = model(family, **kw)
    ids = torch.randint(0, 40, (2, 20))
    full, _ = m(ids)
    cache = m.new_cache()
    parts = [m.forward_cached(ids[:, :7], cache)]
    for t in range(7, 20):
        parts.append(m.forward_cached(ids[:, t : t + 1], cache))
    torch.testing.assert_close(torch.cat(parts, 1), full, rtol=1e-5, atol=1e-5)
    assert cache.length == 20


def test_cache_size_shrinks_with_grouped_query_attention():
    sizes = {}
    for n_kv in (4, 1):
        m = model("llama", n_kv_head=n_kv)
        cache = m.new_cache()
        m.forward_cached(torch.randint(0, 40, (1, 10)), cache)
        sizes[n_kv] = cache.numel()
    assert sizes[4] == 2 * 2 * 4 * 8 * 10  # K and V, 2 layers, 4 heads of 8, 10 tokens
    assert sizes[4] == 4 * sizes[1]


def test_cached_forward_refuses_to_overflow_the_context():
    m = model(block_size=8)
    cache = m.new_cache()
    m.forward_cached(torch.zeros(1, 6, dtype=torch.long), cache)
    with pytest.raises(ValueError, match="context"):
        m.forward_cached(torch.zeros(1, 3, dtype=torch.long), cache)


@pytest.mark.parametrize("family", ["gpt", "llama"])
def test_greedy_generation_is_identical_with_and_without_the_cache(family):
    m = model(family, block_size=32)
    prompt = torch.randint(0, 40, (5,))
    with_cache = generate(m, prompt, 60, temperature=0.0)  # 65 tokens: past the context of 32
    without = generate(m, prompt, 60, temperature=0.0, use_cache=False)
    assert torch.equal(with_cache, without)
    assert len(with_cache) == 60


def test_sampling_with_a_seed_is_repeatable_and_cache_independent():
    m = model()
    prompt = torch.tensor([1, 2, 3])
    a = generate(m, prompt, 40, temperature=1.0, top_p=0.9, generator=torch.Generator().manual_seed(3))
    b = generate(m, prompt, 40, temperature=1.0, top_p=0.9, generator=torch.Generator().manual_seed(3),
                 use_cache=False)
    assert torch.equal(a, b)


def test_generate_works_for_recurrent_models_too():
    torch.manual_seed(0)
    lstm = RecurrentLanguageModel(40, d_embed=8, d_hidden=16, cell="lstm")
    out = generate(lstm, torch.tensor([1, 2]), 30, temperature=0.0)
    assert torch.equal(out, lstm.sample(torch.tensor([1, 2]), 30, temperature=0.0))


def test_stop_ids_and_stop_strings():
    m = model()
    free = generate(m, torch.tensor([1]), 30, temperature=0.0)
    stop = int(free[5])
    first = free.tolist().index(stop)
    cut = generate(m, torch.tensor([1]), 30, temperature=0.0, stop_ids=[stop])
    assert cut.tolist() == free[: first + 1].tolist()

    class Letters:  # a toy tokenizer: id i <-> chr(ord('a') + i % 26)
        def encode(self, s):
            return [ord(c) - ord("a") for c in s]

        def decode(self, ids):
            return "".join(chr(ord("a") + i % 26) for i in ids)

    tok = Letters()
    full_text = generate_text(m, tok, "b", 30, temperature=0.0)
    target = full_text[6:8]
    text = generate_text(m, tok, "b", 30, temperature=0.0, stop_strings=[target])
    assert text == full_text[: full_text.find(target)]


def test_repetition_controls_change_greedy_output():
    m = model()
    prompt = torch.tensor([1, 2, 3])
    plain = generate(m, prompt, 40, temperature=0.0).tolist()
    no_rep = generate(m, prompt, 40, temperature=0.0, no_repeat_ngram_size=2).tolist()
    text = prompt.tolist() + no_rep
    bigrams = list(zip(text, text[1:]))
    assert len(bigrams) == len(set(bigrams))  # no bigram twice
    assert plain != no_rep or len(set(zip(plain, plain[1:]))) == len(plain) - 1


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(temperature=-0.5), "temperature"),
        (dict(top_p=0.0), "top_p"),
        (dict(top_p=1.5), "top_p"),
        (dict(top_k=0), "top_k"),
        (dict(max_new_tokens=-1), "max_new_tokens"),
        (dict(repetition_penalty=0), "repetition_penalty"),
        (dict(stop_strings=["x"]), "decode"),
    ],
)
def test_generate_rejects_bad_arguments(kw, match):
    args = dict(max_new_tokens=5)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        generate(model(), torch.tensor([1, 2]), **args)


def test_generate_rejects_a_prompt_longer_than_the_context():
    with pytest.raises(ValueError, match="context of 32"):
        generate(model(), torch.zeros(33, dtype=torch.long), 5)
    with pytest.raises(ValueError, match="n_layer"):
        KVCache(0)


def test_generate_batch_gives_each_row_what_generate_gives_it_alone():
    from llmcourse.checks import ArgumentError
    from llmcourse.generation import generate_batch

    torch.manual_seed(0)
    model = TransformerLM(TransformerConfig.llama(20, 32, n_layer=2, n_head=2, n_embd=32)).eval()
    prompts = [[3, 4, 5], [7], [1, 2, 3, 4, 5, 6], [9, 9]]
    ids, real, P = generate_batch(model, prompts, 8)
    assert P == 6 and ids.shape == real.shape == (4, 14)
    for i, p in enumerate(prompts):
        assert ids[i, P - len(p):P].tolist() == p and not bool(real[i, :P - len(p)].any())
        alone = generate(model, torch.tensor(p), 8, temperature=0.0).tolist()
        assert ids[i, P:][real[i, P:]].tolist() == alone            # greedy: the same tokens, padded or not
    stop = int(ids[0, P + 2])
    ids, real, P = generate_batch(model, prompts, 8, stop_id=stop)
    row = ids[0, P:][real[0, P:]].tolist()
    assert row[-1] == stop and stop not in row[:-1]                    # row 0 stops at its stop id, included
    g = torch.Generator().manual_seed(0)
    a = generate_batch(model, prompts, 8, temperature=1.0, generator=g)[0]
    b = generate_batch(model, prompts, 8, temperature=1.0, generator=torch.Generator().manual_seed(0))[0]
    assert torch.equal(a, b)
    with pytest.raises(ArgumentError, match="prompts"):
        generate_batch(model, [[1], []], 4)
    with pytest.raises(ArgumentError, match="prompts\\[1\\]"):
        generate_batch(model, [[1], [25]], 4)
    with pytest.raises(ArgumentError, match="context"):
        generate_batch(model, [[1] * 30], 4)
