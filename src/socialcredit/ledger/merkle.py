"""Merkle tree of RFC 6962 / RFC 9162 (Certificate Transparency).

The ledger's tree has to match other CT implementations bit for bit, so that
an auditor can check roots and proofs with any off-the-shelf RFC 6962
verifier. So this module follows the RFCs exactly:

* leaves are hashed as SHA-256(0x00 || data) and interior nodes as
  SHA-256(0x01 || left || right); the different prefixes stop anyone passing
  off an interior node as a leaf (second-preimage attack);
* a tree of n > 1 leaves splits at k, the largest power of two smaller than n
  (not at the midpoint), so old trees are always left subtrees of newer ones;
* the empty tree's root is SHA-256 of the empty string.

Every function below except `leaf_hash` takes leaves that are *already*
hashed (32-byte values from `leaf_hash`).

Nothing here recurses per leaf: roots are built level by level, and proofs
walk down from the root, which is only log2(n) steps deep.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from hashlib import sha256

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Frontier",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Length in bytes of every leaf hash, node hash and root (SHA-256)."""

EMPTY_ROOT: bytes = sha256(b"").digest()
"""Root of the tree with no leaves (RFC 6962 2.1: MTH({}) = SHA-256())."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


# --------------------------------------------------------------------------
# Hashing
# --------------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 6962 leaf hash SHA-256(0x00 || data)."""
    return sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 6962 interior node hash SHA-256(0x01 || left || right)."""
    return sha256(_NODE_PREFIX + left + right).digest()


# --------------------------------------------------------------------------
# Tree hash
# --------------------------------------------------------------------------


def root(leaves: Sequence[bytes]) -> bytes:
    """Return the Merkle Tree Hash (RFC 6962 2.1) of already-hashed leaves."""
    _check_leaves(leaves)
    return _subtree_root(leaves, 0, len(leaves))


def _subtree_root(leaves: Sequence[bytes], lo: int, hi: int) -> bytes:
    """Return MTH(leaves[lo:hi]), building the tree bottom-up, level by level.

    Pairing neighbours on each level and carrying an odd last node up
    unchanged gives exactly the RFC's tree (split at the largest power of two
    below n), without recursion, so a million leaves cost a million hashes and
    no stack.
    """
    if lo == hi:
        return EMPTY_ROOT
    level = list(leaves[lo:hi])
    while len(level) > 1:
        carry = level[-1] if len(level) % 2 else None
        level = [
            sha256(_NODE_PREFIX + left + right).digest()
            for left, right in zip(level[0::2], level[1::2])
        ]
        if carry is not None:
            level.append(carry)
    return level[0]


def _split(n: int) -> int:
    """Return k, the largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


# --------------------------------------------------------------------------
# Inclusion proofs
# --------------------------------------------------------------------------


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Return the audit path PATH(index, leaves) of RFC 6962 2.1.1.

    The path lists sibling subtree roots from the leaf's level up to the
    root's children. To prove inclusion in an older tree of size s, pass
    ``leaves[:s]``.
    """
    _check_leaves(leaves)
    size = len(leaves)
    _check_index(index, size)
    # Walk down from the root towards the leaf; each step contributes the
    # root of the subtree on the other side. The RFC lists them bottom-up.
    siblings: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            siblings.append(_subtree_root(leaves, mid, hi))
            hi = mid
        else:
            siblings.append(_subtree_root(leaves, lo, mid))
            lo = mid
    siblings.reverse()
    return siblings


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Check that ``leaf`` is leaf ``index`` of the tree of ``size`` with ``root``.

    Follows RFC 9162 2.1.3.2. Returns False for any proof that does not prove
    the claim (including malformed hashes); raises ValueError only when the
    claim itself is impossible (index not in [0, size)).
    """
    _check_size("size", size)
    _check_index(index, size)
    if not _all_hashes([leaf, root, *proof]):
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return False  # Proof is longer than the path to the root.
        if fn & 1 or fn == sn:
            # We are the right child, or the last node of a level with no
            # right sibling; in the latter case skip the levels where this
            # node is carried up unchanged.
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


