"""Tests for llmcourse.tokenization: round trips, the two trainers, parity with HF `tokenizers`.

The HF-agreement tests run on a self-contained generated text (always) and on a slice of the
Shakespeare train split (skipped, with the reason, when ``data/shakespeare`` is not built).
"""

from __future__ import annotations

import json
import random
import time
import unicodedata

import numpy as np
import pytest
from tokenizers import Tokenizer, pre_tokenizers

from llmcourse.checks import ArgumentError
from llmcourse.tokenization import (
    CHINESE_SAMPLE,
    BPETokenizer,
    CharTokenizer,
    TokenizerFileError,
    bytes_to_unicode,
    compression,
    get_stats,
    merge,
    merge_steps,
    pretokenize,
    token_spans,
    train_bpe,
    train_bpe_hf,
    train_bpe_naive,
    train_unigram,
    train_wordpiece,
)

EOT = "<|endoftext|>"

NASTY = [
    "",
    " ",
    "\n",
    "a",
    "   leading and trailing   ",
    "tabs\tand\r\nwindows\r\nnewlines\n\n\n",
    "    \n   \t \u00a0\u3000 whitespace runs \u2028\u2029\x85\x1c\x1f",
    "Hello, world! It's 'quoted' -- don't, won't, y'all'd've.",
    "CAPS'S 'S 'RE 'll 'LL",
    "numbers 1234567890 ²½Ⅻ ١٢٣ 3.14159",
    "emoji 🙂🎉👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 flags 🇨🇳🇬🇧",
    "中文：语言模型学习写作。混合 mixed 文字 text！",
    "日本語のテキスト、한국어 텍스트, Ελληνικά, русский, עברית, العربية",
    "combining: e\u0301 a\u0308 n\u0303 Z\u0351\u0352\u0353 \u0915\u094d\u0937",
    "zero width: a\u200bb\u200cc\u200dd\ufeff",
    "astral: 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𐍈 𠀀𠀁 \U0001f600",
    "private use \ue000\uf8ff and noncharacter \ufdd0 \uffff",
    "control \x00\x01\x07\x1b[31mred\x1b[0m\x7f",
    f"special {EOT} inside{EOT}{EOT}and at the end {EOT}",
    f"{EOT}",
    "<|endoftext|",
    "<|endoftext|>>><<|endoftext|>",
    "<|pad|>not special here",
    "a" * 300,
    " " * 50 + "x",
    "\u00ff\u0100\u0120Ġ",  # characters that GPT-2's byte alphabet uses for display
]


def _random_unicode(rng: random.Random, n: int) -> str:
    """Random text mixing ASCII, whitespace of all kinds, Latin-1, CJK, emoji and combining marks."""
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
        " \t\n\r\x0b\x0c\x85\xa0\u2028\u2029\u3000\x1c\x1f",
        "'\".,;:!?-()[]{}<|>/\\@#$%^&*_~`",
        "".join(chr(c) for c in range(0xA1, 0x180)),
        "语言模型学习写作中文字节对编码",
        "🙂🎉👍🏽👨‍👩‍👧🇨🇳😀",
        "\u0301\u0308\u0303\u20dd\u200d\ufe0f",
    ]
    out = []
    for _ in range(n):
        if rng.random() < 0.15:
            cp = rng.randrange(0x20, 0x30000)
            c = chr(cp)
            if 0xD800 <= cp < 0xE000 or unicodedata.category(c) == "Cn":
                continue  # no surrogates; no code points unassigned in this Python's Unicode database
            out.append(c)
        else:
            out.append(rng.choice(rng.choice(pools)))
    return "".join(out)


