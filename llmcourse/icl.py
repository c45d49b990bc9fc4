"""In-context learning in a model small enough to train live: repeated random sequences, induction heads
found by their attention, and ablated.

A model has learnt *in context* when it predicts better late in a sequence than early because of what the
sequence itself showed it. The cleanest case: a random sequence of tokens that then repeats. Nothing in the
training data says which tokens follow which; the only way to predict the repeat is to look back at where
the current token appeared before and copy the token that came after it. Olsson et al. (2022) found the
circuit that does this in Transformers of every size, the **induction head**, built from two heads in two
layers:

- a **previous-token head** in an early layer writes, at each position, which token came just before;
- an **induction head** in a later layer attends from the current token to the position *after* the
  token's previous occurrence (its query matches the previous-token information written there: **prefix
  matching**) and copies what it finds there into the prediction.

They form in a **phase change**: the loss on repeated tokens falls suddenly, at the same time as the two
scores of :func:`head_scores` jump. A one-layer model cannot build the circuit (no earlier layer writes
the previous token).

**A trap** (measured while building this module): train on ``[r, r]`` with one fixed length of ``r``, and
with rotary positions a single head that attends a fixed distance back copies perfectly, without any
induction; the same model does worse than chance on a repeat of another length. So
:func:`repeated_sequences` draws the period at random for every sequence, and :func:`repeat_loss` can be
measured at periods never trained on.

:func:`ablate_heads` zeroes chosen heads' outputs (before the attention's output projection) inside a
``with`` block, to test which heads the in-context gain depends on.
"""

from __future__ import annotations

import contextlib
import time
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from llmcourse.checks import ArgumentError, check_choice, check_int, check_number, fail

__all__ = ["DEMONSTRATION_EFFECTS", "PREVIOUS_TOKEN", "VOCAB", "ablate_heads", "ablation_groups", "demonstration_effects",
           "few_shot_lookup", "head_scores", "icl_model", "load_sweep", "lookup_accuracy", "phase_change_step",
           "repeat_loss", "repeated_sequences", "train_icl"]


#: The vocabulary of the synthetic tasks: 64 tokens with no meaning beyond their identity.
VOCAB = 64


def icl_model(n_layer: int = 2, *, seed: int = 0, vocab_size: int = VOCAB, context: int = 64) -> nn.Module:
    """The small Transformer this module trains (seeded): ``n_layer`` layers of 4 heads, width 64, the
    course's Llama-style block (RMSNorm, RoPE, SwiGLU), context ``context``."""
    from llmcourse.transformer import TransformerConfig, TransformerLM

    n_layer = check_int("n_layer", n_layer, minimum=1)
    torch.manual_seed(check_int("seed", seed, minimum=0))
    return TransformerLM(TransformerConfig.llama(check_int("vocab_size", vocab_size, minimum=2),
                                                 check_int("context", context, minimum=4),
                                                 n_layer=n_layer, n_head=4, n_embd=64, d_ff=256))


