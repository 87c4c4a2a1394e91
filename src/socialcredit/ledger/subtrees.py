"""Inclusion and consistency proofs in O(log n), from stored subtree hashes.

`merkle.inclusion_proof` needs every leaf: a proof at ten million entries would hash ten
million leaves. The ledger therefore stores, besides each leaf hash, the root of every
*complete* subtree whose height is a positive multiple of the stratum (8): subtrees of 256,
65,536, 16,777,216 ... leaves. The node at (level, index) covers leaves
[index * 2**level, (index + 1) * 2**level); nodes of one level complete in index order, so
they are written as the leaves that complete them are appended (`append_leaves`).

Between two stored levels the tree is cut into tiles (Trillian's word): the tile at base
level B and position t is the row of at most 2**stratum nodes of level B under one node of
level B + stratum (leaves when B is 0). Every node at levels B to B + stratum - 1 hashes
from its tile's row alone, so any node costs one range read of at most 2**stratum hashes.

A proof is computed in two steps, as transparency-dev/merkle does: first the addresses (the
leaf ranges whose subtree roots the RFC 9162 proof lists) from the sizes alone, then their
hashes. Those ranges hang off two paths of the tree, the proven node's and the right edge
of the tree, so a proof reads at most two tiles per band of `stratum` levels: at ten million
leaves (three bands) at most six reads. A range on the right edge that is not a perfect subtree is cut into
perfect ones and folded as the RFC tree hangs them (the smaller to the right). The
results are bit for bit those of `merkle.inclusion_proof` and `merkle.consistency_proof`,
and `merkle.verify_inclusion` / `verify_consistency` check them: verification needs none
of this.

Nothing here touches a database: a `NodeReader` hands over the stored hashes.
"""

from __future__ import annotations

from collections.abc import Iterable
from hashlib import sha256
from typing import Protocol

from ..errors import InvalidInput, Tampered
from .merkle import EMPTY_ROOT, HASH_SIZE, Frontier, node_hash
# The in-memory proofs' own argument checks, so that both give the same errors.
from .merkle import _check_index, _check_size, _check_sizes

__all__ = [
    "STRATUM",
    "MemoryNodes",
    "Node",
    "NodeReader",
    "StoredTree",
    "append_leaf",
    "append_leaves",
    "consistency_proof",
    "consistency_ranges",
    "inclusion_proof",
    "inclusion_ranges",
    "root",
]

STRATUM = 8
"""Stored levels are the positive multiples of this; it is part of the storage format."""

Node = tuple[int, int, bytes]
"""A stored subtree root: (level, index, hash)."""

Range = tuple[int, int]
"""Leaves [start, end): a subtree of the RFC tree, perfect or on the right edge."""


class NodeReader(Protocol):
    """Where the stored hashes come from: a database, or memory (`MemoryNodes`)."""

    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        """The leaf hashes of entries start to end - 1, in order."""
        ...

    def nodes(self, level: int, start: int, end: int) -> list[bytes]:
        """The stored node hashes at `level`, indices start to end - 1, in order."""
        ...


# --------------------------------------------------------------------------
# Writing: the nodes each appended leaf completes
# --------------------------------------------------------------------------


def append_leaf(frontier: Frontier, leaf: bytes, stratum: int = STRATUM) -> list[Node]:
    """Append ``leaf`` to ``frontier``; return the stored-level nodes it completes, lowest first."""
    completed = frontier.append(leaf)
    if len(completed) < stratum:
        return []  # the common case: no subtree of a stored height ends here
    last = frontier.size - 1
    return [(level, last >> level, completed[level - 1]) for level in range(stratum, len(completed) + 1, stratum)]


def append_leaves(frontier: Frontier, leaves: Iterable[bytes], stratum: int = STRATUM) -> list[Node]:
    """Append ``leaves`` in order; return the stored-level nodes they complete, in order of completion."""
    nodes: list[Node] = []
    for leaf in leaves:
        nodes.extend(append_leaf(frontier, leaf, stratum))
    return nodes


