"""Bad input across the public API: every call here is wrong, and each must fail at once with an
:class:`~llmcourse.checks.ArgumentError` whose message names the argument -- never garbage returned,
never an exception from deep inside torch, numpy or json.

Each case is ``(call, argument)``: ``call`` makes the bad call, ``argument`` is the name the message must
contain. The cases include every silent or poor case an outside probe of 111 bad calls found (negative
bases giving NaN positions, a negative norm epsilon, an unknown schedule read as linear decay, a
negative temperature picking the least likely token, an empty id list reported as a float dtype,
infinite FLOP counts, ...).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from llmcourse import attention, checks, data_pipeline, datasets, generation, lm, ngram, optim, rnn, scaling
from llmcourse import tokenization, transformer
from llmcourse.checks import ArgumentError


def _tiny_lm():
    torch.manual_seed(0)
    return transformer.TransformerLM(transformer.TransformerConfig.llama(10, 16, n_layer=1, n_head=2, n_embd=16))


MODEL = _tiny_lm()
LOGITS = torch.randn(10)

CASES = {
    # checks itself
    "check_int bool": (lambda: checks.check_int("n", True), "n"),
    "check_number nan": (lambda: checks.check_number("lr", math.nan), "lr"),
    "check_number inf": (lambda: checks.check_number("lr", math.inf), "lr"),
    "check_token_ids str": (lambda: checks.check_token_ids("ids", "hello", 10), "ids"),
    "check_token_ids ragged": (lambda: checks.check_token_ids("ids", [[1, 2], [3]], 10, ndim=2), "ids"),
    "check_strings one str": (lambda: checks.check_strings("docs", "one document"), "docs"),
    # attention and positions
    "causal_mask T=0": (lambda: attention.causal_mask(0), "T"),
    "causal_mask T float": (lambda: attention.causal_mask(4.0), "T"),
    "prefix_mask too long": (lambda: attention.prefix_mask(4, 5), "prefix_len"),
    "sinusoidal negative base": (lambda: attention.sinusoidal_positions(8, 4, base=-1.0), "base"),
    "sinusoidal odd d": (lambda: attention.sinusoidal_positions(8, 5), "d"),
    "rope negative base": (lambda: attention.rope_cache(8, 4, base=-10000.0), "base"),
    "rope nan base": (lambda: attention.rope_cache(8, 4, base=math.nan), "base"),
    "rope odd head_dim": (lambda: attention.rope_cache(8, 3), "head_dim"),
    "apply_rope mismatched": (lambda: attention.apply_rope(torch.zeros(8, 4), *attention.rope_cache(8, 6)), "cos"),
    "sdpa list q": (lambda: attention.scaled_dot_product_attention([[1.0]], torch.zeros(1, 1), torch.zeros(1, 1)), "q"),
    "sdpa mismatched d": (lambda: attention.scaled_dot_product_attention(torch.zeros(2, 4), torch.zeros(2, 3),
                                                                         torch.zeros(2, 3)), "q and k"),
    "check_mask float": (lambda: attention.check_mask(torch.ones(2, 2), 1, 2, 2), "mask"),
    "MultiHeadAttention heads": (lambda: attention.MultiHeadAttention(10, 3), "n_head"),
    # the Transformer's configuration
    "config norm_eps<0": (lambda: transformer.TransformerConfig(10, 8, norm_eps=-1.0), "norm_eps"),
    "config rope_base<0": (lambda: transformer.TransformerConfig(10, 8, rope_base=-1.0), "rope_base"),
    "config dropout=1": (lambda: transformer.TransformerConfig(10, 8, dropout=1.0), "dropout"),
    "config norm unknown": (lambda: transformer.TransformerConfig(10, 8, norm="batchnorm"), "norm"),
    "config n_embd % n_head": (lambda: transformer.TransformerConfig(10, 8, n_embd=30, n_head=4), "n_embd"),
    "config n_kv_head": (lambda: transformer.TransformerConfig(10, 8, n_kv_head=3), "n_kv_head"),
    "config vocab_size 0": (lambda: transformer.TransformerConfig(0, 8), "vocab_size"),
    "config bias 1": (lambda: transformer.TransformerConfig(10, 8, bias=1), "bias"),
    "config experts": (lambda: transformer.TransformerConfig(10, 8, n_experts=1), "n_experts"),
    "preset unknown": (lambda: transformer.TransformerConfig.preset("gpt-5"), "name"),
    # the model interface and scoring
    "forward float ids": (lambda: MODEL(torch.zeros(1, 4)), "ids"),
    "forward 1-D ids": (lambda: MODEL(torch.zeros(4, dtype=torch.long)), "ids"),
    "forward id too big": (lambda: MODEL(torch.tensor([[3, 10]])), "ids"),
    "forward empty": (lambda: MODEL(torch.zeros(1, 0, dtype=torch.long)), "ids"),
    "sample empty prefix": (lambda: MODEL.sample([], 5), "prefix_ids"),
    "sample temperature<0": (lambda: MODEL.sample([1, 2], 5, temperature=-1.0), "temperature"),
    "sample n<0": (lambda: MODEL.sample([1, 2], -1), "n"),
    "evaluate empty list": (lambda: lm.evaluate(MODEL, []), "ids"),
    "evaluate one token": (lambda: lm.evaluate(MODEL, [3]), "ids"),
    "evaluate str": (lambda: lm.evaluate(MODEL, "some text"), "ids"),
    "evaluate not a model": (lambda: lm.evaluate("model", [1, 2, 3]), "model"),
    "evaluate seq_len 0": (lambda: lm.evaluate(MODEL, [1, 2, 3], seq_len=0), "seq_len"),
    # recurrent models
    "RNN cell unknown": (lambda: rnn.RecurrentLanguageModel(10, cell="transformer"), "cell"),
    "RNN dropout 1.5": (lambda: rnn.RecurrentLanguageModel(10, dropout=1.5), "dropout"),
    "MLP context 0": (lambda: rnn.MLPLanguageModel(10, context=0), "context"),
    "spectral radius<0": (lambda: rnn.set_spectral_radius(rnn.ScratchRNN(4, 4, cell="rnn"), -1.0), "radius"),
    # decoding
    "next_token temperature -1": (lambda: generation.next_token(LOGITS, temperature=-1.0), "temperature"),
    "next_token nan temperature": (lambda: generation.next_token(LOGITS, temperature=math.nan), "temperature"),
    "next_token top_k 0": (lambda: generation.next_token(LOGITS, top_k=0), "top_k"),
    "next_token top_p 1.5": (lambda: generation.next_token(LOGITS, top_p=1.5), "top_p"),
    "next_token list logits": (lambda: generation.next_token([0.1, 0.2]), "logits"),
    "next_token int logits": (lambda: generation.next_token(torch.tensor([1, 2])), "logits"),
    "next_token nan logits": (lambda: generation.next_token(torch.tensor([0.0, math.nan])), "logits"),
    "next_token generator": (lambda: generation.next_token(LOGITS, generator=0), "generator"),
    "filter_top_k 0": (lambda: generation.filter_top_k(LOGITS, 0), "top_k"),
    "filter_top_p 0": (lambda: generation.filter_top_p(LOGITS, 0.0), "top_p"),
    "repetition penalty 0": (lambda: generation.apply_repetition_penalty(LOGITS, torch.tensor([1]), 0.0),
                             "repetition_penalty"),
    "repetition previous out of range": (lambda: generation.apply_repetition_penalty(LOGITS, torch.tensor([99]), 1.2),
                                         "previous"),
    "ban ngram n 0": (lambda: generation.ban_repeated_ngrams(LOGITS, [1, 2], 0), "no_repeat_ngram_size"),
    "generate empty prompt": (lambda: generation.generate(MODEL, [], 3), "prompt_ids"),
    "generate prompt too long": (lambda: generation.generate(MODEL, [1] * 17, 3), "prompt_ids"),
    "generate max_new_tokens -1": (lambda: generation.generate(MODEL, [1], -1), "max_new_tokens"),
    "generate temperature inf": (lambda: generation.generate(MODEL, [1], 3, temperature=math.inf), "temperature"),
    "generate stop_strings str": (lambda: generation.generate(MODEL, [1], 3, stop_strings="\n", decode=str),
                                  "stop_strings"),
    "generate stop_strings no decode": (lambda: generation.generate(MODEL, [1], 3, stop_strings=["\n"]),
                                        "stop_strings"),
    "generate stop id out of range": (lambda: generation.generate(MODEL, [1], 3, stop_ids=[42]), "stop_ids"),
    "generate not a model": (lambda: generation.generate(None, [1], 3), "model"),
    "generate_text prompt ids": (lambda: generation.generate_text(MODEL, None, [1, 2], 3), "prompt"),
    "KVCache n_layer 0": (lambda: generation.KVCache(0), "n_layer"),
    # the optimiser's pieces
    "lr_factor bogus schedule": (lambda: optim.lr_factor("bogus", 0.5, 0.1, 0.1), "schedule"),
    "lr_factor warmup 1": (lambda: optim.lr_factor("cosine", 0.5, 1.0, 0.1), "warmup_frac"),
    "lr_factor min ratio 2": (lambda: optim.lr_factor("cosine", 0.5, 0.1, 2.0), "min_lr_ratio"),
    "lr_factor progress nan": (lambda: optim.lr_factor("cosine", math.nan, 0.1, 0.1), "progress_frac"),
    "parameter_groups not a module": (lambda: optim.parameter_groups("model", 0.1), "model"),
    "parameter_groups decay<0": (lambda: optim.parameter_groups(MODEL, -0.1), "weight_decay"),
    # scaling arithmetic
    "training_flops inf": (lambda: scaling.training_flops(math.inf, 1e9), "n_params"),
    "training_flops nan tokens": (lambda: scaling.training_flops(1e6, math.nan), "n_tokens"),
    "training_flops negative": (lambda: scaling.training_flops(-1.0, 1e9), "n_params"),
    "flops_per_token layers 0": (lambda: scaling.flops_per_token(1e6, 0, 128, 64), "n_layer"),
    "weight memory precision": (lambda: scaling.weight_memory_bytes(1e6, "fp7"), "precision"),
    "zero stage 4": (lambda: scaling.zero_memory_per_device(1e9, 8, 4), "stage"),
    "zero devices 0": (lambda: scaling.zero_memory_per_device(1e9, 0, 1), "n_devices"),
    "chinchilla compute 0": (lambda: scaling.chinchilla_optimal(0.0), "compute_flops"),
    "training time mfu 1.5": (lambda: scaling.training_time_seconds(1e20, 1e15, 8, mfu=1.5), "mfu"),
    "size_report model": (lambda: scaling.size_report("gpt-9", "bf16", 1e12), "model"),
    "fit_power_law offset 1": (lambda: scaling.fit_power_law([1, 2, 3], [1, 2, 3], offset=1), "offset"),
    "compute_plan accelerator": (lambda: scaling.compute_plan(1e20, accelerator="abacus"), "accelerator"),
    # text: data, counting models, tokenizers, the data pipeline (each module's own tests go further)
    "load_shakespeare split": (lambda: datasets.load_shakespeare("test"), "split"),
    "sequence_task name": (lambda: datasets.sequence_task("copy"), "name"),
    "NGramLM order 0": (lambda: ngram.NGramLM(0, 10), "order"),
    "CharTokenizer encode int": (lambda: tokenization.CharTokenizer.train("abc").encode(5), "text"),
    "train_bpe vocab 10": (lambda: tokenization.train_bpe("hello", 10), "vocab_size"),
    "BPE decode unknown id": (lambda: tokenization.train_bpe("hello world", 257).decode([99999]), "ids"),
    "near_dedup one str": (lambda: data_pipeline.near_dedup("one doc"), "docs"),
    "shingles k 0": (lambda: data_pipeline.shingles("a b c", k=0), "k"),
    "pack_tokens eot -1": (lambda: data_pipeline.pack_tokens([[1, 2]], "unused.bin", eot_id=-1), "eot_id"),
    "random_windows batch 0": (lambda: data_pipeline.random_windows(np.arange(10), 0, 2), "batch_size"),
}


@pytest.mark.parametrize("label", sorted(CASES))
def test_a_bad_argument_gets_a_clear_error_naming_it(label):
    call, argument = CASES[label]
    with pytest.raises(ArgumentError) as info:
        result = call()
        pytest.fail(f"{label}: accepted, returned {result!r}")
    assert argument in str(info.value), f"{label}: the message does not name {argument!r}: {info.value}"


def test_argument_errors_are_value_and_type_errors():
    """Code (and tests) written against ``except ValueError`` or ``except TypeError`` still catch them."""
    for exc in (ValueError, TypeError):
        with pytest.raises(exc):
            checks.check_int("n", "three")


def test_the_message_reads_name_expected_got():
    with pytest.raises(ArgumentError, match=r"^steps must be an integer >= 1; got 0$"):
        checks.check_int("steps", 0)
    with pytest.raises(ArgumentError, match=r"^lr must be a finite number > 0; got -0.1$"):
        checks.check_number("lr", -0.1, minimum=0.0, strict=True)
    with pytest.raises(ArgumentError, match=r"^schedule must be one of \('a', 'b'\); got 'c'$"):
        checks.check_choice("schedule", "c", ("a", "b"))


def test_checks_return_plain_python_values():
    assert type(checks.check_int("n", np.int64(3))) is int
    assert type(checks.check_number("x", np.float32(0.5))) is float
    assert checks.check_token_ids("ids", [], 5).dtype == torch.int64  # an empty list is an empty id list
    assert checks.check_token_ids("ids", np.array([1, 2], dtype=np.uint16), 5).tolist() == [1, 2]
