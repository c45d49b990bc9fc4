import math

import pytest

from llmcourse import scaling
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


# --- Chinchilla (Hoffmann et al. 2022) -------------------------------------------------------------

# Table 3 of the paper (approach 1): estimated compute-optimal parameters, FLOPs and tokens.
CHINCHILLA_TABLE_3 = [
    (400e6, 1.92e19, 8.0e9),
    (1e9, 1.21e20, 20.2e9),
    (10e9, 1.23e22, 205.1e9),
    (67e9, 5.76e23, 1.5e12),
    (175e9, 3.85e24, 3.7e12),
    (280e9, 9.90e24, 5.9e12),
    (520e9, 3.43e25, 11.0e12),
    (1e12, 1.27e26, 21.2e12),
    (10e12, 1.30e28, 216.2e12),
]


def test_chinchilla_fit_constants_and_loss_of_chinchilla():
    from llmcourse.scaling import CHINCHILLA_FIT, chinchilla_loss

    f = CHINCHILLA_FIT
    assert (f.E, f.A, f.B, f.alpha, f.beta) == (1.69, 406.4, 410.7, 0.34, 0.28)
    assert "Hoffmann" in f.source
    # Chinchilla, 70B parameters on 1.4T tokens: 1.69 + 406.4/70e9**0.34 + 410.7/1.4e12**0.28
    # = 1.69 + 0.0836 + 0.1631 = 1.9366 (worked by hand from the published constants)
    assert chinchilla_loss(70e9, 1.4e12) == pytest.approx(1.9366, abs=5e-4)
    # the paper's point: Gopher (280B, 300B tokens, slightly less compute) is predicted worse (1.993)
    assert chinchilla_loss(280e9, 300e9) == pytest.approx(1.9933, abs=5e-4)
    # no model or data set gets below the irreducible loss E
    assert 1.69 < chinchilla_loss(1e15, 1e18) < 1.70


def test_rule_of_thumb_reproduces_table_3():
    from llmcourse.scaling import chinchilla_rule_of_thumb

    for n, c, d in CHINCHILLA_TABLE_3:
        # tokens from parameters: the table's D/N runs from 20.0 (400M) to 22.4 (67B). Measured
        # |20·N - D| / D: worst 10.7% at 67B (the table's 1.5T is rounded: 6·67B·1.5T is 4.7% above
        # its own 5.76e23 FLOPs), next worst 7.5% at 10T; 0.0% at 400M.
        assert 20 * n == pytest.approx(d, rel=0.11)
        # parameters and tokens from FLOPs: measured worst N +4.1% (10T), worst D -7.6% (67B)
        n_rule, d_rule = chinchilla_rule_of_thumb(c)
        assert n_rule == pytest.approx(n, rel=0.05)
        assert d_rule == pytest.approx(d, rel=0.08)
        assert d_rule == pytest.approx(20 * n_rule) and 6 * n_rule * d_rule == pytest.approx(c)
    n, d = chinchilla_rule_of_thumb(1.92e19)
    assert n == pytest.approx(400e6, rel=1e-9) and d == pytest.approx(8e9, rel=1e-9)  # the table's first row exactly
    n, d = chinchilla_rule_of_thumb(6e20, tokens_per_param=100)
    assert n == pytest.approx(1e9) and d == pytest.approx(1e11)


