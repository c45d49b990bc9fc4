import pytest

from llmcourse.scaling import (
    measure_matmul_flops,
    training_flops,
    training_memory_bytes,
    weight_memory_bytes,
)


def test_six_n_d_matches_published_gpt3_compute():
    # GPT-3 paper (Brown et al. 2020, Table D.1): 175B parameters, 300B tokens, 3.14e23 FLOPs.
    assert training_flops(175e9, 300e9) == pytest.approx(3.14e23, rel=0.01)


def test_memory_rules_of_thumb():
    assert weight_memory_bytes(175e9, "fp16") == 350e9
    assert weight_memory_bytes(7e9, "int4") == 3.5e9
    assert weight_memory_bytes(1e9, "fp32") == 4e9
    # ZeRO paper (Rajbhandari et al. 2020): a 7.5B model needs 120 GB of model states with mixed-precision Adam
    assert training_memory_bytes(7.5e9) == 120e9


@pytest.mark.parametrize("call, name", [
    (lambda: training_flops(0, 1), "n_params"),
    (lambda: training_flops(1, -5), "n_tokens"),
    (lambda: training_flops(True, 1), "n_params"),
    (lambda: weight_memory_bytes(1e9, "fp8"), "precision"),
    (lambda: measure_matmul_flops(size=4), "size"),
    (lambda: measure_matmul_flops(repeats=0), "repeats"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_measured_matmul_rate_is_plausible():
    rate = measure_matmul_flops(size=128, repeats=2)
    assert 1e7 < rate < 1e16


def test_published_models_table():
    from llmcourse.scaling import published_models

    models = {m.name: m for m in published_models()}
    assert len(models) >= 12
    gpt3 = models["GPT-3"]
    assert (gpt3.year, gpt3.params, gpt3.tokens) == (2020, 175e9, 300e9)
    assert gpt3.training_flops == pytest.approx(3.14e23, rel=0.01)
    # Chinchilla's point: about 20 tokens per parameter
    assert models["Chinchilla"].tokens / models["Chinchilla"].params == 20
    # mixtures of experts pay compute for the active parameters only
    ds = models["DeepSeek-V3"]
    assert ds.active_params < ds.params and ds.training_flops == training_flops(ds.active_params, ds.tokens)
    assert all(m.source for m in models.values())
    assert models["GPT-2"].tokens is None and models["GPT-2"].training_flops is None


def test_size_report_numbers():
    from llmcourse.scaling import size_report

    text = size_report("GPT-3", "fp16", 1e11)
    assert "350.0 GB" in text and "5 GPUs of 80 GB" in text
    assert "2.80 TB" in text and "3.15e+23 FLOPs" in text
    # 3.15e23 FLOPs / 1e11 FLOP/s = 3.15e12 s ≈ 99,817 Julian years; on 1,000 H100 at 40%: 3.15e23 / 3.956e17 = 9.2 days
    assert "99,817 years" in text and "9.2 days" in text
    assert "not published" in size_report("GPT-2", "fp32", 1e11)
    with pytest.raises(ValueError, match="model must be one of"):
        size_report("GPT-5", "fp16", 1e11)
    with pytest.raises(ValueError, match="flops_per_second"):
        size_report("GPT-3", "fp16", 0)
    with pytest.raises(ValueError, match="precision"):
        size_report("GPT-3", "fp9", 1e11)


def test_flops_per_token_is_6n_plus_the_attention_term():
    from llmcourse.scaling import flops_per_token, mfu

    # GPT-2 small at context 1024, position table excluded (nanoGPT's estimate_mfu counts the same):
    n = 124_439_808 - 1024 * 768
    assert flops_per_token(n, 12, 1024, 768) == 6 * n + 12 * 12 * 1024 * 768 == 855_166_464
    assert mfu(1000.0, 855_166_464, 855_166_464 * 4000) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="seq_len"):
        flops_per_token(n, 12, 0, 768)
    with pytest.raises(ValueError, match="peak_flops"):
        mfu(1.0, 1.0, 0.0)