def repeated_sequences(batch_size: int, seq_len: int, vocab_size: int, *, min_period: int = 4, max_period: int = 16,
                       generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` sequences of ``seq_len`` tokens, each a random block of a random period (drawn from
    ``min_period .. max_period`` per sequence, uniform tokens from ``vocab_size``) repeated to fill it.
    Returns ``(ids, predictable)``, both ``(B, T)``: ``predictable[b, t]`` is True where token ``t`` can be
    known from the context, i.e. where the block has been seen once and the token before it too
    (``t > period``)."""
    batch_size = check_int("batch_size", batch_size, minimum=1)
    seq_len = check_int("seq_len", seq_len, minimum=2)
    vocab_size = check_int("vocab_size", vocab_size, minimum=2)
    min_period = check_int("min_period", min_period, minimum=1)
    max_period = check_int("max_period", max_period, minimum=min_period)
    if max_period >= seq_len - 1:
        raise ArgumentError(f"max_period ({max_period}) must be less than seq_len - 1 ({seq_len - 1}), so that "
                            f"every sequence repeats at least one token")
    periods = torch.randint(min_period, max_period + 1, (batch_size,), generator=generator)
    blocks = torch.randint(0, vocab_size, (batch_size, max_period), generator=generator)
    t = torch.arange(seq_len)
    ids = blocks.gather(1, t[None, :] % periods[:, None])
    return ids, t[None, :] > periods[:, None]


def _loss_per_token(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    logits = model(ids)[0][:, :-1].float()
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1),
                           reduction="none").view(ids.shape[0], -1)


@torch.no_grad()
def repeat_loss(model: nn.Module, vocab_size: int, *, period: int | None = None, min_period: int = 4,
                max_period: int = 16, seq_len: int | None = None, n: int = 256, seed: int = 0) -> float:
    """The mean loss (nats) on the predictable tokens of ``n`` seeded :func:`repeated_sequences`; ``period``
    fixes the period (for example one never trained on). Chance is ``ln(vocab_size)``; 0 is perfect
    copying."""
    seq_len = getattr(model, "context_size", 64) if seq_len is None else check_int("seq_len", seq_len, minimum=2)
    lo, hi = (period, period) if period is not None else (min_period, max_period)
    g = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    ids, predictable = repeated_sequences(check_int("n", n, minimum=1), seq_len, vocab_size, min_period=lo,
                                          max_period=hi, generator=g)
    was = model.training
    model.eval()
    try:
        losses = _loss_per_token(model, ids.to(next(model.parameters()).device)).cpu()
    finally:
        model.train(was)
    return float(losses[predictable[:, 1:]].mean())


@torch.no_grad()
def head_scores(model: nn.Module, vocab_size: int, *, length: int = 20, n: int = 16, seed: int = 0) -> dict:
    """Per-head scores on ``n`` probes ``[r, r]`` (``r``: ``length`` random tokens): ``"prefix_matching"``,
    the mean attention from each token of the second copy to the token *after* its occurrence in the first
    (an induction head's signature), and ``"previous_token"``, the mean attention from each token to the
    one just before it. Each ``(n_layer, n_head)``, in [0, 1]."""
    if not hasattr(model, "attention_maps"):
        raise fail("model", "a TransformerLM (it needs attention_maps)", model)
    length = check_int("length", length, minimum=2)
    if 2 * length > getattr(model, "context_size", 2 * length):
        raise ArgumentError(f"length must be at most half the model's context ({model.context_size}); got {length}")
    g = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    q = torch.arange(length, 2 * length - 1)          # second copy, all but its last token
    total_prefix = total_prev = 0.0
    for _ in range(check_int("n", n, minimum=1)):
        r = torch.randint(0, check_int("vocab_size", vocab_size, minimum=2), (length,), generator=g)
        maps = model.attention_maps(torch.cat([r, r])).float().cpu()          # (layers, heads, T, T)
        total_prefix = total_prefix + maps[:, :, q, q - length + 1].mean(-1)
        t = torch.arange(1, 2 * length)
        total_prev = total_prev + maps[:, :, t, t - 1].mean(-1)
    return {"prefix_matching": total_prefix / n, "previous_token": total_prev / n}


@contextlib.contextmanager
def ablate_heads(model: nn.Module, heads: Iterable[tuple[int, int]]):
    """Inside the ``with`` block, the given ``(layer, head)`` pairs contribute nothing: their part of the
    attention output is zeroed before the output projection. The model is unchanged afterwards."""
    blocks = getattr(model, "blocks", None)
    if blocks is None:
        raise fail("model", "a TransformerLM (with blocks)", model)
    chosen: dict[int, list[int]] = {}
    for item in heads:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise fail("heads", "(layer, head) pairs", item)
        layer = check_int("layer", item[0], minimum=0, maximum=len(blocks) - 1)
        head = check_int("head", item[1], minimum=0, maximum=blocks[layer].attn.n_head - 1)
        chosen.setdefault(layer, []).append(head)

    def hook_for(heads_here, head_dim):
        def pre_hook(module, args):
            y = args[0].clone()
            for h in heads_here:
                y[..., h * head_dim:(h + 1) * head_dim] = 0
            return (y,)
        return pre_hook

    handles = [blocks[layer].attn.proj.register_forward_pre_hook(hook_for(hs, blocks[layer].attn.head_dim))
               for layer, hs in chosen.items()]
    try:
        yield model
    finally:
        for h in handles:
            h.remove()


#: A layer-1 head whose previous-token score is above this counts as a previous-token head.
PREVIOUS_TOKEN = 0.25


def ablation_groups(scores: dict, threshold: float = PREVIOUS_TOKEN) -> dict[str, list[tuple[int, int]]]:
    """The head groups to ablate in a two-layer model, from its :func:`head_scores`: none, all of layer 2,
    layer 1's previous-token heads (score above ``threshold``), layer 1's other heads, and the strongest
    induction head of layer 2 alone."""
    if not isinstance(scores, dict) or scores.get("previous_token") is None or scores["previous_token"].shape[0] != 2:
        raise fail("scores", "head_scores of a two-layer model", scores)
    prev = scores["previous_token"][0]
    n_head = prev.numel()
    return {"none": [],
            "layer 2, all heads": [(1, h) for h in range(n_head)],
            "previous-token heads": [(0, h) for h in range(n_head) if prev[h] > threshold],
            "other layer-1 heads": [(0, h) for h in range(n_head) if prev[h] <= threshold],
            "strongest induction head": [(1, int(scores["prefix_matching"][1].argmax()))]}


def few_shot_lookup(n: int, vocab_size: int, *, shots: int = 2, n_pairs: int = 20, n_keys: int = 8,
                    n_labels: int = 16, deviant: str | None = None, place: str | int = "anywhere", separator: bool = False,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` few-shot prompts of a lookup task whose answers change from prompt to prompt.

    Each prompt draws ``n_keys`` *keys* (from the first ``vocab_size - n_labels - 1`` tokens) and gives each a
    random *label* (from the last ``n_labels`` tokens but one), then writes ``n_pairs`` demonstrations
    ``key label`` (``key : label`` with ``separator``: the last token is the ``:``), then a query key. The
    query key appears in exactly ``shots`` of the demonstrations, the other pairs show the other keys. The
    same key never has the same label in two prompts except by chance, so a model can only answer from the
    prompt itself.

    Args:
        deviant: None; ``"first"`` or ``"last"``: the query's first or last demonstration shows another
            label (the others agree): does the prompt's majority or its most recent example win?
        place: where the query's demonstrations go: ``"anywhere"`` (random pairs), or the pair they start at
            (an int: they fill pairs ``place .. place + shots - 1``; the first key is then
            ``2 * (n_pairs - place)`` tokens before the query).

    Returns ``(ids, answer, other)``: ``ids`` ``(n, T)`` ends with the query key (and the separator);
    ``answer`` ``(n,)`` the query key's label; ``other`` ``(n,)`` the deviant demonstration's label (equal
    to ``answer`` where there is none).
    """
    n = check_int("n", n, minimum=1)
    vocab_size = check_int("vocab_size", vocab_size, minimum=4)
    n_labels = check_int("n_labels", n_labels, minimum=2)
    n_keys = check_int("n_keys", n_keys, minimum=2)
    if n_labels + n_keys + 1 > vocab_size:
        raise ArgumentError(f"n_keys + n_labels + 1 (a separator) must be at most vocab_size ({vocab_size}); got "
                            f"{n_keys} + {n_labels} + 1")
    n_pairs = check_int("n_pairs", n_pairs, minimum=1)
    shots = check_int("shots", shots, minimum=0, maximum=n_pairs)
    if deviant is not None:
        deviant = check_choice("deviant", deviant, ("first", "last"))
        if shots < 3:
            raise ArgumentError(f"a deviant demonstration needs shots >= 3 (so that the others are a majority); "
                                f"got shots={shots}")
    if place != "anywhere":
        if isinstance(place, str):
            raise fail("place", '"anywhere" or the pair the demonstrations start at (an int)', place)
        place = check_int("place", place, minimum=0, maximum=n_pairs - shots)
    n_key_tokens = vocab_size - n_labels - 1
    sep = vocab_size - 1
    ids, answers, others = [], [], []
    for _ in range(n):
        keys = torch.randperm(n_key_tokens, generator=generator)[:n_keys]
        labels = torch.randint(n_key_tokens, n_key_tokens + n_labels, (n_keys,), generator=generator)
        which = torch.randint(1, n_keys, (n_pairs,), generator=generator)        # key 0 is the query
        slots = (torch.randperm(n_pairs, generator=generator)[:shots].sort().values if place == "anywhere"
                 else torch.arange(place, place + shots))
        which[slots] = 0
        shown = labels[which].clone()
        other = labels[0]
        if deviant is not None:
            other = n_key_tokens + (labels[0] - n_key_tokens + torch.randint(1, n_labels, (), generator=generator)) % n_labels
            shown[slots[0] if deviant == "first" else slots[-1]] = other
        pairs = [keys[which], torch.full((n_pairs,), sep), shown] if separator else [keys[which], shown]
        body = torch.stack(pairs, 1).reshape(-1)
        query = [keys[0], torch.tensor(sep)] if separator else [keys[0]]
        ids.append(torch.cat([body, torch.stack(query)]))
        answers.append(labels[0])
        others.append(other)
    return torch.stack(ids), torch.stack(answers), torch.stack(others)


@torch.no_grad()
def lookup_accuracy(model: nn.Module, vocab_size: int, *, n: int = 512, seed: int = 0, **prompt) -> dict:
    """``model``'s greedy answers (over its whole vocabulary) to ``n`` seeded :func:`few_shot_lookup` prompts
    (``prompt``: its keyword arguments): ``{"right": share answering the query's label, "deviant": share
    answering the deviant demonstration's label}`` (``"deviant"`` is 0 without one)."""
    g = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    ids, answer, other = few_shot_lookup(n, vocab_size, generator=g, **prompt)
    was = model.training
    model.eval()
    try:
        guess = model(ids.to(next(model.parameters()).device))[0][:, -1].argmax(-1).cpu()
    finally:
        model.train(was)
    has_deviant = prompt.get("deviant") is not None
    return {"right": float((guess == answer).float().mean()),
            "deviant": float((guess == other).float().mean()) if has_deviant else 0.0}


#: The demonstration effects :func:`demonstration_effects` measures: a name and :func:`few_shot_lookup`'s
#: arguments for each.
DEMONSTRATION_EFFECTS = {
    **{f"{k} shots": dict(shots=k) for k in (0, 1, 2, 4, 8)},
    "1 shot, 2 tokens before the query": dict(shots=1, place=19),
    "1 shot, 16 tokens before the query": dict(shots=1, place=12),
    "1 shot, 40 tokens before the query": dict(shots=1, place=0),
    "4 shots, the first one wrong": dict(shots=4, deviant="first"),
    "4 shots, the last one wrong": dict(shots=4, deviant="last"),
    "4 shots, new format (key : label)": dict(shots=4, separator=True),
}


def demonstration_effects(model: nn.Module, vocab_size: int, *, n: int = 512, seed: int = 0) -> dict[str, dict]:
    """:func:`lookup_accuracy` for every row of :data:`DEMONSTRATION_EFFECTS`, each on the same seed."""
    return {name: lookup_accuracy(model, vocab_size, n=n, seed=seed, **prompt)
            for name, prompt in DEMONSTRATION_EFFECTS.items()}


def train_icl(model: nn.Module, vocab_size: int, *, steps: int = 600, batch_size: int = 32, lr: float = 1e-3,
              min_period: int = 4, max_period: int = 16, seed: int = 0, eval_every: int = 50,
              seq_len: int | None = None, callback: Callable[[dict], None] | None = None) -> list[dict]:
    """Train ``model`` (AdamW, no weight decay) on :func:`repeated_sequences` with the loss on every
    token. Every ``eval_every`` steps a row: the mean training ``loss`` since the last row, ``repeat_loss``
    at the trained periods and at period 20 (never trained on when ``max_period < 20``), the highest
    ``prefix_matching`` and ``previous_token`` head scores (for a model with attention maps), and the
    ``seconds`` so far (measuring included); ``callback(row)`` after each. ``seq_len`` defaults to the
    model's context size; a model without one (an LSTM) needs it."""
    steps = check_int("steps", steps, minimum=1)
    batch_size = check_int("batch_size", batch_size, minimum=1)
    lr = check_number("lr", lr, minimum=0.0, strict=True)
    eval_every = check_int("eval_every", eval_every, minimum=1)
    if seq_len is None:
        seq_len = getattr(model, "context_size", None)
        if seq_len is None:
            raise fail("model", "a TransformerLM (with a context size), or give seq_len", model)
    seq_len = check_int("seq_len", seq_len, minimum=2)
    g = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    history, t0, since = [], time.perf_counter(), []
    for step in range(1, steps + 1):
        model.train()
        ids, _ = repeated_sequences(batch_size, seq_len, vocab_size, min_period=min_period, max_period=max_period,
                                    generator=g)
        loss = _loss_per_token(model, ids.to(next(model.parameters()).device)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        since.append(loss.detach())
        if step % eval_every == 0 or step == steps:
            row = {"step": step, "loss": float(torch.stack(since).mean()), "seconds": time.perf_counter() - t0,
                   "repeat_loss": repeat_loss(model, vocab_size, min_period=min_period, max_period=max_period,
                                              seq_len=seq_len),
                   "repeat_loss_20": repeat_loss(model, vocab_size, period=min(20, seq_len // 2 - 1), seq_len=seq_len)}
            if hasattr(model, "attention_maps"):
                scores = head_scores(model, vocab_size, length=min(20, seq_len // 2))
                row.update(prefix_matching=float(scores["prefix_matching"].max()),
                           previous_token=float(scores["previous_token"].max()))
            history.append(row)
            since = []
            if callback is not None:
                callback(row)
    model.eval()
    return history


def phase_change_step(history: list[dict], below: float = 1.0) -> int | None:
    """The first step of a :func:`train_icl` history at which the repeat loss is below ``below`` nats
    (default 1: on average more than e^-1, 37%, on the right token): where copying from the context has
    plainly begun. No strategy without copying gets there: guessing among the tokens seen so far, what a
    one-layer model learns, plateaus near ln(period), about 2.4 nats. None if it never is."""
    if not isinstance(history, list) or not all(isinstance(r, dict) and "repeat_loss" in r for r in history):
        raise fail("history", "a list of train_icl rows (dicts with 'step' and 'repeat_loss')", history)
    below = check_number("below", below, minimum=0.0, strict=True)
    return next((r["step"] for r in history if r["repeat_loss"] < below), None)


def load_sweep() -> dict:
    """The committed results of ``scripts/icl_sweep.py`` (``data/icl_sweep.json``, checked against
    ``data/SHA256SUMS``): for each seed, a two-layer and a one-layer model's training history, final head
    scores, demonstration effects and ablations."""
    import json

    from llmcourse.datasets import verify_file

    return json.loads(verify_file("icl_sweep.json").read_text(encoding="utf-8"))
