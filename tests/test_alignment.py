"""Learning from preferences (llmcourse.alignment): the task and its true reward by hand, noisy
Bradley–Terry labels at the rate they promise, padded batches that give the rows' own log-probabilities,
batched sampling that equals one-at-a-time decoding, the KL estimators, GAE, whitening and PPO's clipped
losses against hand-computed values, the adaptive KL coefficient, a reward model and a PPO run that learn
what they are rewarded for, seeded runs that repeat exactly, and bad input refused."""

import math

import numpy as np
import pytest
import torch

from llmcourse import alignment as al
from llmcourse import chat, ordering, zoo
from llmcourse.checks import ArgumentError
from llmcourse.transformer import TransformerConfig, TransformerLM

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def sft():
    model, card = zoo.load("bpe-chat-shakespeare")
    return model, zoo.tokenizer(card)


def _tiny(vocab=1026, seed=0, **over):
    torch.manual_seed(seed)
    cfg = TransformerConfig.llama(vocab, 96, n_layer=2, n_head=2, n_embd=32, **over)
    return TransformerLM(cfg).eval()


PROMPTS = al.order_prompts(40, pool="train", seed=0)


# ---------------------------------------------------------------------------------------------------
# the task and its true reward


def test_order_prompts_ask_for_a_confirmation_of_a_dish_on_the_menu():
    assert len(PROMPTS) == 40 and al.order_prompts(40, pool="train", seed=0) == PROMPTS  # seeded
    assert al.order_prompts(40, pool="train", seed=1) != PROMPTS
    for p in PROMPTS:
        assert [m["role"] for m in p.messages] == ["system", "user"]
        assert p.messages[0]["content"] == p.menu.text() and p.line.item in p.menu.names
        assert p.gold == f"{p.line.text()}." and "?" not in p.gold
        # the customer named the size wherever the dish has two: nothing to ask
        assert p.line.size is None or p.line.size in p.messages[1]["content"]
    held = al.order_prompts(30, pool="heldout", seed=0)
    assert {p.line.item for p in held} <= set(ordering.HELDOUT_ITEMS)


def test_the_true_reward_by_hand():
    p = next(q for q in PROMPTS if q.line.size is not None and q.line.quantity < 4)
    q, size, dish = p.line.quantity, p.line.size, p.line.item
    other = "great" if size == "little" else "little"
    absent = next(d for d in ordering.TRAIN_ITEMS if d not in p.menu.names)
    assert al.true_reward(p, p.gold) == 1.0 and al.true_reward(p, f"  {p.gold} ") == 1.0
    assert al.true_reward(p, f"{q + 1} {size} {dish}.") == pytest.approx(2 / 3)       # quantity wrong
    assert al.true_reward(p, f"{q} {other} {dish}.") == pytest.approx(2 / 3)          # size wrong
    assert al.true_reward(p, f"{q} {dish}.") == pytest.approx(2 / 3)                  # size left out
    assert al.true_reward(p, f"{q} {size} {absent}.") == pytest.approx(2 / 3 - 0.5)  # an invented dish
    assert al.true_reward(p, ordering.ASK_SIZE) == 0.0                                # asks what it was told
    assert al.true_reward(p, f"Sorry, we have no {dish}.") == pytest.approx(-0.5 - 0.1 * (5 - len(p.gold.split())))
    assert al.true_reward(p, f"{p.gold} {p.gold}") == pytest.approx(1 - 0.1 * len(p.gold.split()))  # too long
    assert al.true_reward(p, "") == 0.0
    parts = al.true_reward_parts(p, f"{q} {size} {absent}. Yes")
    assert parts == pytest.approx({"helpful": 2 / 3, "honest": -0.5, "concise": -0.1, "total": 2 / 3 - 0.6})


# ---------------------------------------------------------------------------------------------------
# preferences