def _shakespeare_like(n_chars: int, seed: int = 0) -> str:
    """A self-contained, seeded, Shakespeare-shaped text (speaker lines, verse, contractions)."""
    rng = random.Random(seed)
    words = (
        "the and I to of a you my that in is not it me with be his your this but he have for thou "
        "thee thy so will what her him all do no by shall if are we our as lord good now sir o "
        "come love they more well let hath would was then there how here man which am most upon "
        "doth art must know say like one their she us make may them or why these see an king "
        "heaven death night speak yet too give where had were should such sweet fair blood heart "
        "'tis o'er ne'er e'en I'll thou'rt what's there's let's 'twas 1 2 3 10 100 1599"
    ).split()
    # plus made-up words from syllables, so that there is always something left to merge
    syllables = [c + v for c in "bdklmnrstv" for v in "aeiou"] + ["th", "sh", "ch", "ng"]
    words += ["".join(rng.choices(syllables, k=rng.randint(1, 4))) for _ in range(600)]
    weights = [1 / (k + 1) for k in range(len(words))]  # Zipf-like, as real text
    speakers = ["HAMLET", "OPHELIA", "KING LEAR", "FIRST WITCH", "ROMEO", "JULIET", "BÉATRICE"]
    punct = [",", ",", ".", ";", ":", "!", "?", " --", "—", "'"]
    out, size = [], 0
    while size < n_chars:
        lines = [f"{rng.choice(speakers)}:"]
        for _ in range(rng.randint(1, 6)):
            ws = rng.choices(words, weights, k=rng.randint(3, 10))
            line = " ".join(ws)
            line = line[0].upper() + line[1:] + rng.choice(punct)
            lines.append(line)
        block = "\n".join(lines) + "\n\n"
        out.append(block)
        size += len(block)
    return "".join(out)


@pytest.fixture(scope="module")
def generated_text() -> str:
    return _shakespeare_like(200_000)


@pytest.fixture(scope="module")
def shakespeare_slice() -> str:
    try:
        from llmcourse.datasets import load_shakespeare

        text = load_shakespeare("train")
    except Exception as e:  # module not there yet, data not built, checksum mismatch
        pytest.skip(f"Shakespeare train split not available ({type(e).__name__}: {e})")
    return text[:300_000]


@pytest.fixture(scope="module")
def tok(generated_text) -> BPETokenizer:
    return train_bpe(generated_text, 600, special_tokens=[EOT, "<|pad|>"])


# ---------------------------------------------------------------------------------------------------
# building blocks


