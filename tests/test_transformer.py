"""The Transformer models: norms, feed-forward layers, MoE, GPT / LLaMA, presets, the three
architectures, conversion to and from Hugging Face GPT-2."""

import pytest
import torch
import torch.nn as nn

from llmcourse.attention import causal_mask, prefix_mask
from llmcourse.rnn import evaluate, train_language_model
from llmcourse.transformer import (
    ARCHITECTURES,
    EncoderDecoder,
    FeedForward,
    LayerNorm,
    MoEFeedForward,
    PRESETS,
    RMSNorm,
    Seq2SeqModel,
    SwiGLU,
    TransformerConfig,
    TransformerLM,
    count_parameters,
    course_to_hf_gpt2,
    gelu_tanh,
    hf_gpt2_to_course,
    train_seq2seq,
)


def tiny(family="gpt", **kw):
    settings = dict(n_layer=2, n_head=4, n_embd=32)
    settings.update(kw)
    return getattr(TransformerConfig, family)(50, 16, **settings)


# ---------------------------------------------------------------------------------------------------- norms


def test_layer_norm_equals_torch():
    torch.manual_seed(0)
    ours, ref = LayerNorm(8), nn.LayerNorm(8)
    with torch.no_grad():
        ours.weight.normal_(), ours.bias.normal_()
        ref.load_state_dict(ours.state_dict())
    x = torch.randn(3, 5, 8) * 4 + 2
    torch.testing.assert_close(ours(x), ref(x))
    y = LayerNorm(8)(x)
    torch.testing.assert_close(y.mean(-1), torch.zeros(3, 5), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.var(-1, unbiased=False), torch.ones(3, 5), atol=1e-3, rtol=0)


def test_rms_norm_matches_the_formula_and_torch():
    torch.manual_seed(0)
    norm = RMSNorm(8)
    with torch.no_grad():
        norm.weight.normal_()
    x = torch.randn(4, 8) * 3
    expected = x / torch.sqrt((x**2).mean(-1, keepdim=True) + 1e-6) * norm.weight
    torch.testing.assert_close(norm(x), expected)
    ref = nn.RMSNorm(8, eps=1e-6)
    ref.load_state_dict(norm.state_dict())
    torch.testing.assert_close(norm(x), ref(x))


# ---------------------------------------------------------------------------------------------------- feed-forward


def test_feed_forward_and_swiglu_formulas():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8)
    ff = FeedForward(8, 32)
    torch.testing.assert_close(ff(x), ff.proj(nn.functional.gelu(ff.fc(x), approximate="tanh")))
    sw = SwiGLU(8, 24)
    torch.testing.assert_close(sw(x), sw.down(nn.functional.silu(sw.gate(x)) * sw.up(x)))
    assert sum(p.numel() for p in sw.parameters()) == 3 * 8 * 24


def test_gelu_tanh_is_one_function_eager_and_compiled(monkeypatch):
    """Eagerly PyTorch's tanh GELU, exactly; the compiled form x * sigmoid(2u) is the same function
    (1 + tanh(u) = 2 sigmoid(2u)), equal up to float32 rounding, gradients included."""
    x = torch.linspace(-12, 12, 4001, dtype=torch.float64).float().requires_grad_()
    ref = nn.functional.gelu(x, approximate="tanh")
    assert torch.equal(gelu_tanh(x), ref)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)  # the branch the compiler traces
    other = gelu_tanh(x)
    # Measured 4.8e-7 apart (values) and 2.1e-6 (gradients). A wrong constant is off by far more:
    # sqrt(2/pi) for sqrt(8/pi) by 0.23, a cubic coefficient of 0.0447 for 0.044715 by 8.9e-6.
    torch.testing.assert_close(other, ref, rtol=0, atol=4e-6)
    (g_other,), (g_ref,) = torch.autograd.grad(other.sum(), x), torch.autograd.grad(ref.sum(), x)
    torch.testing.assert_close(g_other, g_ref, rtol=0, atol=1e-5)


@pytest.mark.usefixtures("cpp_compiler")
def test_gelu_tanh_compiled_matches_eager():
    x = torch.randn(64, 96)
    torch.testing.assert_close(torch.compile(gelu_tanh)(x), nn.functional.gelu(x, approximate="tanh"),
                               rtol=0, atol=4e-6)


