"""Parameter-efficient fine-tuning: LoRA (merge, unmerge, save, load, merged copy), adapters, prefix
tuning and prompt tuning on tiny GPT- and LLaMA-style models (one with grouped-query attention)."""

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse import peft
from llmcourse.attention import MultiHeadAttention, apply_rope, causal_mask, rope_cache, scaled_dot_product_attention
from llmcourse.checks import ArgumentError
from llmcourse.generation import generate
from llmcourse.transformer import TransformerConfig, TransformerLM

CONFIGS = {
    "gpt": TransformerConfig.gpt(50, 16, n_layer=2, n_head=4, n_embd=32),
    "llama": TransformerConfig.llama(50, 16, n_layer=2, n_head=4, n_kv_head=2, n_embd=32, d_ff=48),
}
FAMILIES = sorted(CONFIGS)
ALL_LINEAR = {"gpt": ("q", "kv", "proj", "fc"), "llama": ("q", "kv", "proj", "gate", "up", "down", "head")}


pytestmark = pytest.mark.usefixtures("one_thread")


def base(family: str, seed: int = 0) -> TransformerLM:
    """A tiny random model whose matrices are N(0, 0.2), so its outputs depend clearly on its inputs."""
    torch.manual_seed(seed)
    model = TransformerLM(CONFIGS[family])
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.2)
    return model


def batch(B: int = 3, T: int = 12, seed: int = 1) -> torch.Tensor:
    return torch.randint(50, (B, T), generator=torch.Generator().manual_seed(seed))


def lm_loss(model, ids):
    logits = model(ids[:, :-1])[0]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))