def test_get_stats_and_merge_worked_examples():
    assert get_stats([1, 2, 3, 1, 2]) == {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    assert get_stats([5, 5, 5]) == {(5, 5): 2}  # overlaps count, as in HF
    assert get_stats([]) == {} and get_stats([7]) == {}
    assert merge([1, 2, 3, 1, 2], (1, 2), 4) == [4, 3, 4]
    assert merge([5, 5, 5], (5, 5), 6) == [6, 5]
    assert merge([5, 5, 5, 5], (5, 5), 6) == [6, 6]


def test_bytes_to_unicode_is_gpt2s_table():
    table = bytes_to_unicode()
    assert len(table) == 256 and len(set(table.values())) == 256
    assert set(table.values()) == set(pre_tokenizers.ByteLevel.alphabet())
    assert (table[ord("a")], table[ord(" ")], table[ord("\n")], table[0]) == ("a", "Ġ", "Ċ", "Ā")


def test_pretokenize_gpt2_examples():
    assert pretokenize("Hello world's  end!!\n") == ["Hello", " world", "'s", " ", " end", "!!", "\n"]
    assert pretokenize("I'll 123abc  \n\n x") == ["I", "'ll", " 123", "abc", "  \n\n", " x"]
    assert pretokenize("") == []
    for s in NASTY:
        assert "".join(pretokenize(s)) == s


def test_pretokenize_matches_hf_pre_tokenizer_on_random_unicode():
    hf = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    rng = random.Random(1234)
    texts = NASTY + [_random_unicode(rng, rng.randint(0, 40)) for _ in range(1500)]
    for s in texts:
        expected = [s[a:b] for _, (a, b) in hf.pre_tokenize_str(s)]
        assert pretokenize(s) == expected, repr(s)


# ---------------------------------------------------------------------------------------------------
# the character tokenizer


def test_char_tokenizer():
    ct = CharTokenizer.train("hello", special_tokens=[EOT])
    assert ct.vocab_size == ct.size == len(ct) == 5
    ids = ct.encode("hole")
    assert ids.dtype == np.int64 and ids.tolist() == [2, 4, 3, 1]  # 'e' < 'h' < 'l' < 'o'
    assert ct.encode(f"he{EOT}").tolist() == [2, 1, 0] and ct.decode([2, 1, 0]) == f"he{EOT}"
    assert ct.encode(f"{EOT}{EOT}").tolist() == [0, 0] and ct.encode("").shape == (0,)
    assert ct.decode(ct.encode("hello")) == "hello" and ct.decode(np.array([2, 1])) == "he"
    assert [ct.token_text(i) for i in range(5)] == [EOT, "e", "h", "l", "o"]
    with pytest.raises(ValueError, match=r"1 character\(s\) not in the vocabulary: 'p'.*unk_token"):
        ct.encode("help")
    with pytest.raises(ValueError, match=r"ids\[0\] must be a token id in \[0, 5\); got 5"):
        ct.decode([5])
    with pytest.raises(ValueError, match=r"^i must be an integer >= 0 and <= 4; got 5"):
        ct.token_text(5)


def test_char_tokenizer_ids_are_those_of_char_vocab():
    """No special tokens: characters in code-point order, unk_token last (the zoo's models rely on it)."""
    from llmcourse.ngram import CharVocab

    assert CharVocab is CharTokenizer
    text = "To be, or not to be: 中文 🙂\n"
    tok = CharTokenizer.from_text(text, unk_token="<unk>")
    chars = sorted(set(text))
    assert tok.itos == chars + ["<unk>"] and tok.stoi == {c: i for i, c in enumerate(chars)}
    assert tok.unk_id == len(chars) == tok.vocab_size - 1 and tok.unk_token == "<unk>"
    assert tok.encode("be?").tolist() == [tok.stoi["b"], tok.stoi["e"], tok.unk_id]
    assert tok.decode(tok.encode("tab")) == "t<unk>b"
    # with special tokens, they come first and everything else shifts up; unk_token is still last
    special = CharTokenizer.train(f"ab{EOT}ba", special_tokens=[EOT, "<pad>"], unk_token="?")
    assert special.itos == [EOT, "<pad>", "a", "b", "?"] and special.unk_id == 4
    assert special.encode(f"a{EOT}xb<pad>").tolist() == [2, 0, 4, 3, 1]
    assert special.encode("<pad>", allow_special=False).tolist() == [4, 4, 2, 4, 4]
    # a lone surrogate is an unknown character like any other, not a crash
    assert special.encode("a\udc80").tolist() == [2, 4]
    assert repr(special) == f"CharTokenizer(vocab_size=5, special_tokens=['{EOT}', '<pad>'], unk_token='?')"


def test_char_tokenizer_fast_path_is_fast(generated_text):
    tok = CharTokenizer.from_text(generated_text)
    text = generated_text * 5  # 1 MB
    start = time.perf_counter()
    ids = tok.encode(text)
    assert time.perf_counter() - start < 1.0  # ~0.01 s with np.searchsorted; a dict loop takes ~0.1 s
    assert len(ids) == len(text) and tok.decode(ids[:1000]) == text[:1000]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: CharTokenizer(["ab"]), r"chars\[0\] must be a single character"),
        (lambda: CharTokenizer(7), r"chars must be a str or an iterable"),
        (lambda: CharTokenizer("ab", unk_token=""), r"unk_token must be a non-empty str"),
        (lambda: CharTokenizer("ab", special_tokens=["<u>"], unk_token="<u>"), r"unk_token must be a str that is not"),
        (lambda: CharTokenizer("ab", "<unk>"), r"special_tokens must be a list of str, not one str"),
        (lambda: CharTokenizer.train(b"ab"), r"text must be a str; got b'ab'"),
        (lambda: CharTokenizer("ab").encode(["a"]), r"text must be a str"),
        (lambda: CharTokenizer("ab").encode("a", allow_special=1), r"allow_special must be True or False"),
        (lambda: CharTokenizer("ab").decode("ab"), r"ids must be a sequence of int token ids"),
        (lambda: CharTokenizer("ab").decode([0, 1.0]), r"ids\[1\] must be an int token id; got 1.0"),
        (lambda: CharTokenizer("ab").decode(np.array([[0]])), r"ids must have shape \(time,\)"),
    ],
)
def test_char_tokenizer_bad_arguments(make, message):
    with pytest.raises(ArgumentError, match=message):
        make()


# ---------------------------------------------------------------------------------------------------
# byte-level BPE: round trips