# --------------------------------------------------------------------------
# Addresses: which subtree roots a proof lists, from the sizes alone
# --------------------------------------------------------------------------


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The leaf ranges whose roots are PATH(index, D[0:size]) of RFC 9162 2.1.3.1, bottom up."""
    _check_size("size", size)
    _check_index(index, size)
    return _path(0, index, size)


def consistency_ranges(old_size: int, new_size: int) -> list[Range]:
    """The leaf ranges whose roots are PROOF(old_size, D[0:new_size]) of RFC 9162 2.1.4.1."""
    _check_size("new_size", new_size)
    _check_sizes(old_size, new_size)
    if old_size == 0 or old_size == new_size:
        return []
    # The old tree ends with its smallest perfect subtree; prove that node into the new tree.
    level = (old_size & -old_size).bit_length() - 1
    index = (old_size - 1) >> level
    ranges = _path(level, index, new_size)
    if old_size & (old_size - 1):
        # Unless the old tree is that one subtree (its root, which the verifier holds), the
        # verifier needs the subtree's root to rebuild the old root as well as the new one.
        ranges.insert(0, _node_range(level, index))
    return ranges


def _path(level: int, index: int, size: int) -> list[Range]:
    """The ranges whose roots prove that node (level, index) is in the tree of ``size``, bottom up.

    The node's path to the root climbs through complete subtrees up to the `fork`, the
    highest ancestor that is still complete; the siblings below it are perfect. The fork's
    right neighbour, if any, is the incomplete right edge of the tree, one range; above it
    come the perfect subtrees that cover everything left of the fork, lowest first.
    """
    fork_height = (index ^ (size >> level)).bit_length() - 1
    ranges = []
    for height in range(fork_height):
        ranges.append(_node_range(level + height, (index >> height) ^ 1))
    fork_start, fork_end = _node_range(level + fork_height, index >> fork_height)
    if fork_end < size:
        ranges.append((fork_end, size))
    end = fork_start
    while end:
        width = end & -end  # the lowest set bit: the smallest perfect subtree left of `end`
        ranges.append((end - width, end))
        end -= width
    return ranges


def _node_range(level: int, index: int) -> Range:
    return index << level, (index + 1) << level


def _perfect_nodes(start: int, end: int) -> list[tuple[int, int]]:
    """The perfect subtrees (level, index) that make up the RFC subtree [start, end), largest first.

    An RFC subtree starts at a multiple of a power of two at least as large as itself, so
    cutting it by the bits of its width, high to low, leaves every piece aligned.
    """
    nodes = []
    position, width = start, end - start
    while width:
        level = width.bit_length() - 1
        nodes.append((level, position >> level))
        position += 1 << level
        width -= 1 << level
    return nodes


# --------------------------------------------------------------------------
# Hashes: subtree roots from the stored rows
# --------------------------------------------------------------------------


def root(reader: NodeReader, size: int, stratum: int = STRATUM) -> bytes:
    """The Merkle Tree Hash of the first ``size`` leaves, equal to `merkle.root(leaves[:size])`."""
    return StoredTree(reader, size, stratum).root()


def inclusion_proof(reader: NodeReader, index: int, size: int, stratum: int = STRATUM) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of ``size``, equal to `merkle.inclusion_proof`."""
    return StoredTree(reader, size, stratum).inclusion_proof(index)


def consistency_proof(reader: NodeReader, old_size: int, new_size: int, stratum: int = STRATUM) -> list[bytes]:
    """The proof that the first ``old_size`` leaves begin the tree of ``new_size``, equal to
    `merkle.consistency_proof(leaves[:new_size], old_size)`."""
    return StoredTree(reader, new_size, stratum).consistency_proof(old_size)