def train(model, steps: int = 3, lr: float = 1e-2, ids=None) -> list[float]:
    """A few Adam steps on the trainable parameters: the losses before each step."""
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for step in range(steps):
        loss = lm_loss(model, batch(4, 13, seed=10 + step) if ids is None else ids)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def snapshot(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def check_only_peft_trains(model, before: dict[str, torch.Tensor], peft_names: set[str]):
    """After training: the base is bit-identical, every PEFT parameter moved, and a backward pass gives
    gradients to the PEFT parameters only."""
    params = dict(model.named_parameters())
    assert set(params) >= peft_names and peft_names
    for n, p in params.items():
        if n in peft_names:
            assert p.requires_grad and not torch.equal(p, before[n]), f"{n} did not train"
        else:
            assert not p.requires_grad and torch.equal(p, before[n]), f"base parameter {n} changed"
    model.zero_grad(set_to_none=True)
    lm_loss(model, batch(2, 9)).backward()
    for n, p in params.items():
        assert (p.grad is not None) == (n in peft_names), n


# ---------------------------------------------------------------------------------------------------- LoRA


def test_lora_linear_is_the_formula_and_starts_as_its_base():
    torch.manual_seed(0)
    lin = nn.Linear(20, 12)
    layer = peft.LoRALinear(lin, r=4, alpha=8)
    x = torch.randn(3, 5, 20)
    assert torch.equal(layer(x), lin(x))  # B = 0: exactly the base layer
    assert torch.equal(layer.lora_B, torch.zeros(12, 4))
    assert layer.lora_A.abs().max() <= 1 / 20**0.5 and layer.lora_A.std() > 0.1 / 20**0.5  # Kaiming-uniform
    assert not lin.weight.requires_grad and not lin.bias.requires_grad and layer.lora_A.requires_grad
    with torch.no_grad():
        layer.lora_B.normal_()
    expected = lin(x) + 2.0 * x @ layer.lora_A.T @ layer.lora_B.T
    torch.testing.assert_close(layer(x), expected)
    torch.testing.assert_close(layer.delta_weight(), 2.0 * layer.lora_B @ layer.lora_A)
    assert torch.linalg.matrix_rank(layer.delta_weight()) == 4


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_starts_unchanged_and_trains_only_a_and_b(family):
    model, ids = base(family), batch()
    ref = model(ids)[0]
    names = peft.apply_lora(model, r=4, alpha=8, targets=ALL_LINEAR[family])
    assert names[:3] == ["blocks.0.attn.q", "blocks.0.attn.kv", "blocks.0.attn.proj"]
    assert torch.equal(model(ids)[0], ref)
    assert peft.trainable_parameters(model) == peft.lora_parameter_count(model.config, 4, ALL_LINEAR[family])
    before = snapshot(model)
    train(model)
    check_only_peft_trains(model, before, set(peft.lora_state_dict(model)))


@pytest.mark.parametrize("family", FAMILIES)
def test_merge_and_unmerge_are_exact(family):
    model, ids = base(family), batch()
    peft.apply_lora(model, r=2, alpha=4, targets=("q", "kv", "proj"))
    train(model)
    weights = {n: m.base.weight.detach().clone() for n, m in peft._lora_layers(model).items()}
    lora_logits = model(ids)[0]
    peft.merge_lora(model)
    for n, m in peft._lora_layers(model).items():
        assert m.merged
        torch.testing.assert_close(m.base.weight, weights[n] + m.delta_weight())
    torch.testing.assert_close(model(ids)[0], lora_logits, rtol=1e-5, atol=1e-5)
    with pytest.raises(ArgumentError, match="already merged"):
        peft.merge_lora(model)
    peft.unmerge_lora(model)
    for n, m in peft._lora_layers(model).items():
        torch.testing.assert_close(m.base.weight, weights[n])
    torch.testing.assert_close(model(ids)[0], lora_logits, rtol=1e-5, atol=1e-5)
    with pytest.raises(ArgumentError, match="not merged"):
        peft.unmerge_lora(model)
    layer = next(iter(peft._lora_layers(model).values()))
    with pytest.raises(ArgumentError, match="not merged"):
        layer.unmerge()


@pytest.mark.parametrize("family", FAMILIES)
def test_save_and_load_lora_round_trip(family, tmp_path):
    model, ids = base(family), batch()
    pristine = copy.deepcopy(model)
    peft.apply_lora(model, r=4, alpha=16, targets=("q", "kv"))
    train(model)
    path = peft.save_lora(model, tmp_path / "adapter.safetensors")
    n_lora = peft.lora_parameter_count(model.config, 4, ("q", "kv"))
    assert path.stat().st_size < 4 * n_lora + 4096  # the A/B matrices and a small header, nothing else
    assert path.stat().st_size < 0.2 * 4 * sum(p.numel() for p in pristine.parameters())
    names = peft.load_lora(pristine, path)
    assert names == list(peft._lora_layers(model))
    assert torch.equal(pristine(ids)[0], model(ids)[0])
    assert peft.trainable_parameters(pristine) == n_lora
    # loading onto a model that already has the same LoRA layers works too, and so does a merged model's file
    peft.load_lora(pristine, path)
    expected = model(ids)[0]
    peft.merge_lora(model)
    peft.save_lora(model, tmp_path / "merged.safetensors")
    peft.load_lora(pristine, tmp_path / "merged.safetensors")
    assert torch.equal(pristine(ids)[0], expected)


def test_load_lora_refuses_another_base_and_other_files(tmp_path):
    model = base("llama")
    peft.apply_lora(model, r=2, alpha=2)
    path = peft.save_lora(model, tmp_path / "lora.safetensors")
    other = base("llama", seed=1)
    with pytest.raises(ArgumentError, match=r"lora\.safetensors.*different base model"):
        peft.load_lora(other, path)
    assert not peft._lora_layers(other)  # nothing half-applied
    with pytest.raises(ArgumentError, match="no LoRA file"):
        peft.load_lora(other, tmp_path / "missing.safetensors")
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, tmp_path / "plain.safetensors")
    with pytest.raises(ArgumentError, match="not a LoRA file"):
        peft.load_lora(other, tmp_path / "plain.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not safetensors at all")
    with pytest.raises(ArgumentError, match="not a readable safetensors file"):
        peft.load_lora(other, tmp_path / "junk.safetensors")


