"""Run notebook 09's experiments and write the results it reads: data/rlhf_preferences.json and
data/rlhf_sweep.json.

    python scripts/rlhf_sweep.py            # everything, about 50 minutes on 2 CPU cores
    python scripts/rlhf_sweep.py --quick    # a few steps of every kind of run, a smoke test (writes nothing)

The task is :mod:`llmcourse.alignment`'s: the chat model of notebook 08 (``bpe-chat-shakespeare``, the
SFT model and PPO's frozen reference) confirms a customer's order from a menu, scored by a hidden true
reward. In order:

1. **preferences**: two replies sampled (temperature 1) from the SFT model for each of
   :data:`PAIR_PROMPTS` prompts (menus of the ``words`` pool), labelled by a noisy Bradley–Terry draw
   from the true reward (noise :data:`NOISE`); identical replies and ties dropped. 80% train the reward
   model, 20% are held out. Written to data/rlhf_preferences.json (notebooks 09 and 10 read it);
2. **reward models**: the *strong* one on all training pairs, the *weak* one on :data:`WEAK_PAIRS` of
   them; accuracy on the held-out pairs against the noise ceiling, and the correlation of its score with
   the true reward on fresh SFT replies. The **AI judge** (RLAIF): the SFT model itself prefers the reply
   it finds likelier (mean log-probability per token); its agreement with the true labels, and a reward
   model trained on its labels;
3. **PPO** for :data:`STEPS` steps of 64 prompts: the strong reward model at each beta of :data:`BETAS`;
   the weak one at beta 0 and 0.1; an adaptive beta; the AI judge's reward model; and the true reward
   itself as the reward (what a perfect reward model would give). Every :data:`EVAL_EVERY` steps the
   policy is measured on held-out prompts (:data:`EVAL_PROMPTS` menus of the ``words`` pool and
   :data:`HELDOUT_PROMPTS` of dishes never trained on): true reward, reward-model score, KL to the
   reference, exact replies, length, distinct n-grams and the commonest reply.

Runs are seeded; each finished run is kept in a cache (``~/.cache/llmcourse/rlhf_sweep.json``), so an
interrupted sweep resumes; ``--fresh`` starts anew. Results are written atomically with their sha256 in
data/SHA256SUMS and data/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from llmcourse import alignment as al
from llmcourse import zoo
from llmcourse.datasets import write_results
from llmcourse.files import write_atomic_text as write_atomic
from llmcourse.notebook import seed_everything

FILE, PREFS_FILE = "rlhf_sweep.json", "rlhf_preferences.json"
MODEL = "bpe-chat-shakespeare"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "llmcourse" / FILE
PAIR_PROMPTS, PAIR_POOL, PAIR_SEED = 6000, "words", 1
NOISE = 0.2
WEAK_PAIRS = 100
RM_EPOCHS, RM_LR, RM_BATCH = 2, 3e-4, 32
EVAL_PROMPTS, EVAL_SEED, HELDOUT_PROMPTS, HELDOUT_SEED = 300, 2, 150, 3
STEPS, EVAL_EVERY = 150, 15
BETAS = (0.0, 0.03, 0.1, 0.3)
PPO = dict(batch_size=64, minibatch_size=32, epochs=4, lr=1e-4, max_new_tokens=12)


def log(*args) -> None:
    print(*args, flush=True)


def sft_pairs(sft, tok, prompts, seed: int) -> tuple[list[str], list[str]]:
    g = torch.Generator().manual_seed(seed)
    a, b = [], []
    for s in range(0, len(prompts), 256):
        chunk = prompts[s:s + 256]
        a += al.sample_replies(sft, tok, chunk, generator=g).texts
        b += al.sample_replies(sft, tok, chunk, generator=g).texts
    return a, b


def judge_reward(sft, tok):
    """The AI judge: the SFT model's mean log-probability per token of a reply (its <|im_end|> included)."""
    @torch.no_grad()
    def reward(prompt, reply):
        batch = al.encode_replies(tok, [prompt], [reply])
        lp = al.token_logprobs(sft, batch)[0]
        return float(lp[batch.reply[0, 1:]].mean())
    return reward


