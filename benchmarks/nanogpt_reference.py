"""A nanoGPT-shaped reference in plain PyTorch, for measuring the course trainer against side by side.

Written for this benchmark (not nanoGPT's code), it copies the choices of nanoGPT's ``model.py`` and
``train.py`` that decide how long a training step takes on a CPU, for the documented CPU run of
``train_shakespeare_char`` (``--device=cpu --compile=False --block_size=64 --batch_size=12 --n_layer=4
--n_head=4 --n_embd=128 --dropout=0.0 --log_interval=1``, no biases):

- the model: token and learned position embeddings; pre-norm blocks of LayerNorm (no bias), causal
  self-attention with one fused query/key/value projection (``c_attn``) and
  ``F.scaled_dot_product_attention(is_causal=True)``, LayerNorm, an MLP of 4x width with GELU; a final
  LayerNorm; the output head tied to the token embedding; weights initialised N(0, 0.02), the residual
  projections N(0, 0.02 / sqrt(2 n_layer));
- the optimiser: AdamW, weight decay 0.1 on the matrices and none on the rest, betas (0.9, 0.99), the
  default (``foreach``) implementation: nanoGPT asks for ``fused`` only on CUDA;
- the step: a batch of random windows from the token array (the next one drawn before the backward
  pass, as nanoGPT prefetches), the loss through ``F.cross_entropy`` on the flattened logits, backward,
  ``clip_grad_norm_(1.0)``, ``optimizer.step()``, ``zero_grad(set_to_none=True)``, and ``loss.item()``
  every step (``--log_interval=1``); the learning rate set every step from warm-up and cosine decay.

``ReferenceTrainer(bf16=True)`` runs the forward pass under bf16 autocast, as nanoGPT does on a GPU with
bf16 (on a CPU it runs in float32): not nanoGPT's CPU run, a yardstick for what bf16 alone does.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class LayerNorm(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, None, 1e-5)


class CausalSelfAttention(nn.Module):
    def __init__(self, d: int, n_head: int):
        super().__init__()
        self.c_attn = nn.Linear(d, 3 * d, bias=False)
        self.c_proj = nn.Linear(d, d, bias=False)
        self.n_head = n_head

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class MLP(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.c_fc = nn.Linear(d, 4 * d, bias=False)
        self.c_proj = nn.Linear(4 * d, d, bias=False)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, d: int, n_head: int):
        super().__init__()
        self.ln_1, self.attn, self.ln_2, self.mlp = LayerNorm(d), CausalSelfAttention(d, n_head), LayerNorm(d), MLP(d)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, vocab_size: int, block_size: int = 64, n_layer: int = 4, n_head: int = 4, n_embd: int = 128):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab_size, n_embd), nn.Embedding(block_size, n_embd)
        self.h = nn.ModuleList(Block(n_embd, n_head) for _ in range(n_layer))
        self.ln_f = LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.wte.weight = self.lm_head.weight  # tied
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * n_layer))

    @staticmethod
    def _init(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, 0.0, 0.02)

    def forward(self, idx, targets):
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return logits, F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)


class ReferenceTrainer:
    """nanoGPT's training loop, one step at a time (so a benchmark can interleave it with another);
    ``bf16``: the forward pass under bf16 autocast."""

    def __init__(self, model: GPT, data: torch.Tensor, *, batch_size: int = 12, block_size: int = 64,
                 lr: float = 1e-3, min_lr: float = 1e-4, warmup: int = 100, decay_iters: int = 2000, seed: int = 0,
                 bf16: bool = False):
        self.model, self.data, self.bf16 = model, data, bf16
        self.batch_size, self.block_size = batch_size, block_size
        self.lr, self.min_lr, self.warmup, self.decay_iters = lr, min_lr, warmup, decay_iters
        decay = [p for p in model.parameters() if p.dim() >= 2]
        no_decay = [p for p in model.parameters() if p.dim() < 2]
        self.optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                                            {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.99))
        self.generator = torch.Generator().manual_seed(seed)
        self.iter = 0
        self.batch = self._get_batch()

    def _get_batch(self):
        ix = torch.randint(len(self.data) - self.block_size, (self.batch_size,), generator=self.generator)
        x = torch.stack([self.data[i:i + self.block_size] for i in ix])
        y = torch.stack([self.data[i + 1:i + 1 + self.block_size] for i in ix])
        return x, y

    def _get_lr(self, it: int) -> float:
        if it < self.warmup:
            return self.lr * (it + 1) / (self.warmup + 1)
        if it > self.decay_iters:
            return self.min_lr
        ratio = (it - self.warmup) / (self.decay_iters - self.warmup)
        return self.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (self.lr - self.min_lr)

    def train_step(self) -> float:
        lr = self._get_lr(self.iter)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        x, y = self.batch
        self.model.train()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):  # what nanoGPT does on a GPU
            _, loss = self.model(x, y)
        self.batch = self._get_batch()  # nanoGPT draws the next batch while the forward pass is done
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.iter += 1
        return loss.item()