@pytest.mark.parametrize("family", FAMILIES)
def test_merged_copy_is_a_plain_transformer(family, tmp_path):
    model, ids = base(family), batch()
    peft.apply_lora(model, r=4, alpha=8, targets=ALL_LINEAR[family])
    train(model)
    plain = peft.merged_copy(model)
    assert type(plain) is TransformerLM and not peft._lora_layers(plain)
    assert plain.state_dict().keys() == TransformerLM(model.config).state_dict().keys()
    torch.testing.assert_close(plain(ids)[0], model(ids)[0], rtol=1e-5, atol=1e-5)
    assert peft._lora_layers(model) and not any(m.merged for m in peft._lora_layers(model).values())
    fresh = TransformerLM(TransformerConfig.from_dict(model.config.as_dict()))
    if model.config.tie_embeddings:
        fresh.load_state_dict(plain.state_dict())  # strict: the plain names, nothing more
    else:  # through a file, as a learner would ship it
        from safetensors.torch import load_file, save_file

        save_file(plain.state_dict(), tmp_path / "merged.safetensors")
        fresh.load_state_dict(load_file(tmp_path / "merged.safetensors"))
    assert torch.equal(fresh(ids)[0], plain(ids)[0])


def test_merged_copy_of_a_merged_model_and_lora_combined_with_adapters():
    model, ids = base("gpt"), batch()
    peft.apply_lora(model, r=2, alpha=2)
    train(model)
    peft.merge_lora(model)
    torch.testing.assert_close(peft.merged_copy(model)(ids)[0], model(ids)[0])
    peft.unmerge_lora(model)
    peft.add_adapters(model, 4)  # adapters join LoRA; LoRA stays trainable
    assert peft.trainable_parameters(model) == (peft.lora_parameter_count(model.config, 2)
                                                + peft.adapter_parameter_count(model.config, 4))
    with pytest.raises(ArgumentError, match="cannot be folded"):
        peft.merged_copy(model)


# ---------------------------------------------------------------------------------------------------- adapters


@pytest.mark.parametrize("family", FAMILIES)
def test_adapters_start_as_the_identity_and_train_alone(family):
    x = torch.randn(2, 3, 32)
    assert torch.equal(peft.Adapter(32, 4)(x), x)
    model, ids = base(family), batch()
    ref = model(ids)[0]
    names = peft.add_adapters(model, bottleneck=8)
    assert names == ["blocks.0.adapter_attn", "blocks.0.adapter_mlp", "blocks.1.adapter_attn", "blocks.1.adapter_mlp"]
    assert torch.equal(model(ids)[0], ref)
    before = snapshot(model)
    train(model)
    check_only_peft_trains(model, before, {n for n in before if ".adapter_" in n})


@pytest.mark.parametrize("family", FAMILIES)
def test_adapters_prefix_and_prompt_keep_the_kv_cache(family):
    ids = batch(2, 12)
    for add in (lambda m: peft.add_adapters(m, 8), lambda m: peft.add_prefix(m, 3),
                lambda m: peft.add_prompt(m, 3), lambda m: peft.apply_lora(m, 2, 2)):
        model = base(family)
        add(model)
        train(model, steps=2)  # so that the additions are not the identity
        model.eval()
        cache = model.new_cache()
        pieces = [model.forward_cached(ids[:, :5], cache), model.forward_cached(ids[:, 5:6], cache),
                  model.forward_cached(ids[:, 6:], cache)]
        torch.testing.assert_close(torch.cat(pieces, 1), model(ids)[0], rtol=1e-5, atol=1e-5)
        prompt = ids[0, :4]
        assert torch.equal(generate(model, prompt, 14, temperature=0), generate(model, prompt, 14, temperature=0,
                                                                                 use_cache=False))


# ---------------------------------------------------------------------------------------------------- prefix tuning


