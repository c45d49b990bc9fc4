"""Stage 5, tokenization and packing: documents -> one flat file of token ids that training memory-maps.

:func:`tokenize_documents` encodes every document; :func:`pack_tokens` writes all of them, each
followed by the end-of-text id, as one flat array of ``uint16`` (or ``uint32``) to a ``.bin`` file,
with a JSON *sidecar* beside it that records its dtype, length, byte size and sha256;
:func:`load_packed` checks the pair and memory-maps the ids, and :func:`random_windows` samples
training windows from them.

This module imports nothing else from :mod:`llmcourse.data_pipeline`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from llmcourse.checks import ArgumentError, check_bool, check_int, check_optional, check_strings, fail
from llmcourse.files import sha256_bytes, sha256_file, write_atomic

__all__ = ["PackedFileError", "load_packed", "pack_tokens", "random_windows", "tokenize_documents"]

#: The sidecar's ``format`` and ``version``. Version 2 added ``bytes``; a version 1 sidecar is refused
#: (re-packing writes a version 2 one).
_FORMAT, _VERSION = "llmcourse-packed-tokens", 2

_HOW_TO_FIX = ("re-run the packing (pack_tokens, or run_pipeline with out_path) to write the .bin and its "
               ".json sidecar again")

# Successful sha256 checks of this process: (resolved path, size, mtime_ns, inode, sha256).
_verified: set[tuple] = set()


class PackedFileError(ValueError):
    """A packed ``.bin`` and its ``.json`` sidecar are damaged or do not belong together.

    The message names the file and says how to fix it: re-run the packing.
    """


def _eot_of(tokenizer, eot_id):
    vocab_size = getattr(tokenizer, "vocab_size", None)
    if not isinstance(vocab_size, int) or not hasattr(tokenizer, "encode"):
        raise fail("tokenizer", "an object with encode() and an int vocab_size (e.g. a BPETokenizer)", tokenizer)
    if eot_id is None:
        specials = getattr(tokenizer, "special_tokens", {}) or {}
        if "<|endoftext|>" not in specials:
            raise ArgumentError("eot_id is None and the tokenizer has no '<|endoftext|>' special token; pass "
                                "eot_id")
        eot_id = specials["<|endoftext|>"]
    return check_int("eot_id", eot_id, minimum=0, maximum=vocab_size - 1), vocab_size


def _dtype_for(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.uint32)


def _check_dtype(dtype) -> np.dtype:
    """``dtype`` as ``np.dtype(np.uint16)`` or ``np.dtype(np.uint32)``, else an ArgumentError."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise fail("dtype", "np.uint16 or np.uint32", dtype) from None
    if dt not in (np.dtype(np.uint16), np.dtype(np.uint32)):
        raise fail("dtype", "np.uint16 or np.uint32", dt)
    return dt


