"""Attention: the operation at the centre of the Transformer, its masks, and how it learns positions.

Every position asks a question (a *query* vector q), every position offers a *key* k and a *value* v,
and each position's output is an average of the values weighted by how well its query matches each key::

    Attention(Q, K, V) = softmax(Q Kᵀ / √d + M) V        Q: (Tq, d), K: (Tk, d), V: (Tk, d_v)

The 1/√d keeps the dot products (sums of d products of unit-variance numbers) at unit variance, so the
softmax does not saturate as d grows. ``M`` is 0 where a query may look and -∞ where it may not: the
*mask* is what makes one architecture differ from another.

- :func:`causal_mask`: position t sees positions ≤ t (a decoder: GPT, LLaMA).
- :func:`prefix_mask`: the first ``prefix_len`` positions see each other in both directions, the rest
  are causal (a prefix decoder: UniLM, T5's "prefix LM", GLM).
- no mask over the source plus cross-attention from the target (:class:`MultiHeadAttention` with
  ``memory``): the encoder–decoder of the original Transformer and T5.

Masks here are boolean with **True = may attend**, the convention of
``torch.nn.functional.scaled_dot_product_attention``.

Attention by itself ignores order: permute the keys and values and each output is the same. Order comes
from positions: :func:`sinusoidal_positions` (added to the input, Vaswani et al. 2017), learned position
embeddings (GPT-2), or rotary embeddings (:func:`rope_cache` and :func:`apply_rope`, Su et al. 2021, used
by LLaMA), which rotate q and k so their dot product depends only on the distance between positions.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.checks import ArgumentError, check_int, check_number, fail

__all__ = [
    "MultiHeadAttention",
    "apply_rope",
    "causal_mask",
    "check_mask",
    "prefix_mask",
    "rope_cache",
    "scaled_dot_product_attention",
    "sinusoidal_positions",
]


# ----------------------------------------------------------------------------------------------------
# masks


def causal_mask(T: int, device=None) -> torch.Tensor:
    """``(T, T)`` bool, True on and below the diagonal: query t may attend to keys 0..t.

    >>> causal_mask(3).int()
    tensor([[1, 0, 0],
            [1, 1, 0],
            [1, 1, 1]], dtype=torch.int32)
    """
    T = check_int("T", T)
    return torch.ones(T, T, dtype=torch.bool, device=device).tril()


def prefix_mask(T: int, prefix_len, device=None) -> torch.Tensor:
    """A prefix decoder's mask: full attention within the first ``prefix_len`` positions, causal after.

    ``prefix_len`` is an int (one mask, ``(T, T)``) or a ``(batch,)`` tensor of lengths (one mask per
    example, ``(batch, T, T)``). Query t may attend to key s when ``s <= t`` or ``s < prefix_len``. So
    the prefix (the "input") is read bidirectionally, like an encoder, and everything after it (the
    "output") is generated left to right and sees the whole prefix.

    >>> prefix_mask(4, 2).int()
    tensor([[1, 1, 0, 0],
            [1, 1, 0, 0],
            [1, 1, 1, 0],
            [1, 1, 1, 1]], dtype=torch.int32)
    """
    T = check_int("T", T)
    causal = causal_mask(T, device)
    keys = torch.arange(T, device=device)
    if isinstance(prefix_len, torch.Tensor):
        if prefix_len.dim() != 1 or prefix_len.dtype.is_floating_point:
            raise ArgumentError(f"prefix_len must be an int or a (batch,) integer tensor; got shape "
                             f"{tuple(prefix_len.shape)}, dtype {prefix_len.dtype}")
        if len(prefix_len) and (int(prefix_len.min()) < 0 or int(prefix_len.max()) > T):
            raise ArgumentError(f"prefix_len must lie in [0, T={T}]; got values {prefix_len.tolist()}")
        in_prefix = keys[None, :] < prefix_len.to(device)[:, None]  # (B, T): key s is in the prefix
        return causal[None] | in_prefix[:, None, :]
    if isinstance(prefix_len, bool) or not isinstance(prefix_len, int) or not 0 <= prefix_len <= T:
        raise ArgumentError(f"prefix_len must be an int in [0, T={T}] or a (batch,) tensor; got {prefix_len!r}")
    return causal | (keys < prefix_len)[None, :]


def check_mask(mask: torch.Tensor | None, B: int, Tq: int, Tk: int, name: str = "mask") -> torch.Tensor | None:
    """Check that ``mask`` is boolean and shaped ``(Tq, Tk)``, ``(B, Tq, Tk)`` or ``(B, H, Tq, Tk)``.

    Returns it shaped to broadcast over ``(B, H, Tq, Tk)``. A wrong shape would otherwise broadcast
    silently into the wrong attention pattern, so it fails here with the shapes spelled out.
    """
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ArgumentError(f"{name} must be a bool tensor (True = may attend); got {got}")
    if mask.dim() == 2 and tuple(mask.shape) == (Tq, Tk):
        return mask
    if mask.dim() == 3 and tuple(mask.shape) in {(B, Tq, Tk), (1, Tq, Tk)}:
        return mask[:, None]
    if mask.dim() == 4 and mask.shape[0] in (1, B) and tuple(mask.shape[2:]) == (Tq, Tk):
        return mask
    raise ArgumentError(
        f"{name} must have shape (Tq, Tk) = ({Tq}, {Tk}), (batch, Tq, Tk) = ({B}, {Tq}, {Tk}) or "
        f"(batch, heads, Tq, Tk); got {tuple(mask.shape)}"
    )


# ----------------------------------------------------------------------------------------------------
# the operation


def scaled_dot_product_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q kᵀ / √d + mask) v, written out: ``(output, weights)``.

    Args:
        q: ``(..., Tq, d)``; k: ``(..., Tk, d)``; v: ``(..., Tk, d_v)``.
        mask: bool, broadcastable to ``(..., Tq, Tk)``, True = may attend. A query row with no key
            allowed gets all-zero weights (not NaN).

    Returns:
        output ``(..., Tq, d_v)`` and the attention weights ``(..., Tq, Tk)`` (rows sum to 1).

    Equal to ``torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)`` (which
    fuses these steps and never materialises the weights); the tests check it.
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.dim() < 2:
            raise fail(name, "a floating-point tensor of shape (..., T, d)", t)
    if q.shape[-1] != k.shape[-1]:
        raise ArgumentError(f"q and k must have the same last dimension; got q {tuple(q.shape)}, k {tuple(k.shape)}")
    if k.shape[-2] != v.shape[-2]:
        raise ArgumentError(f"k and v must have the same number of keys; got k {tuple(k.shape)}, v {tuple(v.shape)}")
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., Tq, Tk)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        weights = torch.nan_to_num(weights)  # fully masked rows: softmax of all -inf is NaN; make it 0
    return weights @ v, weights


# ----------------------------------------------------------------------------------------------------
# positions


def sinusoidal_positions(T: int, d: int, base: float = 10000.0) -> torch.Tensor:
    """Vaswani et al.'s fixed position encodings: ``(T, d)``, d even.

    ``PE[t, 2i] = sin(t / base^(2i/d))`` and ``PE[t, 2i+1] = cos(t / base^(2i/d))``: each pair of
    dimensions is a clock at its own frequency, from one turn every 2π positions down to one every
    2π·base. Nearby positions get similar vectors, and ``PE[t + k]`` is a fixed rotation of ``PE[t]``.
    """
    T, d = check_int("T", T), check_int("d", d, minimum=2)
    base = check_number("base", base, minimum=1.0, strict=True)
    if d % 2:
        raise ArgumentError(f"d must be even (dimensions come in sin/cos pairs); got {d}")
    inv_freq = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)  # (d/2,)
    angles = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None]  # (T, d/2)
    pe = torch.empty(T, d, dtype=torch.float64)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(angles), torch.cos(angles)
    return pe.float()


def rope_cache(T: int, head_dim: int, base: float = 10000.0, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The cos and sin tables of rotary position embeddings: two ``(T, head_dim)`` tensors.

    Dimension pairs ``(i, i + head_dim/2)`` rotate at frequency ``base^(-2i/head_dim)`` (the "rotate
    half" layout of LLaMA in Hugging Face ``transformers``; Meta's original interleaves the pairs, which
    is the same up to a fixed permutation of dimensions).
    """
    T, head_dim = check_int("T", T), check_int("head_dim", head_dim, minimum=2)
    base = check_number("base", base, minimum=1.0, strict=True)
    if head_dim % 2:
        raise ArgumentError(f"head_dim must be even for rotary embeddings; got {head_dim}")
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64, device=device) / head_dim)
    angles = torch.arange(T, dtype=torch.float64, device=device)[:, None] * inv_freq[None]  # (T, hd/2)
    angles = torch.cat([angles, angles], dim=-1)  # (T, hd)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x: (..., T, head_dim)`` by its positions: each pair (x_i, x_{i+hd/2}) turns by angle t·θ_i.

    After rotation, ``q_t · k_s`` depends on t and s only through ``t - s``: a rotation by t·θ dotted
    with one by s·θ is a rotation by (t - s)·θ. That is why RoPE gives relative positions for free.
    """
    if not isinstance(x, torch.Tensor) or x.dim() < 1 or x.shape[-1] % 2:
        raise fail("x", "a tensor (..., T, head_dim) with an even head_dim", x)
    try:
        ok = cos.shape == sin.shape and cos.shape[-1] == x.shape[-1]
        torch.broadcast_shapes(x.shape, cos.shape)
    except (AttributeError, RuntimeError):
        ok = False
    if not ok:
        raise ArgumentError(f"cos and sin must be tensors of the same shape (T, head_dim), broadcastable with x "
                            f"{tuple(x.shape)}; got cos {tuple(getattr(cos, 'shape', ()))}, "
                            f"sin {tuple(getattr(sin, 'shape', ()))}")
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)  # (x1, x2) -> (-x2, x1)
    return x * cos + rotated * sin


# ----------------------------------------------------------------------------------------------------
# the module


class MultiHeadAttention(nn.Module):
    """Multi-head attention, with grouped-query attention and rotary positions as options.

    ``n_head`` query heads of size ``head_dim = d_model // n_head`` each attend on their own; their
    outputs are concatenated and mixed by an output projection. With ``n_kv_head < n_head`` (grouped-query
    attention, LLaMA-2 70B, Mistral), groups of ``n_head // n_kv_head`` query heads share one key/value
    head, which shrinks the key/value projections and the KV cache by that factor; ``n_kv_head = 1`` is
    multi-query attention.

    ``forward(x)`` is self-attention; ``forward(x, memory=enc)`` is cross-attention (queries from ``x``,
    keys and values from the encoder's output ``enc``).

    Set ``keep_weights = True`` to keep the last attention weights in ``self.weights``
    ``(batch, n_head, Tq, Tk)`` (computed with :func:`scaled_dot_product_attention`; otherwise the fused
    torch kernel is used, which is faster and never materialises them).

    ``prefix`` (None unless :func:`llmcourse.peft.add_prefix` sets it) is prefix tuning's hook: a module
    with parameters ``k`` and ``v``, ``(n_kv_head, n_prefix, head_dim)`` each, learned keys and values
    placed before the text's own (after the cache, with no rotary rotation) that every query may attend
    to; ``Tk`` of ``self.weights`` then counts them too (they come first).
    """

    def __init__(self, d_model: int, n_head: int, n_kv_head: int | None = None, bias: bool = True,
                 dropout: float = 0.0):
        super().__init__()
        d_model, n_head = check_int("d_model", d_model), check_int("n_head", n_head)
        n_kv_head = n_head if n_kv_head is None else check_int("n_kv_head", n_kv_head)
        if d_model % n_head:
            raise ArgumentError(f"d_model (n_embd) = {d_model} must be divisible by n_head = {n_head}")
        if n_head % n_kv_head:
            raise ArgumentError(f"n_head = {n_head} must be divisible by n_kv_head = {n_kv_head}")
        self.n_head, self.n_kv_head, self.head_dim = n_head, n_kv_head, d_model // n_head
        self.q = nn.Linear(d_model, n_head * self.head_dim, bias=bias)
        self.kv = nn.Linear(d_model, 2 * n_kv_head * self.head_dim, bias=bias)  # keys and values in one matmul
        self.proj = nn.Linear(n_head * self.head_dim, d_model, bias=bias)
        self.dropout = dropout
        self.keep_weights = False
        self.weights: torch.Tensor | None = None
        self.prefix: nn.Module | None = None  # prefix tuning (llmcourse.peft.add_prefix)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, *, memory: torch.Tensor | None = None,
                rope: tuple[torch.Tensor, torch.Tensor] | None = None, cache=None) -> torch.Tensor:
        """x: ``(B, Tq, d_model)``; memory: ``(B, Tk, d_model)`` or None (self-attention);
        mask: bool ``(Tq, Tk)`` / ``(B, Tq, Tk)``, True = may attend (None = all), where Tk counts the
        cached keys too; rope: ``(cos, sin)`` tables whose last Tq rows are the new positions;
        cache: a :class:`llmcourse.generation.LayerKV` that keeps this layer's keys and values (the new
        ones are appended). Returns ``(B, Tq, d_model)``."""
        B, Tq, _ = x.shape
        src = x if memory is None else memory
        Tnew = src.shape[1]
        q = self.q(x).view(B, Tq, self.n_head, self.head_dim).transpose(1, 2)  # (B, H, Tq, hd)
        k, v = self.kv(src).view(B, Tnew, 2, self.n_kv_head, self.head_dim).permute(2, 0, 3, 1, 4)  # (B, KV, Tnew, hd)
        if rope is not None:  # queries and the new keys sit at the last positions of the tables
            cos, sin = rope
            q, k = apply_rope(q, cos[-Tq:], sin[-Tq:]), apply_rope(k, cos[-Tnew:], sin[-Tnew:])
        if cache is not None:  # keys and values of earlier tokens never change: keep them, add the new
            k, v = cache.append(k, v)  # (B, KV, Tk, hd)
        Tk = k.shape[2]
        mask = check_mask(mask, B, Tq, Tk)
        if self.prefix is not None:  # prefix tuning: learned keys and values before the text's, seen by all
            n_prefix = self.prefix.k.shape[1]
            k = torch.cat([self.prefix.k.to(k.dtype).expand(B, -1, -1, -1), k], dim=2)  # (B, KV, P + Tk, hd)
            v = torch.cat([self.prefix.v.to(v.dtype).expand(B, -1, -1, -1), v], dim=2)
            if mask is not None:
                mask = torch.cat([mask.new_ones(*mask.shape[:-1], n_prefix), mask], dim=-1)
        if self.n_kv_head != self.n_head:  # each key/value head serves a group of query heads
            group = self.n_head // self.n_kv_head
            k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)  # (B, H, Tk, hd)
        if self.keep_weights:
            y, self.weights = scaled_dot_product_attention(q, k, v, mask)
            self.weights = self.weights.detach()
        elif q.device.type == "cpu" and (q.dtype == torch.bfloat16 or torch.is_autocast_enabled("cpu")):
            # bf16 on a CPU (autocast): attention in float32. PyTorch's CPU flash-attention backward is
            # about 9x slower in bf16 than in float32 at the course's sizes (benchmarks/pretraining.py
            # --profile), and float32 keeps the softmax exact; the products around it stay in bf16.
            with torch.autocast("cpu", enabled=False):
                y = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=mask,
                                                   dropout_p=self.dropout if self.training else 0.0).to(q.dtype)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                               dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).reshape(B, Tq, self.n_head * self.head_dim)  # heads side by side again
        return self.proj(y)