@pytest.mark.parametrize("family", FAMILIES)
def test_prefix_shapes_initial_values_and_gradients(family):
    model, ids = base(family), batch()
    init = torch.tensor([5, 6, 7, 8])
    names = peft.add_prefix(model, 4, init_ids=init)
    assert names == ["blocks.0.attn.prefix", "blocks.1.attn.prefix"]
    cfg = model.config
    n_kv = cfg.n_kv_head or cfg.n_head
    attn = model.blocks[0].attn
    assert attn.prefix.k.shape == attn.prefix.v.shape == (n_kv, 4, cfg.head_dim)
    x, _ = model.embed(init[None])  # layer 0's keys and values for the init tokens, before any rotation
    kv = attn.kv(model.blocks[0].norm_1(x))[0].view(4, 2, n_kv, cfg.head_dim)
    torch.testing.assert_close(attn.prefix.k, kv[:, 0].transpose(0, 1))
    torch.testing.assert_close(attn.prefix.v, kv[:, 1].transpose(0, 1))
    assert model(ids)[0].shape == (3, 12, 50)
    assert model.hidden_states(ids).shape == (3, 12, 32)
    maps = model.attention_maps(ids[0])
    assert maps.shape == (2, 4, 12, 4 + 12)  # every query sees the 4 prefix positions (they come first)
    assert (maps[..., :4].sum(-1) > 0).all()
    torch.testing.assert_close(maps.sum(-1), torch.ones(2, 4, 12))
    assert peft.trainable_parameters(model) == peft.prefix_parameter_count(cfg, 4)
    before = snapshot(model)
    train(model)
    check_only_peft_trains(model, before, {n for n in before if ".prefix." in n})


def test_prefix_keys_get_no_rotary_rotation():
    torch.manual_seed(0)
    attn = MultiHeadAttention(32, n_head=4, n_kv_head=2, bias=False)
    x, T, P = torch.randn(2, 6, 32), 6, 3
    attn.prefix = peft.Prefix(torch.randn(2, P, 8), torch.randn(2, P, 8))
    cos, sin = rope_cache(T, 8)
    q = apply_rope(attn.q(x).view(2, T, 4, 8).transpose(1, 2), cos, sin)
    k, v = attn.kv(x).view(2, T, 2, 2, 8).permute(2, 0, 3, 1, 4)
    k = torch.cat([attn.prefix.k.expand(2, -1, -1, -1), apply_rope(k, cos, sin)], 2).repeat_interleave(2, dim=1)
    v = torch.cat([attn.prefix.v.expand(2, -1, -1, -1), v], 2).repeat_interleave(2, dim=1)
    mask = torch.cat([torch.ones(T, P, dtype=torch.bool), causal_mask(T)], 1)
    y = scaled_dot_product_attention(q, k, v, mask)[0].transpose(1, 2).reshape(2, T, 32)
    torch.testing.assert_close(attn(x, causal_mask(T), rope=(cos, sin)), attn.proj(y))


# ---------------------------------------------------------------------------------------------------- prompt tuning


@pytest.mark.parametrize("family", FAMILIES)
def test_prompt_shapes_context_initial_values_and_gradients(family):
    model = base(family)
    init = torch.tensor([1, 2, 3, 4])
    assert peft.add_prompt(model, 4, init_ids=init) == ["embed.prompt"]
    assert torch.equal(model.embed.prompt, model.embed.tok.weight[init])
    assert model.context_size == 16 - 4
    ids = batch(3, 12)
    assert model(ids)[0].shape == (3, 12, 50)
    assert model.hidden_states(ids).shape == (3, 12, 32)
    with pytest.raises(ArgumentError, match="context block_size = 16 less the 4 prompt positions"):
        model(batch(1, 13))
    with pytest.raises(ArgumentError, match="context"):
        model.hidden_states(batch(1, 13))
    logits, state = model(ids[:, :8])  # state carries the text; the prompt is read again each time
    torch.testing.assert_close(model(ids[:, 8:], state)[0], model(ids)[0][:, 8:], rtol=1e-5, atol=1e-5)
    assert peft.trainable_parameters(model) == peft.prompt_parameter_count(model.config, 4)
    before = snapshot(model)
    train(model, ids=batch(4, 12))
    check_only_peft_trains(model, before, {"embed.prompt"})


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method", ["prefix", "prompt"])
def test_prefix_and_prompt_tuning_learn_a_repeated_pattern(family, method):
    model = base(family)
    (peft.add_prefix if method == "prefix" else peft.add_prompt)(model, 4)
    ids = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6] * 2)[:13].repeat(4, 1)
    start = lm_loss(model, ids).item()
    train(model, steps=30, lr=0.05, ids=ids)
    end = lm_loss(model, ids).item()
    assert end < 0.6 * start, (start, end)


