#!/usr/bin/env python
"""How fast is the from-scratch byte-level BPE, and does it agree with Hugging Face ``tokenizers``?

Prints, on the Shakespeare train split (or ``--text FILE``):

1. the fast trainer (:func:`llmcourse.tokenization.train_bpe`) to a 1024-token vocabulary, HF's
   ``BpeTrainer`` with the same settings, the ratio, and whether the merges agree;
2. the naive trainer (minbpe-style, recounts every pair at every merge) against the fast one on a
   small slice;
3. encoding speed, and that the exported ``tokenizer.json`` gives HF the same ids;
4. compression (UTF-8 bytes per token) of BPE, WordPiece and Unigram on English and Chinese.

Usage::

    python benchmarks/bpe_speed.py
    python benchmarks/bpe_speed.py --text some.txt --vocab-size 2048 --repeat 3

Timings are wall-clock seconds, the best of ``--repeat`` runs (HF uses all cores; ours uses one).
"""

from __future__ import annotations

import argparse
import platform
import time

import tokenizers

from llmcourse import tokenization as T

EOT = "<|endoftext|>"


def timed(fn, repeat: int):
    """(best seconds, result of the last run)."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--text", help="a UTF-8 text file (default: the Shakespeare train split)")
    ap.add_argument("--vocab-size", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per measurement; the best is shown")
    ap.add_argument("--slice-chars", type=int, default=100_000, help="text for naive vs fast")
    ap.add_argument("--slice-vocab", type=int, default=320, help="vocab size for naive vs fast")
    ap.add_argument("--no-compression", action="store_true", help="skip the WordPiece / Unigram table")
    args = ap.parse_args()

    if args.text:
        with open(args.text, encoding="utf-8") as f:
            text, source = f.read(), args.text
    else:
        from llmcourse.datasets import load_shakespeare

        text, source = load_shakespeare("train"), "Shakespeare train split"
    n_bytes = len(text.encode("utf-8"))
    print(f"text: {source}, {len(text):,} characters, {n_bytes / 1e6:.2f} MB")
    print(f"python {platform.python_version()}, tokenizers {tokenizers.__version__}, "
          f"{platform.machine()}, best of {args.repeat}\n")

    # 1. fast trainer vs HF ------------------------------------------------------------------------
    V = args.vocab_size
    t_fast, ours = timed(lambda: T.train_bpe(text, V, special_tokens=[EOT]), args.repeat)
    t_hf, hf = timed(lambda: T.train_bpe_hf(text, V, special_tokens=[EOT]), args.repeat)
    agree = T.BPETokenizer.from_hf(hf).merges == ours.merges
    print(f"train to vocab_size={V} ({len(ours.merges)} merges)")
    print(f"  fast trainer (ours, Python) {t_fast:7.2f} s")
    print(f"  HF BpeTrainer (Rust)        {t_hf:7.2f} s")
    print(f"  ratio ours / HF             {t_fast / t_hf:7.2f} x")
    print(f"  merges agree with HF: {'yes' if agree else 'NO'}\n")

    # 2. naive vs fast on a slice --------------------------------------------------------------------
    small = text[: args.slice_chars]
    t_naive, naive = timed(lambda: T.train_bpe_naive(small, args.slice_vocab, special_tokens=[EOT]), 1)
    t_small, fast_small = timed(lambda: T.train_bpe(small, args.slice_vocab, special_tokens=[EOT]),
                                args.repeat)
    print(f"slice of {len(small):,} characters, vocab_size={args.slice_vocab} ({len(naive.merges)} merges)")
    print(f"  naive trainer (recount every pair)  {t_naive:8.3f} s")
    print(f"  fast trainer (incremental + heap)   {t_small:8.3f} s")
    print(f"  speed-up                            {t_naive / t_small:8.0f} x")
    print(f"  identical merges: {'yes' if naive.merges == fast_small.merges else 'NO'}\n")

    # 3. encoding ------------------------------------------------------------------------------------
    def encode_cold():
        ours._cache.clear()  # time the merging too, not only the per-chunk cache
        return ours.encode(text)

    t_enc, ids = timed(encode_cold, args.repeat)
    exported = ours.to_hf_tokenizer()
    lines = text.splitlines(keepends=True)
    t_hf_enc, hf_batch = timed(lambda: exported.encode_batch(lines), args.repeat)
    same_ids = [e.ids for e in hf_batch] == [ours.encode(line) for line in lines]
    print(f"encode the whole text: {len(ids):,} tokens ({n_bytes / len(ids):.2f} bytes per token)")
    print(f"  ours, one call on the text      {t_enc:6.2f} s  ({n_bytes / 1e6 / t_enc:5.1f} MB/s)")
    print(f"  HF, encode_batch on its lines   {t_hf_enc:6.2f} s  ({n_bytes / 1e6 / t_hf_enc:5.1f} MB/s)")
    print(f"  exported tokenizer.json gives HF the same ids, line by line: {'yes' if same_ids else 'NO'}")
    print(f"  decode(encode(text)) == text: {'yes' if ours.decode(ids) == text else 'NO'}\n")

    if args.no_compression:
        return

    # 4. compression -------------------------------------------------------------------------------
    # All three trained on the same 500k characters of English (Unigram's trainer is slow), same size.
    train = text[:500_000]
    try:
        from llmcourse.datasets import load_shakespeare

        english = load_shakespeare("validation")[:200_000]
        english_name = "Shakespeare validation, 200k chars"
    except Exception:
        english, english_name = text[-200_000:], "last 200k chars of the text"
    toks = {
        "UTF-8 bytes": lambda s: list(s.encode("utf-8")),
        "BPE (ours)": T.train_bpe(train, V, special_tokens=[EOT]),
        "WordPiece (HF)": T.train_wordpiece(train, V),
        "Unigram (HF)": T.train_unigram(train, V),
    }
    print(f"compression, bytes per token (higher = shorter sequences); vocab_size={V}, trained on "
          f"the first {len(train):,} characters")
    print(f"  English: {english_name}; Chinese: CHINESE_SAMPLE, {len(T.CHINESE_SAMPLE)} characters")
    print(f"  {'tokenizer':<20}{'English':>9}{'Chinese':>9}   Chinese characters lost to unknown tokens")
    for name, tk in toks.items():
        c_en, c_zh = T.compression(tk, english), T.compression(tk, T.CHINESE_SAMPLE)
        if hasattr(tk, "id_to_token"):  # HF: unknown tokens make the text look shorter than it is
            unk_ids = {tk.token_to_id(u) for u in ("[UNK]", "<unk>")} - {None}
            enc = tk.encode(T.CHINESE_SAMPLE, add_special_tokens=False)
            lost = sum(b - a for i, (a, b) in zip(enc.ids, enc.offsets) if i in unk_ids)
            note = f"{lost / len(T.CHINESE_SAMPLE):.0%}"
            note += " (so its bytes/token mean little)" if lost else ""
        else:
            note = "0% (byte-level: every string round-trips)"
        print(f"  {name:<20}{c_en:9.2f}{c_zh:9.2f}   {note}")


if __name__ == "__main__":
    main()
