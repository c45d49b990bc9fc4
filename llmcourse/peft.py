"""Parameter-efficient fine-tuning (PEFT): adapt a frozen pretrained :class:`~llmcourse.transformer.TransformerLM`
by training a few new parameters instead of all of them.

Full fine-tuning updates every weight, and keeps an optimiser state (Adam: two more copies) for each.
The four methods here freeze the base model and add a small number of trainable parameters, each in a
different place:

==================  =================================================  =============================
method              what is trained                                    trainable parameters
==================  =================================================  =============================
LoRA                a low-rank update ΔW = (α/r)·B·A beside chosen      r·(d_in + d_out) per matrix
(Hu et al. 2021)    weight matrices; B = 0 at the start
adapters            a bottleneck MLP x + up(gelu(down(x))) after each   2·(2·d·b + b + d) per block
(Houlsby 2019)      block's attention and feed-forward output
prefix tuning       n_prefix keys and values per layer, put before      2·n_prefix·n_kv_head·head_dim
(Li & Liang 2021)   the text's own in every attention layer             per block
prompt tuning       n_prompt input vectors put before the text's        n_prompt·d
(Lester 2021)       token embeddings
==================  =================================================  =============================

Each ``add_*`` / ``apply_lora`` validates everything before it changes the model, freezes the base model
(parameters added by an earlier PEFT call stay trainable, so methods can be combined) and returns the
names of what it added; :func:`trainable_parameters` then counts what the optimiser gets, and the
``*_parameter_count`` functions give the same numbers from the configuration alone (the tests check
that the two agree). A model with no PEFT attached computes exactly what it did before.

LoRA's update can be folded into the weights (:func:`merge_lora`: no extra cost at inference) and taken
out again (:func:`unmerge_lora`); :func:`merged_copy` gives a plain ``TransformerLM`` with the deltas
folded in, which loads with no PEFT code. :func:`save_lora` writes only the A/B matrices (a small file)
with the sha256 of the base weights they belong to, and :func:`load_lora` refuses another base.

Design choices, in the papers' spirit, stated once:

- LoRA's A starts Kaiming-uniform (``a = √5``, as ``nn.Linear`` and Hugging Face ``peft`` do) and B at
  zero, so the wrapped model starts exactly equal to the base. (So at the first step only B gets a
  gradient; A starts moving at the second.)
- Adapters' up-projection starts at zero (weights and bias): each adapter starts as the identity.
- Prefix keys and values start as the keys and values the model itself computes for ``n_prefix`` real
  tokens (``init_ids``, or tokens drawn with a seeded generator): Li & Liang found real activations a
  more stable start than random vectors (they start from the keys *before* rotation). Prefix keys
  then get **no rotary rotation**, which is the rotation of position 0: a query at position t sees them
  t positions back. They are learned, so any fixed rotation would do as well; none is the simplest.
  With learned positions the keys hold the position embeddings of the tokens they started from.
- The soft prompt starts as the token embeddings of ``n_prompt`` real tokens (``init_ids``, or drawn
  with a seeded generator), as Lester et al. did with sampled vocabulary; it takes the first
  ``n_prompt`` positions, so the context left for the text is ``block_size - n_prompt``.

The hooks these need in the model are small and off by default: ``Block.adapter_attn`` /
``Block.adapter_mlp``, ``MultiHeadAttention.prefix`` and ``_Embedding.prompt`` (all None). The KV-cache
path (``forward_cached``, so :func:`llmcourse.generation.generate`) works with all four methods.

This module is longer than most (about 660 lines) because notebook 07 reads the four methods side by
side: they share the freezing, the naming of PEFT parameters and the counting formulas, and LoRA's
merge, save and load belong beside the layer they act on.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmcourse.checks import ArgumentError, check_int, check_number, check_strings, check_token_ids, fail
from llmcourse.files import write_atomic
from llmcourse.transformer import TransformerConfig, TransformerLM

__all__ = [
    "Adapter",
    "LoRALinear",
    "Prefix",
    "adapter_parameter_count",
    "add_adapters",
    "add_prefix",
    "add_prompt",
    "apply_lora",
    "base_sha256",
    "freeze",
    "load_lora",
    "lora_parameter_count",
    "lora_state_dict",
    "merge_lora",
    "merged_copy",
    "prefix_parameter_count",
    "prompt_parameter_count",
    "remove_peft",
    "save_lora",
    "trainable_parameters",
    "unmerge_lora",
]

LORA_FORMAT = "llmcourse-lora-1"


# ----------------------------------------------------------------------------------------------------
# freezing and counting


def freeze(model: nn.Module) -> nn.Module:
    """Set ``requires_grad = False`` on every parameter of ``model``; returns it."""
    if not isinstance(model, nn.Module):
        raise fail("model", "a torch nn.Module", model)
    model.requires_grad_(False)
    return model


def trainable_parameters(model: nn.Module) -> int:
    """The number of parameters with ``requires_grad`` (a tied matrix counted once)."""
    if not isinstance(model, nn.Module):
        raise fail("model", "a torch nn.Module", model)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _require_model(model) -> TransformerLM:
    if not isinstance(model, TransformerLM):
        raise fail("model", "a TransformerLM (llmcourse.transformer)", model)
    return model


def _peft_parameters(model: TransformerLM) -> dict[str, nn.Parameter]:
    """Every parameter that a PEFT method added, by its name in ``model.state_dict()``."""
    found = {}
    for name, module in model.named_modules():
        if isinstance(module, LoRALinear):
            found[f"{name}.lora_A"], found[f"{name}.lora_B"] = module.lora_A, module.lora_B
        elif isinstance(module, (Adapter, Prefix)):
            found.update({f"{name}.{n}": p for n, p in module.named_parameters()})
    if model.embed.prompt is not None:
        found["embed.prompt"] = model.embed.prompt
    return found


def _freeze_base(model: TransformerLM) -> None:
    """Freeze every parameter that is not a PEFT parameter."""
    peft = {id(p) for p in _peft_parameters(model).values()}
    for p in model.parameters():
        if id(p) not in peft:
            p.requires_grad_(False)


def _like(model: nn.Module) -> dict:
    """The device and floating dtype of ``model``'s parameters, for new parameters that join them."""
    p = next(model.parameters())
    return {"device": p.device, "dtype": p.dtype}