def test_parametric_optimum_predicts_smaller_models_than_table_3():
    from llmcourse.scaling import chinchilla_optimal

    ratios = []
    for n, c, d in CHINCHILLA_TABLE_3:
        n_opt, d_opt = chinchilla_optimal(c)
        assert 6 * n_opt * d_opt == pytest.approx(c, rel=1e-9)
        ratios.append(n_opt / n)
        # measured D_opt / D_table: 1.31 (400M row) up to 3.37 (10T row)
        assert 1.2 < d_opt / d < 3.5
    # Measured N_opt / N_table: 0.765, 0.703, 0.567, 0.480, 0.434, 0.415, 0.392, 0.368, 0.298
    # (400M ... 10T rows). The fit (approach 3) always says "smaller model, more tokens" than approach 1,
    # and more so the larger the budget, since its exponent a = 0.28/0.62 = 0.45 is below approach 1's 0.50.
    assert all(0.25 < r < 0.8 for r in ratios)
    assert all(later < earlier for earlier, later in zip(ratios, ratios[1:]))
    # Gopher's budget (5.76e23 FLOPs): about 32B parameters, against approach 1's 67B
    assert chinchilla_optimal(5.76e23)[0] == pytest.approx(32.2e9, rel=0.01)


def test_parametric_optimum_minimises_the_loss_at_fixed_compute():
    import numpy as np

    from llmcourse.scaling import chinchilla_loss, chinchilla_optimal

    for c in (1e19, 5.76e23, 1e26):
        n_opt, _ = chinchilla_optimal(c)

        def loss(n):
            return chinchilla_loss(n, c / (6 * n))

        assert loss(n_opt) < loss(0.5 * n_opt) and loss(n_opt) < loss(2 * n_opt)
        # a fine grid along C = 6ND finds its minimum next to N_opt
        grid = n_opt * np.logspace(-1, 1, 2001)  # steps of 0.1% in N
        best = grid[int(np.argmin([loss(n) for n in grid]))]
        assert best == pytest.approx(n_opt, rel=0.003)


# --- ZeRO (Rajbhandari et al. 2020) ----------------------------------------------------------------


def test_zero_matches_figure_1():
    from llmcourse.scaling import zero_memory_per_device

    # Figure 1: Ψ = 7.5B, Nd = 64, K = 12 -> 120 GB, 31.4 GB, 16.6 GB, 1.9 GB per device.
    # Formula: 120, 31.406, 16.641, 1.875 GB; the paper rounds to 0.1 GB, so allow half of that.
    for stage, gb in enumerate([120.0, 31.4, 16.6, 1.9]):
        assert zero_memory_per_device(7.5e9, 64, stage) / 1e9 == pytest.approx(gb, abs=0.05)


# Table 1 rows: Ψ, Nd, GB per device for stages 1, 2, 3 as the paper prints them. Each is checked to
# its printed precision (half a unit of its last digit).
ZERO_TABLE_1 = [
    (7.5e9, 1, ("120", "120", "120")),
    (7.5e9, 4, ("52.5", "41.3", "30")),
    (7.5e9, 16, ("35.6", "21.6", "7.5")),
    (7.5e9, 64, ("31.4", "16.6", "1.88")),
    (128e9, 16, ("608", "368", "128")),
    (1e12, 16, ("4750", "2875", "1000")),
]


@pytest.mark.parametrize("psi, nd, printed", ZERO_TABLE_1)
def test_zero_matches_table_1(psi, nd, printed):
    from llmcourse.scaling import zero_memory_per_device

    for stage, text in zip((1, 2, 3), printed):
        decimals = len(text.partition(".")[2])
        half_unit = 0.5 * 10.0**-decimals
        assert zero_memory_per_device(psi, nd, stage) / 1e9 == pytest.approx(float(text), abs=half_unit + 1e-9)
    # stage 0 does not depend on the number of devices: 16 bytes per parameter everywhere
    assert zero_memory_per_device(psi, nd, 0) == 16 * psi


def test_zero_optimizer_bytes_and_ordering():
    from llmcourse.scaling import zero_memory_per_device

    # K = 4 (an fp32 master copy only, as for plain SGD) makes stage 0 8 bytes per parameter
    assert zero_memory_per_device(1e9, 8, 0, optimizer_bytes=4) == 8e9
    assert zero_memory_per_device(1e9, 8, 3, optimizer_bytes=4) == 1e9
    per_stage = [zero_memory_per_device(1e9, 8, s) for s in range(4)]
    assert per_stage == sorted(per_stage, reverse=True) and len(set(per_stage)) == 4
    # with one device, sharding saves nothing
    assert {zero_memory_per_device(1e9, 1, s) for s in range(4)} == {16e9}