def test_moe_with_identical_experts_equals_one_expert():
    torch.manual_seed(0)
    moe = MoEFeedForward(8, 16, n_experts=4, top_k=2)
    for e in moe.experts[1:]:
        e.load_state_dict(moe.experts[0].state_dict())
    x = torch.randn(2, 5, 8)
    # the top-k weights are renormalised to sum to 1, so identical experts give that expert's output
    torch.testing.assert_close(moe(x), moe.experts[0](x))
    assert moe.routing.shape == (10, 2)


def test_moe_routes_each_token_to_its_top_k_experts():
    torch.manual_seed(0)
    moe = MoEFeedForward(8, 16, n_experts=4, top_k=1)
    x = torch.randn(6, 8)
    out = moe(x)
    for t in range(6):
        e = int(moe.routing[t, 0])
        torch.testing.assert_close(out[t], moe.experts[e](x[t : t + 1])[0])  # top-1: weight 1


def test_moe_load_balancing_loss_is_one_when_balanced_and_larger_when_lopsided():
    moe = MoEFeedForward(4, 8, n_experts=4, top_k=1)
    with torch.no_grad():
        moe.router.weight.zero_()  # uniform router probabilities
    moe(torch.randn(32, 4))
    assert float(moe.aux_loss.detach()) == pytest.approx(1.0)
    with torch.no_grad():
        moe.router.weight.zero_()
        moe.router.weight[0] = 10.0  # expert 0 wins for inputs with a positive sum
    moe(torch.rand(32, 4))
    assert float(moe.aux_loss.detach()) > 3.0  # all tokens to one expert with probability near 1: about n_experts


@pytest.mark.parametrize("kw", [dict(n_experts=1), dict(n_experts=4, top_k=5), dict(n_experts=4, top_k=0)])
def test_moe_rejects_bad_sizes(kw):
    with pytest.raises(ValueError, match="n_experts|top_k"):
        MoEFeedForward(8, 16, **kw)


# ---------------------------------------------------------------------------------------------------- configurations


def test_published_parameter_counts_are_exact():
    assert count_parameters(TransformerConfig.preset("gpt2")) == 124_439_808
    assert count_parameters(TransformerConfig.preset("gpt2-medium")) == 354_823_168
    assert count_parameters(TransformerConfig.preset("gpt2-large")) == 774_030_080
    assert count_parameters(TransformerConfig.preset("gpt2-xl")) == 1_557_611_200
    assert count_parameters(TransformerConfig.preset("llama-7b")) == 6_738_415_616
    assert count_parameters(TransformerConfig.preset("llama-13b")) == 13_015_864_320


def test_parameter_count_without_embeddings():
    cfg = TransformerConfig.preset("gpt2")
    assert count_parameters(cfg, exclude_embeddings=True) == 124_439_808 - 50257 * 768 - 1024 * 768
    llama = TransformerConfig.preset("llama-7b")  # untied: the output head stays in the count
    assert count_parameters(llama, exclude_embeddings=True) == 6_738_415_616 - 32000 * 4096


def test_llama_default_feed_forward_width_follows_the_rule():
    assert TransformerConfig.llama(100, 8, n_embd=4096, n_head=32).d_ff == 11008
    assert TransformerConfig.gpt(100, 8, n_embd=64).d_ff == 256


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(n_embd=30, n_head=4), "n_embd = 30 must be divisible by n_head = 4"),
        (dict(n_kv_head=3), "n_kv_head"),
        (dict(norm="batchnorm"), "norm must be one of"),
        (dict(position="alibi"), "position must be one of"),
        (dict(mlp="relu"), "mlp must be one of"),
        (dict(n_layer=0), "n_layer must be an integer >= 1"),
        (dict(dropout=1.0), "dropout"),
        (dict(n_experts=1), "n_experts"),
    ],
)
def test_config_rejects_bad_settings(kw, match):
    with pytest.raises(ValueError, match=match):
        tiny(**kw)


