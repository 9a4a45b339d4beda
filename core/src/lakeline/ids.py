"""Record identifiers: random base62 uids, and version stems for versioned records."""

from __future__ import annotations

import os
import secrets
import threading

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
STEM_LENGTH = 12
SUFFIX_LENGTH = 4
VERSIONED_UID_LENGTH = STEM_LENGTH + SUFFIX_LENGTH


# bytes 0..247 map to base62 evenly (4 x 62); 248..255 are dropped (rejection sampling)
_BYTE_TO_BASE62 = bytes(ord(BASE62[b % 62]) for b in range(256))
_REJECTED = bytes(range(248, 256))
_DRAW = 4096  # random bytes drawn from the OS at a time for single uids (~240 uids of 16)


class _Pool:
    """Base62 characters from the OS's random source, drawn 4 KiB at a time: a uid costs a
    slice, not a system call (a capture makes one per engine task). As unpredictable as one
    draw per uid; a forked child forgets its parent's characters (it would repeat them)."""

    def __init__(self) -> None:
        self.chars, self.at = "", 0
        self.lock = threading.Lock()

    def take(self, n_chars: int) -> str:
        with self.lock:
            if self.at + n_chars > len(self.chars):
                fresh = secrets.token_bytes(_DRAW + n_chars)
                self.chars = fresh.translate(_BYTE_TO_BASE62, _REJECTED).decode()
                self.at = 0
                if n_chars > len(self.chars):  # a uid longer than a draw: its own draw
                    return new_uids(1, n_chars)[0]
            start, self.at = self.at, self.at + n_chars
            return self.chars[start : self.at]

    def forget(self) -> None:
        self.chars, self.at = "", 0
        self.lock = threading.Lock()  # a lock held by another thread at the fork stays held


_pool = _Pool()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_pool.forget)


def base62(n_chars: int) -> str:
    """Return a random base62 string of `n_chars` characters."""
    return _pool.take(n_chars)


def new_uids(count: int, n_chars: int = 16) -> list[str]:
    """`count` uids at once: random bytes from the OS, mapped to base62 by `bytes.translate`
    (bytes >= 248 dropped, so every character is uniform), cut into uids. 10k uids take a
    fraction of a millisecond, where one `base62()` each took 6 ms."""
    need = count * n_chars
    chars = b""
    while len(chars) < need:
        chars += secrets.token_bytes(need - len(chars) + need // 30 + 8).translate(
            _BYTE_TO_BASE62, _REJECTED
        )
    text = chars[:need].decode()
    return [text[i : i + n_chars] for i in range(0, need, n_chars)]


def new_uid(n_chars: int = 16) -> str:
    """Return a new globally unique uid for a non-versioned record."""
    return base62(n_chars)


def new_stem() -> str:
    """Return a new version stem (shared by all versions of one thing)."""
    return base62(STEM_LENGTH)


def version_suffix(index: int) -> str:
    """Encode a version index (0, 1, ...) as a fixed-width base62 suffix."""
    if not 0 <= index < 62**SUFFIX_LENGTH:
        raise ValueError(f"version index out of range: {index}")
    chars = []
    for _ in range(SUFFIX_LENGTH):
        index, rem = divmod(index, 62)
        chars.append(BASE62[rem])
    return "".join(reversed(chars))


def suffix_index(suffix: str) -> int:
    """Decode a version suffix back to its index."""
    value = 0
    for char in suffix:
        value = value * 62 + BASE62.index(char)
    return value


_FIRST = "0" * SUFFIX_LENGTH


def versioned_uid(stem: str, index: int) -> str:
    """Return the uid of version `index` of the thing with `stem`."""
    return stem + (_FIRST if index == 0 else version_suffix(index))