def test_round_trip_nasty_strings(tok):
    for s in NASTY:
        ids = tok.encode(s)
        assert tok.decode(ids) == s, repr(s)
        assert tok.decode(tok.encode(s, allow_special=False)) == s, repr(s)
    assert tok.encode("") == [] and tok.decode([]) == ""


def test_round_trip_random_unicode(tok):
    rng = random.Random(0)
    for _ in range(300):
        s = _random_unicode(rng, rng.randint(0, 200))
        assert tok.decode(tok.encode(s)) == s, repr(s)


def test_round_trip_long_text_and_compression(tok, generated_text):
    held_out = _shakespeare_like(20_000, seed=1)
    ids = tok.encode(held_out)
    assert tok.decode(ids) == held_out
    assert compression(tok, held_out) > 2.0  # 344 merges on this text give ~2.8 bytes per token
    assert compression(lambda s: list(s.encode("utf-8")), held_out) == 1.0


# ---------------------------------------------------------------------------------------------------
# the two trainers and HF


@pytest.mark.parametrize(
    "vocab_size, specials, min_frequency",
    [(300, [], 0), (330, [EOT], 0), (400, [EOT, "<|pad|>"], 3), (2000, [], 50)],
)
def test_naive_and_fast_trainers_learn_identical_merges(generated_text, vocab_size, specials, min_frequency):
    text = generated_text[:12_000] + f"{EOT}   \n\n 中文 🙂🙂 aaaaaa{EOT}"
    naive = train_bpe_naive(text, vocab_size, special_tokens=specials, min_frequency=min_frequency)
    fast = train_bpe(text, vocab_size, special_tokens=specials, min_frequency=min_frequency)
    assert fast.merges == naive.merges
    assert fast.vocab == naive.vocab and fast.special_tokens == naive.special_tokens
    if min_frequency <= 3:
        assert fast.vocab_size == vocab_size
    else:  # stopped early: the next best pair occurs fewer than min_frequency times
        assert fast.vocab_size < vocab_size


def _assert_same_as_hf(text: str, vocab_size: int, specials: list[str]) -> BPETokenizer:
    ours = train_bpe(text, vocab_size, special_tokens=specials)
    hf = train_bpe_hf(text, vocab_size, special_tokens=specials)
    theirs = json.loads(hf.to_str())["model"]
    assert len(theirs["vocab"]) == vocab_size == ours.vocab_size
    # Same merges, in the same order, and same ids for every token.
    assert [[ours.token_str(a), ours.token_str(b)] for (a, b), _ in ours.merges] == theirs["merges"]
    assert {ours.token_str(i): i for i in range(ours.vocab_size)} == theirs["vocab"]
    assert BPETokenizer.from_hf(hf).merges == ours.merges
    return ours


@pytest.mark.parametrize("vocab_size", [400, 1024])
def test_merges_equal_hf_on_generated_text(generated_text, vocab_size):
    _assert_same_as_hf(generated_text, vocab_size, [EOT])


@pytest.mark.parametrize("vocab_size", [512, 1024])
def test_merges_equal_hf_on_shakespeare(shakespeare_slice, vocab_size):
    _assert_same_as_hf(shakespeare_slice, vocab_size, [EOT])


def test_merges_equal_hf_with_specials_in_text_and_min_frequency(generated_text):
    text = EOT.join(generated_text[i : i + 5000] for i in range(0, 60_000, 5000))
    ours = train_bpe(text, 700, special_tokens=["<|pad|>", EOT], min_frequency=20)
    hf = BPETokenizer.from_hf(train_bpe_hf(text, 700, special_tokens=["<|pad|>", EOT], min_frequency=20))
    assert hf.merges == ours.merges and hf.special_tokens == ours.special_tokens == {"<|pad|>": 0, EOT: 1}


def test_tie_breaking_is_by_smallest_pair_of_ids():
    # "ab" and "cd" both occur twice: the tie goes to the pair with the smaller ids ('a' < 'c').
    tok = train_bpe("cd ab cd ab", 257)
    assert [tok.token_text(n) for _, n in tok.merges] == ["ab"]
    # Ids are not byte values: the space byte comes after every printable byte (GPT-2's order), so of
    # the pairs (' ', 'a'), (' ', 'z') and ('z', 'z'), all seen once, ('z', 'z') goes first.
    tok = train_bpe(" a zz", 257)
    assert [tok.token_text(n) for _, n in tok.merges] == ["zz"]
    assert BPETokenizer.from_hf(train_bpe_hf(" a zz", 257)).merges == tok.merges