# --------------------------------------------------------------------------
# Consistency proofs
# --------------------------------------------------------------------------


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """Return PROOF(old_size, leaves) of RFC 6962 2.1.2.

    It proves that the first ``old_size`` leaves are a prefix of ``leaves``.
    The proof is empty when old_size is 0 or equals ``len(leaves)``.
    """
    _check_leaves(leaves)
    new_size = len(leaves)
    _check_sizes(old_size, new_size)
    if old_size == 0 or old_size == new_size:
        return []
    # SUBPROOF(m, D[lo:hi], b) unrolled: walk down from the root, collecting
    # the subtree roots the verifier cannot know, outermost first.
    outer: list[bytes] = []
    lo, hi = 0, new_size
    have_old_root = True  # RFC's b: the old root is the current subtree.
    while old_size != hi:
        mid = lo + _split(hi - lo)
        if old_size <= mid:
            # The old tree lies entirely in the left subtree.
            outer.append(_subtree_root(leaves, mid, hi))
            hi = mid
        else:
            # The left subtree is complete in both trees; recurse right,
            # where the old tree's root is no longer a subtree root.
            outer.append(_subtree_root(leaves, lo, mid))
            lo = mid
            have_old_root = False
    # The innermost SUBPROOF comes first in the RFC's concatenation.
    proof = [] if have_old_root else [_subtree_root(leaves, lo, hi)]
    proof.extend(reversed(outer))
    return proof


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> bool:
    """Check that the tree (old_size, old_root) is a prefix of (new_size, new_root).

    Follows RFC 9162 2.1.4.2. Equal sizes need equal roots and an empty
    proof; size 0 needs old_root == EMPTY_ROOT and an empty proof. Returns
    False for any proof that does not prove the claim; raises ValueError only
    when the sizes are impossible (negative, or old_size > new_size).
    """
    _check_size("old_size", old_size)
    _check_size("new_size", new_size)
    _check_sizes(old_size, new_size)
    if not _all_hashes([old_root, new_root, *proof]):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        # Every tree extends the empty one, whose root is fixed.
        return not proof and old_root == EMPTY_ROOT
    if not proof:
        return False

    path = list(proof)
    if old_size & (old_size - 1) == 0:
        # The old tree is a complete subtree of the new one, so the proof
        # omits its root, which the verifier already has.
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    # Skip the levels where the old tree's last node is a right child all the
    # way up; path[0] is the root of that subtree.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False  # Proof is longer than the path to the root.
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


# --------------------------------------------------------------------------
# Frontier (compact range of an append-only tree)
# --------------------------------------------------------------------------