# ---------------------------------------------------------------------------------------------------- counts


@pytest.mark.parametrize("family", FAMILIES)
def test_trainable_parameters_equal_the_formulas(family):
    cfg = CONFIGS[family]
    for r, targets in [(1, ("q",)), (4, ("q", "kv")), (3, ("proj",)), (2, ALL_LINEAR[family])]:
        model = base(family)
        peft.apply_lora(model, r, 1.0, targets)
        assert peft.trainable_parameters(model) == peft.lora_parameter_count(cfg, r, targets), (r, targets)
    for b in (1, 8):
        model = base(family)
        peft.add_adapters(model, b)
        assert peft.trainable_parameters(model) == peft.adapter_parameter_count(cfg, b) == 2 * 2 * (2 * 32 * b + b + 32)
    for n in (1, 5):
        model = base(family)
        peft.add_prefix(model, n)
        assert peft.trainable_parameters(model) == peft.prefix_parameter_count(cfg, n)
        model = base(family)
        peft.add_prompt(model, n)
        assert peft.trainable_parameters(model) == peft.prompt_parameter_count(cfg, n) == n * 32


def test_lora_formula_on_a_mixture_of_experts_and_the_zoo_model():
    from llmcourse import zoo

    moe = TransformerConfig.llama(50, 16, n_layer=2, n_head=4, n_embd=32, d_ff=48, n_experts=3, top_k=2)
    for targets in [("up",), ("router", "down", "q")]:
        model = TransformerLM(moe)
        peft.apply_lora(model, 2, 2.0, targets)
        assert peft.trainable_parameters(model) == peft.lora_parameter_count(moe, 2, targets)
    with torch.device("meta"):  # counting a published size needs no memory
        big = TransformerLM(TransformerConfig.preset("gpt2"))
    peft.apply_lora(big, 8, 16.0, ("q", "kv"))
    per_layer = 8 * (768 + 768) + 8 * (768 + 1536)  # q: 768 -> 768, kv: 768 -> 1536
    assert peft.trainable_parameters(big) == peft.lora_parameter_count(big.config, 8) == 12 * per_layer
    pretrained, _ = zoo.load("bpe-transformer-shakespeare")
    every = ("q", "kv", "proj", "gate", "up", "down", "head")
    for r in (1, 16):
        model = copy.deepcopy(pretrained)
        peft.apply_lora(model, r, 2.0 * r, every)
        assert peft.trainable_parameters(model) == peft.lora_parameter_count(model.config, r, every)


# ---------------------------------------------------------------------------------------------------- removal


def test_remove_peft_restores_the_base_exactly():
    model, ids = base("llama"), batch(2, 10)
    ref, keys = model(ids)[0], set(model.state_dict())
    peft.apply_lora(model, 2, 4.0)
    peft.add_adapters(model, 4)
    peft.add_prefix(model, 2)
    peft.add_prompt(model, 2)
    train(model, steps=2, ids=batch(4, 12))
    assert not torch.equal(model(ids)[0], ref)
    peft.remove_peft(model)
    assert torch.equal(model(ids)[0], ref)
    assert set(model.state_dict()) == keys and model.context_size == 16
    assert peft.trainable_parameters(model) == 0
    peft.apply_lora(model, 2, 4.0)  # and PEFT can go on again


def test_a_model_without_peft_has_no_new_state():
    model = TransformerLM(CONFIGS["gpt"])
    assert not any(k for k in model.state_dict() if "prompt" in k or "prefix" in k or "adapter" in k or "lora" in k)
    assert model.embed.prompt is None and all(b.adapter_attn is None and b.attn.prefix is None for b in model.blocks)


# ---------------------------------------------------------------------------------------------------- bad input