def test_labels_follow_the_bradley_terry_probability_they_promise():
    p = PROMPTS[0]
    good, worse = p.gold, ordering.ASK_SIZE + " Yes."
    gap = al.true_reward(p, good) - al.true_reward(p, worse)   # 1 against 0 less a word or two too many
    n = 4000
    prefs = al.label_pairs([p] * n, [good] * n, [worse] * n, noise=gap, seed=0)
    expected = 1 / (1 + math.exp(-1))                         # sigmoid(gap / noise) = sigmoid(1) = 0.731
    share = np.mean([x.chosen == good for x in prefs])
    assert len(prefs) == n and abs(share - expected) < 0.03    # 0.03 is 4.3 standard errors
    assert all(x.p_chosen == pytest.approx(expected if x.chosen == good else 1 - expected) for x in prefs)
    assert al.noise_ceiling(prefs) == pytest.approx(expected)
    # with little noise the better reply always wins; the order of a and b does not matter
    sharp = al.label_pairs([p] * 50, [worse] * 50, [good] * 50, noise=0.01, seed=0)
    assert all(x.chosen == good and x.rejected == worse for x in sharp)
    # identical replies and ties are dropped (unless ties are kept)
    same = al.label_pairs([p, p], [good, ordering.ASK_SIZE], [f" {good}", "Pickup or delivery?"], seed=0)
    assert same == []
    assert len(al.label_pairs([p], [ordering.ASK_SIZE], ["Pickup or delivery?"], keep_ties=True)) == 1


def test_noise_ceiling_by_hand():
    p = PROMPTS[0]
    prefs = [al.Preference(p, "a", "b", 0.9), al.Preference(p, "a", "b", 0.3)]
    assert al.noise_ceiling(prefs) == pytest.approx((0.9 + 0.7) / 2)


# ---------------------------------------------------------------------------------------------------
# batches, sampling, log-probabilities


def test_a_padded_row_has_the_log_probabilities_of_the_row_alone(sft):
    model, tok = sft
    replies = [p.gold for p in PROMPTS[:6]]
    batch = al.encode_replies(tok, PROMPTS[:6], replies)
    assert batch.ids.shape[1] > batch.prompt_len and bool((~batch.real[:, 0]).any())   # some rows are padded
    lp = al.token_logprobs(model, batch)
    for i in range(6):
        row = batch.ids[i][batch.real[i]]
        ids, _ = chat.render(tok, list(PROMPTS[i].messages) + [{"role": "assistant", "content": replies[i]}])
        assert row.tolist() == ids[:-1]                      # the rendered conversation, up to <|im_end|>
        alone = torch.log_softmax(model(row[None])[0][0, :-1], -1).gather(-1, row[1:, None])[:, 0]
        mine = lp[i][batch.real[i, 1:] & batch.real[i, :-1]]
        torch.testing.assert_close(mine, alone, atol=2e-5, rtol=0)
        n_reply = len(tok.encode(replies[i])) + 1             # the reply and its <|im_end|>
        assert int(batch.reply[i].sum()) == n_reply
    assert (batch.last_index() == batch.ids.shape[1] - 1).sum() >= 1


def test_batched_sampling_equals_one_at_a_time_decoding(sft):
    model, tok = sft
    greedy = al.sample_replies(model, tok, PROMPTS[:8], temperature=0)
    assert greedy.texts == [chat.respond(model, tok, list(p.messages), max_new_tokens=12) for p in PROMPTS[:8]]
    # with and without the KV cache: the same draws from the same generator
    a = al.sample_replies(model, tok, PROMPTS[:8], generator=torch.Generator().manual_seed(3))

    class NoCache(torch.nn.Module):       # the same model without forward_cached: the uncached path
        def __init__(self, m):
            super().__init__()
            self.m, self.vocab_size, self.context_size = m, m.vocab_size, m.context_size

        def forward(self, ids, state=None, mask=None):
            return self.m(ids, state, mask)

    b = al.sample_replies(NoCache(model), tok, PROMPTS[:8], generator=torch.Generator().manual_seed(3))
    assert a.texts == b.texts and torch.equal(a.ids, b.ids)
    # every reply ends with <|im_end|> or at max_new_tokens; padding after it is not real
    end = tok.special_tokens[chat.IM_END]
    for i in range(8):
        reply = a.ids[i][a.reply[i]].tolist()
        assert reply[-1] == end or len(reply) == 12
        assert not a.real[i, a.last_index()[i] + 1:].any()