def test_fast_trainer_is_fast(generated_text):
    start = time.perf_counter()
    train_bpe(generated_text, 1024)
    assert time.perf_counter() - start < 5.0  # ~0.2 s; the naive trainer would need minutes


# ---------------------------------------------------------------------------------------------------
# export to / import from HF, save / load


HF_TEST_TEXT = (
    f"First Citizen:\nBefore we proceed any further, hear me speak.{EOT}All:\nSpeak, speak.\n\n"
    "  indented   spaces\t\ttabs \n emoji 🙂🎉👨‍👩‍👧 中文：语言模型学习写作。 numbers 1599, 3.14 "
    f"it's I'LL we'd <|pad|>{EOT}<|pad|> ç'est déjà vu — “quotes” {EOT}"
)


def test_exported_tokenizer_json_encodes_to_the_same_ids(tok, tmp_path):
    path = tmp_path / "tokenizer.json"
    tok.save_hf(path)
    hf = Tokenizer.from_file(str(path))
    for s in [HF_TEST_TEXT, CHINESE_SAMPLE, *NASTY]:
        enc = hf.encode(s)
        assert enc.ids == tok.encode(s), repr(s)
        assert hf.decode(enc.ids, skip_special_tokens=False) == s == tok.decode(enc.ids)
    assert hf.get_vocab_size() == tok.vocab_size


def test_overlapping_special_tokens_longest_wins_like_hf():
    t = train_bpe("ab ab ab", 270, special_tokens=["<a>", "<a><b>", "<b>"])
    s = "x<a><b>y<a>z<b><a><b><b>"
    ids = t.encode(s)
    assert ids.count(t.special_tokens["<a><b>"]) == 2 and ids.count(t.special_tokens["<a>"]) == 1
    assert t.to_hf_tokenizer().encode(s).ids == ids


def test_from_hf_round_trip(tok, tmp_path):
    back = BPETokenizer.from_hf(tok.to_hf_tokenizer())
    assert (back.vocab, back.merges, back.special_tokens) == (tok.vocab, tok.merges, tok.special_tokens)
    tok.save_hf(tmp_path / "t.json")
    assert BPETokenizer.from_hf(tmp_path / "t.json").merges == tok.merges
    # older tokenizer.json files (GPT-2's) write merges as "left right" strings
    d = json.loads((tmp_path / "t.json").read_text(encoding="utf-8"))
    d["model"]["merges"] = [" ".join(m) for m in d["model"]["merges"]]
    (tmp_path / "old.json").write_text(json.dumps(d), encoding="utf-8")
    assert BPETokenizer.from_hf(tmp_path / "old.json").merges == tok.merges
    old = Tokenizer.from_file(str(tmp_path / "old.json"))
    assert old.encode(HF_TEST_TEXT).ids == tok.encode(HF_TEST_TEXT)
    wordpiece = train_wordpiece("hello world " * 20, 100)
    with pytest.raises(ValueError, match="not a plain byte-level BPE"):
        BPETokenizer.from_hf(wordpiece)


def test_save_load_round_trip(tok, tmp_path):
    path = tmp_path / "bpe.json"
    tok.save(path)
    text = path.read_text(encoding="utf-8")
    d = json.loads(text)
    assert d["format"] == "llmcourse-bpe" and d["special_tokens"] == {EOT: 0, "<|pad|>": 1}
    assert d["tokens"][:3] == [EOT, "<|pad|>", "!"] and "Ġthe" in d["tokens"]
    assert len(text.splitlines()) > tok.vocab_size  # readable: one token / merge per line
    loaded = BPETokenizer.load(path)
    assert (loaded.vocab, loaded.merges, loaded.special_tokens) == (tok.vocab, tok.merges, tok.special_tokens)
    assert loaded.encode(HF_TEST_TEXT) == tok.encode(HF_TEST_TEXT)
    d["merges"][5][2] = d["merges"][6][2]  # a corrupted file is refused, naming the merge
    path.write_text(json.dumps(d), encoding="utf-8")
    with pytest.raises(ValueError, match=r"merges\[5\]"):
        BPETokenizer.load(path)


