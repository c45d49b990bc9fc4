"""Run notebook 10's experiments and write the results it reads: data/dpo_sweep.json.

    python scripts/dpo_sweep.py            # everything, about 12 minutes on 2 CPU cores
    python scripts/dpo_sweep.py --quick    # a few steps of every kind of run, a smoke test (writes nothing)

DPO on notebook 09's preferences (``data/rlhf_preferences.json``: 1,620 training pairs, 406 held out)
from the chat model of notebook 08 (``bpe-chat-shakespeare``, the reference), so that it sits beside
notebook 09's PPO runs (``data/rlhf_sweep.json``) on one plot. Runs: DPO at each beta of :data:`BETAS`,
IPO, conservative DPO (label smoothing 0.2) and DPO at a higher learning rate (1e-4) at beta 0.1, each for :data:`EPOCHS` epochs of batches of
:data:`BATCH` pairs at learning rate :data:`LR`. After every epoch the policy is measured as notebook 09
measured PPO's: sampled replies (temperature 1) to the same held-out prompts, their true reward and KL to
the reference; plus the implicit reward's accuracy on the held-out pairs and the policy's log-probability
of the held-out chosen and rejected replies.

Runs are seeded; each finished run is kept in a cache (``~/.cache/llmcourse/dpo_sweep.json``); ``--fresh``
starts anew. The result is written atomically with its sha256 in data/SHA256SUMS and data/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from llmcourse import alignment as al
from llmcourse import zoo
from llmcourse.datasets import write_results
from llmcourse.files import write_atomic_text
from llmcourse.notebook import seed_everything

FILE = "dpo_sweep.json"
MODEL = "bpe-chat-shakespeare"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "llmcourse" / FILE
BETAS = (0.03, 0.1, 0.3, 1.0)
EPOCHS, BATCH, LR = 4, 32, 3e-5
VARIANTS = {"ipo beta=0.1": dict(beta=0.1, kind="ipo"), "cdpo beta=0.1": dict(beta=0.1, label_smoothing=0.2),
            "dpo beta=0.1 lr=1e-4": dict(beta=0.1, lr=1e-4)}


def log(*args) -> None:
    print(*args, flush=True)


def measure(policy, sft, tok, held, eval_words, eval_held, beta, ref_held) -> dict:
    out = {}
    for name, prompts in (("words", eval_words), ("heldout", eval_held)):
        e = al.evaluate_policy(policy, sft, tok, prompts, seed=0)
        e["replies"] = e["replies"][:6]
        out[name] = {k: (round(v, 5) if isinstance(v, float) else v) for k, v in e.items()}
    pc, pr = al.preference_logprobs(policy, tok, held)
    rc, rr = ref_held
    reward_c, reward_r = al.implicit_reward(pc, rc, beta), al.implicit_reward(pr, rr, beta)
    out["implicit_accuracy"] = float((reward_c > reward_r).float().mean())
    out["held_chosen_shift"] = float((pc - rc).mean())
    out["held_rejected_shift"] = float((pr - rr).mean())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: few pairs and steps, writes nothing")
    parser.add_argument("--fresh", action="store_true", help="ignore the cache of finished runs")
    parser.add_argument("--only", nargs="*", help="run only these runs (names), for trying things")
    args = parser.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    t_start = time.time()
    sft, card = zoo.load(MODEL)
    tok = zoo.tokenizer(card)
    rlhf = al.load_sweep()
    train, held = al.load_preferences()
    pool, seed, n = rlhf["eval"]["words"]
    eval_words = al.order_prompts(n, pool=pool, seed=seed)
    pool, seed, n = rlhf["eval"]["heldout"]
    eval_held = al.order_prompts(n, pool=pool, seed=seed)
    epochs = EPOCHS
    if args.quick:
        train, held, eval_words, eval_held, epochs = train[:64], held[:32], eval_words[:32], eval_held[:16], 1
    cache_path = CACHE.with_suffix(".quick.json") if args.quick else CACHE
    cache = {} if args.fresh or not cache_path.exists() else json.loads(cache_path.read_text())
    ref_held = al.preference_logprobs(sft, tok, held)
    runs = {f"dpo beta={b:g}": dict(beta=b) for b in BETAS}
    runs.update(VARIANTS)
    results = cache.setdefault("runs", {})
    for name, over in runs.items():
        if args.only and name not in args.only:
            continue
        if name in results:
            log(f"{name}: cached")
            continue
        seed_everything(0)
        evals = [{"epoch": 0, **measure(sft, sft, tok, held, eval_words, eval_held, over["beta"], ref_held)}]
        clock = {"train": 0.0, "since": time.time()}

        def epoch_end(epoch, policy):  # measured between epochs; the measuring is not counted as training time
            clock["train"] += time.time() - clock["since"]
            evals.append({"epoch": epoch, **measure(policy, sft, tok, held, eval_words, eval_held, over["beta"],
                                                    ref_held)})
            e = evals[-1]
            log(f"  {name} epoch {epoch}: true {e['words']['true_reward']:.3f} kl {e['words']['kl']:.2f} "
                f"implicit acc {e['implicit_accuracy']:.3f} held shifts {e['held_chosen_shift']:.2f}/"
                f"{e['held_rejected_shift']:.2f} {e['words']['replies'][:3]}")
            clock["since"] = time.time()

        settings = {"lr": LR, **over}
        policy, history = al.train_dpo(sft, tok, train, epochs=epochs, batch_size=BATCH, seed=0,
                                       on_epoch_end=epoch_end, **settings)
        seconds = clock["train"]
        e = evals[-1]
        log(f"{name}: {seconds:.0f} s; true {e['words']['true_reward']:.3f} kl {e['words']['kl']:.2f} "
            f"implicit acc {e['implicit_accuracy']:.3f} shifts {e['held_chosen_shift']:.2f}/{e['held_rejected_shift']:.2f}")
        results[name] = {"config": {**settings, "epochs": epochs, "batch_size": BATCH}, "seconds": seconds,
                         "history": [{k: (round(v, 5) if isinstance(v, float) else v) for k, v in h.items()}
                                     for h in history], "evals": evals}
        if not args.quick:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic_text(cache_path, json.dumps(cache))
    if args.quick or args.only:
        log(f"done ({time.time() - t_start:.0f} s); nothing written")
        return
    out = {"model": MODEL, "model_sha256": card["sha256"], "preferences": "data/rlhf_preferences.json",
           "n_train": len(train), "n_held": len(held), "epochs": EPOCHS, "batch_size": BATCH, "lr": LR,
           "eval": rlhf["eval"], "runs": results, "seconds": time.time() - t_start}
    log(f"wrote {write_results(FILE, out)}")


if __name__ == "__main__":
    main()