def test_forward_cached_with_padding_equals_the_masked_forward():
    model = _tiny(vocab=50)
    ids = torch.randint(0, 50, (3, 10))
    real = torch.ones(3, 10, dtype=torch.bool)
    real[0, :4] = False
    real[1, :1] = False
    full = model(ids, mask=al.attention_mask(real))[0]
    cache = model.new_cache()
    first = model.forward_cached(ids[:, :7], cache, real[:, :7])
    rest = model.forward_cached(ids[:, 7:], cache, real)
    torch.testing.assert_close(torch.cat([first, rest], 1)[real], full[real], atol=1e-5, rtol=0)
    with pytest.raises(ArgumentError, match="real must be a bool tensor"):
        model.forward_cached(ids, model.new_cache(), real[:, :5])


def test_attention_mask_by_hand():
    real = torch.tensor([[False, True, True]])
    assert al.attention_mask(real)[0].int().tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]


# ---------------------------------------------------------------------------------------------------
# PPO's pieces by hand


def test_kl_estimators():
    p = torch.tensor([0.5, 0.3, 0.2])
    q = torch.tensor([0.2, 0.5, 0.3])
    kl = float((p * (p / q).log()).sum())
    k1 = al.kl_estimate(p.log(), q.log(), "k1")
    k3 = al.kl_estimate(p.log(), q.log(), "k3")
    assert float((p * k1).sum()) == pytest.approx(kl, rel=1e-5)   # both unbiased: their mean under p is KL
    assert float((p * k3).sum()) == pytest.approx(kl, rel=1e-5)
    assert (k3 >= 0).all() and (k1 < 0).any()                   # k3 never negative; k1 can be
    assert float(k3[0]) == pytest.approx(0.2 / 0.5 - 1 - math.log(0.2 / 0.5))


def test_per_token_rewards_by_hand():
    logp = torch.tensor([[0.0, -1.0, -2.0, 0.0], [-1.0, -1.0, 0.0, 0.0]])
    ref = torch.tensor([[0.0, -1.5, -1.0, 0.0], [-2.0, -0.5, 0.0, 0.0]])
    mask = torch.tensor([[False, True, True, False], [True, True, False, False]])
    r = al.per_token_rewards(logp, ref, torch.tensor([2.0, -1.0]), mask, beta=0.1)
    torch.testing.assert_close(r, torch.tensor([[0.0, -0.05, 0.1 + 2.0, 0.0], [-0.1, 0.05 - 1.0, 0.0, 0.0]]))


def test_gae_by_hand():
    r = torch.tensor([[0.0, 0.5, 1.0, 0.0]])
    v = torch.tensor([[0.2, 0.4, 0.6, 9.0]])                  # the last value is outside the mask: unused
    mask = torch.tensor([[True, True, True, False]])
    adv, ret = al.gae(r, v * mask, mask, gamma=1.0, lam=0.5)
    d2 = 1.0 - 0.6                                           # delta_t = r_t + V_{t+1} - V_t, V after the end = 0
    d1 = 0.5 + 0.6 - 0.4
    d0 = 0.0 + 0.4 - 0.2
    a2, a1 = d2, d1 + 0.5 * d2
    a0 = d0 + 0.5 * a1
    torch.testing.assert_close(adv, torch.tensor([[a0, a1, a2, 0.0]]))
    torch.testing.assert_close(ret, torch.tensor([[a0 + 0.2, a1 + 0.4, a2 + 0.6, 0.0]]))
    # lam = 1, gamma = 1: the return is the sum of the rewards still to come
    _, ret1 = al.gae(r, v * mask, mask, gamma=1.0, lam=1.0)
    torch.testing.assert_close(ret1, torch.tensor([[1.5, 1.5, 1.0, 0.0]]))


