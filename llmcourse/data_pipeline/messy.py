"""A corpus made messy on purpose, with known ground truth: the test bed of every pipeline stage.

To measure a filter we need to know the right answers. :func:`make_messy_corpus` cuts clean text
(Shakespeare) into documents with :func:`split_documents` and injects junk (cookie banners, menus,
symbol lines, a line of verse repeated, ...), exact copies, near copies and PII, recording exactly what
it injected where in a :class:`MessyCorpus`.

This module imports nothing else from :mod:`llmcourse.data_pipeline`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from llmcourse.checks import ArgumentError, check_fraction, check_int, check_optional, check_str, fail

__all__ = ["JUNK_KINDS", "MessyCorpus", "make_messy_corpus", "split_documents"]


#: The kinds of junk document :func:`make_messy_corpus` injects.
JUNK_KINDS: tuple[str, ...] = ("cookie", "subscribe", "menu", "symbols", "repeated_line", "short", "table")

_COOKIE_LINES = [
    "We use cookies to improve your experience on our website.",
    "By continuing to browse this site, you agree to our use of cookies.",
    "This website uses cookies and similar technologies to personalise content and ads, to provide "
    "social media features and to analyse our traffic.",
    "We also share information about your use of our site with our advertising and analytics partners.",
    "For more information, please read our Privacy Policy and our Terms of Use.",
    "Accept all cookies",
    "Reject non-essential cookies",
    "Manage cookie preferences",
    "Strictly necessary cookies are always active and cannot be switched off.",
    "You can change your cookie settings at any time by clicking the link in the footer.",
]
_SUBSCRIBE_LINES = [
    "Subscribe now and get 20% off your first order!",
    "Join our newsletter for the latest news, offers and updates, delivered straight to your inbox.",
    "Enter your e-mail address below and click Sign up.",
    "Sign up",
    "No spam, ever. Unsubscribe at any time.",
    "Already a subscriber? Log in to manage your account.",
    "Follow us on Facebook, Twitter and Instagram.",
    "Subscribe now to unlock unlimited access to all our articles for just $1 a week.",
    "Don't miss out! Subscribe now.",
]
_MENU_ITEMS = ["Home", "About us", "Products", "Services", "Blog", "Shop", "Contact", "FAQ", "Careers",
               "Login", "Register", "Cart (0)", "Search", "Help", "Sitemap", "News", "Events", "Gallery",
               "Downloads", "Support", "Pricing", "Team", "Press", "Partners"]
_SHORT_LINES = ["Loading...", "404 Not Found", "Page not found.", "Click here to continue.",
                "Skip to main content", "Share this:", "Posted in Uncategorized", "Read more »",
                "JavaScript is disabled in your browser.", "Please enable cookies.", "Next page →",
                "Comments are closed.", "Tags: news, update"]
_FIRST_NAMES = ["anne", "will", "richard", "mary", "john", "susanna", "hamnet", "judith", "ben", "kit"]
_LAST_NAMES = ["hathaway", "shakespeare", "burbage", "arden", "hall", "quiney", "jonson", "marlowe"]
_DOMAINS = ["example.com", "mail.example.org", "globe-theatre.co.uk", "stratford.ac.uk", "post.example.net",
            "letters.avon.example"]


def split_documents(text: str, min_chars: int = 400, max_chars: int = 2000, seed: int = 0) -> list[str]:
    """Cut ``text`` into documents of whole paragraphs (blocks separated by a blank line).

    For each document a target length is drawn uniformly from ``[min_chars, max_chars]``, and
    consecutive paragraphs (Shakespeare's speeches) are joined with ``"\\n\\n"`` until the document is at
    least that long. A paragraph is never cut, so one long speech can make a document longer than
    ``max_chars``; a short remainder at the end is joined to the last document.

        >>> split_documents("A:\\nhi\\n\\nB:\\nho", min_chars=1, max_chars=1)
        ['A:\\nhi', 'B:\\nho']
    """
    text = check_str("text", text)
    min_chars = check_int("min_chars", min_chars, minimum=1)
    max_chars = check_int("max_chars", max_chars, minimum=min_chars)
    seed = check_int("seed", seed, minimum=0)
    rng = random.Random(seed)
    paragraphs = [p.strip("\n") for p in text.split("\n\n") if p.strip()]
    docs: list[str] = []
    current: list[str] = []
    size, target = 0, rng.randint(min_chars, max_chars)
    for p in paragraphs:
        current.append(p)
        size += len(p) + 2
        if size - 2 >= target:
            docs.append("\n\n".join(current))
            current, size, target = [], 0, rng.randint(min_chars, max_chars)
    if current:
        rest = "\n\n".join(current)
        if docs and len(rest) < min_chars:
            docs[-1] += "\n\n" + rest
        else:
            docs.append(rest)
    return docs


def _junk_doc(kind: str, rng: random.Random, line_pool: Sequence[str]) -> str:
    """One junk document of the given kind; see :data:`JUNK_KINDS`."""
    if kind == "cookie":
        return "\n".join(rng.sample(_COOKIE_LINES, rng.randint(4, len(_COOKIE_LINES))))
    if kind == "subscribe":
        return "\n".join(rng.sample(_SUBSCRIBE_LINES, rng.randint(4, len(_SUBSCRIBE_LINES))))
    if kind == "menu":
        sep = rng.choice([" | ", "\n", " > ", " · "])
        lines = [sep.join(rng.sample(_MENU_ITEMS, rng.randint(5, 10))) for _ in range(rng.randint(2, 5))]
        return "\n".join(lines)
    if kind == "symbols":
        lines = []
        for _ in range(rng.randint(3, 12)):
            ch = rng.choice("=-*#~_+.<>/")
            lines.append((ch if rng.random() < 0.5 else ch + " ") * rng.randint(10, 40))
        return "\n".join(lines)
    if kind == "repeated_line":
        # The sneakiest junk: a real line of verse, which passes every word-level test, repeated.
        line = rng.choice(line_pool)
        return "\n".join([line] * rng.randint(15, 60))
    if kind == "short":
        return "\n".join(rng.sample(_SHORT_LINES, rng.randint(1, 3)))
    if kind == "table":
        rows = ["SKU | Price | Qty | Total"]
        for _ in range(rng.randint(8, 30)):
            price, qty = rng.randint(100, 99_999) / 100, rng.randint(1, 12)
            rows.append(f"{rng.randint(10_000, 99_999)} | ${price:.2f} | {qty} | ${price * qty:.2f}")
        return "\n".join(rows)
    raise ValueError(f"kind must be one of {JUNK_KINDS}; got {kind!r}")


def _whitespace_variant(doc: str, rng: random.Random) -> str:
    """The same text with only its whitespace changed: trailing spaces on some lines, some spaces
    doubled, Windows line ends, a trailing newline. :func:`normalize_whitespace` undoes all of it."""
    lines = doc.split("\n")
    out = []
    for line in lines:
        if rng.random() < 0.2:
            line = line.replace(" ", "  ", 1)
        if rng.random() < 0.2:
            line += " "
        out.append(line)
    sep = "\r\n" if rng.random() < 0.5 else "\n"
    return sep.join(out) + "\n"


def _near_copy(doc: str, rng: random.Random, rate: float, word_pool: Sequence[str]) -> str:
    """``doc`` with ``max(1, round(rate * words))`` word edits (each a replacement, deletion or
    insertion, at distinct positions) and some whitespace changed."""
    lines = [line.split(" ") for line in doc.split("\n")]
    positions = [(li, wi) for li, words in enumerate(lines) for wi, w in enumerate(words) if w]
    n_edits = min(len(positions), max(1, round(rate * len(positions))))
    # Edit from the end backwards, so that earlier positions stay valid.
    for li, wi in sorted(rng.sample(positions, n_edits), reverse=True):
        words = lines[li]
        op = rng.choice(("replace", "delete", "insert"))
        if op == "delete" and len(words) > 1:
            del words[wi]
        elif op == "insert":
            words.insert(wi + 1, rng.choice(word_pool))
        else:
            new = rng.choice(word_pool)
            for _ in range(100):  # a different word (the pool has thousands)
                if new.lower() != words[wi].lower().strip(".,;:!?'-"):
                    break
                new = rng.choice(word_pool)
            words[wi] = new
    text = "\n".join(" ".join(words) for words in lines)
    return _whitespace_variant(text, rng) if rng.random() < 0.5 else text


def _pii_value(kind: str, rng: random.Random) -> str:
    if kind == "email":
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        local = rng.choice([f"{first}.{last}", f"{first}_{last}{rng.randint(1, 99)}", f"{first[0]}{last}",
                            f"{first}.{last}+{rng.choice(['plays', 'news', 'globe'])}"])
        return f"{local}@{rng.choice(_DOMAINS)}"
    if kind == "phone":
        a, b, c = rng.randint(200, 999), rng.randint(200, 999), rng.randint(0, 9999)
        fmt = rng.randrange(6)
        if fmt == 0:
            return f"({a}) {b}-{c:04d}"
        if fmt == 1:
            return f"{a}-{b}-{c:04d}"
        if fmt == 2:
            return f"{a}.{b}.{c:04d}"
        if fmt == 3:
            return f"+1 {a} {b} {c:04d}"
        if fmt == 4:
            return f"+44 20 {rng.randint(7000, 8999)} {c:04d}"
        return f"+33 1 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}"
    if kind == "ip":
        return ".".join(str(rng.randint(0, 255)) for _ in range(4))
    raise ValueError(f"kind must be 'email', 'phone' or 'ip'; got {kind!r}")


def _insert_pii(doc: str, values: Sequence[str], rng: random.Random) -> str:
    """Insert each value as a word of its own, at a random word boundary of a verse line (a line
    that is not a speaker's name), one value per line."""
    lines = doc.split("\n")
    verse = [i for i, line in enumerate(lines) if line.strip() and not line.endswith(":")]
    # Distinct lines where possible, so that two values are never side by side (a regex would read
    # "+44 20 7946 0958 555 123 4567" as one over-long number).
    chosen = rng.sample(verse, len(values)) if len(verse) >= len(values) else [rng.choice(verse) for _ in values]
    for value, li in zip(values, chosen):
        words = lines[li].split(" ")
        words.insert(rng.randint(0, len(words)), value)
        lines[li] = " ".join(words)
    return "\n".join(lines)


@dataclass
class MessyCorpus:
    """A corpus with known faults, from :func:`make_messy_corpus`. All indices are into ``docs``.

    Attributes:
        docs: the documents, shuffled.
        junk: ``{index: kind}`` for every injected junk document (kinds: :data:`JUNK_KINDS`).
        exact_of: ``{copy index: original index}``; the copy is the original byte for byte, or with only
            its whitespace changed (so it is exact after :func:`normalize_whitespace`).
        near_of: ``{copy index: original index}``; a few percent of the words replaced, deleted or
            inserted, and sometimes the whitespace changed.
        pii: ``[(index, kind, value), ...]``, kind ``"email"``, ``"phone"`` or ``"ip"``: every PII string
            inserted. PII goes only into documents that have no copies.
        n_clean: how many documents came from the clean text (originals included, copies not).
    """

    docs: list[str]
    junk: dict[int, str]
    exact_of: dict[int, int]
    near_of: dict[int, int]
    pii: list[tuple[int, str, str]]
    n_clean: int

    @property
    def clean(self) -> list[int]:
        """Indices of the documents cut from the clean text (PII inserted or not; copies excluded)."""
        faulty = set(self.junk) | set(self.exact_of) | set(self.near_of)
        return [i for i in range(len(self.docs)) if i not in faulty]

    @property
    def exact_pairs(self) -> set[tuple[int, int]]:
        """The injected exact duplicates as pairs ``(i, j)``, ``i < j``."""
        return {(min(c, o), max(c, o)) for c, o in self.exact_of.items()}

    @property
    def near_pairs(self) -> set[tuple[int, int]]:
        """The injected near duplicates as pairs ``(i, j)``, ``i < j``."""
        return {(min(c, o), max(c, o)) for c, o in self.near_of.items()}

    def __repr__(self) -> str:
        return (f"MessyCorpus(docs={len(self.docs)}, clean={self.n_clean}, junk={len(self.junk)}, "
                f"exact_copies={len(self.exact_of)}, near_copies={len(self.near_of)}, "
                f"pii_strings={len(self.pii)})")


def make_messy_corpus(text: str, n_docs: int | None = 1000, seed: int = 0, *, junk_frac: float = 0.1,
                      exact_frac: float = 0.05, near_frac: float = 0.05, pii_frac: float = 0.05,
                      near_edit_rate: tuple[float, float] = (0.01, 0.03), min_chars: int = 400,
                      max_chars: int = 2000) -> MessyCorpus:
    """Cut clean text into documents and make the collection messy on purpose, recording what was done.

    Args:
        text: clean text with paragraphs separated by blank lines, e.g.
            ``llmcourse.datasets.load_shakespeare("train")``.
        n_docs: how many clean documents to draw (a random subset, in text order) from those
            :func:`split_documents` cuts; ``None`` for all of them.
        seed: everything (cutting, choices, edits, shuffle) is drawn from ``random.Random(seed)``.
        junk_frac, exact_frac, near_frac: how many junk documents, exact copies and near copies to add,
            each as a fraction of the number of clean documents (rounded). An original is copied at
            most once, exactly or nearly, so every copy has exactly one partner.
        pii_frac: the fraction of clean documents that get 1 to 3 PII strings (e-mail, phone, IPv4).
        near_edit_rate: ``(low, high)``; each near copy edits a fraction of its words drawn uniformly
            from this range (at least one edit).
        min_chars, max_chars: document lengths for :func:`split_documents`.

    Returns:
        a :class:`MessyCorpus`: ``n_clean * (1 + junk_frac + exact_frac + near_frac)`` documents
        (rounded), shuffled, with the ground truth.
    """
    text = check_str("text", text)
    n_docs = check_optional(check_int, "n_docs", n_docs, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    fracs = {name: check_fraction(name, v) for name, v in
             (("junk_frac", junk_frac), ("exact_frac", exact_frac), ("near_frac", near_frac),
              ("pii_frac", pii_frac))}
    if (not isinstance(near_edit_rate, (tuple, list)) or len(near_edit_rate) != 2
            or not all(isinstance(r, (int, float)) and not isinstance(r, bool) for r in near_edit_rate)
            or not 0 < near_edit_rate[0] <= near_edit_rate[1] < 1):
        raise fail("near_edit_rate", "a pair (low, high) with 0 < low <= high < 1", near_edit_rate)
    min_chars = check_int("min_chars", min_chars, minimum=1)
    max_chars = check_int("max_chars", max_chars, minimum=min_chars)
    rng = random.Random(seed)
    pieces = split_documents(text, min_chars, max_chars, seed=rng.randrange(2**32))
    if n_docs is None:
        clean = pieces
    else:
        if n_docs > len(pieces):
            raise ArgumentError(f"n_docs={n_docs} is more than the {len(pieces)} documents the text holds "
                                f"(with min_chars={min_chars}, max_chars={max_chars}); use n_docs=None for all")
        clean = [pieces[i] for i in sorted(rng.sample(range(len(pieces)), n_docs))]
    n = len(clean)
    n_junk, n_exact, n_near = (round(fracs[k] * n) for k in ("junk_frac", "exact_frac", "near_frac"))
    n_pii = round(fracs["pii_frac"] * n)
    if n_exact + n_near + n_pii > n:
        raise ArgumentError(f"exact_frac + near_frac + pii_frac must be <= 1 (each original gets at most one "
                            f"of: an exact copy, a near copy, PII); got {n_exact + n_near + n_pii} of {n}")

    # Pools of real words and lines, for edits and for the repeated-line junk.
    word_pool = [w for d in clean for w in d.split() if w.isalpha()]
    line_pool = [line for d in clean for line in d.split("\n") if len(line.split()) >= 5]
    if not word_pool or not line_pool:
        raise ArgumentError("text has too few words to build a corpus from (need lines of 5 or more words)")

    # Which originals get an exact copy, a near copy, PII: disjoint sets.
    order = rng.sample(range(n), n)
    exact_src, near_src = order[:n_exact], order[n_exact:n_exact + n_near]
    pii_src = order[n_exact + n_near:n_exact + n_near + n_pii]

    # records: (text, role, payload); role in clean / junk / exact / near
    docs = list(clean)
    pii_values: dict[int, list[tuple[str, str]]] = {}
    for i in pii_src:
        kinds = [rng.choice(("email", "phone", "ip")) for _ in range(rng.randint(1, 3))]
        values = [(k, _pii_value(k, rng)) for k in kinds]
        docs[i] = _insert_pii(docs[i], [v for _, v in values], rng)
        pii_values[i] = values
    records: list[tuple[str, str, object]] = [(d, "clean", i) for i, d in enumerate(docs)]
    for i in exact_src:
        copy = docs[i] if rng.random() < 0.5 else _whitespace_variant(docs[i], rng)
        records.append((copy, "exact", i))
    for i in near_src:
        records.append((_near_copy(docs[i], rng, rng.uniform(*near_edit_rate), word_pool), "near", i))
    for k in range(n_junk):
        kind = JUNK_KINDS[k % len(JUNK_KINDS)]
        records.append((_junk_doc(kind, rng, line_pool), "junk", kind))
    rng.shuffle(records)

    position = {payload: pos for pos, (_, role, payload) in enumerate(records) if role == "clean"}
    out = MessyCorpus(docs=[r[0] for r in records], junk={}, exact_of={}, near_of={}, pii=[], n_clean=n)
    for pos, (_, role, payload) in enumerate(records):
        if role == "junk":
            out.junk[pos] = payload
        elif role == "exact":
            out.exact_of[pos] = position[payload]
        elif role == "near":
            out.near_of[pos] = position[payload]
        elif payload in pii_values:
            out.pii += [(pos, kind, value) for kind, value in pii_values[payload]]
    out.pii.sort()
    return out

