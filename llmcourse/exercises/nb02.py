"""Checkers for notebook 02 (tokenization)."""

from llmcourse.exercises import Incorrect, check_function, exercise, expect_number
from llmcourse.tokenization import get_stats

BANANA = "banana bandana"


@exercise(
    "02.1",
    "The most frequent pair of adjacent ids in list('banana bandana'.encode('utf-8')), as a tuple of "
    "two ids.",
    hints=[
        "Write the word out as bytes: b=98, a=97, n=110, d=100, space=32. Then count every adjacent pair, "
        "across the space too (there is no pre-tokenization here).",
        "'an' occurs twice in 'banana' and twice in 'bandana'.",
    ],
)
def _most_frequent_pair(answer):
    counts = get_stats(list(BANANA.encode("utf-8")))
    best = max(counts, key=lambda p: (counts[p], -p[0], -p[1]))
    if isinstance(answer, (str, bytes)):
        raise Incorrect(
            f"Give the pair as two ids, e.g. (98, 97) for 'ba', not {answer!r}: ord('b') is 98."
        )
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        raise Incorrect(f"Give a tuple of two ids, such as (98, 97); got {answer!r}.")
    try:
        pair = (int(answer[0]), int(answer[1]))
    except (TypeError, ValueError):
        raise Incorrect(f"Both items of the pair must be ids (ints); got {answer!r}.") from None
    if pair == best:
        return f"(97, 110) is 'an', {counts[best]} times: the first merge BPE would learn on this text."
    if pair[::-1] == best:
        raise Incorrect(f"{pair} is '{bytes(pair).decode()}': the order matters; the pair is (left, right).")
    if pair in counts:
        raise Incorrect(
            f"{pair} is {bytes(pair).decode()!r}, which occurs {counts[pair]} "
            f"{'time' if counts[pair] == 1 else 'times'}; another pair occurs more often."
        )
    raise Incorrect(f"{pair} never occurs in the text: are these the UTF-8 byte values (ord('a') == 97)?")


def _as_merges(got):
    """The learner's merges as [((a, b), new_id), ...], or None when they have another shape."""
    try:
        return [((int(p[0]), int(p[1])), int(n)) for p, n in got]
    except (TypeError, ValueError, IndexError):
        return None


def _same_merges(got, expected):
    return isinstance(got, (list, tuple)) and _as_merges(got) == expected


@exercise(
    "02.2",
    "Write bpe_train(ids, n_merges): learn up to n_merges merges on one list of ids and return "
    "[((left, right), new_id), ...], new ids from 256 up.",
    hints=[
        "Loop n_merges times: count the pairs (get_stats), pick one, give it the id 256 + len(merges), "
        "replace it everywhere (merge), record ((left, right), new_id).",
        "The most frequent pair, ties going to the smallest pair: min(stats, key=lambda p: (-stats[p], p)). "
        "Stop early when no pair is left (a single id).",
    ],
)
def _bpe_train(fn):
    if not callable(fn):
        raise Incorrect(f"Pass the function itself, e.g. check('02.2', bpe_train); got {fn!r}.")
    # Targeted messages for the two usual slips, before the generic case-by-case check.
    try:
        got = fn(list(b"aaabdaaabac"), 3)
    except Exception:  # reported with its inputs by check_function below
        got = None
    merges = _as_merges(got) if isinstance(got, (list, tuple)) else None
    if merges and len(merges) >= 2 and merges[0] == ((97, 97), 256) and merges[1][0] == (256, 97):
        raise Incorrect(
            "bpe_train(list(b'aaabdaaabac'), 3): after the first merge, (256, 97) and (97, 98) both occur "
            "twice, and you picked (256, 97), the one seen first (what max(stats, key=stats.get) does). "
            "The rule is: ties go to the smallest pair, so (97, 98)."
        )
    if merges and merges[0][1] != 256:
        raise Incorrect(f"The first new id should be 256 (ids 0..255 are the bytes); yours is {merges[0][1]}.")
    try:
        fn([7], 3)
    except Exception as exc:
        raise Incorrect(
            f"bpe_train([7], 3) raised {type(exc).__name__}: {exc}. A single id has no pairs: stop the loop "
            "when get_stats returns nothing, and return the merges learned so far."
        ) from None
    check_function(
        fn,
        [
            ((list(b"aaabdaaabac"), 3), [((97, 97), 256), ((97, 98), 257), ((256, 257), 258)]),
            (([1, 2, 1, 2], 1), [((1, 2), 256)]),
            (([5, 5, 5, 5], 2), [((5, 5), 256), ((256, 256), 257)]),
            (([3, 1, 2, 1, 3], 1), [((1, 2), 256)]),
            (([1, 2, 3], 5), [((1, 2), 256), ((256, 3), 257)]),
            (([7], 3), []),
        ],
        name="bpe_train",
        close=_same_merges,
    )
    return "That is the whole of BPE training; the package adds pre-tokenization, special tokens and speed."


@exercise(
    "02.3",
    "How many merges must byte-level BPE learn for a vocabulary of 1024 ids with one special token "
    "(<|endoftext|>)?",
    hints=[
        "Every id is either a byte, a special token or the result of a merge.",
        "1024 - 256 bytes - 1 special token.",
    ],
)
def _n_merges(answer):
    if isinstance(answer, float) and answer.is_integer():
        answer = int(answer)
    expect_number(
        answer,
        1024 - 256 - 1,
        rel_tol=1e-9,
        what="Your number of merges",
        mistakes={
            1024 - 256: "you left out the special token: it takes an id too, and no merge makes it.",
            1024 - 1: "the 256 byte tokens are there before any merge; subtract them too.",
            1024.0: "that is the vocabulary size; the bytes and the special token are not merges.",
            1024 - 256 + 1: "the special token takes an id away from the merges, so subtract it.",
        },
    )
    return "767 merges. GPT-2 is the same sum at scale: 256 bytes + 50,000 merges + <|endoftext|> = 50,257."


@exercise(
    "02.4",
    "A tokenizer encodes the text 'naïve 東京' as 6 tokens. What is its compression, in UTF-8 bytes per "
    "token?",
    hints=[
        "Count bytes, not characters: len('naïve 東京'.encode('utf-8')). 'ï' takes 2 bytes, each Chinese "
        "character 3.",
        "13 bytes / 6 tokens.",
    ],
)
def _bytes_per_token(answer):
    n_bytes, n_chars = len("naïve 東京".encode("utf-8")), len("naïve 東京")
    expect_number(
        answer,
        n_bytes / 6,
        rel_tol=0.005,
        what="Your bytes per token",
        mistakes={
            n_chars / 6: "that is characters per token; count UTF-8 bytes (ï is 2 bytes, 東 and 京 3 each).",
            6 / n_bytes: "that is tokens per byte; compression is bytes divided by tokens.",
            (n_chars - 1) / 6: "that is characters per token without the space; count UTF-8 bytes.",
            (n_bytes - 1) / 6: "the space is a byte too.",
        },
    )
    return "13 / 6 ≈ 2.17 bytes per token."