def test_preset_rejects_unknown_name():
    with pytest.raises(ValueError, match="name must be one of"):
        TransformerConfig.preset("gpt5")
    assert set(PRESETS) >= {"gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "llama-7b"}


def test_config_round_trips_through_a_dict():
    cfg = tiny("llama", n_kv_head=2)
    assert TransformerConfig.from_dict(cfg.as_dict()) == cfg
    with pytest.raises(ValueError, match="unknown configuration keys"):
        TransformerConfig.from_dict({**cfg.as_dict(), "n_layers": 3})


# ---------------------------------------------------------------------------------------------------- the models

FAMILIES = [("gpt", {}), ("llama", {}), ("llama", dict(n_kv_head=1)), ("gpt", dict(position="sinusoidal")),
            ("gpt", dict(n_experts=4, top_k=2))]


@pytest.mark.parametrize("family, kw", FAMILIES)
def test_changing_a_future_token_never_changes_an_earlier_output(family, kw):
    torch.manual_seed(0)
    model = TransformerLM(tiny(family, **kw)).eval()
    ids = torch.randint(0, 50, (2, 16))
    for t in (0, 7, 15):
        changed = ids.clone()
        changed[:, t] = (changed[:, t] + 1) % 50
        a, b = model(ids)[0], model(changed)[0]
        # exact for dense models; an MoE expert multiplies a batch of the tokens routed to it, and a
        # different batch can round differently in the last bit (1e-8), which is not information flow
        atol = 1e-6 if kw.get("n_experts") else 0.0
        torch.testing.assert_close(a[:, :t], b[:, :t], rtol=0, atol=atol)
        assert not torch.allclose(a[:, t:], b[:, t:])  # and the token itself matters from there on


def test_prefix_mask_makes_the_prefix_bidirectional():
    torch.manual_seed(0)
    model = TransformerLM(tiny()).eval()
    ids = torch.randint(0, 50, (1, 10))
    changed = ids.clone()
    changed[0, 3] = (changed[0, 3] + 1) % 50
    mask = prefix_mask(10, 5)
    a, b = model(ids, mask=mask)[0], model(changed, mask=mask)[0]
    assert not torch.allclose(a[:, :3], b[:, :3])  # earlier prefix positions see position 3
    c, d = model(ids, mask=prefix_mask(10, 2))[0], model(changed, mask=prefix_mask(10, 2))[0]
    torch.testing.assert_close(c[:, :3], d[:, :3], rtol=0, atol=0)  # outside the prefix: causal again


def test_gpt_ties_embeddings_and_llama_does_not():
    gpt, llama = TransformerLM(tiny()), TransformerLM(tiny("llama"))
    assert gpt.head.weight is gpt.embed.tok.weight
    assert llama.head.weight is not llama.embed.tok.weight
    assert not any(n.endswith("bias") for n, _ in llama.named_parameters())


def test_forward_rejects_too_long_input_and_wrong_mask():
    model = TransformerLM(tiny())
    with pytest.raises(ValueError, match="block_size = 16"):
        model(torch.zeros(1, 17, dtype=torch.long))
    with pytest.raises(ValueError, match="mask must have shape"):
        model(torch.zeros(1, 8, dtype=torch.long), mask=causal_mask(7))
    with pytest.raises(ValueError, match="vocabulary"):
        model(torch.full((1, 4), 50))


@pytest.mark.parametrize("family", ["gpt", "llama"])
def test_state_continues_the_text_exactly(family):
    torch.manual_seed(0)
    model = TransformerLM(tiny(family)).eval()
    ids = torch.randint(0, 50, (2, 16))
    full, _ = model(ids)
    first, state = model(ids[:, :9])
    second, _ = model(ids[:, 9:], state)
    torch.testing.assert_close(torch.cat([first, second], 1), full)


def test_state_keeps_at_most_the_context():
    torch.manual_seed(0)
    model = TransformerLM(tiny()).eval()
    ids = torch.randint(0, 50, (1, 40))
    _, state = model(ids[:, :16])
    logits, state = model(ids[:, 16:24], state)  # reads the last 8 tokens of the state first
    torch.testing.assert_close(logits, model(ids[:, 8:24])[0][:, 8:])
    assert state.shape == (1, 15)


def test_sample_and_evaluate_work_on_texts_longer_than_the_context():
    torch.manual_seed(0)
    model = TransformerLM(tiny())
    text = torch.randint(0, 50, (200,))
    out = model.sample(text, 30, temperature=0.0)
    assert out.shape == (30,)
    again = model.sample(text[-16:], 30, temperature=0.0)  # only the last window matters
    assert torch.equal(out, again)
    r = evaluate(model, text)
    assert r["n_tokens"] == 199 and 2.0 < r["loss_nats"] < 6.0


def test_a_tiny_gpt_learns_a_repeating_text():
    torch.manual_seed(0)
    model = TransformerLM(tiny())
    pattern = torch.arange(10).repeat(300)  # 0 1 2 ... 9 0 1 2 ...: perfectly predictable
    history = train_language_model(model, pattern, pattern, steps=60, batch_size=8, seq_len=16, lr=1e-2,
                                   eval_every=60, show_progress=False)
    assert history.val_loss[-1] < 0.2  # from ln(50) = 3.9 at the start


def test_moe_model_adds_the_balance_loss_and_it_stays_balanced():
    torch.manual_seed(0)
    model = TransformerLM(tiny(n_experts=4, top_k=1))
    ids = torch.randint(0, 50, (4, 16))
    model(ids)
    aux = model.auxiliary_loss()
    assert aux is not None and 0.0 < float(aux.detach()) < 0.1  # weight 0.01 times a value near 1 per layer
    assert TransformerLM(tiny()).auxiliary_loss() is None


def test_attention_maps_shape_and_rows():
    torch.manual_seed(0)
    model = TransformerLM(tiny())
    maps = model.attention_maps(torch.randint(0, 50, (12,)))
    assert maps.shape == (2, 4, 12, 12)
    torch.testing.assert_close(maps.sum(-1), torch.ones(2, 4, 12))
    assert (maps[..., ~causal_mask(12)] == 0).all()
    assert all(b.attn.weights is None and not b.attn.keep_weights for b in model.blocks)


# ---------------------------------------------------------------------------------------------------- three architectures


def test_encoder_decoder_source_is_bidirectional_and_target_causal():
    torch.manual_seed(0)
    model = EncoderDecoder(tiny()).eval()
    src, tgt = torch.randint(0, 50, (1, 6)), torch.randint(0, 50, (1, 5))
    base = model(src, tgt)
    src2 = src.clone()
    src2[0, 5] = (src2[0, 5] + 1) % 50
    assert not torch.allclose(base[:, 0], model(src2, tgt)[:, 0])  # the first output sees the last source token
    tgt2 = tgt.clone()
    tgt2[0, 3] = (tgt2[0, 3] + 1) % 50
    torch.testing.assert_close(base[:, :3], model(src, tgt2)[:, :3], rtol=0, atol=0)


def sort_task(n, g):
    src = torch.randint(0, 6, (n, 5), generator=g)
    return src, src.sort(dim=1).values


@pytest.mark.parametrize("kind", ARCHITECTURES)
def test_each_architecture_learns_to_sort(kind):
    torch.manual_seed(0)
    model = Seq2SeqModel(kind, 6, 5, 5, n_layer=2, n_head=2, n_embd=32)
    result = train_seq2seq(model, sort_task, steps=250, batch_size=64, lr=3e-3, eval_size=300, show_progress=False)
    assert result["token_accuracy"] > 0.9  # chance is about 1/6
    assert result["parameters"] == model.num_parameters()


def test_seq2seq_model_rejects_unknown_kind():
    with pytest.raises(ValueError, match="kind must be one of"):
        Seq2SeqModel("encoder-only", 6, 5, 5)


# ---------------------------------------------------------------------------------------------------- Hugging Face GPT-2


def test_course_gpt2_state_dict_round_trips_through_hf_naming():
    torch.manual_seed(0)
    model = TransformerLM(tiny())
    sd = model.state_dict()
    hf = course_to_hf_gpt2(sd)
    assert hf["transformer.h.0.attn.c_attn.weight"].shape == (32, 96)  # Conv1D: (in, out)
    back = hf_gpt2_to_course(hf)
    assert set(back) == set(sd)
    for k in sd:
        torch.testing.assert_close(back[k], sd[k], rtol=0, atol=0)
    with pytest.raises(ValueError, match="GPT-2"):
        hf_gpt2_to_course({"foo": torch.zeros(1)})
    with pytest.raises(ValueError, match="GPT-style"):
        course_to_hf_gpt2(TransformerLM(tiny("llama")).state_dict())


def test_hf_gpt2_gives_the_same_logits_as_the_course_gpt():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(vocab_size=50, n_positions=16, n_embd=32, n_layer=2, n_head=4,
                                  resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(cfg).eval()
    ours = TransformerLM(tiny()).eval()
    ours.load_state_dict(hf_gpt2_to_course(hf.state_dict()))
    ids = torch.randint(0, 50, (2, 16))
    torch.testing.assert_close(ours(ids)[0], hf(ids).logits, rtol=1e-4, atol=1e-4)
    # and back: the course's random weights in HF's model
    torch.manual_seed(1)
    ours2 = TransformerLM(tiny()).eval()
    hf.load_state_dict(course_to_hf_gpt2(ours2.state_dict()), strict=False)
    torch.testing.assert_close(hf(ids).logits, ours2(ids)[0], rtol=1e-4, atol=1e-4)