def test_whiten():
    x = torch.tensor([[1.0, 2.0, 3.0, 100.0]])
    mask = torch.tensor([[True, True, True, False]])
    w = al.whiten(x, mask)
    torch.testing.assert_close(w, torch.tensor([[-1.0, 0.0, 1.0, 0.0]]), atol=1e-4, rtol=0)
    torch.testing.assert_close(al.whiten(x, mask, shift_mean=False)[0, :3], torch.tensor([1.0, 2.0, 3.0]), atol=1e-4,
                               rtol=0)


def test_clipped_losses_by_hand():
    mask = torch.ones(1, 1, dtype=torch.bool)
    zero = torch.zeros(1, 1)

    def pg(ratio, adv):
        return float(al.ppo_losses(torch.tensor([[math.log(ratio)]]), zero, torch.tensor([[adv]]), zero, zero, zero,
                                   mask, clip=0.2)["policy"])

    assert pg(1.0, 2.0) == pytest.approx(-2.0)
    assert pg(1.5, 1.0) == pytest.approx(-1.2)    # a good action already made likelier: the gain is capped
    assert pg(1.5, -1.0) == pytest.approx(1.5)    # a bad action made likelier: the full penalty
    assert pg(0.5, 1.0) == pytest.approx(-0.5)    # a good action made rarer: the full loss
    assert pg(0.5, -1.0) == pytest.approx(0.8)    # a bad action made rarer: the gain is capped
    out = al.ppo_losses(zero, zero, zero, torch.tensor([[1.0]]), zero, torch.tensor([[2.0]]), mask, value_clip=0.2)
    assert float(out["value"]) == pytest.approx(0.5 * max((1.0 - 2.0) ** 2, (0.2 - 2.0) ** 2))
    assert out["clip_fraction"] == 0.0


def test_adaptive_kl_coefficient():
    c = al.AdaptiveKL(0.1, target=1.0, horizon=1000)
    assert c.update(2.0, 64) == pytest.approx(0.1 * (1 + 0.2 * 64 / 1000))     # too far: beta grows (capped err)
    before = c.beta
    assert c.update(0.9, 64) == pytest.approx(before * (1 - 0.1 * 64 / 1000))  # near: it shrinks


def test_bradley_terry_loss():
    assert float(al.bradley_terry_loss(torch.zeros(3), torch.zeros(3))) == pytest.approx(math.log(2))
    assert float(al.bradley_terry_loss(torch.tensor([1.0]), torch.tensor([0.0]))) == pytest.approx(
        math.log(1 + math.exp(-1)))


def test_distinct_n():
    assert al.distinct_n(["a b a b", "a b"], 2) == pytest.approx(2 / 4)
    assert al.distinct_n(["a b c"], 1) == 1.0


# ---------------------------------------------------------------------------------------------------
# learning


def test_the_reward_model_learns_the_preferences(sft):
    model, tok = sft
    prompts = al.order_prompts(96, pool="words", seed=5)
    wrong = [ordering.ASK_SIZE if i % 2 else f"Sorry, we have no {p.line.item}." for i, p in enumerate(prompts)]
    prefs = al.label_pairs(prompts, [p.gold for p in prompts], wrong, noise=0.05, seed=0)
    rm = al.RewardModel(model)
    losses = al.train_reward_model(rm, tok, prefs[:64], epochs=2, batch_size=16, lr=1e-3, seed=0)
    assert np.mean(losses[-4:]) < 0.3 < losses[0]
    assert al.pair_accuracy(rm, tok, prefs[64:]) >= 0.9       # held-out pairs
    assert not any(p.grad is not None for p in model.parameters())   # the base model itself is untouched