# ---------------------------------------------------------------------------------------------------
# special tokens


def test_special_tokens_are_single_ids_and_never_merged_across():
    text = "".join(f"the cat sat{EOT}on the mat{EOT}" for _ in range(200))
    t = train_bpe(text, 300, special_tokens=[EOT])
    eot = t.special_tokens[EOT]
    assert eot == 0
    # nothing was learned from the special token's text, and no token spans into it
    assert not any(b"endoftext" in t.token_bytes(i) or b"t<" in t.token_bytes(i) for i in t.vocab)
    assert t.encode(EOT) == [eot]
    assert t.encode(f"mat{EOT}on") == t.encode("mat") + [eot] + t.encode("on")
    assert t.encode(f"{EOT}{EOT}") == [eot, eot]
    plain = t.encode(f"mat{EOT}on", allow_special=False)  # untrusted text: spelled out, no special id
    assert eot not in plain and t.decode(plain) == f"mat{EOT}on"
    # a merge never crosses the special token in merge_steps either
    assert merge_steps(t, f"mat{EOT}on")[-1] == t.encode(f"mat{EOT}on")


# ---------------------------------------------------------------------------------------------------
# widgets' helpers


def test_merge_steps(tok):
    s = "To be, or not to be: 中文 🙂"
    steps = merge_steps(tok, s)
    assert len(steps) == len(tok.merges) + 1
    assert [tok.token_bytes(i) for i in steps[0]] == [bytes([b]) for b in s.encode("utf-8")]
    assert steps[-1] == tok.encode(s)
    assert all(len(a) >= len(b) for a, b in zip(steps, steps[1:]))
    assert all(tok.decode(ids) == s for ids in steps[::50])
    assert len(merge_steps(tok, s, upto=3)) == 4
    with pytest.raises(ValueError, match="upto"):
        merge_steps(tok, s, upto=len(tok.merges) + 1)


def test_token_spans(tok):
    s = "the king's 中文 🙂!"
    spans = token_spans(tok, s)
    assert "".join(t for t, _ in spans) == s
    assert [i for _, i in spans] == tok.encode(s)
    assert all(t == tok.token_text(i) for t, i in spans if tok.token_bytes(i).isascii())
    # a 3-byte character cut into byte tokens is shown with the token that completes it
    texts = [t for t, _ in spans]
    assert "中" in texts and "" in texts
    ct = CharTokenizer.train(s)
    assert token_spans(ct, s) == [(c, ct.stoi[c]) for c in s]


# ---------------------------------------------------------------------------------------------------
# WordPiece, Unigram, compression


def test_wordpiece_and_unigram(generated_text):
    text = generated_text[:40_000]
    wp = train_wordpiece(text, 300)
    ug = train_unigram(text, 300)
    assert wp.get_vocab_size() == 300 and ug.get_vocab_size() == 300
    sample = "Good night, sweet lord.\nThou art   here!"
    # WordPiece keeps case here but not whitespace: the decoder joins words with one space
    assert wp.decode(wp.encode(sample).ids) == "Good night, sweet lord. Thou art here!"
    assert "[UNK]" in wp.encode("中文").tokens  # characters never seen in training
    # Unigram keeps whitespace (spaces become '▁'), so seen text round-trips
    assert ug.decode(ug.encode(sample).ids) == sample
    for t in (wp, ug):
        assert 1.5 < compression(t, sample) < 10


def test_compression_english_and_chinese(tok):
    assert len(CHINESE_SAMPLE) >= 800
    assert sum("\u4e00" <= c <= "\u9fff" for c in CHINESE_SAMPLE) > 600
    english = _shakespeare_like(5000, seed=3)
    # An English-trained byte-level BPE reads Chinese almost byte by byte: 3 tokens per character.
    assert compression(tok, CHINESE_SAMPLE) < 1.2 < 2.0 < compression(tok, english)
    chinese_tok = train_bpe(CHINESE_SAMPLE * 3, 400)
    assert compression(chinese_tok, CHINESE_SAMPLE) > 2.0


# ---------------------------------------------------------------------------------------------------
# bad input