def _last(name: str) -> str:
    return name.rpartition(".")[2]


# ----------------------------------------------------------------------------------------------------
# LoRA


class LoRALinear(nn.Module):
    """A frozen linear layer plus a trainable low-rank update (Hu et al. 2021)::

        y = base(x) + (alpha / r) · B A dropout(x)       A = lora_A: (r, in), B = lora_B: (out, r)

    The update ΔW = (alpha / r)·B·A has rank ≤ r and costs ``r·(in + out)`` parameters instead of
    ``in·out``. B starts at zero, so the layer starts exactly equal to ``base``; A starts Kaiming-uniform
    like an ``nn.Linear``. The α/r scaling means a change of r needs little retuning (Hu et al., §4.1:
    with Adam, alpha acts much like a learning-rate multiplier; they set alpha to the first r tried).

    :meth:`merge` adds ΔW into ``base.weight`` (inference then costs nothing extra); :meth:`unmerge`
    subtracts it again (equal to float tolerance).

    Args:
        base: the ``nn.Linear`` to adapt; its parameters are frozen.
        r: the rank, >= 1. alpha: > 0. dropout: in [0, 1), on the input of the update only.
    """

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise fail("base", "an nn.Linear", base)
        self.r = check_int("r", r, minimum=1)
        self.alpha = check_number("alpha", alpha, minimum=0.0, strict=True)
        dropout = check_number("dropout", dropout, minimum=0.0, maximum=1.0, strict_max=True)
        self.scale = self.alpha / self.r
        self.base = base.requires_grad_(False)
        like = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_A = nn.Parameter(torch.empty(self.r, base.in_features, **like))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, self.r, **like))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # uniform in ±1/√in, as nn.Linear
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.merged = False

    def delta_weight(self) -> torch.Tensor:
        """ΔW = (alpha / r)·B·A: ``(out, in)``, the same shape as ``base.weight``."""
        return self.scale * (self.lora_B @ self.lora_A)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: ``(..., in)`` -> ``(..., out)``."""
        y = self.base(x)
        if self.merged:  # ΔW is inside base.weight already
            return y
        return y + self.scale * F.linear(F.linear(self.dropout(x), self.lora_A), self.lora_B)  # (..., r) between

    @torch.no_grad()
    def merge(self) -> None:
        """Fold ΔW into ``base.weight``. Merging a merged layer is an error (ΔW would count twice)."""
        if self.merged:
            raise ArgumentError("this LoRA layer is already merged (ΔW is in its base weight); unmerge it first")
        self.base.weight += self.delta_weight().to(self.base.weight.dtype)
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take ΔW out of ``base.weight`` again. Unmerging an unmerged layer is an error."""
        if not self.merged:
            raise ArgumentError("this LoRA layer is not merged: there is no ΔW in its base weight to take out")
        self.base.weight -= self.delta_weight().to(self.base.weight.dtype)
        self.merged = False

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha:g}, merged={self.merged}"


