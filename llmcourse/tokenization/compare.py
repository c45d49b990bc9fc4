"""Comparing tokenizers: bytes per token, token-by-token spans for colouring, and a Chinese text.

:func:`compression` and :func:`token_spans` take any tokenizer of the course -- a
:class:`~llmcourse.tokenization.bpe.BPETokenizer`, a :class:`~llmcourse.tokenization.chars.CharTokenizer`
or a Hugging Face ``tokenizers.Tokenizer`` -- so notebook 02 can set them side by side, on English and
on Chinese (:data:`CHINESE_SAMPLE`).

Imports :mod:`.bytelevel`, :mod:`.chars` and :mod:`.bpe`.
"""

from __future__ import annotations

import codecs

from llmcourse.checks import ArgumentError, check_str, fail
from llmcourse.tokenization.bpe import BPETokenizer
from llmcourse.tokenization.bytelevel import _utf8
from llmcourse.tokenization.chars import CharTokenizer

__all__ = ["CHINESE_SAMPLE", "compression", "token_spans"]


def token_spans(tokenizer, text: str) -> list[tuple[str, int]]:
    """``[(token_text, id), ...]`` for colouring ``text`` token by token.

    For :class:`BPETokenizer` and :class:`CharTokenizer` the texts join back to exactly ``text``. A
    byte-level token can hold part of a character (a Chinese character is 3 bytes, often 2 or 3
    tokens); such a character is shown with the token that completes it, and the tokens before it get
    ``''``. For a HF ``tokenizers.Tokenizer`` the token strings are HF's own (``'##ing'``, ``'▁the'``).

        >>> tok = train_bpe("hello hello hello", vocab_size=260)
        >>> [s for s, _ in token_spans(tok, "hello!")]
        ['hello', '!']
    """
    check_str("text", text)
    if isinstance(tokenizer, BPETokenizer):
        ids = tokenizer.encode(text)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        spans = [(decoder.decode(tokenizer._id_bytes[i]), i) for i in ids]
        return spans
    if isinstance(tokenizer, CharTokenizer):
        return [(tokenizer.itos[i], i) for i in tokenizer.encode(text).tolist()]
    if hasattr(tokenizer, "encode") and hasattr(tokenizer, "id_to_token"):  # HF
        enc = tokenizer.encode(text, add_special_tokens=False)
        return list(zip(enc.tokens, enc.ids))
    raise fail("tokenizer", "a BPETokenizer, CharTokenizer or tokenizers.Tokenizer", tokenizer)


def compression(tokenizer_or_encode_fn, text: str) -> float:
    """Bytes of UTF-8 text per token: higher means shorter sequences for the model to read.

    ``tokenizer_or_encode_fn``: a :class:`BPETokenizer` or :class:`CharTokenizer`, a HF
    ``tokenizers.Tokenizer`` (encoded without added special tokens), or any function ``str -> ids``.
    Raw bytes score exactly 1.0; GPT-2's tokenizer gets about 4 on English prose.
    """
    if check_str("text", text) == "":
        raise fail("text", "a non-empty str (the compression of nothing is undefined)", text)
    t = tokenizer_or_encode_fn
    if hasattr(t, "encode") and hasattr(t, "id_to_token"):  # HF tokenizers.Tokenizer
        ids = t.encode(text, add_special_tokens=False).ids
    elif hasattr(t, "encode"):
        ids = t.encode(text)
    elif callable(t):
        ids = t(text)
    else:
        raise fail("tokenizer_or_encode_fn", "a tokenizer or a function str -> ids", t)
    if len(ids) == 0:
        raise ArgumentError("tokenizer_or_encode_fn returned no tokens for a non-empty text")
    return len(_utf8(text)) / len(ids)


# ----------------------------------------------------------------------------------------------------
# a Chinese text for measuring compression (written for this course; free to use with it)

CHINESE_SAMPLE = """\
深夜的机房里，一个小小的语言模型正在读书。它读的不是一页一页的纸，而是一长串数字：每一句话都先被切成小块，再换成编号。起初，它连“的”字后面该接什么都猜不准，常常把“春天”写成“春的天的”，把句号放在一句话的正中间。可是它不着急。每读完一段，它就对照原文，数一数自己猜错了多少，然后把成千上万个参数轻轻地拧动一点点。这一点点的调整，就是它学习的全部秘密。

它看到的世界有些奇怪。在它眼里，一个汉字往往不是一个整体，而是三个字节拼成的碎片；常见的词被粘成一块，少见的词被拆成好几块。英文里的“the”是一个记号，中文里的一个“龘”字却可能要用三个记号才能写完。它并不抱怨，只是默默记住：哪些碎片总是挨在一起，哪些碎片一出现，后面就几乎一定跟着某个字。

日子一天天过去，错误慢慢变少了。它发现“因为”后面常常跟着“所以”，发现引号总是成对出现，发现诗歌喜欢在行尾押韵。没有人告诉它什么是语法，它只是在无数次“猜下一个字”的练习里，自己摸索出了语言的纹理。有时它也会犯傻，把两个毫不相干的故事缝在一起，写出一位在月亮上卖豆腐的将军；可即使是这样的胡话，读起来也像模像样，标点和语气都挑不出毛病。

研究者喜欢用一个数字来衡量它的进步，叫作困惑度。困惑度越低，说明模型对下一个字越有把握。可是数字并不能说明一切。更让人惊讶的，是它学会了在不同的场合换用不同的口吻：写信时客气周到，讲笑话时轻快俏皮，解释一道数学题时一步一步、不慌不忙。它未必理解自己写下的每一个字，却把人类写作的习惯学得惟妙惟肖。有人说这只是高明的鹦鹉学舌，也有人说这正是理解的开端，争论至今没有结果。

也许有一天，它会写出一首让人读了想哭的诗。到那时，我们或许会想起它最初的样子：一个连标点都放不对的学徒，在黑暗里一遍又一遍地练习，只为了把下一个字猜得更准一点。学写作这件事，对人和对机器来说，大概是相通的：读得足够多，错得足够多，再一点一点地改过来。模型是这样，正在读这门课的你，大概也是这样。
"""