def test_bad_inputs_name_the_argument(tok):
    with pytest.raises(ValueError, match=r"^vocab_size must be an integer >= 258 \(.*256 byte tokens \+ 2 special"):
        train_bpe("abc", 257, special_tokens=["<a>", "<b>"])
    with pytest.raises(ValueError, match="vocab_size"):
        train_bpe_naive("abc", 100)
    with pytest.raises(TypeError, match="^vocab_size must be an integer; got 300.0"):
        train_bpe("abc", 300.0)
    with pytest.raises(TypeError, match="^text must be a str"):
        train_bpe(b"abc", 300)
    with pytest.raises(TypeError, match="^text must be a str; got None"):
        tok.encode(None)
    with pytest.raises(TypeError, match=r"^special_tokens\[1\] must be a str; got 7"):
        train_bpe("abc", 300, special_tokens=[EOT, 7])
    with pytest.raises(ValueError, match=r"^special_tokens\[0\] must be a non-empty str"):
        train_bpe("abc", 300, special_tokens=[""])
    with pytest.raises(TypeError, match="^special_tokens must be a list of str, not one str"):
        train_bpe("abc", 300, special_tokens=EOT)
    with pytest.raises(ValueError, match="^special_tokens must be a list of distinct strings"):
        train_bpe("abc", 300, special_tokens=[EOT, EOT])
    with pytest.raises(ValueError, match=r"^ids\[1\] must be a token id in \[0, 600\); got 600"):
        tok.decode([0, 600])
    with pytest.raises(ValueError, match=r"^ids\[0\] must be a token id in \[0, 600\); got -1"):
        tok.decode([-1])
    with pytest.raises(TypeError, match=r"^ids\[0\] must be an int token id; got 1.5"):
        tok.decode([1.5])
    with pytest.raises(ValueError, match="^min_frequency must be an integer >= 0; got -1"):
        train_bpe("abc", 300, min_frequency=-1)
    with pytest.raises(ValueError, match="^text must be valid Unicode text; it contains a lone surrogate"):
        tok.encode("bad \udc80 text")
    with pytest.raises(ValueError, match="^text must be a non-empty str"):
        compression(tok, "")


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda t: get_stats("abc"), r"^ids must be a sequence of int ids"),
        (lambda t: get_stats([1, 2.5]), r"^ids\[1\] must be an int"),
        (lambda t: get_stats([1, 2], counts=[]), r"^counts must be a dict"),
        (lambda t: merge([1, 2], (1,), 3), r"^pair must be a pair of int ids"),
        (lambda t: merge([1, 2], (1, 2), -3), r"^new_id must be an integer >= 0"),
        (lambda t: t.encode("a", allow_special="no"), r"^allow_special must be True or False"),
        (lambda t: t.token_bytes(600), r"^i must be an integer >= 0 and <= 599; got 600"),
        (lambda t: t.token_str(True), r"^i must be an integer"),
        (lambda t: t.save(None), r"^path must be a file path"),
        (lambda t: BPETokenizer.load(3), r"^path must be a file path"),
        (lambda t: BPETokenizer.from_hf(3), r"^tokenizer must be a tokenizers.Tokenizer or a path"),
        (lambda t: BPETokenizer({0: "a"}, []), r"^vocab\[0\] must be bytes"),
        (lambda t: BPETokenizer(t.vocab, [(1, 2, 3)], t.special_tokens), r"^merges\[0\] must be \(\(left_id"),
        (lambda t: BPETokenizer(t.vocab, t.merges, {EOT: 0}), r"ids exactly 0 .. vocab_size - 1.*no id 1"),
        (lambda t: merge_steps("tok", "a"), r"^tokenizer must be a BPETokenizer"),
        (lambda t: merge_steps(t, "a", upto=-1), r"^upto must be an integer >= 0 and <= 342; got -1"),
        (lambda t: token_spans(object(), "a"), r"^tokenizer must be a BPETokenizer, CharTokenizer"),
        (lambda t: compression(3, "a"), r"^tokenizer_or_encode_fn must be a tokenizer or a function"),
        (lambda t: compression(lambda s: [], "a"), r"^tokenizer_or_encode_fn returned no tokens"),
        (lambda t: train_bpe("abc", 300, special_tokens=[EOT]).encode(b"x"), r"^text must be a str"),
        (lambda t: train_bpe_naive("abc", 300, verbose=1), r"^verbose must be True or False"),
        (lambda t: train_wordpiece("abc", 1), r"^vocab_size must be an integer >= 2"),
        (lambda t: train_wordpiece("abc", 100, special_tokens=[]), r"^special_tokens must be a non-empty list"),
        (lambda t: train_unigram(None, 100), r"^text must be a str"),
        (lambda t: train_bpe_hf("abc", 255), r"^vocab_size must be an integer >= 256"),
    ],
)
def test_every_public_function_checks_its_arguments(tok, call, message):
    with pytest.raises(ArgumentError, match=message):
        call(tok)