def _lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


def _linear_layers(model: TransformerLM) -> dict[str, nn.Linear]:
    """The model's own ``nn.Linear`` layers by name: not those inside PEFT modules, nor LoRA's bases."""
    inside = [n for n, m in model.named_modules() if isinstance(m, (LoRALinear, Adapter, Prefix))]
    return {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear)
            and not any(n.startswith(p + ".") for p in inside)}


def _choose_lora_targets(model: TransformerLM, targets) -> tuple[list[str], list[str]]:
    """Check ``targets`` against the model: (the chosen layer names, the deduplicated targets)."""
    targets = list(dict.fromkeys(check_strings("targets", targets, allow_empty=False)))
    linears, lora = _linear_layers(model), _lora_layers(model)
    names = sorted({_last(n) for n in linears} | {_last(n) for n in lora})
    tied = {}  # weight -> the names it goes by (a tied head and embedding are one matrix)
    for n, p in model.named_parameters(remove_duplicate=False):
        tied.setdefault(id(p), []).append(n)
    for t in targets:
        already = [n for n in lora if _last(n) == t]
        if already:
            raise ArgumentError(f"targets: {already[0]} already has LoRA (target {t!r}); a layer gets it once "
                                f"(remove_peft(model) takes it off)")
        hits = [n for n in linears if _last(n) == t]
        if not hits:
            raise ArgumentError(f"targets: {t!r} matches no linear layer of the model (matched on the last part of "
                                f"the name); its linear layers are named {names}, e.g. "
                                f"{next(iter(linears), 'none')!r}")
        for n in hits:
            shared = tied[id(linears[n].weight)]
            if len(shared) > 1:
                raise ArgumentError(f"targets: {n} shares its weight with {[s for s in shared if s != n + '.weight']} "
                                    f"(tie_embeddings); merging LoRA into it would change both, so it is refused")
    chosen = [n for n in linears if _last(n) in targets]  # in the model's order
    return chosen, targets


