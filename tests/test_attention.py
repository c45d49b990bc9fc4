"""Attention, masks and positions: exact checks against torch and against the definitions."""

import math

import pytest
import torch
import torch.nn.functional as F

from llmcourse.attention import (
    MultiHeadAttention,
    apply_rope,
    causal_mask,
    check_mask,
    prefix_mask,
    rope_cache,
    scaled_dot_product_attention,
    sinusoidal_positions,
)


def test_causal_mask_is_lower_triangular():
    m = causal_mask(4)
    assert m.dtype == torch.bool
    assert m.tolist() == [[True, False, False, False], [True, True, False, False],
                          [True, True, True, False], [True, True, True, True]]


def test_prefix_mask_is_bidirectional_over_the_prefix_and_causal_after():
    m = prefix_mask(5, 3)
    expected = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 0, 0], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    assert torch.equal(m.int(), expected.int())
    assert torch.equal(prefix_mask(5, 0), causal_mask(5))  # no prefix: a plain decoder
    assert prefix_mask(5, 5).all()  # all prefix: an encoder


def test_prefix_mask_per_example_lengths():
    m = prefix_mask(4, torch.tensor([1, 3]))
    assert m.shape == (2, 4, 4)
    assert torch.equal(m[0], prefix_mask(4, 1)) and torch.equal(m[1], prefix_mask(4, 3))


@pytest.mark.parametrize("bad", [-1, 6, 2.5, True])
def test_prefix_mask_rejects_bad_lengths(bad):
    with pytest.raises(ValueError, match="prefix_len"):
        prefix_mask(5, bad)


@pytest.mark.parametrize("use_mask", [False, True])
def test_attention_from_scratch_equals_torch(use_mask):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 6, 8, generator=g) for _ in range(3))
    mask = causal_mask(6) if use_mask else None
    out, w = scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 6))
    if use_mask:
        assert (w[..., ~causal_mask(6)] == 0).all()  # no weight on the future


def test_attention_with_a_fully_masked_row_gives_zeros_not_nan():
    q = k = v = torch.randn(1, 3, 4)
    mask = torch.tensor([[False, False, False], [True, False, False], [True, True, True]])
    out, w = scaled_dot_product_attention(q, k, v, mask)
    assert torch.isfinite(out).all() and (w[0, 0] == 0).all()


def test_attention_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="q and k"):
        scaled_dot_product_attention(torch.randn(2, 4), torch.randn(2, 5), torch.randn(2, 5))
    with pytest.raises(ValueError, match="k and v"):
        scaled_dot_product_attention(torch.randn(2, 4), torch.randn(3, 4), torch.randn(2, 4))


def test_check_mask_names_the_argument_and_shapes():
    with pytest.raises(ValueError, match=r"mask must have shape \(Tq, Tk\) = \(4, 4\)"):
        check_mask(torch.ones(3, 3, dtype=torch.bool), 2, 4, 4)
    with pytest.raises(ValueError, match="mask must be a bool tensor"):
        check_mask(torch.ones(4, 4), 2, 4, 4)
    assert check_mask(torch.ones(2, 4, 4, dtype=torch.bool), 2, 4, 4).shape == (2, 1, 4, 4)


def test_multi_head_attention_recorded_weights_path_equals_fused_path():
    torch.manual_seed(0)
    mha = MultiHeadAttention(32, 4).eval()
    x = torch.randn(2, 7, 32)
    fused = mha(x, causal_mask(7))
    mha.keep_weights = True
    scratch = mha(x, causal_mask(7))
    torch.testing.assert_close(fused, scratch)
    assert mha.weights.shape == (2, 4, 7, 7)


