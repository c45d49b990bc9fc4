"""The Transformer: norms, feed-forward layers, blocks, GPT- and LLaMA-style language models, the three
architecture families, and a mixture-of-experts layer.

A decoder block is two sub-layers, each added back onto a running sum (the *residual stream*)::

    x = x + attn(norm_1(x), causal mask)     # tokens exchange information
    x = x + mlp(norm_2(x))                   # each token is processed on its own

(pre-norm: the norm sits inside the branch, so the stream itself is never normalised and gradients reach
early layers unimpeded). A language model is an embedding, a stack of blocks, a final norm and a linear
"unembedding" to logits over the vocabulary.

One :class:`TransformerConfig` describes both families the course builds:

=================  ==========================  ==============================
                   GPT-2 (:meth:`~TransformerConfig.gpt`)   LLaMA (:meth:`~TransformerConfig.llama`)
=================  ==========================  ==============================
norm               LayerNorm (with bias)       RMSNorm
positions          learned, added to input     rotary, applied to q and k
feed-forward       GELU, 4·d                   SwiGLU, about 8/3·d
biases             yes                         none
output head        tied to the embedding       its own matrix
attention          multi-head                  grouped-query as an option
=================  ==========================  ==============================

:meth:`TransformerConfig.preset` gives the published configurations (GPT-2 small to XL, LLaMA-7B), whose
parameter counts match the published figures exactly; build them on the ``meta`` device to count
parameters without allocating memory::

    with torch.device("meta"):
        model = TransformerLM(TransformerConfig.preset("llama-7b"))
    model.num_parameters()        # 6,738,415,616

:class:`TransformerLM` is a :class:`llmcourse.lm.LanguageModel` (``logits, state = model(ids)``), so
:func:`llmcourse.training.train_language_model`, :func:`llmcourse.lm.evaluate` and ``sample`` work on it. Its
``state`` is the text it has read (the last ``block_size - 1`` tokens): a Transformer has no memory
beyond its context window, and reading a new token means attending over that window again.

This module is longer than the others because notebook 04 reads it as one piece: the
configuration, the block and the model it assembles, the three architectures (which differ only in their
masks) and the mixture-of-experts layer (a drop-in for the feed-forward layer) are one model family, and
the GPT-2 weight converter must sit beside the names it maps. Attention itself is in
:mod:`llmcourse.attention`; decoding in :mod:`llmcourse.generation`.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.attention import MultiHeadAttention, causal_mask, check_mask, prefix_mask, rope_cache, sinusoidal_positions
from llmcourse.checks import ArgumentError, check_bool, check_choice, check_int, check_number, check_token_ids
from llmcourse.lm import LanguageModel

__all__ = [
    "ARCHITECTURES",
    "Block",
    "EncoderDecoder",
    "FeedForward",
    "LayerNorm",
    "MoEFeedForward",
    "PRESETS",
    "RMSNorm",
    "Seq2SeqModel",
    "SwiGLU",
    "TransformerConfig",
    "TransformerLM",
    "count_parameters",
    "course_to_hf_gpt2",
    "gelu_tanh",
    "hf_gpt2_to_course",
    "train_seq2seq",
]


# ----------------------------------------------------------------------------------------------------
# norms


class LayerNorm(nn.Module):
    """Normalise each vector to mean 0 and variance 1, then scale by ``weight`` and shift by ``bias``.

    ``y = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias`` over the last dimension. Equal to
    ``torch.nn.LayerNorm`` (the tests check it); ``bias=False`` drops the shift.
    """

    def __init__(self, d: int, eps: float = 1e-5, bias: bool = True):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))
        self.bias = nn.Parameter(torch.zeros(d)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], self.weight, self.bias, self.eps)


class RMSNorm(nn.Module):
    """Root-mean-square norm (Zhang & Sennrich 2019; LLaMA): ``y = x / sqrt(mean(x²) + eps) * weight``.

    LayerNorm without the centring and without the bias: one fewer reduction, and in practice as good.
    Computed in float32 whatever the input dtype, as LLaMA does.
    """

    def __init__(self, d: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


# ----------------------------------------------------------------------------------------------------
# feed-forward layers


_SQRT_8_OVER_PI = math.sqrt(8 / math.pi)


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """GELU with GPT-2's tanh approximation: ``0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))``.

    Run eagerly, this is PyTorch's single GELU kernel. Under ``torch.compile`` it is the same function
    written as ``x·σ(2·√(2/π)·(x + 0.044715·x³))`` (because ``1 + tanh(u) = 2·σ(2u)``): on a CPU the
    compiler's vectorised tanh is the slowest part of a compiled GPT-2 feed-forward layer, and the sigmoid,
    built on ``exp``, halves the layer's GELU forward and backward (``benchmarks/pretraining.py
    --profile``). The two forms agree to about 1e-6.
    """
    if torch.compiler.is_compiling():
        return x * torch.sigmoid(_SQRT_8_OVER_PI * (x + 0.044715 * x * x * x))
    return F.gelu(x, approximate="tanh")


class FeedForward(nn.Module):
    """GPT-2's position-wise MLP: ``proj(gelu(fc(x)))``, d → d_ff → d.

    GELU with the tanh approximation, as GPT-2 was trained with (so real GPT-2 weights give GPT-2's
    logits); :func:`gelu_tanh`.
    """

    def __init__(self, d: int, d_ff: int, bias: bool = True, dropout: float = 0.0):
        super().__init__()
        self.fc = nn.Linear(d, d_ff, bias=bias)
        self.proj = nn.Linear(d_ff, d, bias=bias)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(gelu_tanh(self.fc(x))))


class SwiGLU(nn.Module):
    """LLaMA's feed-forward: ``down(silu(gate(x)) * up(x))`` (Shazeer 2020, "GLU variants").

    One branch decides, element by element, how much of the other passes. Three matrices instead of
    two, so LLaMA shrinks d_ff to about 8/3·d to keep the parameter count of a 4·d GELU MLP.
    """

    def __init__(self, d: int, d_ff: int, bias: bool = False, dropout: float = 0.0):
        super().__init__()
        self.gate = nn.Linear(d, d_ff, bias=bias)
        self.up = nn.Linear(d, d_ff, bias=bias)
        self.down = nn.Linear(d_ff, d, bias=bias)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.down(F.silu(self.gate(x)) * self.up(x)))


class MoEFeedForward(nn.Module):
    """A mixture of experts: ``n_experts`` feed-forward layers and a router that sends each token to
    ``top_k`` of them (Shazeer et al. 2017; Switch Transformer; Mixtral).

    For each token, the router's logits pick the ``top_k`` experts; their outputs are averaged with the
    router's softmax weights renormalised over those k (Mixtral's choice). Each token pays for k experts,
    while the layer holds ``n_experts`` of them: parameters grow without compute growing.

    Left alone, a router collapses onto a few experts (they get better, so they get chosen more). The
    Switch Transformer's load-balancing loss pushes back::

        aux_loss = n_experts · Σ_i f_i · P_i

    with ``f_i`` the fraction of routing slots that went to expert i and ``P_i`` the mean router
    probability of expert i. It is 1 when both are uniform and larger when routing is lopsided. After a
    forward pass it is in ``self.aux_loss``, and the chosen experts of every token in ``self.routing``
    ``(n_tokens, top_k)``; :meth:`TransformerLM.auxiliary_loss` adds it to the training loss.
    """

    def __init__(self, d: int, d_ff: int, n_experts: int, top_k: int = 2, kind: str = "gelu", bias: bool = True,
                 dropout: float = 0.0, aux_loss_weight: float = 0.01):
        super().__init__()
        if isinstance(n_experts, bool) or not isinstance(n_experts, int) or n_experts < 2:
            raise ArgumentError(f"n_experts must be an integer >= 2; got {n_experts!r}")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= n_experts:
            raise ArgumentError(f"top_k must be an integer in [1, n_experts={n_experts}]; got {top_k!r}")
        expert = FeedForward if kind == "gelu" else SwiGLU
        self.n_experts, self.top_k, self.aux_loss_weight = n_experts, top_k, aux_loss_weight
        self.router = nn.Linear(d, n_experts, bias=False)
        self.experts = nn.ModuleList(expert(d, d_ff, bias=bias, dropout=dropout) for _ in range(n_experts))
        self.aux_loss: torch.Tensor | None = None
        self.routing: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x = x.reshape(-1, shape[-1])  # (N, d): routing is per token
        probs = torch.softmax(self.router(x).float(), dim=-1)  # (N, E)
        top_p, top_i = probs.topk(self.top_k, dim=-1)  # (N, k)
        top_p = (top_p / top_p.sum(-1, keepdim=True)).type_as(x)
        out = torch.zeros_like(x)
        for e, expert in enumerate(self.experts):
            token, slot = torch.where(top_i == e)  # the tokens that chose expert e, and in which slot
            if len(token):
                out.index_add_(0, token, expert(x[token]) * top_p[token, slot, None])
        # load balancing (Switch Transformer, eq. 4), over all k routing slots
        f = torch.bincount(top_i.reshape(-1), minlength=self.n_experts).float() / top_i.numel()
        self.aux_loss = self.n_experts * (f * probs.mean(0)).sum()
        self.routing = top_i.detach()
        return out.reshape(shape)


# ----------------------------------------------------------------------------------------------------
# configuration


NORMS, POSITIONS, MLPS = ("layernorm", "rmsnorm"), ("learned", "sinusoidal", "rope", "none"), ("gelu", "swiglu")


@dataclass
class TransformerConfig:
    """Everything that defines a Transformer language model's shape.

    Args:
        vocab_size: number of token ids.
        block_size: the context length (the most tokens the model reads at once).
        n_layer, n_head, n_embd: blocks, attention heads, width of the residual stream (``n_embd`` must
            be divisible by ``n_head``).
        n_kv_head: key/value heads (grouped-query attention); None = ``n_head``.
        d_ff: hidden width of the feed-forward layer; None = 4·n_embd (GELU) or LLaMA's rule,
            8/3·n_embd rounded up to a multiple of 256 (SwiGLU).
        norm: ``"layernorm"`` or ``"rmsnorm"``; norm_eps its epsilon.
        position: ``"learned"``, ``"sinusoidal"``, ``"rope"`` or ``"none"``.
        mlp: ``"gelu"`` or ``"swiglu"``.
        bias: biases in the linear layers (and LayerNorm).
        tie_embeddings: the output head reuses the token embedding matrix.
        dropout: dropout on attention weights, sub-layer outputs and embeddings.
        rope_base: the base of the rotary frequencies.
        n_experts, top_k: > 0 replaces every feed-forward layer by a :class:`MoEFeedForward`.
    """

    vocab_size: int
    block_size: int
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    n_kv_head: int | None = None
    d_ff: int | None = None
    norm: str = "layernorm"
    norm_eps: float = 1e-5
    position: str = "learned"
    mlp: str = "gelu"
    bias: bool = True
    tie_embeddings: bool = True
    dropout: float = 0.0
    rope_base: float = 10000.0
    n_experts: int = 0
    top_k: int = 2

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            setattr(self, name, check_int(name, getattr(self, name)))
        self.norm_eps = check_number("norm_eps", self.norm_eps, minimum=0.0, strict=True)
        self.rope_base = check_number("rope_base", self.rope_base, minimum=1.0, strict=True)
        self.dropout = check_number("dropout", self.dropout, minimum=0.0, maximum=1.0, strict_max=True)
        self.bias = check_bool("bias", self.bias)
        self.tie_embeddings = check_bool("tie_embeddings", self.tie_embeddings)
        self.n_experts = check_int("n_experts", self.n_experts, minimum=0)
        self.top_k = check_int("top_k", self.top_k)
        check_choice("norm", self.norm, NORMS)
        check_choice("position", self.position, POSITIONS)
        check_choice("mlp", self.mlp, MLPS)
        if self.n_embd % self.n_head:
            raise ArgumentError(f"n_embd = {self.n_embd} must be divisible by n_head = {self.n_head} "
                             f"(each head gets n_embd / n_head dimensions)")
        if self.n_kv_head is not None and (not isinstance(self.n_kv_head, int) or self.n_kv_head < 1
                                           or self.n_head % self.n_kv_head):
            raise ArgumentError(f"n_kv_head must be a positive divisor of n_head = {self.n_head}; got {self.n_kv_head!r}")
        if self.norm not in NORMS:
            raise ArgumentError(f"norm must be one of {NORMS}; got {self.norm!r}")
        if self.position not in POSITIONS:
            raise ArgumentError(f"position must be one of {POSITIONS}; got {self.position!r}")
        if self.mlp not in MLPS:
            raise ArgumentError(f"mlp must be one of {MLPS}; got {self.mlp!r}")
        if self.position == "rope" and (self.n_embd // self.n_head) % 2:
            raise ArgumentError(f"rotary positions need an even head size; n_embd / n_head = {self.n_embd // self.n_head}")
        if self.position == "sinusoidal" and self.n_embd % 2:
            raise ArgumentError(f"sinusoidal positions need an even n_embd; got {self.n_embd}")
        if not 0 <= self.dropout < 1:
            raise ArgumentError(f"dropout must be in [0, 1); got {self.dropout!r}")
        if self.n_experts and (self.n_experts < 2 or not 1 <= self.top_k <= self.n_experts):
            raise ArgumentError(f"n_experts must be 0 or >= 2 and top_k in [1, n_experts]; got "
                             f"n_experts={self.n_experts!r}, top_k={self.top_k!r}")
        if self.d_ff is None:
            if self.mlp == "gelu":
                self.d_ff = 4 * self.n_embd
            else:  # LLaMA: 2/3 of 4d, rounded up to a multiple of 256
                self.d_ff = 256 * math.ceil(int(2 * 4 * self.n_embd / 3) / 256)
        elif isinstance(self.d_ff, bool) or not isinstance(self.d_ff, int) or self.d_ff < 1:
            raise ArgumentError(f"d_ff must be an integer >= 1 or None; got {self.d_ff!r}")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @classmethod
    def gpt(cls, vocab_size: int, block_size: int, **overrides) -> TransformerConfig:
        """A GPT-2-style configuration: LayerNorm, learned positions, GELU, biases, tied embeddings."""
        return cls(vocab_size=vocab_size, block_size=block_size, **overrides)

    @classmethod
    def llama(cls, vocab_size: int, block_size: int, **overrides) -> TransformerConfig:
        """A LLaMA-style configuration: RMSNorm, rotary positions, SwiGLU, no biases, untied head."""
        settings = dict(norm="rmsnorm", norm_eps=1e-6, position="rope", mlp="swiglu", bias=False,
                        tie_embeddings=False)
        settings.update(overrides)
        return cls(vocab_size=vocab_size, block_size=block_size, **settings)

    @classmethod
    def preset(cls, name: str) -> TransformerConfig:
        """A published configuration: one of :data:`PRESETS`."""
        if name not in PRESETS:
            raise ArgumentError(f"name must be one of {sorted(PRESETS)}; got {name!r}")
        family, kw = PRESETS[name]
        return getattr(cls, family)(**kw)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TransformerConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ArgumentError(f"unknown configuration keys {sorted(unknown)}")
        return cls(**d)


#: Published configurations: (family, settings). Sources: GPT-2 (Radford et al. 2019, and the released
#: checkpoints' config.json); LLaMA (Touvron et al. 2023, Table 2, and params.json of LLaMA-7B).
PRESETS: dict[str, tuple[str, dict]] = {
    "gpt2": ("gpt", dict(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768)),
    "gpt2-medium": ("gpt", dict(vocab_size=50257, block_size=1024, n_layer=24, n_head=16, n_embd=1024)),
    "gpt2-large": ("gpt", dict(vocab_size=50257, block_size=1024, n_layer=36, n_head=20, n_embd=1280)),
    "gpt2-xl": ("gpt", dict(vocab_size=50257, block_size=1024, n_layer=48, n_head=25, n_embd=1600)),
    "llama-7b": ("llama", dict(vocab_size=32000, block_size=2048, n_layer=32, n_head=32, n_embd=4096, d_ff=11008)),
    "llama-13b": ("llama", dict(vocab_size=32000, block_size=2048, n_layer=40, n_head=40, n_embd=5120, d_ff=13824)),
}


def count_parameters(config: TransformerConfig, exclude_embeddings: bool = False) -> int:
    """Parameters of ``TransformerLM(config)``, counted on the ``meta`` device (no memory is used).

    ``exclude_embeddings`` leaves out the token and position embeddings (the convention of the scaling
    laws, Kaplan et al. 2020); a tied output head is then left out too, an untied one is counted.
    """
    with torch.device("meta"):
        model = TransformerLM(config)
    return model.num_parameters(exclude_embeddings=exclude_embeddings)


# ----------------------------------------------------------------------------------------------------
# blocks and models


def _norm(config: TransformerConfig) -> nn.Module:
    if config.norm == "rmsnorm":
        return RMSNorm(config.n_embd, config.norm_eps)
    return LayerNorm(config.n_embd, config.norm_eps, bias=config.bias)


def _feed_forward(config: TransformerConfig) -> nn.Module:
    if config.n_experts:
        return MoEFeedForward(config.n_embd, config.d_ff, config.n_experts, config.top_k, config.mlp,
                              config.bias, config.dropout)
    ff = FeedForward if config.mlp == "gelu" else SwiGLU
    return ff(config.n_embd, config.d_ff, bias=config.bias, dropout=config.dropout)


class Block(nn.Module):
    """A pre-norm Transformer block; with ``cross=True`` a decoder block of an encoder–decoder, which
    attends to the encoder's output between its self-attention and its feed-forward layer.

    ``adapter_attn`` and ``adapter_mlp`` (None unless :func:`llmcourse.peft.add_adapters` sets them) are
    modules ``(B, T, d) -> (B, T, d)`` applied to the attention's and the feed-forward layer's outputs
    before they are added to the residual stream."""

    def __init__(self, config: TransformerConfig, cross: bool = False):
        super().__init__()
        self.norm_1 = _norm(config)
        self.attn = MultiHeadAttention(config.n_embd, config.n_head, config.n_kv_head, config.bias, config.dropout)
        self.cross = None
        if cross:
            self.norm_c = _norm(config)
            self.cross = MultiHeadAttention(config.n_embd, config.n_head, config.n_kv_head, config.bias,
                                            config.dropout)
        self.norm_2 = _norm(config)
        self.mlp = _feed_forward(config)
        self.drop = nn.Dropout(config.dropout)
        self.adapter_attn: nn.Module | None = None  # bottleneck adapters (llmcourse.peft.add_adapters)
        self.adapter_mlp: nn.Module | None = None

    def forward(self, x, mask=None, rope=None, memory=None, memory_mask=None, cache=None):
        h = self.attn(self.norm_1(x), mask, rope=rope, cache=cache)
        if self.adapter_attn is not None:
            h = self.adapter_attn(h)
        x = x + self.drop(h)
        if self.cross is not None:
            x = x + self.drop(self.cross(self.norm_c(x), memory_mask, memory=memory))
        h = self.mlp(self.norm_2(x))
        if self.adapter_mlp is not None:
            h = self.adapter_mlp(h)
        return x + h


class _Embedding(nn.Module):
    """Token embeddings plus (for learned or sinusoidal positions) position information.

    ``prompt`` (None unless :func:`llmcourse.peft.add_prompt` sets it) is prompt tuning's hook: a
    parameter ``(n_prompt, d)`` of learned input vectors put before the text's embeddings (at positions
    0 .. n_prompt - 1, so the text moves up by n_prompt positions)."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        self.tok = nn.Embedding(config.vocab_size, config.n_embd)
        self.pos = nn.Embedding(config.block_size, config.n_embd) if config.position == "learned" else None
        if config.position == "sinusoidal":
            self.register_buffer("sinusoid", sinusoidal_positions(config.block_size, config.n_embd), persistent=False)
        if config.position == "rope":
            cos, sin = rope_cache(config.block_size, config.head_dim, config.rope_base)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.drop = nn.Dropout(config.dropout)
        self.prompt: nn.Parameter | None = None  # prompt tuning (llmcourse.peft.add_prompt)

    def forward(self, ids: torch.Tensor, offset: int = 0):
        """ids: ``(B, T)`` at positions ``offset .. offset + T - 1`` -> ``(x (B, T, d), rope tables or None)``.

        With a ``prompt`` and ``offset`` 0, x is ``(B, n_prompt + T, d)``: the prompt's vectors first."""
        x = self.tok(ids)  # (B, T, d)
        if self.prompt is not None and offset == 0:
            x = torch.cat([self.prompt.to(x.dtype).expand(len(ids), -1, -1), x], dim=1)  # (B, P + T, d)
        T = x.shape[1]
        if self.pos is not None:
            x = x + self.pos(torch.arange(offset, offset + T, device=ids.device))
        elif self.config.position == "sinusoidal":
            x = x + self.sinusoid[offset : offset + T]
        end = offset + T
        rope = (self.rope_cos[:end], self.rope_sin[:end]) if self.config.position == "rope" else None
        return self.drop(x), rope