def apply_lora(model: TransformerLM, r: int, alpha: float, targets=("q", "kv"), dropout: float = 0.0) -> list[str]:
    """Freeze ``model`` and wrap every ``nn.Linear`` whose name ends with one of ``targets`` in a
    :class:`LoRALinear`; returns the wrapped names (e.g. ``["blocks.0.attn.q", ...]``).

    A target matches the last part of a layer's name: ``"q"`` matches ``blocks.0.attn.q``. The layers of
    a ``TransformerLM`` are ``q``, ``kv`` (keys and values, fused), ``proj`` (attention output, and
    GPT-2's MLP output), ``fc`` (GPT-2's MLP), ``gate``/``up``/``down`` (SwiGLU) and ``head`` (when not
    tied). A target that matches nothing is an error listing the names that exist.
    """
    model = _require_model(model)
    r = check_int("r", r, minimum=1)
    alpha = check_number("alpha", alpha, minimum=0.0, strict=True)
    dropout = check_number("dropout", dropout, minimum=0.0, maximum=1.0, strict_max=True)
    chosen, _ = _choose_lora_targets(model, targets)
    # everything is checked: now change the model
    if not hasattr(model, "_lora_base_sha256") and not next(model.parameters()).is_meta:
        model._lora_base_sha256 = base_sha256(model)  # the base these LoRA weights belong to (merging changes it)
    _freeze_base(model)
    linears = _linear_layers(model)
    for name in chosen:
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, LoRALinear(linears[name], r, alpha, dropout))
    return chosen


def _lora_or_fail(model) -> dict[str, LoRALinear]:
    layers = _lora_layers(_require_model(model))
    if not layers:
        raise ArgumentError("model has no LoRA layers; call apply_lora(model, r, alpha) first")
    return layers


def merge_lora(model: TransformerLM) -> None:
    """Fold every LoRA layer's ΔW into its base weight (see :meth:`LoRALinear.merge`)."""
    layers = _lora_or_fail(model)
    merged = [n for n, m in layers.items() if m.merged]
    if merged:
        raise ArgumentError(f"model: its LoRA layers are already merged ({merged[0]}, ...); unmerge_lora(model) first")
    for m in layers.values():
        m.merge()


def unmerge_lora(model: TransformerLM) -> None:
    """Take every LoRA layer's ΔW out of its base weight again (see :meth:`LoRALinear.unmerge`)."""
    layers = _lora_or_fail(model)
    unmerged = [n for n, m in layers.items() if not m.merged]
    if unmerged:
        raise ArgumentError(f"model: its LoRA layers are not merged ({unmerged[0]}, ...); nothing to unmerge")
    for m in layers.values():
        m.unmerge()


def lora_state_dict(model: TransformerLM) -> dict[str, torch.Tensor]:
    """Only the LoRA matrices: ``{"blocks.0.attn.q.lora_A": (r, in), "blocks.0.attn.q.lora_B": (out, r), ...}``."""
    layers = _lora_or_fail(model)
    return {f"{n}.{k}": getattr(m, k).detach() for n, m in layers.items() for k in ("lora_A", "lora_B")}


def _base_state(model: TransformerLM) -> dict[str, torch.Tensor]:
    """The base model's tensors under a plain ``TransformerLM``'s names (PEFT tensors left out, LoRA's
    ``.base`` taken out of the names). LoRA layers that are merged give their merged weights."""
    peft, lora = set(_peft_parameters(model)), set(_lora_layers(model))
    state = {}
    for key, t in model.state_dict().items():
        if key in peft:
            continue
        module, _, leaf = key.rpartition(".")
        if module.endswith(".base") and module[: -len(".base")] in lora:
            key = module[: -len(".base")] + "." + leaf
        state[key] = t
    return state