class StoredTree:
    """The tree of the first ``size`` stored leaves, hashed from the reader's rows, each tile read once.

    One instance serves everything about one tree: a proof, its leaf, its root and the roots
    of its prefixes (a node complete in an older tree is complete, with the same hash, in
    this one), so a proof and its roots share their reads.
    """

    def __init__(self, reader: NodeReader, size: int, stratum: int = STRATUM):
        _check_size("size", size)
        if not isinstance(stratum, int) or stratum < 1:
            raise InvalidInput(f"stratum must be a positive integer, got {stratum!r}")
        self.size = size
        self._reader = reader
        self._stratum = stratum
        # (base level, tile position) -> the tile's rows: row h holds its nodes of height h.
        self._tiles: dict[tuple[int, int], list[list[bytes]]] = {}

    def leaf(self, index: int) -> bytes:
        """The hash of leaf ``index``."""
        _check_index(index, self.size)
        return self._node(0, index)

    def root(self, size: int | None = None) -> bytes:
        """The root of the first ``size`` leaves (default: all of this tree's)."""
        size = self.size if size is None else size
        _check_size("size", size)
        if size > self.size:
            raise InvalidInput(f"size {size} is larger than the tree size {self.size}")
        return self._range_root(0, size)

    def inclusion_proof(self, index: int) -> list[bytes]:
        """The audit path of leaf ``index`` in this tree."""
        return [self._range_root(start, end) for start, end in inclusion_ranges(index, self.size)]

    def consistency_proof(self, old_size: int) -> list[bytes]:
        """The proof that the first ``old_size`` leaves begin this tree."""
        return [self._range_root(start, end) for start, end in consistency_ranges(old_size, self.size)]

    def _range_root(self, start: int, end: int) -> bytes:
        """The root of the RFC subtree [start, end): its perfect pieces folded from the right."""
        pieces = [self._node(level, index) for level, index in _perfect_nodes(start, end)]
        if not pieces:
            return EMPTY_ROOT
        result = pieces.pop()
        while pieces:
            result = node_hash(pieces.pop(), result)
        return result

    def _node(self, level: int, index: int) -> bytes:
        """The root of the perfect subtree (level, index), which must be complete in this tree."""
        base = level - level % self._stratum
        height = level - base
        position = index >> (self._stratum - height)
        rows = self._tiles.get((base, position))
        if rows is None:
            rows = self._tiles[(base, position)] = [self._read_row(base, position)]
        while len(rows) <= height:
            below = rows[-1]
            # An odd last node has no sibling yet: its parent is not complete, so it is left out.
            rows.append([sha256(b"\x01" + left + right).digest()  # node_hash, inlined
                         for left, right in zip(below[0::2], below[1::2])])
        return rows[height][index - (position << (self._stratum - height))]

    def _read_row(self, base: int, position: int) -> list[bytes]:
        """The stored hashes of the tile's bottom row that lie inside this tree."""
        start = position << self._stratum
        end = min(start + (1 << self._stratum), self.size >> base)
        if base == 0:
            hashes, what = self._reader.leaf_hashes(start, end), f"leaf hashes of entries #{start} to #{end - 1}"
        else:
            hashes, what = self._reader.nodes(base, start, end), f"subtree nodes #{start} to #{end - 1} of level {base}"
        if len(hashes) != end - start:
            raise Tampered(f"the ledger is missing stored hashes: asked for the {what}, got {len(hashes)} of "
                           f"{end - start}; run `socialcredit verify`")
        if set(map(len, hashes)) != {HASH_SIZE}:
            raise Tampered(f"the ledger holds a malformed hash among the {what}; run `socialcredit verify`")
        return hashes


# --------------------------------------------------------------------------
# In memory
# --------------------------------------------------------------------------


class MemoryNodes:
    """A `NodeReader` over leaves held in memory, with the nodes a ledger would store for them."""

    def __init__(self, leaves: Iterable[bytes] = (), stratum: int = STRATUM):
        self.stratum = stratum
        self._frontier = Frontier()
        self._leaves: list[bytes] = []
        self._levels: dict[int, list[bytes]] = {}
        self.extend(leaves)

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Append leaves and keep the nodes they complete (a level's nodes complete in index order)."""
        leaves = list(leaves)
        self._leaves.extend(leaves)
        for level, _index, digest in append_leaves(self._frontier, leaves, self.stratum):
            self._levels.setdefault(level, []).append(digest)

    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        return self._leaves[start:end]

    def nodes(self, level: int, start: int, end: int) -> list[bytes]:
        return self._levels.get(level, [])[start:end]
