"""Decoding: turning a language model's next-token distribution into text, and the KV cache.

A language model gives a distribution over the next token. *Decoding* chooses one, appends it and
asks again. The choice is where quality, diversity and speed are traded:

- **greedy**: always the most likely token (``temperature=0``). Deterministic, and prone to loops.
- **temperature** ``τ``: sample from ``softmax(logits / τ)``; below 1 sharpens, above 1 flattens.
- **top-k**: sample only among the ``k`` most likely tokens.
- **top-p** (nucleus, Holtzman et al. 2020): sample among the smallest set of tokens whose
  probabilities add up to at least ``p``, so the candidate set grows when the model is unsure and
  shrinks when it is confident.
- **repetition controls**: ``repetition_penalty`` (CTRL, Keskar et al. 2019) makes every token already
  in the text less likely; ``no_repeat_ngram_size`` forbids any n-gram from occurring twice.
- **stop strings**: end generation as soon as the text produced contains one of them.

The **KV cache**: a decoder's keys and values for the tokens it has read never change (later tokens
cannot affect earlier ones under the causal mask). So instead of re-reading the whole text for every new
token, :class:`KVCache` keeps each layer's keys and values, and each step computes only the new token's
query, key and value and attends over the cache. Reading n new tokens then costs O(n) token computations
instead of O(n²), with exactly the same result (``benchmarks/kv_cache.py`` measures it).

    from llmcourse.generation import generate
    ids = generate(model, prompt_ids, max_new_tokens=200, temperature=0.8, top_p=0.95,
                   generator=torch.Generator().manual_seed(0))
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from llmcourse.checks import (ArgumentError, check_int, check_number, check_optional, check_str,
                              check_strings, check_token_ids, fail)

__all__ = [
    "KVCache",
    "LayerKV",
    "apply_repetition_penalty",
    "attention_mask",
    "ban_repeated_ngrams",
    "filter_top_k",
    "filter_top_p",
    "generate",
    "generate_batch",
    "generate_text",
    "next_token",
]


class LayerKV:
    """One attention layer's cached keys and values, ``(B, n_kv_head, T, head_dim)`` each (or None)."""

    __slots__ = ("k", "v")

    def __init__(self) -> None:
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add the keys and values of new positions; return all of them."""
        if self.k is not None:
            k, v = torch.cat([self.k, k], dim=2), torch.cat([self.v, v], dim=2)
        self.k, self.v = k, v
        return k, v


class KVCache:
    """The keys and values of every layer for the tokens read so far; ``length`` is their number.

    Stores each key/value head once (before grouped-query attention repeats them for the query heads),
    so its size is ``2 · n_layer · n_kv_head · head_dim`` numbers per token: :meth:`numel` and
    :meth:`nbytes` report it.
    """

    def __init__(self, n_layer: int):
        if isinstance(n_layer, bool) or not isinstance(n_layer, int) or n_layer < 1:
            raise fail("n_layer", "an integer >= 1", n_layer)
        self.layers = [LayerKV() for _ in range(n_layer)]
        self.length = 0

    def numel(self) -> int:
        return sum(t.numel() for layer in self.layers for t in (layer.k, layer.v) if t is not None)

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for layer in self.layers for t in (layer.k, layer.v) if t is not None)


# ----------------------------------------------------------------------------------------------------
# shaping a distribution


def filter_top_k(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest logits of the last dimension, set the rest to -inf (ties at the k-th value
    are all kept)."""
    logits = _check_logits(logits)
    k = check_int("top_k", k, minimum=1)
    if k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def filter_top_p(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filtering: keep the smallest set of most likely tokens whose probability sums to >= ``p``.

    The most likely token is always kept, so ``p`` close to 0 is greedy and ``p = 1`` changes nothing.
    """
    logits = _check_logits(logits)
    p = check_number("top_p", p, minimum=0.0, maximum=1.0, strict=True)
    if p == 1:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    cum = torch.softmax(sorted_logits, dim=-1).cumsum(-1)
    # drop a token when the tokens before it already reach p
    drop_sorted = (cum - torch.softmax(sorted_logits, dim=-1)) >= p
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def apply_repetition_penalty(logits: torch.Tensor, previous: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL's repetition penalty: for every token id in ``previous``, divide its logit by ``penalty`` if
    positive and multiply it if negative (either way it becomes less likely for ``penalty > 1``).

    logits: ``(V,)``; previous: ``(T,)`` token ids.
    """
    logits = _check_logits(logits, ndim=1)
    previous = check_token_ids("previous", previous, logits.shape[-1])
    penalty = check_number("repetition_penalty", penalty, minimum=0.0, strict=True)
    if penalty == 1 or len(previous) == 0:
        return logits
    ids = torch.unique(previous)
    seen = logits[ids]
    out = logits.clone()
    out[ids] = torch.where(seen > 0, seen / penalty, seen * penalty)
    return out


def ban_repeated_ngrams(logits: torch.Tensor, previous: Sequence[int], n: int) -> torch.Tensor:
    """Forbid every token that would complete an n-gram already present in ``previous``.

    With ``n = 3``: if the text ends in ``a b`` and ``a b c`` occurred before, ``c`` gets -inf.
    """
    logits = _check_logits(logits, ndim=1)
    n = check_int("no_repeat_ngram_size", n, minimum=1)
    previous = check_token_ids("previous", previous, logits.shape[-1]).tolist()
    if len(previous) < n - 1 or (n == 1 and not previous):
        return logits
    tail = tuple(previous[len(previous) - (n - 1):]) if n > 1 else ()
    banned = {previous[i + n - 1] for i in range(len(previous) - n + 1) if tuple(previous[i : i + n - 1]) == tail}
    if not banned:
        return logits
    out = logits.clone()
    out[list(banned)] = float("-inf")
    return out


def next_token(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
               generator: torch.Generator | None = None) -> int:
    """Choose one token id from ``logits: (V,)``: greedy when ``temperature == 0`` (lowest id on ties),
    else sample from the temperature-scaled, top-k / top-p filtered distribution."""
    logits = _check_logits(logits, ndim=1)
    temperature = check_number("temperature", temperature, minimum=0.0)
    top_k = check_optional(check_int, "top_k", top_k, minimum=1)
    top_p = check_optional(check_number, "top_p", top_p, minimum=0.0, maximum=1.0, strict=True)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise fail("generator", "a torch.Generator or None", generator)
    if temperature == 0:
        return int(torch.argmax(logits))
    logits = logits.float() / temperature
    if top_k is not None:
        logits = filter_top_k(logits, top_k)
    if top_p is not None:
        logits = filter_top_p(logits, top_p)
    probs = torch.softmax(logits, dim=-1)
    return int(torch.multinomial(probs, 1, generator=generator))


# ----------------------------------------------------------------------------------------------------
# the loop


def _check_logits(logits, ndim: int | None = None) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point() or logits.dim() == 0:
        raise fail("logits", "a floating-point tensor of scores over the vocabulary, (..., V)", logits)
    if ndim is not None and logits.dim() != ndim:
        raise ArgumentError(f"logits must have shape (V,); got shape {tuple(logits.shape)}")
    if torch.isnan(logits).any():
        raise ArgumentError("logits must not contain NaN (the model's output is broken: check its weights)")
    return logits


@torch.no_grad()
def generate(
    model,
    prompt_ids,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    repetition_penalty: float = 1.0,
    no_repeat_ngram_size: int = 0,
    stop_ids: Sequence[int] = (),
    stop_strings: Sequence[str] = (),
    decode: Callable[[list[int]], str] | None = None,
    use_cache: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Continue ``prompt_ids`` by up to ``max_new_tokens`` tokens: the new ids, ``(n,)`` int64.

    Works with every model of the course (``logits, state = model(ids, state)``). For a
    :class:`~llmcourse.transformer.TransformerLM` with ``use_cache`` the keys and values are kept in a
    :class:`KVCache`; once the text fills the context, each step re-reads the last ``block_size``
    tokens instead (as decoding without a cache does), so the output is identical either way.

    Args:
        prompt_ids: ``(T,)`` ids, 1 <= T <= the model's context (if it has one).
        max_new_tokens: >= 0.
        temperature: >= 0; 0 is greedy. top_k: >= 1 or None. top_p: in (0, 1] or None.
        repetition_penalty: > 0, 1 = off (CTRL). no_repeat_ngram_size: 0 = off.
        stop_ids: stop after generating any of these ids (it is included in the output).
        stop_strings: stop once the decoded continuation contains one of them (needs ``decode``,
            a function from ids to text; the tokens that complete the stop string are included;
            :func:`generate_text` cuts the text there).
        use_cache: use a KV cache where the model supports one.
        generator: a seeded ``torch.Generator`` makes sampling repeatable.
    """

    if not isinstance(model, torch.nn.Module) or not hasattr(model, "vocab_size"):
        raise fail("model", "a course language model", model)
    prompt = check_token_ids("prompt_ids", prompt_ids, model.vocab_size, ndim=1, min_length=1)
    context = getattr(model, "context_size", None)
    if context is not None and len(prompt) > context:
        raise ArgumentError(f"prompt_ids has {len(prompt)} tokens, more than the model's context of {context}; "
                         f"shorten the prompt (e.g. keep its last {context} tokens)")
    max_new_tokens = check_int("max_new_tokens", max_new_tokens, minimum=0)
    temperature = check_number("temperature", temperature, minimum=0.0)
    top_k = check_optional(check_int, "top_k", top_k, minimum=1)
    top_p = check_optional(check_number, "top_p", top_p, minimum=0.0, maximum=1.0, strict=True)
    repetition_penalty = check_number("repetition_penalty", repetition_penalty, minimum=0.0, strict=True)
    no_repeat_ngram_size = check_int("no_repeat_ngram_size", no_repeat_ngram_size, minimum=0)
    stop_strings = check_strings("stop_strings", stop_strings)
    if stop_strings and decode is None:
        raise ArgumentError("stop_strings needs decode (a function from a list of ids to text)")
    if decode is not None and not callable(decode):
        raise fail("decode", "a function from a list of ids to text, or None", decode)
    stop_ids = set(check_token_ids("stop_ids", list(stop_ids), model.vocab_size).tolist())

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        cached = use_cache and hasattr(model, "forward_cached")
        text = prompt.tolist()
        out: list[int] = []
        if cached:
            cache = model.new_cache()
            logits = model.forward_cached(prompt[None].to(device), cache)[0, -1]
        else:
            logits, state = model(prompt[None].to(device))
            logits = logits[0, -1]
        for _ in range(max_new_tokens):
            logits = logits.float()
            if repetition_penalty != 1:
                logits = apply_repetition_penalty(logits, torch.tensor(text, device=logits.device), repetition_penalty)
            if no_repeat_ngram_size:
                logits = ban_repeated_ngrams(logits, text, no_repeat_ngram_size)
            tok = next_token(logits, temperature, top_k, top_p, generator)
            out.append(tok)
            text.append(tok)
            if tok in stop_ids or (stop_strings and any(s in decode(out) for s in stop_strings)):
                break
            if len(out) == max_new_tokens:
                break
            new = torch.tensor([[tok]], device=device)
            if cached:
                if cache.length < context:
                    logits = model.forward_cached(new, cache)[0, -1]
                else:  # the context is full: read the last window afresh (what an uncached model does)
                    window = torch.tensor([text[-context:]], device=device)
                    logits = model(window)[0][0, -1]
            else:
                logits, state = model(new, state)
                logits = logits[0, -1]
        return torch.tensor(out, dtype=torch.long)
    finally:
        model.train(was_training)


def generate_text(model, tokenizer, prompt: str, max_new_tokens: int, **kwargs) -> str:
    """:func:`generate` on text: encode ``prompt`` with ``tokenizer`` (anything with ``encode`` and
    ``decode``), decode the continuation, and cut it before the first stop string if one appears."""
    prompt = check_str("prompt", prompt)
    if not (callable(getattr(tokenizer, "encode", None)) and callable(getattr(tokenizer, "decode", None))):
        raise fail("tokenizer", "a tokenizer with encode and decode", tokenizer)
    ids = generate(model, list(tokenizer.encode(prompt)), max_new_tokens,
                   decode=lambda t: tokenizer.decode(list(t)), **kwargs)
    text = tokenizer.decode(ids.tolist())
    cuts = [text.find(s) for s in kwargs.get("stop_strings", ()) if s in text]
    return text[: min(cuts)] if cuts else text


def attention_mask(real: torch.Tensor) -> torch.Tensor:
    """``(B, T, T)`` bool from ``real: (B, T)`` (True at a real token, False at padding): causal, and no
    query reads a padding key. A padding query reads only itself, so no row of the softmax is empty."""
    if not isinstance(real, torch.Tensor) or real.dtype != torch.bool or real.dim() != 2:
        raise fail("real", "a (batch, time) bool tensor", real)
    T = real.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool, device=real.device).tril()
    eye = torch.eye(T, dtype=torch.bool, device=real.device)
    return (causal & real[:, None, :]) | eye


@torch.no_grad()
def generate_batch(model, prompts: Sequence[Sequence[int]], max_new_tokens: int, *, temperature: float = 0.0,
                   stop_id: int | None = None, generator: torch.Generator | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Continue many prompts at once: the prompts (token-id lists, of any lengths) are **left-padded** so
    that they all end at one column, and each step reads every row in one forward pass and draws its next
    token from ``softmax(logits / temperature)`` (``temperature = 0``: greedy), until every row has written
    ``stop_id`` (included) or ``max_new_tokens`` are written. Padding is masked out of attention
    (:func:`attention_mask`); with RoPE only relative positions matter, so a row gives what it would alone.
    A model with ``forward_cached`` (a Transformer) reads the prompts once and then one token per row a step
    from its KV cache.

    Returns ``(ids, real, prompt_len)``: ``ids (B, T)``, ``real (B, T)`` True at every real token (False at
    the padding before a prompt and after a row stopped), and the padded prompt length: row ``i``'s new
    tokens are ``ids[i, prompt_len:][real[i, prompt_len:]]``.
    """
    if isinstance(prompts, (str, bytes)) or not isinstance(prompts, Sequence) or not prompts:
        raise fail("prompts", "a non-empty list of token-id lists", prompts)
    vocab_size = getattr(model, "vocab_size", None)
    if not isinstance(vocab_size, int):
        raise fail("model", "a course language model (with a vocab_size)", model)
    encoded = [check_token_ids(f"prompts[{i}]", p, vocab_size, min_length=1).tolist() for i, p in enumerate(prompts)]
    max_new_tokens = check_int("max_new_tokens", max_new_tokens, minimum=1)
    temperature = check_number("temperature", temperature, minimum=0.0)
    P = max(map(len, encoded))
    context = getattr(model, "context_size", None)
    if context is not None and P + max_new_tokens > context:
        raise ArgumentError(f"prompts: the longest prompt ({P} tokens) plus max_new_tokens ({max_new_tokens}) "
                            f"is more than the model's context ({context})")
    device = next(model.parameters()).device
    B = len(encoded)
    ids = torch.zeros(B, P, dtype=torch.long, device=device)
    real = torch.zeros(B, P, dtype=torch.bool, device=device)
    for i, e in enumerate(encoded):
        ids[i, P - len(e):] = torch.tensor(e)
        real[i, P - len(e):] = True
    done = torch.zeros(B, dtype=torch.bool, device=device)
    cached = hasattr(model, "forward_cached")
    was_training = model.training
    model.eval()
    try:
        if cached:
            cache = model.new_cache()
            logits = model.forward_cached(ids, cache, real)[:, -1]
        else:
            logits = model(ids, mask=attention_mask(real))[0][:, -1]
        for _ in range(max_new_tokens):
            logits = logits.float()
            if temperature == 0:
                tok = logits.argmax(-1)
            else:
                probs = torch.softmax(logits / temperature, dim=-1)
                tok = torch.multinomial(probs, 1, generator=generator)[:, 0]
            tok = torch.where(done, torch.zeros_like(tok), tok)
            ids = torch.cat([ids, tok[:, None]], dim=1)
            real = torch.cat([real, ~done[:, None]], dim=1)
            if stop_id is not None:
                done = done | (tok == stop_id)
            if bool(done.all()) or ids.shape[1] - P == max_new_tokens:
                break
            logits = (model.forward_cached(tok[:, None], cache, real)[:, -1] if cached
                      else model(ids, mask=attention_mask(real))[0][:, -1])
    finally:
        model.train(was_training)
    return ids, real, P