def base_sha256(model: TransformerLM) -> str:
    """The sha256 of the base model's weights: every non-PEFT tensor, in name order (name, dtype, shape
    and bytes). It identifies the model that LoRA weights were trained on."""
    h = hashlib.sha256()
    for name, t in sorted(_base_state(_require_model(model)).items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _recorded_base(model: TransformerLM) -> str:
    """The base sha256 recorded when LoRA was applied (merging changes the weights), else computed now."""
    return getattr(model, "_lora_base_sha256", None) or base_sha256(model)


def _check_path(path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise fail("path", "a file path (str or os.PathLike)", path)
    return Path(path)


def save_lora(model: TransformerLM, path) -> Path:
    """Write only the LoRA matrices to ``path`` (safetensors, atomically), with the settings in the
    metadata (``r``, ``alpha``, ``targets``, ``dropout``) and the ``base_sha256`` of the weights they were
    trained on. The file is small: ``r·(in + out)`` numbers per wrapped matrix."""
    layers = _lora_or_fail(model)
    path = _check_path(path)
    settings = {(m.r, m.alpha, getattr(m.dropout, "p", 0.0)) for m in layers.values()}
    if len(settings) > 1:
        raise ArgumentError(f"model: its LoRA layers differ in (r, alpha, dropout) = {sorted(settings)}; "
                            f"save_lora stores one setting")
    r, alpha, dropout = settings.pop()
    from safetensors.torch import save

    tensors = {k: v.cpu().contiguous() for k, v in lora_state_dict(model).items()}
    metadata = {"format": LORA_FORMAT, "r": str(r), "alpha": repr(alpha), "dropout": repr(dropout),
                "targets": json.dumps(sorted({_last(n) for n in layers})), "base_sha256": _recorded_base(model)}
    write_atomic(path, save(tensors, metadata=metadata))
    return path


def load_lora(model: TransformerLM, path) -> list[str]:
    """Load LoRA matrices written by :func:`save_lora` into ``model``: applies LoRA with the file's
    settings first if the model has none. Returns the LoRA layers' names.

    Refuses (with the file named) a file that is not a LoRA file, a base model whose weights differ from
    the one the file was trained on (by ``base_sha256``), and LoRA layers that do not fit the file.
    """
    model = _require_model(model)
    path = _check_path(path)
    if not path.is_file():
        raise ArgumentError(f"path: there is no LoRA file at {path}")
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise ArgumentError(f"{path} is not a readable safetensors file ({e})") from None
    if meta.get("format") != LORA_FORMAT:
        raise ArgumentError(f"{path} is not a LoRA file written by save_lora (its metadata has no "
                            f"format = {LORA_FORMAT!r})")
    try:
        r, alpha, dropout = int(meta["r"]), float(meta["alpha"]), float(meta["dropout"])
        targets, base = json.loads(meta["targets"]), meta["base_sha256"]
    except (KeyError, ValueError) as e:
        raise ArgumentError(f"{path}: its LoRA metadata is damaged ({e!r}); save it again with save_lora") from None
    here = _recorded_base(model)
    if here != base:
        raise ArgumentError(f"{path} holds LoRA weights for a different base model: the base weights differ "
                            f"(base sha256 {base[:16]}... in the file, {here[:16]}... for this model); load it "
                            f"onto the model it was trained from")
    layers = _lora_layers(model)
    if layers:
        expected = {f"{n}.{k}": tuple(getattr(m, k).shape) for n, m in layers.items() for k in ("lora_A", "lora_B")}
        odd = [n for n, m in layers.items() if (m.r, m.alpha) != (r, alpha)]
        if odd or any(m.merged for m in layers.values()):
            raise ArgumentError(f"{path}: the model's LoRA layers are merged or differ from the file's r = {r}, "
                                f"alpha = {alpha:g} ({(odd or list(layers))[0]}); unmerge or remove_peft first")
    else:
        chosen, _ = _choose_lora_targets(model, targets)
        linears = _linear_layers(model)
        expected = {}
        for n in chosen:
            expected[f"{n}.lora_A"] = (r, linears[n].in_features)
            expected[f"{n}.lora_B"] = (linears[n].out_features, r)
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    if got != expected:
        diff = sorted(set(got.items()) ^ set(expected.items()))[:3]
        raise ArgumentError(f"{path}: its LoRA tensors do not fit this model's layers (first differences: {diff})")
    if not layers:
        apply_lora(model, r, alpha, targets, dropout)
    with torch.no_grad():
        for n, m in _lora_layers(model).items():
            m.lora_A.copy_(tensors[f"{n}.lora_A"])
            m.lora_B.copy_(tensors[f"{n}.lora_B"])
    return list(_lora_layers(model))


def merged_copy(model: TransformerLM) -> TransformerLM:
    """A plain ``TransformerLM`` (no PEFT code needed to load it) with every LoRA ΔW folded into its
    weights; ``model`` is left as it is. Adapters, prefixes and prompts cannot be folded: refused."""
    model = _require_model(model)
    other = [n for n in _peft_parameters(model) if not n.endswith((".lora_A", ".lora_B"))]
    if other:
        raise ArgumentError(f"model has PEFT parameters that cannot be folded into the weights ({other[0]}, ...); "
                            f"merged_copy folds LoRA only")
    state = dict(_base_state(model))
    with torch.no_grad():
        for n, m in _lora_layers(model).items():
            if not m.merged:
                state[f"{n}.weight"] = state[f"{n}.weight"] + m.delta_weight().to(state[f"{n}.weight"].dtype)
    plain = TransformerLM(TransformerConfig.from_dict(model.config.as_dict())).to(**_like(model))
    plain.load_state_dict(state)
    return plain.train(model.training)


# ----------------------------------------------------------------------------------------------------
# adapters


class Adapter(nn.Module):
    """A bottleneck adapter (Houlsby et al. 2019): ``x + up(gelu(down(x)))``, x: ``(..., d)`` -> ``(..., d)``.

    ``down``: d -> bottleneck, ``up``: bottleneck -> d, both with biases: ``2·d·bottleneck + bottleneck
    + d`` parameters. ``up`` starts at zero, so the adapter starts as the identity.
    """

    def __init__(self, d: int, bottleneck: int):
        super().__init__()
        d, bottleneck = check_int("d", d), check_int("bottleneck", bottleneck)
        self.down = nn.Linear(d, bottleneck)
        self.up = nn.Linear(bottleneck, d)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.up(F.gelu(self.down(x)))


def add_adapters(model: TransformerLM, bottleneck: int) -> list[str]:
    """Freeze ``model`` and put an :class:`Adapter` after every block's attention output and after its
    feed-forward output, before each is added to the residual stream (``Block.adapter_attn`` and
    ``Block.adapter_mlp``). Returns their names (``blocks.0.adapter_attn``, ...). The KV cache works."""
    model = _require_model(model)
    bottleneck = check_int("bottleneck", bottleneck, minimum=1)
    if any(b.adapter_attn is not None or b.adapter_mlp is not None for b in model.blocks):
        raise ArgumentError("model already has adapters; remove_peft(model) takes them off")
    _freeze_base(model)
    names = []
    for i, block in enumerate(model.blocks):
        block.adapter_attn = Adapter(model.config.n_embd, bottleneck).to(**_like(model))
        block.adapter_mlp = Adapter(model.config.n_embd, bottleneck).to(**_like(model))
        names += [f"blocks.{i}.adapter_attn", f"blocks.{i}.adapter_mlp"]
    return names


# ----------------------------------------------------------------------------------------------------
# prefix tuning and prompt tuning


class Prefix(nn.Module):
    """One attention layer's learned prefix: keys ``k`` and values ``v``, ``(n_kv_head, n_prefix, head_dim)``
    each (read by :class:`~llmcourse.attention.MultiHeadAttention` through its ``prefix`` attribute)."""

    def __init__(self, k: torch.Tensor, v: torch.Tensor):
        super().__init__()
        if not isinstance(k, torch.Tensor) or k.dim() != 3 or not isinstance(v, torch.Tensor) or v.shape != k.shape:
            raise ArgumentError("k and v must be tensors of one shape (n_kv_head, n_prefix, head_dim)")
        self.k = nn.Parameter(k.detach().clone())
        self.v = nn.Parameter(v.detach().clone())


def _init_ids(model: TransformerLM, n: int, init_ids, seed: int, name: str) -> torch.Tensor:
    """``init_ids`` checked (``(n,)`` token ids), or n ids drawn uniformly from the vocabulary."""
    if init_ids is None:
        seed = check_int("seed", seed, minimum=0)
        return torch.randint(model.vocab_size, (n,), generator=torch.Generator().manual_seed(seed))
    ids = check_token_ids("init_ids", init_ids, model.vocab_size, ndim=1)
    if len(ids) != n:
        raise ArgumentError(f"init_ids must hold {name} = {n} token ids; got {len(ids)}")
    return ids


@torch.no_grad()
def _keys_and_values(model: TransformerLM, ids: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each layer's keys and values (before rotary rotation) for the text ``ids: (T,)``: a list of
    ``(k, v)``, ``(n_kv_head, T, head_dim)`` each. Read with forward hooks on the ``kv`` projections."""
    outputs = []
    hooks = [b.attn.kv.register_forward_hook(lambda mod, inp, out: outputs.append(out)) for b in model.blocks]
    was_training = model.training
    try:
        model.eval()
        model.hidden_states(ids[None])
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    result = []
    for block, kv in zip(model.blocks, outputs):
        a, T = block.attn, len(ids)
        k, v = kv[0, -T:].view(T, 2, a.n_kv_head, a.head_dim).permute(1, 2, 0, 3)  # (KV, T, hd) each
        result.append((k, v))
    return result


def add_prefix(model: TransformerLM, n_prefix: int, init_ids=None, seed: int = 0) -> list[str]:
    """Freeze ``model`` and give every attention layer ``n_prefix`` trainable keys and values that every
    query may attend to (prefix tuning, Li & Liang 2021). Returns their names (``blocks.0.attn.prefix``, ...).

    The prefixes start as the keys and values the model computes for the tokens ``init_ids`` (``(n_prefix,)``;
    None = tokens drawn uniformly from the vocabulary with ``seed``), so ``n_prefix <= block_size``.
    Prefix keys get no rotary rotation. Parameters: ``2 · n_layer · n_prefix · n_kv_head · head_dim``.
    """
    model = _require_model(model)
    n_prefix = check_int("n_prefix", n_prefix, minimum=1, maximum=model.config.block_size)
    ids = _init_ids(model, n_prefix, init_ids, seed, "n_prefix")
    if any(b.attn.prefix is not None for b in model.blocks):
        raise ArgumentError("model already has a prefix; remove_peft(model) takes it off")
    if n_prefix > model.context_size:
        raise ArgumentError(f"n_prefix = {n_prefix} is longer than the model's context ({model.context_size}), "
                            f"so its initial keys cannot be computed from real tokens")
    start = _keys_and_values(model, ids.to(_like(model)["device"]))
    _freeze_base(model)
    for block, (k, v) in zip(model.blocks, start):
        block.attn.prefix = Prefix(k, v)
    return [f"blocks.{i}.attn.prefix" for i in range(len(model.blocks))]


def add_prompt(model: TransformerLM, n_prompt: int, init_ids=None, seed: int = 0) -> list[str]:
    """Freeze ``model`` and put ``n_prompt`` trainable input vectors before every text's token embeddings
    (prompt tuning, Lester et al. 2021). Returns ``["embed.prompt"]``.

    The model's outputs stay the real tokens' (logits ``(B, T, V)``, ``hidden_states`` ``(B, T, d)``);
    the prompt takes the first positions, so the text may be at most ``block_size - n_prompt`` tokens
    (``model.context_size``). The vectors start as the embeddings of the tokens ``init_ids``
    (``(n_prompt,)``; None = tokens drawn uniformly from the vocabulary with ``seed``).
    """
    model = _require_model(model)
    n_prompt = check_int("n_prompt", n_prompt, minimum=1, maximum=model.config.block_size - 1)
    ids = _init_ids(model, n_prompt, init_ids, seed, "n_prompt")
    if model.embed.prompt is not None:
        raise ArgumentError("model already has a prompt; remove_peft(model) takes it off")
    _freeze_base(model)
    start = model.embed.tok.weight.detach()[ids.to(model.embed.tok.weight.device)].clone()  # (n_prompt, d)
    model.embed.prompt = nn.Parameter(start)
    model.context_size = model.config.block_size - n_prompt
    return ["embed.prompt"]


def remove_peft(model: TransformerLM) -> TransformerLM:
    """Take every PEFT addition off ``model`` (merged LoRA layers are unmerged first, to float tolerance),
    leaving the base model as it was, still frozen (``model.requires_grad_(True)`` unfreezes it)."""
    model = _require_model(model)
    for name, m in _lora_layers(model).items():
        if m.merged:
            m.unmerge()
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, m.base)
    for block in model.blocks:
        block.adapter_attn = block.adapter_mlp = block.attn.prefix = None
    model.embed.prompt = None
    model.context_size = model.config.block_size
    if hasattr(model, "_lora_base_sha256"):
        del model._lora_base_sha256
    return model


# ----------------------------------------------------------------------------------------------------
# trainable-parameter formulas


def _require_config(config) -> TransformerConfig:
    if not isinstance(config, TransformerConfig):
        raise fail("config", "a TransformerConfig", config)
    return config


def _linear_shapes(config: TransformerConfig) -> list[tuple[str, int, int]]:
    """Every linear layer of ``TransformerLM(config)`` as ``(name, in, out)``; a tied head is left out."""
    d, ff, hd = config.n_embd, config.d_ff, config.head_dim
    kv_heads = config.n_kv_head or config.n_head
    attn = [("q", d, config.n_head * hd), ("kv", d, 2 * kv_heads * hd), ("proj", config.n_head * hd, d)]
    if config.mlp == "gelu":
        mlp = [("fc", d, ff), ("proj", ff, d)]
    else:
        mlp = [("gate", d, ff), ("up", d, ff), ("down", ff, d)]
    if config.n_experts:
        mlp = mlp * config.n_experts + [("router", d, config.n_experts)]
    head = [] if config.tie_embeddings else [("head", d, config.vocab_size)]
    return (attn + mlp) * config.n_layer + head


def lora_parameter_count(config: TransformerConfig, r: int, targets=("q", "kv")) -> int:
    """Trainable parameters that ``apply_lora(TransformerLM(config), r, alpha, targets)`` adds:
    ``Σ r·(in + out)`` over the matched linear layers."""
    config = _require_config(config)
    r = check_int("r", r, minimum=1)
    targets = list(dict.fromkeys(check_strings("targets", targets, allow_empty=False)))
    shapes = _linear_shapes(config)
    names = sorted({n for n, _, _ in shapes})
    for t in targets:
        if t == "head" and config.tie_embeddings:
            raise ArgumentError("targets: head is tied to the token embedding (tie_embeddings); LoRA refuses it")
        if t not in names:
            raise ArgumentError(f"targets: {t!r} matches no linear layer; the linear layers are named {names}")
    return sum(r * (i + o) for n, i, o in shapes if n in targets)


def adapter_parameter_count(config: TransformerConfig, bottleneck: int) -> int:
    """Trainable parameters of :func:`add_adapters`: two adapters per block, ``2·d·b + b + d`` each."""
    config = _require_config(config)
    b, d = check_int("bottleneck", bottleneck, minimum=1), config.n_embd
    return config.n_layer * 2 * (2 * d * b + b + d)


def prefix_parameter_count(config: TransformerConfig, n_prefix: int) -> int:
    """Trainable parameters of :func:`add_prefix`: keys and values, ``n_prefix · n_kv_head · head_dim``
    each, in every layer."""
    config = _require_config(config)
    n_prefix = check_int("n_prefix", n_prefix, minimum=1)
    return config.n_layer * 2 * n_prefix * (config.n_kv_head or config.n_head) * config.head_dim


def prompt_parameter_count(config: TransformerConfig, n_prompt: int) -> int:
    """Trainable parameters of :func:`add_prompt`: ``n_prompt · n_embd``."""
    config = _require_config(config)
    return check_int("n_prompt", n_prompt, minimum=1) * config.n_embd