def tokenize_documents(docs: Sequence[str], tokenizer, eot_id: int | None = None) -> list[np.ndarray]:
    """Encode each document; one 1-D array of ids per document (uint16 when the vocabulary has at most
    65,536 ids, else uint32).

    Documents are data, not instructions: they are encoded with ``allow_special=False`` (when the
    tokenizer has that option, as :class:`~llmcourse.tokenization.BPETokenizer` does), so a document
    that contains the text ``<|endoftext|>`` cannot end itself early. The end-of-text id is added
    between documents by :func:`pack_tokens`, not here; ``eot_id`` (default: the tokenizer's
    ``<|endoftext|>``) is only checked, and no document may encode to it.

    Args:
        docs: the documents.
        tokenizer: anything with ``encode(str) -> list[int]`` and an int ``vocab_size``.
        eot_id: the end-of-text id.
    """
    docs = check_strings("docs", docs)
    eot_id, vocab_size = _eot_of(tokenizer, eot_id)
    dtype = _dtype_for(vocab_size)
    try:
        tokenizer.encode("", allow_special=False)
        kwargs = {"allow_special": False}
    except TypeError:
        kwargs = {}
    out = []
    for i, doc in enumerate(docs):
        ids = np.asarray(tokenizer.encode(doc, **kwargs), dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
            raise ValueError(f"docs[{i}] encoded to ids outside [0, {vocab_size})")
        if ids.size and (ids == eot_id).any():
            raise ValueError(f"docs[{i}] encoded to the end-of-text id {eot_id}: the tokenizer does not "
                             "keep documents from producing it")
        out.append(ids.astype(dtype))
    return out


def _sidecar(path: Path) -> Path:
    return Path(str(path) + ".json")


def pack_tokens(token_arrays: Sequence, path: str | os.PathLike, eot_id: int, dtype=np.uint16, *,
                vocab_size: int | None = None) -> dict:
    """Write documents' ids as one flat array, each document followed by ``eot_id``, to ``path``.

    The layout, for documents ``d0, d1, ...``::

        d0[0] d0[1] ... EOT d1[0] ... EOT ...        (length = sum of lengths + number of documents)

    This is what nanoGPT's ``train.bin`` holds: raw little-endian integers and nothing else, so
    training can memory-map it and read any window without parsing. Beside it, ``path + ".json"``
    (the *sidecar*) records ``format``, ``version``, ``dtype``, ``length`` (the number of ids),
    ``n_docs``, ``vocab_size``, ``eot_id``, and the ``.bin``'s size in ``bytes`` and ``sha256``;
    :func:`load_packed` checks the pair against each other.

    Both files are written atomically (:func:`llmcourse.files.write_atomic`: a temporary file in the
    same folder, fsynced, renamed over the target), the ``.bin`` first. A crash leaves either the old
    pair, or a new ``.bin`` beside the old sidecar, whose size or sha256 does not match it, which
    :func:`load_packed` rejects. Nothing half-written or mismatched is ever read as data.

    Args:
        token_arrays: one 1-D sequence of ids per document (e.g. from :func:`tokenize_documents`).
        path: the ``.bin`` file.
        eot_id: the end-of-text id.
        dtype: ``np.uint16`` (ids up to 65,535, GPT-2's 50,257 fit) or ``np.uint32``.
        vocab_size: recorded in the sidecar; default ``max(all ids, eot_id) + 1``.

    Returns:
        the sidecar, as a dict.

    Raises:
        ArgumentError (a ValueError and a TypeError): no documents, an id < 0, or an id (or
        ``vocab_size - 1``) that ``dtype`` cannot hold, or an argument of the wrong type.
    """
    if isinstance(token_arrays, np.ndarray) and token_arrays.ndim == 1:
        raise ArgumentError("token_arrays must be a list of arrays, one per document, not one array")
    if isinstance(token_arrays, (str, bytes)) or not isinstance(token_arrays, Iterable):
        raise fail("token_arrays", "a list of 1-D arrays of ids, one per document", token_arrays)
    if not isinstance(path, (str, os.PathLike)):
        raise fail("path", "a str or os.PathLike", path)
    path = Path(path)
    eot_id = check_int("eot_id", eot_id, minimum=0)
    dtype = _check_dtype(dtype)
    vocab_size = check_optional(check_int, "vocab_size", vocab_size, minimum=1)
    arrays = [np.asarray(t) for t in token_arrays]
    if not arrays:
        raise ArgumentError("token_arrays must hold at least one document; got none")
    for i, t in enumerate(arrays):
        if t.ndim != 1 or (t.size and not np.issubdtype(t.dtype, np.integer)):
            raise ArgumentError(f"token_arrays[{i}] must be a 1-D array of ints; got dtype {t.dtype}, "
                                f"shape {t.shape}")
    lows = [int(t.min()) for t in arrays if t.size]
    highs = [int(t.max()) for t in arrays if t.size]
    if lows and min(lows) < 0:
        raise ArgumentError(f"token ids must be >= 0; token_arrays holds {min(lows)}")
    max_id = max(highs + [eot_id])
    if vocab_size is None:
        vocab_size = max_id + 1
    if max_id >= vocab_size:
        raise ArgumentError(f"id {max_id} is outside vocab_size={vocab_size}")
    limit = int(np.iinfo(dtype).max)
    if vocab_size - 1 > limit:
        raise ArgumentError(f"dtype {dtype} holds ids up to {limit}, but vocab_size={vocab_size}; "
                            f"use dtype=np.uint32")
    eot = np.array([eot_id], dtype=dtype)
    flat = np.concatenate([piece for t in arrays for piece in (t.astype(dtype), eot)])
    data = flat.astype(dtype.newbyteorder("<")).tobytes()
    meta = {
        "format": _FORMAT,
        "version": _VERSION,
        "dtype": dtype.name,
        "length": int(flat.size),
        "n_docs": len(arrays),
        "vocab_size": vocab_size,
        "eot_id": eot_id,
        "bytes": len(data),
        "sha256": sha256_bytes(data),
    }
    write_atomic(path, data)
    write_atomic(_sidecar(path), (json.dumps(meta, indent=2) + "\n").encode("utf-8"))
    return meta


def _read_sidecar(path: Path, side: Path) -> dict:
    """The sidecar of ``path``, checked for shape and self-consistency (not yet against the .bin)."""
    try:
        meta = json.loads(side.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PackedFileError(f"{side}: the sidecar of {path} is damaged (not valid JSON: {e}), so the "
                              f".bin cannot be checked; {_HOW_TO_FIX}") from None
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise PackedFileError(f"{side}: not an {_FORMAT} sidecar, so {path} cannot be checked; {_HOW_TO_FIX}")
    if meta.get("version") != _VERSION:
        raise PackedFileError(f"{side}: an {_FORMAT} sidecar of version {meta.get('version')!r}, but this "
                              f"package reads version {_VERSION} (which records the file's size); {_HOW_TO_FIX}")

    def bad(field: str, expected: str):
        return PackedFileError(f"{side}: the sidecar of {path} is damaged: {field} must be {expected}; got "
                               f"{meta.get(field)!r}; {_HOW_TO_FIX}")

    if meta.get("dtype") not in ("uint16", "uint32"):
        raise bad("dtype", "'uint16' or 'uint32'")
    for name, low in (("length", 1), ("bytes", 1), ("n_docs", 1), ("vocab_size", 1), ("eot_id", 0)):
        value = meta.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise bad(name, f"an int >= {low}")
    sha = meta.get("sha256")
    if not isinstance(sha, str) or len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise bad("sha256", "64 hex digits")
    itemsize = np.dtype(meta["dtype"]).itemsize
    if meta["bytes"] != meta["length"] * itemsize:
        raise PackedFileError(f"{side}: the sidecar of {path} is damaged: it says {meta['length']:,} "
                              f"{meta['dtype']} ids but {meta['bytes']:,} bytes (not {meta['length'] * itemsize:,}); "
                              f"{_HOW_TO_FIX}")
    return meta


def load_packed(path: str | os.PathLike, *, check_hash: bool = True) -> np.memmap:
    """Memory-map a file written by :func:`pack_tokens`, read-only, after checking it against its sidecar.

    Always checked: the sidecar is whole and ours, and the ``.bin``'s size equals the sidecar's
    ``bytes`` and ``length * itemsize`` (a truncated or grown file, or a new ``.bin`` of another
    length beside an old sidecar, fails here). With ``check_hash=True`` (the default) the ``.bin``'s
    SHA-256 must equal the sidecar's too, which catches changed bytes and a new ``.bin`` of the same
    length beside an old sidecar; it reads the whole file once, and a successful check is remembered
    for this process (keyed on path, size, modification time and inode), so loading the same file
    again does not hash it again. ``check_hash=False`` skips only the hash.

    Returns:
        a read-only ``np.memmap`` of shape ``(length,)`` and the sidecar's dtype.

    Raises:
        FileNotFoundError: the ``.bin`` or its ``.json`` sidecar is missing.
        PackedFileError (a ValueError): the sidecar is damaged or not ours, or the two files do not match
            (size or sha256). The message names the file and says to re-run the packing.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise fail("path", "a str or os.PathLike", path)
    path = Path(path)
    check_hash = check_bool("check_hash", check_hash)
    side = _sidecar(path)
    if not path.is_file():
        raise FileNotFoundError(f"path {str(path)!r}: no such file (write it with pack_tokens)")
    if not side.is_file():
        raise FileNotFoundError(f"{str(side)!r}: the sidecar of {str(path)!r} is missing, so its dtype and "
                                f"length are unknown; {_HOW_TO_FIX}")
    meta = _read_sidecar(path, side)
    dtype = np.dtype(meta["dtype"]).newbyteorder("<")
    length, expected = meta["length"], meta["sha256"]
    st = path.stat()
    if st.st_size != meta["bytes"]:
        raise PackedFileError(f"{path} has {st.st_size:,} bytes but its sidecar {side.name} says {length:,} x "
                              f"{dtype.name} = {meta['bytes']:,} bytes: the file and sidecar do not match (the "
                              f"packing was interrupted, or the file was truncated or changed); {_HOW_TO_FIX}")
    if check_hash:
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino, expected)
        if key not in _verified:
            actual = sha256_file(path)
            if actual != expected:
                raise PackedFileError(f"{path}: sha256 does not match its sidecar {side.name} (expected "
                                      f"{expected[:12]}..., got {actual[:12]}...): the file and sidecar do "
                                      f"not match (the packing was interrupted, or the file was changed); "
                                      f"{_HOW_TO_FIX}")
            _verified.add(key)
    return np.memmap(path, dtype=dtype, mode="r", shape=(length,))


def random_windows(tokens, batch_size: int, seq_len: int, generator=None):
    """A batch of random training windows: ``x = tokens[i : i + seq_len]``, ``y = tokens[i + 1 : i +
    seq_len + 1]`` (the next token at every position), for ``batch_size`` random starts ``i``.

    Windows ignore document boundaries: a window may hold the end of one document, ``EOT``, and the
    start of the next, which is how GPT-2 was trained, and is why the model learns what ``EOT`` means.

    Args:
        tokens: a 1-D array (e.g. :func:`load_packed`'s memmap) or tensor of ids.
        batch_size, seq_len: at least 1; ``len(tokens) >= seq_len + 1``.
        generator: a ``torch.Generator`` for the starts (repeatable batches), or None.

    Returns:
        ``(x, y)``, each a ``torch.int64`` tensor of shape ``(batch_size, seq_len)``.
    """
    import torch

    batch_size = check_int("batch_size", batch_size, minimum=1)
    seq_len = check_int("seq_len", seq_len, minimum=1)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise fail("generator", "a torch.Generator or None", generator)
    if isinstance(tokens, torch.Tensor):
        tokens = tokens.detach().cpu().numpy()
    if not isinstance(tokens, np.ndarray):
        raise fail("tokens", "a 1-D numpy array, memmap or tensor", tokens)
    if tokens.ndim != 1:
        raise ArgumentError(f"tokens must be 1-D; got shape {tokens.shape}")
    if not np.issubdtype(tokens.dtype, np.integer):
        raise ArgumentError(f"tokens must hold integer ids; got dtype {tokens.dtype}")
    if len(tokens) < seq_len + 1:
        raise ArgumentError(f"tokens has {len(tokens)} ids, too few for seq_len={seq_len} (need seq_len + 1)")
    starts = torch.randint(0, len(tokens) - seq_len, (batch_size,), generator=generator).numpy()
    idx = starts[:, None] + np.arange(seq_len + 1)
    window = torch.from_numpy(np.asarray(tokens[idx], dtype=np.int64))
    return window[:, :-1].contiguous(), window[:, 1:].contiguous()