def _init_weights(model: nn.Module, n_layer: int) -> None:
    """GPT-2's initialisation: N(0, 0.02) for matrices and embeddings, zero biases, and the projections
    that write into the residual stream scaled down by 1/√(2·n_layer), so the stream's variance does not
    grow with depth."""
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            nn.init.zeros_(p)
        elif p.dim() >= 2:
            std = 0.02 / math.sqrt(2 * n_layer) if name.endswith(("proj.weight", "down.weight")) else 0.02
            nn.init.normal_(p, 0.0, std)


class TransformerLM(LanguageModel):
    """A decoder-only Transformer language model: GPT-2 or LLaMA style, per its :class:`TransformerConfig`.

    ``logits, state = model(ids)`` with ``ids: (B, T)``, T ≤ ``block_size``, and ``logits: (B, T, V)``.
    ``mask`` replaces the causal mask (a prefix decoder passes :func:`~llmcourse.attention.prefix_mask`).

    ``state`` is the text read so far (``(B, ≤ block_size - 1)`` token ids). Passing it back in reads
    the new ids after as much of it as still fits in the context, which is how ``sample`` continues a
    text and how :func:`llmcourse.rnn.evaluate` scores a long one. This recomputes the whole window for
    every new token; notebook 05 adds a KV cache that keeps the keys and values instead.
    """

    carries_state = False  # training reads independent windows: the trainer should not carry state

    def __init__(self, config: TransformerConfig):
        super().__init__()
        if not isinstance(config, TransformerConfig):
            raise ArgumentError(f"config must be a TransformerConfig; got {type(config).__name__}")
        self.config = config
        self.vocab_size = config.vocab_size
        self.context_size = config.block_size
        self.embed = _Embedding(config)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.norm_f = _norm(config)
        self.head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.head.weight = self.embed.tok.weight  # one matrix reads tokens in and writes them out
        if not any(p.is_meta for p in self.parameters()):
            _init_weights(self, config.n_layer)

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        """Trainable parameters (a tied matrix counted once). ``exclude_embeddings`` leaves out token and
        position embeddings (and so a tied head)."""
        n = sum(p.numel() for p in self.parameters() if p.requires_grad)
        if exclude_embeddings:
            n -= self.embed.tok.weight.numel()
            if self.embed.pos is not None:
                n -= self.embed.pos.weight.numel()
        return n

    def forward(self, ids, state: torch.Tensor | None = None, mask: torch.Tensor | None = None):
        """ids: ``(B, T)``; state: ``(B, S)`` ids read before (or None); mask: bool ``(T, T)`` or
        ``(B, T, T)``, True = may attend (None = causal). Returns ``(logits (B, T, V), state)``."""
        ids = self._check_forward_ids(ids)
        B, T = ids.shape
        if T > self.context_size:
            raise ArgumentError(f"ids has {T} tokens, more than the model's context {self._context_text()}; "
                             f"feed it in pieces (pass the returned state back in)")
        n_ctx = 0
        if state is not None:
            if mask is not None:
                raise ArgumentError("give mask or state, not both: a custom mask covers exactly the ids given")
            state = check_token_ids("state", state, self.vocab_size, ndim=2).to(ids.device)
            if state.shape[0] != B:
                raise ArgumentError(f"state is for batch size {state.shape[0]}, ids for {B}")
            n_ctx = min(state.shape[1], self.context_size - T)
            if n_ctx:
                ids = torch.cat([state[:, state.shape[1] - n_ctx:], ids], dim=1)
        logits = self._logits(ids, mask)[:, n_ctx:]
        return logits, ids[:, -(self.context_size - 1):] if self.context_size > 1 else ids[:, :0]

    def _n_prompt(self) -> int:
        """Positions taken by a soft prompt (prompt tuning, :func:`llmcourse.peft.add_prompt`), else 0."""
        return 0 if self.embed.prompt is None else self.embed.prompt.shape[0]

    def _context_text(self) -> str:
        bs, n_prompt = self.config.block_size, self._n_prompt()
        return f"block_size = {bs}" + (f" less the {n_prompt} prompt positions" if n_prompt else "")

    def hidden_states(self, ids, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The residual stream after the last block and the final norm: ``(B, T, n_embd)``.

        What the output head reads to predict the next token, and what a classification head
        (:mod:`llmcourse.finetuning`) reads instead. ids: ``(B, T)``, T <= ``block_size``; mask as in
        :meth:`forward` (None = causal).
        """
        ids = self._check_forward_ids(ids)
        if ids.shape[1] > self.context_size:
            raise ArgumentError(f"ids has {ids.shape[1]} tokens, more than the model's context {self._context_text()}")
        return self._hidden(ids, mask)

    def _hidden(self, ids: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        T = ids.shape[1]
        if mask is None:
            mask = causal_mask(T, ids.device)
        else:
            mask = check_mask(mask, ids.shape[0], T, T).to(ids.device)
        x, rope = self.embed(ids)
        n_prompt = x.shape[1] - T  # a soft prompt's positions come first: drop them from the output
        if n_prompt:  # prompt positions see each other causally; every text position sees all of them
            full = causal_mask(n_prompt + T, ids.device).expand(*mask.shape[:-2], -1, -1).clone()
            full[..., n_prompt:, n_prompt:] = mask
            mask = full
        for block in self.blocks:
            x = block(x, mask, rope)
        x = self.norm_f(x)
        return x[:, n_prompt:] if n_prompt else x

    def _logits(self, ids: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return self.head(self._hidden(ids, mask))

    def new_cache(self):
        """An empty :class:`llmcourse.generation.KVCache` for this model."""
        from llmcourse.generation import KVCache

        return KVCache(self.config.n_layer)

    def forward_cached(self, ids, cache, real: torch.Tensor | None = None) -> torch.Tensor:
        """Read ``ids: (B, T)`` after the tokens already in ``cache`` (a :meth:`new_cache`), using and
        extending the cached keys and values: logits ``(B, T, V)``, the same as reading the whole text at
        once. The cache's text plus ``ids`` must fit in the context (``block_size``).

        ``real``: bool ``(B, cache length + T)``, False at padding that no query may read (a batch of
        left-padded prompts sampled together, :func:`llmcourse.alignment.sample_replies`); None = all real.
        A padding query reads only itself."""
        ids = self._check_forward_ids(ids)
        B, T = ids.shape
        offset = cache.length
        if real is not None and (not isinstance(real, torch.Tensor) or real.dtype != torch.bool
                                 or tuple(real.shape) != (B, offset + T)):
            raise ArgumentError(f"real must be a bool tensor of shape (batch, cached + new tokens) = "
                                f"({B}, {offset + T}); got {getattr(real, 'shape', type(real).__name__)}")
        if real is not None and self._n_prompt():
            raise ArgumentError("real (padding) cannot be combined with a soft prompt")
        n_prompt = self._n_prompt() if offset == 0 else 0  # a soft prompt goes into the cache first
        if offset + n_prompt + T > self.config.block_size:
            raise ArgumentError(f"the cache holds {offset} tokens and ids {T}: more than the model's context "
                             f"{self._context_text()}")
        x, rope = self.embed(ids, offset)
        T = x.shape[1]
        # query i (at position offset + i) may see keys 0 .. offset + i
        mask = torch.ones(T, offset + T, dtype=torch.bool, device=ids.device).tril(diagonal=offset)
        if real is not None:  # no query reads a padding key; each query still reads itself
            keys = torch.arange(offset + T, device=ids.device)
            itself = keys[None, :] == (offset + torch.arange(T, device=ids.device))[:, None]
            mask = (mask & real.to(ids.device)[:, None, :]) | itself
        for block, layer in zip(self.blocks, cache.layers):
            x = block(x, mask, rope, cache=layer)
        cache.length += T
        logits = self.head(self.norm_f(x))
        return logits[:, n_prompt:] if n_prompt else logits

    def auxiliary_loss(self) -> torch.Tensor | None:
        """The mixture-of-experts load-balancing loss of the last forward pass (weighted), or None."""
        losses = [b.mlp.aux_loss * b.mlp.aux_loss_weight for b in self.blocks
                  if isinstance(b.mlp, MoEFeedForward) and b.mlp.aux_loss is not None]
        return torch.stack(losses).sum() if losses else None

    @torch.no_grad()
    def attention_maps(self, ids) -> torch.Tensor:
        """The attention weights of every layer and head for one text: ``(n_layer, n_head, T, T)``."""
        ids = check_token_ids("ids", ids, self.vocab_size, ndim=1)[None]
        was_training = self.training
        self.eval()
        attns = [b.attn for b in self.blocks]
        for a in attns:
            a.keep_weights = True
        try:
            self(ids)
            return torch.stack([a.weights[0] for a in attns])
        finally:
            for a in attns:
                a.keep_weights, a.weights = False, None
            self.train(was_training)


# ----------------------------------------------------------------------------------------------------
# the three architecture families, on one sequence-to-sequence task


class EncoderDecoder(nn.Module):
    """The original Transformer's layout: an encoder reads the source with no mask (every token sees
    every token), and a decoder generates the target causally, attending to the encoder's output through
    cross-attention in every block. Source and target share one embedding (and the tied output head)."""

    def __init__(self, config: TransformerConfig, n_encoder_layer: int | None = None):
        super().__init__()
        self.config = config
        self.embed = _Embedding(config)
        self.encoder = nn.ModuleList(Block(config) for _ in range(n_encoder_layer or config.n_layer))
        self.norm_e = _norm(config)
        self.decoder = nn.ModuleList(Block(config, cross=True) for _ in range(config.n_layer))
        self.norm_f = _norm(config)
        self.head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.head.weight = self.embed.tok.weight
        _init_weights(self, config.n_layer)

    def encode(self, src: torch.Tensor) -> torch.Tensor:
        """src: ``(B, S)`` -> memory ``(B, S, d)`` (bidirectional: no mask)."""
        x, rope = self.embed(src)
        for block in self.encoder:
            x = block(x, None, rope)
        return self.norm_e(x)

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        """src: ``(B, S)``, tgt: ``(B, T)`` (the decoder's input) -> logits ``(B, T, V)``."""
        memory = self.encode(src)
        x, rope = self.embed(tgt)
        mask = causal_mask(tgt.shape[1], tgt.device)
        for block in self.decoder:
            x = block(x, mask, rope, memory=memory)
        return self.head(self.norm_f(x))


#: The three families of the source material, as :class:`Seq2SeqModel` kinds.
ARCHITECTURES = ("encoder-decoder", "causal-decoder", "prefix-decoder")


class Seq2SeqModel(nn.Module):
    """One sequence-to-sequence task, three architectures: map ``src`` to ``tgt``.

    - ``"encoder-decoder"``: :class:`EncoderDecoder`; the decoder reads ``[BOS] + tgt[:-1]``.
    - ``"causal-decoder"``: one :class:`TransformerLM` reads ``src + [SEP] + tgt`` under a causal mask.
    - ``"prefix-decoder"``: the same model and sequence, but ``src + [SEP]`` is the prefix, read
      bidirectionally (:func:`~llmcourse.attention.prefix_mask`).

    In all three the loss is on the target tokens only. Token id ``vocab_size`` is BOS/SEP (the model's
    vocabulary is ``vocab_size + 1``). ``n_layer`` counts the decoder-only models' blocks; the
    encoder–decoder gets ``n_layer // 2`` in each half, so all three have about the same depth.
    """

    def __init__(self, kind: str, vocab_size: int, src_len: int, tgt_len: int, n_layer: int = 4,
                 n_head: int = 4, n_embd: int = 64):
        super().__init__()
        if kind not in ARCHITECTURES:
            raise ArgumentError(f"kind must be one of {ARCHITECTURES}; got {kind!r}")
        self.kind, self.vocab_size, self.src_len, self.tgt_len = kind, vocab_size, src_len, tgt_len
        self.sep = vocab_size
        if kind == "encoder-decoder":
            if n_layer < 2:
                raise ArgumentError(f"n_layer must be >= 2 for an encoder-decoder (half each); got {n_layer}")
            cfg = TransformerConfig.gpt(vocab_size + 1, max(src_len, tgt_len), n_layer=n_layer // 2,
                                        n_head=n_head, n_embd=n_embd)
            self.net = EncoderDecoder(cfg)
        else:
            cfg = TransformerConfig.gpt(vocab_size + 1, src_len + 1 + tgt_len, n_layer=n_layer, n_head=n_head,
                                        n_embd=n_embd)
            self.net = TransformerLM(cfg)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def mask(self, T: int, device=None) -> torch.Tensor | None:
        """The self-attention mask of a decoder-only model over ``src + [SEP] + tgt`` (length T)."""
        if self.kind == "prefix-decoder":
            return prefix_mask(T, self.src_len + 1, device)
        return causal_mask(T, device)

    def logits(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: logits ``(B, tgt_len, V)`` predicting each target token from the source and
        the target tokens before it."""
        B = src.shape[0]
        sep = src.new_full((B, 1), self.sep)
        if self.kind == "encoder-decoder":
            return self.net(src, torch.cat([sep, tgt[:, :-1]], 1))
        seq = torch.cat([src, sep, tgt[:, :-1]], 1)
        logits, _ = self.net(seq, mask=self.mask(seq.shape[1], seq.device))
        return logits[:, self.src_len:]  # the positions from SEP on predict the target

    def loss(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        logits = self.logits(src, tgt)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1))

    @torch.no_grad()
    def generate(self, src: torch.Tensor) -> torch.Tensor:
        """Greedy decoding of ``tgt_len`` tokens for each source: ``(B, tgt_len)``."""
        B = src.shape[0]
        out = src.new_empty(B, 0)
        memory = self.net.encode(src) if self.kind == "encoder-decoder" else None
        for _ in range(self.tgt_len):
            sep = src.new_full((B, 1), self.sep)
            if self.kind == "encoder-decoder":
                x, rope = self.net.embed(torch.cat([sep, out], 1))
                mask = causal_mask(x.shape[1], x.device)
                for block in self.net.decoder:
                    x = block(x, mask, rope, memory=memory)
                logits = self.net.head(self.net.norm_f(x[:, -1]))
            else:
                seq = torch.cat([src, sep, out], 1)
                logits = self.net(seq, mask=self.mask(seq.shape[1], seq.device))[0][:, -1]
            logits[:, self.sep] = float("-inf")  # never emit the separator
            out = torch.cat([out, logits.argmax(-1, keepdim=True)], 1)
        return out


def train_seq2seq(model: Seq2SeqModel, task, *, steps: int = 600, batch_size: int = 64, lr: float = 3e-3,
                  eval_size: int = 1000, seed: int = 0, show_progress: bool = True) -> dict:
    """Train ``model`` on ``task`` (a callable ``task(n, generator) -> (src, tgt)``), then score it.

    AdamW with a linear warm-up over the first 5% of steps and cosine decay; fresh examples every step.
    Returns ``loss`` (the last 50 steps' mean), ``token_accuracy`` and ``exact_match`` (the whole target
    right, by greedy decoding) on ``eval_size`` new examples, ``parameters`` and ``seconds``.
    """
    from llmcourse.notebook import progress
    from llmcourse.optim import lr_factor as _lr_factor

    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    losses = []
    model.train()
    t0 = time.perf_counter()
    for step in progress(range(steps), disable=not show_progress, leave=False):
        for group in opt.param_groups:
            group["lr"] = lr * _lr_factor("cosine", step / steps, 0.05, 0.1)
        src, tgt = task(batch_size, g)
        loss = model.loss(src, tgt)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    seconds = time.perf_counter() - t0
    model.eval()
    src, tgt = task(eval_size, torch.Generator().manual_seed(10_000 + seed))
    pred = model.generate(src)
    return {"loss": sum(losses[-50:]) / len(losses[-50:]), "token_accuracy": float((pred == tgt).float().mean()),
            "exact_match": float((pred == tgt).all(1).float().mean()), "parameters": model.num_parameters(),
            "seconds": seconds}


# ----------------------------------------------------------------------------------------------------
# Hugging Face GPT-2 weights <-> the course's GPT


def hf_gpt2_to_course(state_dict: dict) -> dict:
    """A Hugging Face ``GPT2LMHeadModel`` state dict -> one that ``TransformerLM`` loads.

    With internet, a learner can run the real GPT-2 in the course's model::

        from transformers import GPT2LMHeadModel
        hf = GPT2LMHeadModel.from_pretrained("gpt2")
        model = TransformerLM(TransformerConfig.preset("gpt2"))
        model.load_state_dict(hf_gpt2_to_course(hf.state_dict()))

    GPT-2 stores its linear layers as ``Conv1D`` with weights ``(in, out)``; torch's ``nn.Linear`` keeps
    ``(out, in)``, so every matrix is transposed. Its fused ``c_attn`` (queries, keys, values) is split
    into the course's ``q`` and ``kv``. The attention-mask buffers some versions save are dropped.
    """
    sd = {k.removeprefix("transformer."): v for k, v in state_dict.items()}
    if "wte.weight" not in sd:
        raise ArgumentError("state_dict has no 'transformer.wte.weight': is it a GPT-2 (GPT2LMHeadModel) state dict?")
    d = sd["wte.weight"].shape[1]
    out = {"embed.tok.weight": sd["wte.weight"], "embed.pos.weight": sd["wpe.weight"],
           "norm_f.weight": sd["ln_f.weight"], "norm_f.bias": sd["ln_f.bias"],
           "head.weight": sd.get("lm_head.weight", sd["wte.weight"])}
    layers = sorted({int(k.split(".")[1]) for k in sd if k.startswith("h.")})
    for i in layers:
        h, b = f"h.{i}.", f"blocks.{i}."
        w, bias = sd[h + "attn.c_attn.weight"], sd[h + "attn.c_attn.bias"]  # (d, 3d), (3d,)
        out[b + "attn.q.weight"], out[b + "attn.q.bias"] = w[:, :d].t(), bias[:d]
        out[b + "attn.kv.weight"], out[b + "attn.kv.bias"] = w[:, d:].t(), bias[d:]
        for hf_name, name in [("attn.c_proj", "attn.proj"), ("mlp.c_fc", "mlp.fc"), ("mlp.c_proj", "mlp.proj")]:
            out[b + name + ".weight"] = sd[h + hf_name + ".weight"].t()
            out[b + name + ".bias"] = sd[h + hf_name + ".bias"]
        for hf_name, name in [("ln_1", "norm_1"), ("ln_2", "norm_2")]:
            out[b + name + ".weight"], out[b + name + ".bias"] = sd[h + hf_name + ".weight"], sd[h + hf_name + ".bias"]
    return {k: v.contiguous() for k, v in out.items()}


def course_to_hf_gpt2(state_dict: dict) -> dict:
    """The inverse of :func:`hf_gpt2_to_course`: a GPT-style ``TransformerLM`` state dict -> Hugging Face
    ``GPT2LMHeadModel`` naming (``load_state_dict(..., strict=False)`` there, which rebuilds its mask
    buffers itself)."""
    if "embed.pos.weight" not in state_dict or "blocks.0.attn.q.bias" not in state_dict:
        raise ArgumentError("state_dict is not a GPT-style TransformerLM's (learned positions and biases are needed)")
    sd = state_dict
    out = {"transformer.wte.weight": sd["embed.tok.weight"], "transformer.wpe.weight": sd["embed.pos.weight"],
           "transformer.ln_f.weight": sd["norm_f.weight"], "transformer.ln_f.bias": sd["norm_f.bias"],
           "lm_head.weight": sd["head.weight"]}
    layers = sorted({int(k.split(".")[1]) for k in sd if k.startswith("blocks.")})
    for i in layers:
        h, b = f"transformer.h.{i}.", f"blocks.{i}."
        out[h + "attn.c_attn.weight"] = torch.cat([sd[b + "attn.q.weight"], sd[b + "attn.kv.weight"]]).t()
        out[h + "attn.c_attn.bias"] = torch.cat([sd[b + "attn.q.bias"], sd[b + "attn.kv.bias"]])
        for hf_name, name in [("attn.c_proj", "attn.proj"), ("mlp.c_fc", "mlp.fc"), ("mlp.c_proj", "mlp.proj")]:
            out[h + hf_name + ".weight"] = sd[b + name + ".weight"].t()
            out[h + hf_name + ".bias"] = sd[b + name + ".bias"]
        for hf_name, name in [("ln_1", "norm_1"), ("ln_2", "norm_2")]:
            out[h + hf_name + ".weight"], out[h + hf_name + ".bias"] = sd[b + name + ".weight"], sd[b + name + ".bias"]
    return {k: v.contiguous() for k, v in out.items()}