# --- Activation memory (Korthikanti et al. 2022) ---------------------------------------------------


def test_activation_memory_hand_computation():
    from llmcourse.scaling import activation_memory_bytes

    # s = 4, b = 2, h = 8, a = 2, 3 layers: s·b·h = 64; 34·64 = 2176; 5·a·s²·b = 5·2·16·2 = 320;
    # per layer 2496 bytes, three layers 7488.
    assert activation_memory_bytes(4, 2, 8, 3, 2) == 7488
    # GPT-2 small (s = 1024, b = 1, h = 768, a = 12, 12 layers): per layer
    # 1024·768·34 = 26,738,688 plus 5·12·1024² = 62,914,560, i.e. 89,653,248; times 12 = 1,075,838,976
    assert activation_memory_bytes(1024, 1, 768, 12, 12) == 1_075_838_976
    # fp32 values, 1-byte dropout masks, one layer: s·b·h·(16·4 + 2) + a·s²·b·(2·4 + 1)
    # = 64·66 + 2·16·2·9 = 4224 + 576 = 4800
    assert activation_memory_bytes(4, 2, 8, 1, 2, bytes_per_value=4) == 4800


def test_activation_memory_scaling():
    from llmcourse.scaling import activation_memory_bytes

    base = activation_memory_bytes(512, 4, 1024, 8, 16)
    assert activation_memory_bytes(512, 8, 1024, 8, 16) == 2 * base  # linear in batch
    assert activation_memory_bytes(512, 4, 1024, 24, 16) == 3 * base  # linear in layers
    f = [activation_memory_bytes(s, 4, 1024, 8, 16) for s in (128, 256, 384, 512)]
    g = [m / s for m, s in zip(f, (128, 256, 384, 512))]
    # memory / s is a straight line in s with a positive intercept: f(s) = c1·s + c2·s², both > 0
    assert g[1] - g[0] == pytest.approx(g[2] - g[1]) == pytest.approx(g[3] - g[2])
    slope = (g[1] - g[0]) / 128
    intercept = g[0] - slope * 128
    assert slope > 0 and intercept > 0
    assert 2 < f[3] / f[1] < 4  # doubling s more than doubles memory, less than quadruples it


# --- Training time ---------------------------------------------------------------------------------


def test_training_time_seconds():
    from llmcourse.scaling import H100_BF16_DENSE_FLOPS, training_time_seconds

    # 1e21 FLOPs on 8 devices of 1e15 FLOP/s at 50% utilisation: 1e21 / 4e15 = 250,000 s
    assert training_time_seconds(1e21, 1e15, 8, mfu=0.5) == pytest.approx(250_000)
    assert training_time_seconds(1e18, 1e15) == pytest.approx(2_500)  # one device, default mfu 0.4
    # GPT-3 (3.15e23 FLOPs) on 1,000 H100s at 40%: 9.2 days, as in size_report
    days = training_time_seconds(6 * 175e9 * 300e9, H100_BF16_DENSE_FLOPS, 1000) / 86_400
    assert days == pytest.approx(9.2, abs=0.05)