def test_bad_input_is_refused_with_the_argument_named():
    model = base("gpt")
    cfg = model.config
    for call, match in [
        (lambda: peft.apply_lora(model, 0, 8), "r must be an integer >= 1"),
        (lambda: peft.apply_lora(model, 2.5, 8), "r must be an integer"),
        (lambda: peft.apply_lora(model, 4, 0), "alpha must be a finite number > 0"),
        (lambda: peft.apply_lora(model, 4, 8, dropout=1.0), "dropout"),
        (lambda: peft.apply_lora(model, 4, 8, targets="q"), r"did you mean \[targets\]"),
        (lambda: peft.apply_lora(model, 4, 8, targets=()), "targets must be a non-empty"),
        (lambda: peft.apply_lora(model, 4, 8, targets=("q", "v")),
         r"'v' matches no linear layer.*'fc', 'head', 'kv', 'proj', 'q'"),
        (lambda: peft.apply_lora(model, 4, 8, targets=("head",)), "shares its weight"),
        (lambda: peft.apply_lora(nn.Linear(2, 2), 4, 8), "model must be a TransformerLM"),
        (lambda: peft.LoRALinear(nn.Conv1d(2, 2, 1), 4, 8), "base must be an nn.Linear"),
        (lambda: peft.add_adapters(model, 0), "bottleneck must be an integer >= 1"),
        (lambda: peft.add_adapters("model", 4), "model must be a TransformerLM"),
        (lambda: peft.add_prefix(model, 0), "n_prefix must be an integer >= 1"),
        (lambda: peft.add_prefix(model, 17), "n_prefix must be an integer >= 1 and <= 16"),
        (lambda: peft.add_prefix(model, 3, init_ids=[1, 2]), "init_ids must hold n_prefix = 3"),
        (lambda: peft.add_prefix(model, 2, init_ids=[1, 99]), "outside the vocabulary"),
        (lambda: peft.add_prompt(model, 0), "n_prompt must be an integer >= 1"),
        (lambda: peft.add_prompt(model, 16), "n_prompt must be an integer >= 1 and <= 15"),
        (lambda: peft.merge_lora(model), "no LoRA layers"),
        (lambda: peft.save_lora(model, "x.safetensors"), "no LoRA layers"),
        (lambda: peft.lora_parameter_count(cfg, 0), "r must be"),
        (lambda: peft.lora_parameter_count(cfg, 2, ("v",)), "'v' matches no linear layer"),
        (lambda: peft.lora_parameter_count(cfg, 2, ("head",)), "tied"),
        (lambda: peft.lora_parameter_count(model, 2), "config must be a TransformerConfig"),
        (lambda: peft.adapter_parameter_count(cfg, 0), "bottleneck"),
        (lambda: peft.prefix_parameter_count(cfg, -1), "n_prefix"),
        (lambda: peft.prompt_parameter_count(cfg, 0), "n_prompt"),
        (lambda: peft.trainable_parameters(3), "model must be a torch nn.Module"),
    ]:
        with pytest.raises(ArgumentError, match=match):
            call()
    # nothing was half-applied by any of the failures
    assert peft.trainable_parameters(model) == sum(p.numel() for p in model.parameters())
    assert not peft._peft_parameters(model) and model.context_size == 16


def test_peft_twice_on_the_same_place_is_refused():
    model = base("llama")
    peft.apply_lora(model, 2, 2.0, ("q",))
    with pytest.raises(ArgumentError, match="blocks.0.attn.q already has LoRA"):
        peft.apply_lora(model, 2, 2.0, ("kv", "q"))
    assert len(peft._lora_layers(model)) == 2  # the kv layers were not wrapped either
    peft.apply_lora(model, 2, 2.0, ("kv",))  # other layers may still get it
    peft.merge_lora(model)
    with pytest.raises(ArgumentError, match="already merged"):
        next(iter(peft._lora_layers(model).values())).merge()
    for add, match in [(peft.add_adapters, "already has adapters"), (peft.add_prefix, "already has a prefix"),
                       (peft.add_prompt, "already has a prompt")]:
        add(model, 2)
        with pytest.raises(ArgumentError, match=match):
            add(model, 2)