@pytest.mark.parametrize("rope", [False, True], ids=["gpt", "rotary"])
def test_attention_under_cpu_bf16_autocast_runs_in_float32(rope):
    """Under bf16 autocast on a CPU the products stay bf16 but attention itself runs in float32 (the CPU
    flash kernel's bf16 backward is several times slower, and float32 keeps the softmax exact)."""
    torch.manual_seed(0)
    mha = MultiHeadAttention(64, 4)
    x = torch.randn(2, 16, 64, requires_grad=True)
    cos_sin = rope_cache(16, 16) if rope else None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = mha(x, causal_mask(16), rope=cos_sin)
        q = mha.q(x).view(2, 16, 4, 16).transpose(1, 2)
        k, v = mha.kv(x).view(2, 16, 2, 4, 16).permute(2, 0, 3, 1, 4)
        if rope:
            q, k = apply_rope(q, *cos_sin), apply_rope(k, *cos_sin)
        with torch.autocast("cpu", enabled=False):
            att32 = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=causal_mask(16))
        att16 = F.scaled_dot_product_attention(q, k, v, attn_mask=causal_mask(16))  # autocast's own choice
        want = mha.proj(att32.to(q.dtype).transpose(1, 2).reshape(2, 16, 64))
        bf16_way = mha.proj(att16.transpose(1, 2).reshape(2, 16, 64))
    assert y.dtype == torch.bfloat16
    assert torch.equal(y, want)
    assert not torch.equal(y, bf16_way)  # the test can tell the two apart
    y.float().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_multi_head_attention_rejects_indivisible_width():
    with pytest.raises(ValueError, match="n_embd"):
        MultiHeadAttention(30, 4)
    with pytest.raises(ValueError, match="n_kv_head"):
        MultiHeadAttention(32, 4, n_kv_head=3)


def test_grouped_query_attention_equals_multi_head_with_shared_keys_and_values():
    torch.manual_seed(0)
    gqa = MultiHeadAttention(32, 4, n_kv_head=2).eval()
    mha = MultiHeadAttention(32, 4).eval()
    hd = 8
    with torch.no_grad():
        mha.q.load_state_dict(gqa.q.state_dict())
        mha.proj.load_state_dict(gqa.proj.state_dict())
        # kv rows: [k heads | v heads]; each of GQA's 2 kv heads serves 2 query heads
        w, b = gqa.kv.weight.view(2, 2, hd, 32), gqa.kv.bias.view(2, 2, hd)
        mha.kv.weight.copy_(w.repeat_interleave(2, dim=1).reshape(64, 32))
        mha.kv.bias.copy_(b.repeat_interleave(2, dim=1).reshape(64))
    x = torch.randn(2, 5, 32)
    torch.testing.assert_close(gqa(x, causal_mask(5)), mha(x, causal_mask(5)))
    assert sum(p.numel() for p in gqa.kv.parameters()) == sum(p.numel() for p in mha.kv.parameters()) // 2


def test_cross_attention_reads_keys_and_values_from_memory():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 2).eval()
    x, memory = torch.randn(1, 3, 16), torch.randn(1, 5, 16)
    out = mha(x, memory=memory)
    assert out.shape == (1, 3, 16)
    memory2 = memory.clone()
    memory2[0, 4] += 1.0
    assert not torch.allclose(out, mha(x, memory=memory2))  # every query sees every memory position


def test_sinusoidal_positions_match_the_formula():
    pe = sinusoidal_positions(50, 16)
    t, i = 7, 3
    assert pe[t, 2 * i].item() == pytest.approx(math.sin(t / 10000 ** (2 * i / 16)), abs=1e-6)
    assert pe[t, 2 * i + 1].item() == pytest.approx(math.cos(t / 10000 ** (2 * i / 16)), abs=1e-6)
    # every sin/cos pair has norm 1, so every position vector has norm sqrt(d/2)
    torch.testing.assert_close(pe.norm(dim=1), torch.full((50,), math.sqrt(8.0)))
    with pytest.raises(ValueError, match="d must be even"):
        sinusoidal_positions(4, 5)


def test_rope_scores_depend_only_on_relative_position():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(16, generator=g), torch.randn(16, generator=g)
    cos, sin = rope_cache(64, 16)

    def score(t, s):
        return float(apply_rope(q, cos[t], sin[t]) @ apply_rope(k, cos[s], sin[s]))

    assert score(10, 3) == pytest.approx(score(40, 33), abs=1e-4)
    assert score(10, 3) != pytest.approx(score(10, 4), abs=1e-3)
    assert float(apply_rope(q, cos[17], sin[17]).norm()) == pytest.approx(float(q.norm()), rel=1e-5)  # a rotation
    torch.testing.assert_close(apply_rope(q, cos[0], sin[0]), q)  # position 0: no rotation