@pytest.mark.parametrize("call, name", [
    (lambda: scaling.chinchilla_loss(0, 1e9), "n_params"),
    (lambda: scaling.chinchilla_loss(1e9, -1), "n_tokens"),
    (lambda: scaling.chinchilla_loss(1e9, 1e9, fit={"E": 1}), "fit"),
    (lambda: scaling.chinchilla_optimal(0), "compute_flops"),
    (lambda: scaling.chinchilla_optimal(float("nan")), "compute_flops"),
    (lambda: scaling.chinchilla_rule_of_thumb(1e20, 0), "tokens_per_param"),
    (lambda: scaling.ChinchillaFit(1.69, 406.4, 410.7, -0.34, 0.28), "alpha"),
    (lambda: scaling.zero_memory_per_device(1e9, 8, 4), "stage"),
    (lambda: scaling.zero_memory_per_device(1e9, 8, True), "stage"),
    (lambda: scaling.zero_memory_per_device(1e9, 0, 1), "n_devices"),
    (lambda: scaling.zero_memory_per_device(1e9, 2.5, 1), "n_devices"),
    (lambda: scaling.zero_memory_per_device(0, 8, 1), "n_params"),
    (lambda: scaling.zero_memory_per_device(1e9, 8, 1, 0), "optimizer_bytes"),
    (lambda: scaling.activation_memory_bytes(0, 1, 8, 1, 2), "seq_len"),
    (lambda: scaling.activation_memory_bytes(4, 1.0, 8, 1, 2), "batch_size"),
    (lambda: scaling.activation_memory_bytes(4, 1, 8, 0, 2), "n_layer"),
    (lambda: scaling.activation_memory_bytes(4, 1, 8, 1, 3), "n_head"),
    (lambda: scaling.activation_memory_bytes(4, 1, 8, 1, 2, 0), "bytes_per_value"),
    (lambda: scaling.training_time_seconds(0, 1e15), "compute_flops"),
    (lambda: scaling.training_time_seconds(1e20, -1), "peak_flops_per_device"),
    (lambda: scaling.training_time_seconds(1e20, 1e15, 0), "n_devices"),
    (lambda: scaling.training_time_seconds(1e20, 1e15, 1, mfu=1.5), "mfu"),
    (lambda: scaling.training_time_seconds(1e20, 1e15, 1, mfu=0), "mfu"),
])
def test_new_functions_name_the_bad_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


# --- scaling laws, measured: fits, IsoFLOP minima, the ladder and its probe ------------------------


def test_fit_power_law_recovers_a_known_law():
    import numpy as np

    x = np.logspace(3, 7, 9)
    pure = scaling.fit_power_law(x, 5.0 * x**-0.3)
    assert pure.alpha == pytest.approx(0.3, abs=1e-9) and pure.A == pytest.approx(5.0, rel=1e-9) and pure.E == 0
    law = scaling.fit_power_law(x, 1.5 + 40.0 * x**-0.35, offset=True)
    # a grid search refined twice: E to about 1e-5 of its range, alpha and A follow
    assert law.E == pytest.approx(1.5, abs=2e-3) and law.alpha == pytest.approx(0.35, abs=0.01)
    assert np.allclose(law(x), 1.5 + 40.0 * x**-0.35, rtol=1e-3)
    noisy = 1.5 + 40.0 * x**-0.35 * np.exp(np.random.default_rng(0).normal(0, 0.01, len(x)))
    assert scaling.fit_power_law(x, noisy, offset=True).alpha == pytest.approx(0.35, abs=0.05)


def test_fit_power_law_without_offset_is_a_line_on_log_axes():
    law = scaling.fit_power_law([1, 10, 100], [2.0, 1.0, 0.5])
    assert law.alpha == pytest.approx(math.log10(2), rel=1e-9) and law.A == pytest.approx(2.0, rel=1e-9)
    assert "x^(-0.301)" in str(law)


def test_isoflop_minimum_finds_the_vertex():
    import numpy as np

    n = np.array([1e4, 3e4, 1e5, 3e5, 1e6])
    loss = 2.0 + 0.3 * (np.log10(n) - np.log10(8e4)) ** 2
    n_opt, l_min = scaling.isoflop_minimum(n, loss)
    assert n_opt == pytest.approx(8e4, rel=1e-6) and l_min == pytest.approx(2.0, abs=1e-9)
    with pytest.raises(ValueError, match="outside the sizes tried.*larger"):
        scaling.isoflop_minimum(n, 2.0 + 0.3 * (np.log10(n) - 7) ** 2)
    with pytest.raises(ValueError, match="curve upwards"):
        scaling.isoflop_minimum(n, 3.0 - 0.3 * (np.log10(n) - 5) ** 2)