class Frontier:
    """The right edge of an append-only Merkle tree, enough to extend it.

    For a tree of n leaves it keeps one root per set bit of n: the roots of
    the complete (power-of-two) subtrees that n decomposes into, largest
    (leftmost) first. That is at most log2(n)+1 hashes, so it fits in a
    checkpoint row, and appending costs one leaf plus O(1) amortized node
    hashes, while the root is always available without the leaves.
    """

    __slots__ = ("_size", "_peaks")

    def __init__(self) -> None:
        """Start an empty tree."""
        self._size = 0
        self._peaks: list[bytes] = []

    @classmethod
    def from_leaves(cls, leaves: Iterable[bytes]) -> Frontier:
        """Return the frontier of a tree holding ``leaves`` (already hashed)."""
        frontier = cls()
        frontier.extend(leaves)
        return frontier

    @classmethod
    def from_json(cls, size: int, hashes: Sequence[str]) -> Frontier:
        """Rebuild a frontier saved with `to_json`, checking that it fits ``size``."""
        _check_size("size", size)
        if isinstance(hashes, str):
            raise ValueError("frontier hashes must be a list of hex strings, not a string")
        expected = size.bit_count()
        if len(hashes) != expected:
            raise ValueError(
                f"a frontier of size {size} has {expected} hashes, got {len(hashes)}"
            )
        peaks = []
        for position, text in enumerate(hashes):
            peaks.append(_decode_hex_hash(position, text))
        frontier = cls()
        frontier._size = size
        frontier._peaks = peaks
        return frontier

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def append(self, leaf: bytes) -> list[bytes]:
        """Append one already-hashed leaf; return the roots of the subtrees it completes.

        Root i of the list is that of the subtree of height i + 1 that ends with
        this leaf (its last 2**(i+1) leaves), so a caller can store interior
        nodes as they close (see `subtrees`) without hashing anything twice.
        """
        if len(leaf) != HASH_SIZE:
            _check_hash("leaf", leaf)
        # Like incrementing a binary counter: each trailing 1 bit of the size
        # is a complete subtree of the new leaf's height, so merge with it.
        node = leaf
        size = self._size
        peaks = self._peaks
        completed = []
        while size & 1:
            node = sha256(b"\x01" + peaks.pop() + node).digest()  # node_hash, inlined
            completed.append(node)
            size >>= 1
        peaks.append(node)
        self._size += 1
        return completed

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Append already-hashed leaves in order."""
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        """Return the tree's root, equal to `root` of all leaves appended so far."""
        if not self._peaks:
            return EMPTY_ROOT
        # The RFC tree hangs each smaller subtree off the right of the larger
        # ones, so fold from the right.
        result = self._peaks[-1]
        for peak in reversed(self._peaks[:-1]):
            result = node_hash(peak, result)
        return result

    def to_json(self) -> list[str]:
        """Return the subtree roots as hex strings; store them with `size`."""
        return [peak.hex() for peak in self._peaks]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frontier):
            return NotImplemented
        return self._size == other._size and self._peaks == other._peaks

    def __repr__(self) -> str:
        return f"Frontier(size={self._size}, root={self.root().hex()})"


# --------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _all_hashes(values: Iterable[object]) -> bool:
    return all(_is_hash(v) for v in values)


def _check_hash(name: str, value: object) -> None:
    if not _is_hash(value):
        raise ValueError(f"{name} must be {HASH_SIZE} bytes, got {_describe(value)}")


def _check_leaves(leaves: Sequence[bytes]) -> None:
    if isinstance(leaves, (bytes, bytearray, str)):
        raise ValueError("leaves must be a sequence of leaf hashes, not a single value")
    for position, leaf in enumerate(leaves):
        if not _is_hash(leaf):
            raise ValueError(
                f"leaf {position} must be a {HASH_SIZE}-byte hash, got {_describe(leaf)}"
            )


def _check_size(name: str, size: int) -> None:
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {size!r}")


def _check_index(index: int, size: int) -> None:
    if not isinstance(index, int) or isinstance(index, bool):
        raise ValueError(f"index must be an integer, got {index!r}")
    if not 0 <= index < size:
        raise ValueError(f"index {index} is out of range for a tree of size {size}")


def _check_sizes(old_size: int, new_size: int) -> None:
    _check_size("old_size", old_size)
    if old_size > new_size:
        raise ValueError(f"old_size {old_size} is larger than the tree size {new_size}")


def _decode_hex_hash(position: int, text: object) -> bytes:
    if not isinstance(text, str) or len(text) != 2 * HASH_SIZE:
        raise ValueError(
            f"frontier hash {position} must be {2 * HASH_SIZE} hex characters, got {text!r}"
        )
    try:
        value = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"frontier hash {position} is not hex: {text!r}") from None
    if len(value) != HASH_SIZE:  # fromhex skips whitespace between bytes
        raise ValueError(f"frontier hash {position} is not hex: {text!r}")
    return value


def _describe(value: object) -> str:
    if isinstance(value, (bytes, bytearray)):
        return f"{len(value)} bytes"
    return type(value).__name__
