"""DPO (llmcourse.alignment): the loss at the start (ln 2), its value by hand for DPO, conservative DPO and
IPO, the direction of its gradient, sequence log-probabilities with the prompt and padding masked, the
closed-form optimum of the KL-regularised objective, a DPO run that learns the preferences without moving
the reference, and bad input refused."""

import math

import numpy as np
import pytest
import torch

from llmcourse import alignment as al
from llmcourse import chat, ordering, zoo
from llmcourse.checks import ArgumentError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def sft():
    model, card = zoo.load("bpe-chat-shakespeare")
    return model, zoo.tokenizer(card)


def test_the_loss_is_ln2_when_the_policy_is_the_reference():
    logp = torch.tensor([-3.0, -0.5, -7.2])
    other = torch.tensor([-1.0, -4.0, -2.0])
    for beta in (0.01, 0.1, 2.0):
        assert float(al.dpo_loss(logp, other, logp, other, beta)) == pytest.approx(math.log(2))
        assert float(al.dpo_loss(logp, other, logp, other, beta, label_smoothing=0.3)) == pytest.approx(math.log(2))
        assert float(al.dpo_loss(logp, other, logp, other, beta, kind="ipo")) == pytest.approx(1 / (2 * beta) ** 2)


def test_the_loss_by_hand():
    pc, pr, rc, rr = (torch.tensor([x]) for x in (-1.0, -2.0, -1.5, -1.5))   # margin z = 0.5 - (-0.5) = 1
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    assert float(al.dpo_loss(pc, pr, rc, rr, beta=0.5)) == pytest.approx(-math.log(sig(0.5)))  # 0.4741
    assert float(al.dpo_loss(pc, pr, rc, rr, beta=0.5, label_smoothing=0.1)) == pytest.approx(
        -0.9 * math.log(sig(0.5)) - 0.1 * math.log(sig(-0.5)))
    assert float(al.dpo_loss(pc, pr, rc, rr, beta=0.5, kind="ipo")) == pytest.approx(0.0)       # z = 1/(2 beta)
    assert float(al.dpo_loss(pc, pr, rc, rr, beta=0.25, kind="ipo")) == pytest.approx((1 - 2) ** 2)
    assert float(al.implicit_reward(pc, rc, 0.5)) == pytest.approx(0.25)


def test_the_gradient_raises_the_chosen_and_lowers_the_rejected():
    pc = torch.tensor([-2.0, -1.0], requires_grad=True)
    pr = torch.tensor([-2.0, -3.0], requires_grad=True)
    ref = torch.tensor([-2.0, -2.0])
    for kind in ("dpo", "ipo"):
        pc.grad = pr.grad = None
        al.dpo_loss(pc, pr, ref, ref, 0.1, kind=kind).backward()
        assert (pc.grad < 0).all() and (pr.grad > 0).all()   # descent raises log pi(chosen), lowers log pi(rejected)


def test_sequence_logprobs_mask_the_prompt_and_the_padding(sft):
    model, tok = sft
    prompts = al.order_prompts(5, pool="train", seed=0)
    replies = [p.gold for p in prompts[:4]] + ["Little or great? " * 3]          # one longer reply: more padding
    batch = al.encode_replies(tok, prompts, replies)
    with torch.no_grad():
        seq = al.sequence_logprobs(model, batch)
    for i, (p, r) in enumerate(zip(prompts, replies)):
        prompt_ids, _ = chat.render(tok, list(p.messages), add_generation_prompt=True)
        reply_ids = list(tok.encode(r.strip())) + [tok.special_tokens[chat.IM_END]]
        ids = torch.tensor([prompt_ids + reply_ids])
        with torch.no_grad():
            lp = torch.log_softmax(model(ids)[0][0, :-1], -1).gather(-1, ids[0, 1:, None])[:, 0]
        alone = float(lp[len(prompt_ids) - 1:].sum())                           # the reply's tokens only
        assert float(seq[i]) == pytest.approx(alone, abs=1e-4)
    assert bool((seq < 0).all())


def test_the_closed_form_optimum_beats_every_other_policy():
    ref = torch.tensor([0.5, 0.2, 0.2, 0.1], dtype=torch.float64)
    r = torch.tensor([0.0, 1.0, -1.0, 2.0], dtype=torch.float64)
    beta = 0.5
    star = al.rlhf_optimum(ref, r, beta)

    def objective(pi):
        return float((pi * r).sum() - beta * (pi * (pi / ref).log()).sum())

    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        other = torch.softmax(star.log() + 0.3 * torch.randn(4, generator=g, dtype=torch.float64), 0)
        assert objective(other) < objective(star)
    # the reward read back from the optimum is the true one up to a constant: beta log(pi*/pi_ref) = r - beta log Z
    back = beta * (star / ref).log()
    assert torch.allclose(back - back[0], r - r[0])
    assert torch.allclose(al.rlhf_optimum(ref, r, 1e6), ref)                     # a huge beta: stay at the reference


def test_dpo_learns_the_preferences_and_leaves_the_reference_alone(sft):
    model, tok = sft
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prompts = al.order_prompts(80, pool="words", seed=3)
    wrong = [ordering.ASK_SIZE if i % 2 else f"Sorry, we have no {p.line.item}." for i, p in enumerate(prompts)]
    prefs = al.label_pairs(prompts, [p.gold for p in prompts], wrong, noise=0.05, seed=0)
    train, held = prefs[:64], prefs[64:]
    ref_c, ref_r = al.preference_logprobs(model, tok, held)
    policy, history = al.train_dpo(model, tok, train, beta=0.1, epochs=2, batch_size=16, lr=1e-4, seed=0)
    assert history[0]["loss"] == pytest.approx(math.log(2), abs=1e-4)        # the policy starts as the reference
    assert np.mean([h["loss"] for h in history[-2:]]) < history[0]["loss"] - 0.1
    pc, pr = al.preference_logprobs(policy, tok, held)
    assert float((al.implicit_reward(pc, ref_c, 0.1) > al.implicit_reward(pr, ref_r, 0.1)).float().mean()) >= 0.9
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_bad_input_is_refused():
    x = torch.zeros(2)
    with pytest.raises(ArgumentError, match="beta"):
        al.dpo_loss(x, x, x, x, beta=0)
    with pytest.raises(ArgumentError, match="kind"):
        al.dpo_loss(x, x, x, x, kind="kto")
    with pytest.raises(ArgumentError, match="label_smoothing"):
        al.dpo_loss(x, x, x, x, label_smoothing=0.7)
    with pytest.raises(ArgumentError, match="label_smoothing"):
        al.dpo_loss(x, x, x, x, kind="ipo", label_smoothing=0.1)
    with pytest.raises(ArgumentError, match="one shape"):
        al.dpo_loss(x, x, x, torch.zeros(3))
    with pytest.raises(ArgumentError, match="ref_probs"):
        al.rlhf_optimum([0.5, 0.6], [0.0, 1.0], 0.1)
    with pytest.raises(ArgumentError, match="preferences"):
        al.preference_logprobs(None, None, [])
    with pytest.raises(ArgumentError, match="reference"):
        al.train_dpo(torch.nn.Linear(2, 2), None, [])