def test_get_stats_and_merge_accept_bytes_and_arrays():
    assert get_stats(b"aab") == get_stats([97, 97, 98]) == get_stats(np.array([97, 97, 98]))
    assert merge(b"aab", (97, 97), 256) == [256, 98]


# ---------------------------------------------------------------------------------------------------
# damaged files: one error, naming the file, what is wrong and how to fix it


def test_truncated_tokenizer_file_is_a_clear_error(tok, tmp_path):
    path = tmp_path / "bpe.json"
    tok.save(path)
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(TokenizerFileError) as info:
        BPETokenizer.load(path)
    message = str(info.value)
    assert str(path) in message and "not valid JSON" in message and "line" in message
    assert "truncated" in message and "BPETokenizer.save" in message and "git checkout" in message
    assert info.value.path == path and isinstance(info.value, ValueError)
    path.write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))
    with pytest.raises(TokenizerFileError, match="is not UTF-8 text"):
        BPETokenizer.load(path)
    with pytest.raises(FileNotFoundError):
        BPETokenizer.load(tmp_path / "nothing.json")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.pop("merges"), r"lacks the key 'merges'"),
        (lambda d: d.pop("tokens"), r"lacks the key 'tokens'"),
        (lambda d: d.update(merges={}), r"has 'merges' of type dict, not a JSON array"),
        (lambda d: d.update(format="something-else"), r"is not an llmcourse-bpe version 1 file"),
        (lambda d: d["merges"].__setitem__(3, [1, 2]), r"merges\[3\] must be \[left, right, new\]"),
        (lambda d: d["merges"][5].__setitem__(2, d["merges"][6][2]), r"merges\[5\] = .* must join"),
        (lambda d: d["tokens"].__setitem__(300, "not bytes: \u4e2d"), r"tokens\[300\] must be a string of GPT-2"),
        (lambda d: d["tokens"].pop(), r"ids exactly 0 .. vocab_size - 1|must join"),
        (lambda d: d["special_tokens"].update({EOT: 5}), r"special_tokens\['<\|endoftext\|>'\] = 5"),
    ],
)
def test_edited_tokenizer_file_is_a_clear_error(tok, tmp_path, edit, message):
    path = tmp_path / "bpe.json"
    tok.save(path)
    d = json.loads(path.read_text(encoding="utf-8"))
    edit(d)
    path.write_text(json.dumps(d), encoding="utf-8")
    with pytest.raises(TokenizerFileError, match=message) as info:
        BPETokenizer.load(path)
    assert str(path) in str(info.value) and "BPETokenizer.save" in str(info.value)


def test_damaged_hf_tokenizer_json_is_a_clear_error(tok, tmp_path):
    path = tmp_path / "tokenizer.json"
    tok.save_hf(path)
    good = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(path.read_text(encoding="utf-8")[:-200], encoding="utf-8")
    with pytest.raises(TokenizerFileError, match=r"not valid JSON.*line \d+.*save_hf"):
        BPETokenizer.from_hf(path)
    for edit, message in [
        (lambda d: d["model"].pop("merges"), r"lacks the key 'model.merges'"),
        (lambda d: d.pop("model"), r"has no 'model' object"),
        (lambda d: d["model"]["vocab"].pop("Ġt"), r"needs the token 'Ġt', which is not in model.vocab"),
    ]:
        d = json.loads(json.dumps(good))
        edit(d)
        path.write_text(json.dumps(d), encoding="utf-8")
        with pytest.raises(TokenizerFileError, match=message) as info:
            BPETokenizer.from_hf(path)
        assert str(path) in str(info.value)
    # loading a HF file with load says where to go
    path.write_text(json.dumps(good), encoding="utf-8")
    with pytest.raises(TokenizerFileError, match="from_hf"):
        BPETokenizer.load(path)
