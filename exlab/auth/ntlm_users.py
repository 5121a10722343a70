"""The NTLM acceptor's user file: NT hashes of the lab's logins, readable by this user only.

pyspnego's NTLM acceptor looks users up in the file named by `NTLM_USER_FILE`. We write it
in smbpasswd form (hashes, no plaintext) into a private temporary directory and remove it
when the authenticator goes away.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
import weakref
from collections.abc import Mapping
from pathlib import Path

_MASK = 0xFFFFFFFF


def _rotl(x: int, n: int) -> int:
    x &= _MASK
    return ((x << n) | (x >> (32 - n))) & _MASK


def md4(data: bytes) -> bytes:
    """MD4 (RFC 1320): OpenSSL 3 no longer offers it, and the NT hash is defined on it."""
    length_bits = (len(data) * 8) & 0xFFFFFFFFFFFFFFFF
    msg = data + b"\x80" + b"\x00" * ((55 - len(data)) % 64) + struct.pack("<Q", length_bits)
    a, b, c, d = 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476
    for off in range(0, len(msg), 64):
        x = struct.unpack("<16I", msg[off : off + 64])
        aa, bb, cc, dd = a, b, c, d

        def f(x_: int, y: int, z: int) -> int:
            return (x_ & y) | (~x_ & z)

        def g(x_: int, y: int, z: int) -> int:
            return (x_ & y) | (x_ & z) | (y & z)

        def h(x_: int, y: int, z: int) -> int:
            return x_ ^ y ^ z

        for i in range(16):  # round 1
            k, s = i, (3, 7, 11, 19)[i % 4]
            t = _rotl(a + f(b, c, d) + x[k], s)
            a, b, c, d = d, t, b, c
        for i in range(16):  # round 2
            k, s = (i % 4) * 4 + i // 4, (3, 5, 9, 13)[i % 4]
            t = _rotl(a + g(b, c, d) + x[k] + 0x5A827999, s)
            a, b, c, d = d, t, b, c
        order = (0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15)
        for i in range(16):  # round 3
            k, s = order[i], (3, 9, 11, 15)[i % 4]
            t = _rotl(a + h(b, c, d) + x[k] + 0x6ED9EBA1, s)
            a, b, c, d = d, t, b, c
        a, b, c, d = (a + aa) & _MASK, (b + bb) & _MASK, (c + cc) & _MASK, (d + dd) & _MASK
    return struct.pack("<4I", a, b, c, d)


def nt_hash(password: str) -> bytes:
    """MS-NLMP NTOWFv1: MD4 of the UTF-16LE password."""
    return md4(password.encode("utf-16-le"))


def login_names(address: str, domain: str) -> list[str]:
    """The names an NTLM client may send for one mailbox (user part and domain part)."""
    local = address.split("@", 1)[0]
    netbios = domain.split(".", 1)[0].upper()
    return [address, local, f"{netbios}\\{local}", f"{domain.upper()}\\{local}"]


class NtlmUserFile:
    """A private smbpasswd file for `passwords` (address -> password); removed on `close()`."""

    def __init__(self, passwords: Mapping[str, str], domain: str) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="medbridge-ntlm-"))  # mode 0700
        self.path = self._dir / "users"
        lines = []
        for address, password in sorted(passwords.items()):
            hexhash = nt_hash(password).hex().upper()
            for name in login_names(address.lower(), domain):
                lines.append(f"{name}:0:{'0' * 32}:{hexhash}:[U]:LCT-00000000\n")
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.writelines(lines)
        self._finalizer = weakref.finalize(self, shutil.rmtree, self._dir, True)

    def close(self) -> None:
        self._finalizer()