@pytest.mark.parametrize("call, name", [
    (lambda: scaling.fit_power_law([1, 2], [1, 0]), "positive"),
    (lambda: scaling.fit_power_law([1, 2], [1, 2, 3]), "same length"),
    (lambda: scaling.fit_power_law([1, 2], [2, 1], offset=True), "at least 3"),
    (lambda: scaling.fit_power_law([3, 3], [2, 1]), "two different"),
    (lambda: scaling.isoflop_minimum([1, 2], [1, 2]), "at least 3"),
    (lambda: scaling.ladder_model(2, 24, 10), "multiple of 16"),
    (lambda: scaling.ladder_lr(0), "n_embd"),
])
def test_scaling_fits_reject_bad_input(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_ladder_models_grow_and_their_rates_shrink():
    sizes = [scaling.ladder_model(L, d, 73).num_parameters(exclude_embeddings=True) for L, d in scaling.LADDER.values()]
    assert sizes == sorted(sizes) and sizes[-1] > 100 * sizes[0]
    assert scaling.ladder_lr(64) == pytest.approx(0.01) and scaling.ladder_lr(128) == pytest.approx(0.005)
    assert scaling.ladder_lr(16) == 0.02
    model = scaling.ladder_model(1, 16, 73)
    assert model.blocks[0].mlp.gate.out_features == 48  # 8/3 * 16 rounded up to a multiple of 16


def test_word_completion_scores_a_perfect_and_a_clueless_model():
    import torch

    from llmcourse.ngram import CharVocab

    text = "the quick brown fox jumps over the lazy dog; " * 40
    vocab = CharVocab.from_text(text)
    ids = vocab.encode(text)
    starts, lengths = scaling.long_words(text, min_len=5, max_len=6, context=20, n=10)
    assert all(text[s:s + n] in ("quick", "brown", "jumps") for s, n in zip(starts, lengths))

    class Oracle(torch.nn.Module):  # predicts the true next character everywhere
        context_size = None

        def forward(self, x, state=None):
            nxt = {tuple(ids[i:i + 20]): ids[i + 20] for i in range(len(ids) - 20)}
            out = torch.full((*x.shape, vocab.size), -10.0)
            for b in range(x.shape[0]):
                for t in range(19, x.shape[1]):
                    out[b, t, nxt[tuple(x[b, t - 19:t + 1].tolist())]] = 10.0
            return out, None

    class Constant(torch.nn.Module):  # always predicts the space
        context_size = None

        def forward(self, x, state=None):
            out = torch.zeros(*x.shape, vocab.size)
            out[..., vocab.encode(" ")[0]] = 1.0
            return out, None

    assert scaling.word_completion(Oracle(), ids, starts, lengths, context=20) == {
        "char_accuracy": 1.0, "exact_match": 1.0, "words": 10}
    assert scaling.word_completion(Oracle(), ids, starts, lengths, context=20, given=3)["exact_match"] == 1.0
    with pytest.raises(ValueError, match="longer than given"):
        scaling.word_completion(Oracle(), ids, starts, lengths, context=20, given=5)
    none = scaling.word_completion(Constant(), ids, starts, lengths, context=20)
    assert none["char_accuracy"] == 0.0 and none["exact_match"] == 0.0
    with pytest.raises(ValueError, match="characters before it"):
        scaling.word_completion(Constant(), ids, [5], [3], context=20)
    with pytest.raises(ValueError, match="fewer than n"):
        scaling.long_words(text, min_len=5, max_len=6, context=20, n=10_000)


def test_a_ladder_point_trains_and_counts_its_compute():
    import torch

    from llmcourse.datasets import load_shakespeare
    from llmcourse.ngram import CharVocab

    text = load_shakespeare("validation")[:60_000]
    vocab = CharVocab.from_text(text)
    ids = torch.from_numpy(vocab.encode(text))
    r = scaling.train_ladder_point(1, 16, vocab.size, ids[:50_000], ids[50_000:], tokens=32 * 64 * 40, seq_len=64)
    assert r["steps"] == 40 and r["tokens"] == 32 * 64 * 40
    assert r["flops"] == 6 * r["non_embedding"] * r["tokens"] and r["lr"] == 0.02
    assert r["val_loss"] < math.log(vocab.size) - 0.5, "40 steps learn the character frequencies at least"
    by_budget = scaling.train_ladder_point(1, 16, vocab.size, ids[:50_000], ids[50_000:], budget=3e9, seq_len=64)
    assert by_budget["tokens"] == 32 * 64 * round(3e9 / (6 * r["non_embedding"]) / (32 * 64))
    with pytest.raises(ValueError, match="tokens or budget"):
        scaling.train_ladder_point(1, 16, vocab.size, ids, ids, tokens=10, budget=1e9)


def test_compute_plan_puts_the_pieces_together():
    plan = scaling.compute_plan(5.76e23, n_devices=1024, accelerator="NVIDIA H100 SXM", mfu=0.4)
    n, d = scaling.chinchilla_optimal(5.76e23)
    assert (plan["n_params"], plan["n_tokens"]) == (n, d)
    assert plan["loss"] == scaling.chinchilla_loss(n, d)
    assert plan["zero_bytes"][0] == 16 * n and plan["zero_bytes"][3] == pytest.approx(16 * n / 1024)
    assert plan["fits"] == [2, 3]  # 32B parameters: 515 GB and 129 GB do not fit in 80 GB, 65 GB does
    assert plan["seconds"] == pytest.approx(5.76e23 / (1024 * 989e12 * 0.4))
    text = scaling.compute_plan_text(plan)
    assert "32.2B parameters on 2.98T tokens" in text and "ZeRO-3 0.5 GB" in text
    with pytest.raises(ValueError, match="accelerator"):
        scaling.compute_plan(1e20, accelerator="TPU v9")
    with pytest.raises(ValueError, match="n_devices"):
        scaling.compute_plan(1e20, n_devices=0)


def test_the_committed_ladder_reproduces():
    """Re-train the cheapest committed run of data/scaling_ladder.json (about 3 s) and compare."""
    ladder = scaling.load_ladder()
    assert len(ladder["runs"]) == 23 and {r["sweep"] for r in ladder["runs"]} == {"fixed-D", "isoflop"}
    for budget in ladder["budgets"]:  # every committed IsoFLOP sweep brackets its optimum
        rs = [r for r in ladder["runs"] if r["budget"] == budget]
        scaling.isoflop_minimum([r["non_embedding"] for r in rs], [r["val_loss"] for r in rs])
    saved = next(r for r in ladder["runs"] if r["name"] == "L1-16" and r["sweep"] == "fixed-D")
    vocab, train_ids, val_ids, probe = scaling.ladder_data()
    assert {k: probe[k] for k in ("context", "given")} == {k: ladder["probe"][k] for k in ("context", "given")}
    assert len(probe["starts"]) == ladder["probe"]["words"]
    r = scaling.train_ladder_point(1, 16, vocab.size, train_ids, val_ids, tokens=saved["tokens"], probe=probe)
    for key in ("non_embedding", "tokens", "flops", "steps", "lr"):
        assert r[key] == saved[key], key
    # the same machine reproduces it to the last digit; another CPU may round differently in training
    assert r["val_loss"] == pytest.approx(saved["val_loss"], abs=0.01)
    assert r["char_accuracy"] == pytest.approx(saved["char_accuracy"], abs=0.02)
