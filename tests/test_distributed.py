"""Distributed training: DDP, all-reduce by hand and ZeRO-1 under torchrun (2 gloo processes on the CPU),
and tensor and pipeline parallelism simulated in one process."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from llmcourse.distributed import (
    average_gradients,
    column_parallel_linear,
    launch,
    optimizer_state_bytes,
    pipeline_schedule,
    row_parallel_linear,
    tensor_parallel_mlp,
)
from llmcourse.transformer import FeedForward, SwiGLU

# 2 layers, width 32, context 32, batch 8 (4 rows per process), 20 steps: about 5 s per launch.
TINY = ["--steps", "20", "--batch-size", "8", "--block-size", "32", "--n-layer", "2", "--n-head", "2",
        "--n-embd", "32"]
# Same maths, summed in another order at most: float32 rounding. Measured: 0.0 (bit-identical) for
# both comparisons; dividing by 2 processes is exact and a sum of two numbers does not depend on order.
ATOL = 1e-6


@pytest.fixture(scope="module")
def runs() -> dict[str, list[dict]]:
    """One 2-process launch per mode, shared by the tests below."""
    return {mode: launch([mode, *TINY], nproc=2, timeout=240) for mode in ("ddp", "allreduce", "zero1")}


# ---------------------------------------------------------------------------------------------------
# data parallelism, for real


def test_launch_returns_one_dict_per_rank(runs):
    for mode, ranks in runs.items():
        assert [r["rank"] for r in ranks] == [0, 1]
        assert all(r["mode"] == mode and r["world_size"] == 2 and r["backend"] == "gloo" for r in ranks)
        assert all(r["local_batch_size"] == 4 and len(r["local_loss"]) == 20 for r in ranks)


def test_ddp_ranks_see_different_data_and_keep_identical_weights(runs):
    r0, r1 = runs["ddp"]
    assert all(a != b for a, b in zip(r0["local_loss"], r1["local_loss"]))  # each rank its own half
    assert r0["mean_loss"] == r1["mean_loss"]
    assert r0["mean_loss"] == pytest.approx([(a + b) / 2 for a, b in zip(r0["local_loss"], r1["local_loss"])],
                                            abs=1e-6)
    assert r0["weights_sha256"] == r1["weights_sha256"]  # bit-identical weights after 20 steps
    assert r0["mean_loss"][-1] < r0["mean_loss"][0] - 0.5  # it learns: measured 4.29 -> 2.88


def test_ddp_all_reduces_exactly_the_gradient_every_step(runs):
    for r in runs["ddp"]:
        assert r["grad_bytes"] == 4 * r["n_params"]  # float32
        assert r["allreduce_bytes_per_step"] == [r["grad_bytes"]] * 20  # measured by a DDP comm hook


def test_allreduce_by_hand_gives_the_weights_of_ddp(runs):
    ddp, manual = runs["ddp"], runs["allreduce"]
    for r in manual:
        assert r["max_abs_diff_vs_ddp"] <= ATOL
        assert r["allreduce_bytes_per_step"] == ddp[0]["allreduce_bytes_per_step"]  # the same bytes...
        assert min(r["allreduce_calls_per_step"]) > max(ddp[0]["allreduce_calls_per_step"])  # ...in more messages
    assert manual[0]["weights_sha256"] == manual[1]["weights_sha256"]
    # and a separate launch of the same seeds lands on DDP's weights
    assert manual[0]["weights_sample"] == pytest.approx(ddp[0]["weights_sample"], abs=ATOL)
    assert manual[0]["mean_loss"] == pytest.approx(ddp[0]["mean_loss"], abs=ATOL)


def test_zero1_holds_half_the_optimizer_state_per_rank_and_the_same_weights(runs):
    r0, r1 = runs["zero1"]
    full = r0["optimizer_state_bytes_adamw"]
    assert full == r1["optimizer_state_bytes_adamw"] >= 2 * r0["grad_bytes"]  # AdamW: two moments per weight
    for r in (r0, r1):
        assert r["optimizer_state_bytes"] < 0.65 * full, (r["optimizer_state_bytes"], full)
        assert r["max_abs_diff_vs_adamw"] <= ATOL
    # every parameter's state lives on exactly one rank: the shares add up to the whole
    assert r0["optimizer_state_bytes"] + r1["optimizer_state_bytes"] == full
    assert not set(r0["owned_parameters"]) & set(r1["owned_parameters"])
    assert r0["owned_numel"] + r1["owned_numel"] == r0["n_params"]
    assert r0["weights_sha256"] == r1["weights_sha256"]


def test_launch_reports_a_failing_run():
    with pytest.raises(RuntimeError, match="--batch-size = 7 must be divisible"):
        launch(["ddp", *TINY, "--batch-size", "7"], nproc=2, timeout=240)


def test_launch_and_helpers_check_their_inputs():
    with pytest.raises(ValueError, match="nproc"):
        launch(["ddp"], nproc=0)
    with pytest.raises(ValueError, match="args"):
        launch("ddp")
    with pytest.raises(ValueError, match="timeout"):
        launch(["ddp"], timeout=0)
    with pytest.raises(RuntimeError, match="torchrun"):
        average_gradients(torch.nn.Linear(2, 2))  # no process group in this process
    with pytest.raises(TypeError, match="optimizer"):
        optimizer_state_bytes(torch.nn.Linear(2, 2))


def test_optimizer_state_bytes_counts_adamw_moments():
    model = torch.nn.Linear(4, 3)  # 15 parameters in 2 tensors
    opt = torch.optim.AdamW(model.parameters())
    assert optimizer_state_bytes(opt) == 0  # AdamW allocates its moments at the first step
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    moments = 2 * 15 * 4  # exp_avg and exp_avg_sq, float32
    assert moments <= optimizer_state_bytes(opt) <= moments + 2 * 8  # plus a scalar step per tensor


# ---------------------------------------------------------------------------------------------------
# tensor parallelism on paper


def test_column_and_row_parallel_linear_equal_the_whole_layer():
    x, w, b = torch.randn(3, 5, 8), torch.randn(12, 8), torch.randn(12)
    outs = column_parallel_linear(x, w, b, n_devices=4)
    assert [o.shape for o in outs] == [torch.Size([3, 5, 3])] * 4
    torch.testing.assert_close(torch.cat(outs, -1), F.linear(x, w, b))
    w2, b2 = torch.randn(6, 12), torch.randn(6)
    torch.testing.assert_close(row_parallel_linear(outs, w2, b2), F.linear(torch.cat(outs, -1), w2, b2))


@pytest.mark.parametrize("n", [1, 2, 4])
@pytest.mark.parametrize("kind", ["gelu", "swiglu"])
def test_tensor_parallel_mlp_equals_the_dense_mlp(kind, n):
    mlp = (FeedForward(32, 128) if kind == "gelu" else SwiGLU(32, 96)).eval()
    x = torch.randn(2, 7, 32)  # (batch, seq, d_model)
    y, comm = tensor_parallel_mlp(mlp, x, n)
    torch.testing.assert_close(y, mlp(x))  # float32 defaults: rtol 1.3e-6, atol 1e-5
    matrices = sum(m.weight.numel() for m in mlp.modules() if isinstance(m, torch.nn.Linear))
    assert comm["weights_per_device"] * n == matrices
    assert comm["allreduces"] == (n > 1)
    assert comm["allreduce_numbers"] == (2 * 7 * 32 if n > 1 else 0)  # batch × seq × d_model, once


def test_tensor_parallel_rejects_a_width_the_devices_do_not_divide():
    with pytest.raises(ValueError, match="n_devices = 3 must divide d_out = 128"):
        tensor_parallel_mlp(FeedForward(32, 128), torch.randn(1, 2, 32), 3)
    with pytest.raises(ValueError, match="n_devices"):
        column_parallel_linear(torch.randn(2, 4), torch.randn(4, 4), n_devices=0)
    with pytest.raises(ValueError, match="xs"):
        row_parallel_linear(torch.randn(2, 4), torch.randn(4, 4))


# ---------------------------------------------------------------------------------------------------
# pipeline parallelism on paper


@pytest.mark.parametrize("p, m", [(1, 1), (1, 5), (2, 1), (2, 3), (4, 4), (4, 16), (8, 3)])
def test_gpipe_bubble_is_p_minus_1_over_m_plus_p_minus_1(p, m):
    s = pipeline_schedule(p, m)
    assert s.microbatch.shape == s.backward.shape == (p, 2 * (m + p - 1))
    assert s.bubble_fraction == pytest.approx((p - 1) / (m + p - 1), abs=1e-12)
    fwd = {(st, j): t for st in range(p) for t in range(s.n_steps)
           if (j := int(s.microbatch[st, t])) >= 0 and not s.backward[st, t]}
    bwd = {(st, j): t for st in range(p) for t in range(s.n_steps)
           if (j := int(s.microbatch[st, t])) >= 0 and s.backward[st, t]}
    assert set(fwd) == set(bwd) == {(st, j) for st in range(p) for j in range(m)}  # each once, no more
    for st in range(p):
        for j in range(m):
            if st > 0:
                assert fwd[st, j] > fwd[st - 1, j]  # needs the previous stage's activations
            if st < p - 1:
                assert bwd[st, j] > bwd[st + 1, j]  # needs the next stage's gradient
            assert bwd[st, j] > max(fwd.values())  # GPipe: every forward before any backward


def test_pipeline_schedule_draws_as_text_and_checks_inputs():
    assert pipeline_schedule(2, 3).text() == ("stage 0 | F0 F1 F2 .. .. B0 B1 B2\n"
                                              "stage 1 | .. F0 F1 F2 B0 B1 B2 ..")
    with pytest.raises(ValueError, match="n_microbatches"):
        pipeline_schedule(2, 0)
    with pytest.raises(ValueError, match="n_stages"):
        pipeline_schedule(0, 4)