def measure(policy, sft, tok, rm, norm, prompts) -> dict:
    out = al.evaluate_policy(policy, sft, tok, prompts, reward_model=rm, reward_mean=norm[0], reward_std=norm[1])
    out["replies"] = out["replies"][:6]
    return {k: (round(v, 5) if isinstance(v, float) else v) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: few prompts and steps, writes nothing")
    parser.add_argument("--fresh", action="store_true", help="ignore the cache of finished runs")
    parser.add_argument("--only", nargs="*", help="run only these runs (names), for trying things")
    args = parser.parse_args()
    quick = args.quick
    torch.set_num_threads(min(2, torch.get_num_threads()))
    t_start = time.time()
    sft, card = zoo.load(MODEL)
    tok = zoo.tokenizer(card)
    cache_path = CACHE.with_suffix(".quick.json") if quick else CACHE
    cache = {} if args.fresh or not cache_path.exists() else json.loads(cache_path.read_text())

    def save_cache():
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(cache_path, json.dumps(cache))

    # 1. preferences
    n_pairs = 300 if quick else PAIR_PROMPTS
    prompts = al.order_prompts(n_pairs, pool=PAIR_POOL, seed=PAIR_SEED)
    if "pairs" not in cache:
        t = time.time()
        a, b = sft_pairs(sft, tok, prompts, seed=0)
        cache["pairs"] = {"a": a, "b": b, "seconds": time.time() - t}
        save_cache()
    a, b = cache["pairs"]["a"], cache["pairs"]["b"]
    prefs = al.label_pairs(prompts, a, b, noise=NOISE, seed=0)
    index = {id(p): i for i, p in enumerate(prompts)}
    n_train = int(0.8 * len(prefs))
    train, val = prefs[:n_train], prefs[n_train:]
    true_a = [al.true_reward(p, r) for p, r in zip(prompts, a)]
    log(f"preferences: {len(prefs)} pairs from {n_pairs} prompts ({cache['pairs']['seconds']:.0f} s to sample); "
        f"ceiling {al.noise_ceiling(val):.3f}; SFT true reward {np.mean(true_a):.3f}")

    # 2. reward models
    eval_words = al.order_prompts(40 if quick else EVAL_PROMPTS, pool=PAIR_POOL, seed=EVAL_SEED)
    eval_held = al.order_prompts(20 if quick else HELDOUT_PROMPTS, pool="heldout", seed=HELDOUT_SEED)
    # the SFT model's own replies to the evaluation prompts (as every run's step 0 measures them): the
    # reward models' scores on them set the normalisation (mean 0, spread 1 for an SFT reply)
    fresh = al.evaluate_policy(sft, sft, tok, eval_words, seed=0)["replies"]
    fresh_true = np.array([al.true_reward(p, r) for p, r in zip(eval_words, fresh)])
    judge = judge_reward(sft, tok)
    judge_prefs = al.label_pairs(prompts, a, b, reward=judge, noise=1e-6, seed=0)   # the judge is certain
    truth_by_pair = {(index[id(p.prompt)], p.chosen): True for p in prefs}
    # agreement: on pairs that the true labels also keep, how often the judge picks the true label's choice
    common = [p for p in judge_prefs if (index[id(p.prompt)], p.chosen) in truth_by_pair
              or (index[id(p.prompt)], p.rejected) in truth_by_pair]
    agree = float(np.mean([(index[id(p.prompt)], p.chosen) in truth_by_pair for p in common]))
    true_pref_of = {index[id(p.prompt)]: p for p in prefs}
    expected_agree = float(np.mean([true_pref_of[index[id(p.prompt)]].p_chosen
                                    if (index[id(p.prompt)], p.chosen) in truth_by_pair
                                    else 1 - true_pref_of[index[id(p.prompt)]].p_chosen for p in common]))
    log(f"AI judge: agrees with the true labels on {agree:.3f} of {len(common)} pairs "
        f"(with the truth's own probabilities: {expected_agree:.3f})")
    rms, norms, rm_info = {}, {}, {}
    for name, data in (("strong", train), ("weak", train[:WEAK_PAIRS]), ("judge", judge_prefs[:n_train])):
        seed_everything(0)
        rm = al.RewardModel(sft)
        t = time.time()
        losses = al.train_reward_model(rm, tok, data, epochs=1 if quick else RM_EPOCHS, batch_size=RM_BATCH,
                                       lr=RM_LR, seed=0)
        scores = al.reward_scores(rm, tok, eval_words, fresh)
        rms[name], norms[name] = rm, (float(scores.mean()), float(scores.std()))
        rm_info[name] = {"pairs": len(data), "val_accuracy": al.pair_accuracy(rm, tok, val),
                         "train_accuracy": al.pair_accuracy(rm, tok, data),
                         "correlation": float(np.corrcoef(scores, fresh_true)[0, 1]),
                         "score_mean": norms[name][0], "score_std": norms[name][1],
                         "final_loss": float(np.mean(losses[-10:])), "seconds": time.time() - t}
        log(f"reward model {name}: {rm_info[name]}")

    # 3. PPO runs
    steps = 6 if quick else STEPS
    every = 3 if quick else EVAL_EVERY
    runs = {f"beta={b:g}": ("strong", dict(beta=b)) for b in BETAS}
    runs.update({"weak beta=0": ("weak", dict(beta=0.0)), "weak beta=0.1": ("weak", dict(beta=0.1)),
                 "adaptive": ("strong", dict(beta=0.1, kl_target=1.0, kl_horizon=2000)),
                 "judge beta=0.1": ("judge", dict(beta=0.1)), "true beta=0.1": ("true", dict(beta=0.1))})
    results = cache.setdefault("runs", {})
    for name, (reward_name, over) in runs.items():
        if args.only and name not in args.only:
            continue
        if name in results:
            log(f"{name}: cached")
            continue
        seed_everything(0)
        config = al.PPOConfig(**PPO, **over, seed=0)
        if reward_name == "true":
            reward = lambda batch: torch.tensor([al.true_reward(p, t) for p, t in zip(batch.prompts, batch.texts)])
            norm = (float(fresh_true.mean()), float(fresh_true.std()))
        else:
            reward, norm = rms[reward_name], norms[reward_name]
        ppo = al.PPOTrainer(sft, tok, reward, prompts, config, reward_mean=norm[0], reward_std=norm[1])
        rm_eval = rms["strong"] if reward_name == "true" else rms[reward_name]
        norm_eval = norms["strong"] if reward_name == "true" else norm
        evals = [{"step": 0, "words": measure(ppo.policy, sft, tok, rm_eval, norm_eval, eval_words),
                  "heldout": measure(ppo.policy, sft, tok, rm_eval, norm_eval, eval_held)}]
        t = time.time()
        for step in range(1, steps + 1):
            ppo.step()
            if step % every == 0:
                evals.append({"step": step, "words": measure(ppo.policy, sft, tok, rm_eval, norm_eval, eval_words),
                              "heldout": measure(ppo.policy, sft, tok, rm_eval, norm_eval, eval_held)})
                e = evals[-1]["words"]
                log(f"  {name} step {step}: true {e['true_reward']:.3f} score {e['score']:.3f} kl {e['kl']:.2f} "
                    f"len {e['length']:.2f} repeated {e['repeated']:.2f} {e['replies'][:2]} beta {ppo.beta:.4f}")
        results[name] = {"reward": reward_name, "config": {**PPO, **over}, "seconds": time.time() - t,
                         "history": [{k: (round(v, 5) if isinstance(v, float) else v) for k, v in h.items()}
                                     for h in ppo.history], "evals": evals}
        save_cache()
        log(f"{name}: {time.time() - t:.0f} s")
    if quick or args.only:
        log(f"done ({time.time() - t_start:.0f} s); nothing written")
        return

    prefs_out = {"pool": PAIR_POOL, "seed": PAIR_SEED, "n_prompts": PAIR_PROMPTS, "noise": NOISE, "n_train": n_train,
                 "made_by": "scripts/rlhf_sweep.py: two SFT replies per alignment.order_prompts prompt, "
                            "alignment.label_pairs with the true reward",
                 "pairs": [{"prompt": index[id(p.prompt)], "chosen": p.chosen, "rejected": p.rejected,
                            "p_chosen": round(p.p_chosen, 6)} for p in prefs]}
    out = {"model": MODEL, "model_sha256": card["sha256"], "noise": NOISE, "n_pairs": len(prefs), "n_train": n_train,
           "ceiling": al.noise_ceiling(val), "sft_true_reward": float(np.mean(true_a)),
           "judge": {"agreement": agree, "expected_agreement_of_true_labels": expected_agree, "pairs": len(common)},
           "reward_models": rm_info, "ppo": PPO, "steps": STEPS, "eval_every": EVAL_EVERY,
           "eval": {"words": [PAIR_POOL, EVAL_SEED, EVAL_PROMPTS], "heldout": ["heldout", HELDOUT_SEED, HELDOUT_PROMPTS]},
           "runs": results, "seconds": time.time() - t_start}
    for name, payload in ((PREFS_FILE, prefs_out), (FILE, out)):
        log(f"wrote {write_results(name, payload)}")


if __name__ == "__main__":
    main()