def test_ppo_makes_the_rewarded_reply_likelier_and_repeats_exactly(sft):
    model, tok = sft
    prompts = al.order_prompts(64, pool="words", seed=6)

    def reward(batch):  # a reward the SFT model can move on: asking "Little or great?" (rare in its samples)
        return torch.tensor([1.0 if t.strip() == ordering.ASK_SIZE else 0.0 for t in batch.texts])

    def share(policy):
        b = al.sample_replies(policy, tok, prompts, generator=torch.Generator().manual_seed(9))
        return np.mean([t.strip() == ordering.ASK_SIZE for t in b.texts])

    config = al.PPOConfig(beta=0.0, batch_size=32, minibatch_size=16, epochs=4, lr=1e-4, seed=0)
    ppo = al.PPOTrainer(model, tok, reward, prompts, config)
    before = share(ppo.policy)
    ppo.train(6)
    after = share(ppo.policy)
    # measured: 0.11 -> about 0.9 (on each step's batch: 0.09, 0.25, 0.66, 0.81, 0.97, 0.97). Trained on
    # much longer at beta 0 it collapses: once every reply earns 1, the whitened advantages are noise.
    assert after > before + 0.3, (before, after)
    # the same trainer again: the same history and weights, bit for bit
    again = al.PPOTrainer(model, tok, reward, prompts, config)
    again.train(3)
    assert [h["sample"] for h in again.history] == [h["sample"] for h in ppo.history[:3]]
    assert [h["score"] for h in again.history] == [h["score"] for h in ppo.history[:3]]
    first = al.PPOTrainer(model, tok, reward, prompts, config)
    first.train(3)
    for a, b in zip(first.model.parameters(), again.model.parameters()):
        assert torch.equal(a, b)
    # the reference was never changed
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), zoo.load("bpe-chat-shakespeare")[0]
                                                 .state_dict().values()))


# ---------------------------------------------------------------------------------------------------
# bad input


def test_bad_input_is_refused_with_the_argument_named(sft):
    model, tok = sft
    p = PROMPTS[0]
    with pytest.raises(ArgumentError, match="beta"):
        al.PPOConfig(beta=-0.1)
    with pytest.raises(ArgumentError, match="kl_target"):
        al.PPOConfig(beta=0.0, kl_target=1.0)
    with pytest.raises(ArgumentError, match="minibatch_size"):
        al.PPOConfig(batch_size=8, minibatch_size=16)
    with pytest.raises(ArgumentError, match="vocabulary"):
        al.check_same_model(model, _tiny(vocab=1024))
    with pytest.raises(ArgumentError, match="configuration"):
        al.check_same_model(model, _tiny())
    with pytest.raises(ArgumentError, match="preferences"):
        al.noise_ceiling([])
    with pytest.raises(ArgumentError, match="preferences"):
        al.train_reward_model(al.RewardModel(_tiny()), tok, [])
    with pytest.raises(ArgumentError, match="finite"):
        al.label_pairs([p], ["a"], ["b"], reward=lambda *_: float("nan"))
    with pytest.raises(ArgumentError, match="one entry each"):
        al.label_pairs([p, p], ["a"], ["b"])
    with pytest.raises(ArgumentError, match="noise"):
        al.label_pairs([p], ["a"], ["b"], noise=0)
    with pytest.raises(ArgumentError, match="scores must be finite"):
        al.per_token_rewards(torch.zeros(1, 2), torch.zeros(1, 2), torch.tensor([float("nan")]),
                             torch.ones(1, 2, dtype=torch.bool), 0.1)
    with pytest.raises(ArgumentError, match="prompt"):
        al.true_reward("2 ale.", "2 ale.")
    with pytest.raises(ArgumentError, match="pool"):
        al.order_prompts(3, pool="menu")
    with pytest.raises(ArgumentError, match="context"):
        al.sample_replies(model, tok, PROMPTS[:2], max_new_tokens=250)
    nan_reward = al.PPOTrainer(model, tok, lambda b: torch.full((b.ids.shape[0],), float("nan")), PROMPTS,
                               al.PPOConfig(batch_size=4, minibatch_size=4))
    with pytest.raises(ArgumentError, match="finite score"):
        nan_reward.step()
