"""Tests for socialcredit.ledger.merkle (RFC 6962 / RFC 9162 Merkle tree).

The known-answer tests use the published Certificate Transparency reference
vectors, copied (not computed) from:

* google/certificate-transparency, cpp/merkletree/merkle_tree_test.cc
  (kInputs, kSHA256EmptyTreeHash, kSHA256Roots, kSHA256Paths, kSHA256Proofs);
* transparency-dev/merkle, proof/verify_test.go (leaves, roots,
  inclusionProofs, consistencyProofs), which repeats the same values and
  adds the 6 -> 7 consistency proof.

Both files number leaves from 1 in their inclusion vectors ({leaf, size}),
so leaf 1 there is index 0 here.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from socialcredit.ledger.merkle import (
    EMPTY_ROOT,
    Frontier,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

# --------------------------------------------------------------------------
# Published reference vectors
# --------------------------------------------------------------------------

h = bytes.fromhex

CT_INPUTS = [
    h(""),
    h("00"),
    h("10"),
    h("2021"),
    h("3031"),
    h("40414243"),
    h("5051525354555657"),
    h("606162636465666768696a6b6c6d6e6f"),
]

CT_EMPTY_ROOT = h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")

# Root of the tree of the first n inputs, n = 1..8.
CT_ROOTS = {
    1: h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    2: h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    3: h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    4: h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    5: h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    6: h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    7: h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    8: h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
}

# (0-based index, tree size, audit path).
CT_INCLUSION_PROOFS = [
    (0, 1, []),
    (
        0,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        3,
        [
            h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        ],
    ),
    (
        1,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]

# (old size, new size, consistency proof).
CT_CONSISTENCY_PROOFS = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

CT_LEAVES = [leaf_hash(data) for data in CT_INPUTS]


# --------------------------------------------------------------------------
# Known-answer tests
# --------------------------------------------------------------------------


def test_empty_root_is_published_sha256_of_nothing() -> None:
    assert EMPTY_ROOT == CT_EMPTY_ROOT
    assert root([]) == CT_EMPTY_ROOT
    assert Frontier().root() == CT_EMPTY_ROOT


def test_hash_functions_use_rfc6962_prefixes() -> None:
    data, left, right = b"abc", b"\x11" * 32, b"\x22" * 32
    assert leaf_hash(data) == hashlib.sha256(b"\x00abc").digest()
    assert node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    # The root of one leaf is that leaf's hash: SHA-256(0x00) for input "".
    assert leaf_hash(b"") == CT_ROOTS[1]


@pytest.mark.parametrize("size", sorted(CT_ROOTS))
def test_roots_match_published_vectors(size: int) -> None:
    assert root(CT_LEAVES[:size]) == CT_ROOTS[size]
    assert Frontier.from_leaves(CT_LEAVES[:size]).root() == CT_ROOTS[size]


@pytest.mark.parametrize(("index", "size", "path"), CT_INCLUSION_PROOFS)
def test_inclusion_proofs_match_published_vectors(
    index: int, size: int, path: list[bytes]
) -> None:
    assert inclusion_proof(CT_LEAVES[:size], index) == path
    assert verify_inclusion(CT_LEAVES[index], index, size, path, CT_ROOTS[size]) is True


@pytest.mark.parametrize(("index", "size", "path"), CT_INCLUSION_PROOFS)
def test_published_inclusion_proofs_reject_corruption(
    index: int, size: int, path: list[bytes]
) -> None:
    # The corruptions exercised by the reference implementations' verifier
    # tests, where they are in range for this API.
    leaf, good_root = CT_LEAVES[index], CT_ROOTS[size]
    for wrong_index in {index - 1, index + 1, index ^ 2}:
        if 0 <= wrong_index < size:
            assert verify_inclusion(leaf, wrong_index, size, path, good_root) is False
    for wrong_size in {size * 2, size // 2}:
        if index < wrong_size:
            assert verify_inclusion(leaf, index, wrong_size, path, good_root) is False
    assert verify_inclusion(leaf_hash(b"WrongLeaf"), index, size, path, good_root) is False
    assert verify_inclusion(leaf, index, size, path, CT_EMPTY_ROOT) is False
    assert verify_inclusion(leaf, index, size, [*path, b""], good_root) is False
    assert verify_inclusion(leaf, index, size, [*path, good_root], good_root) is False
    assert verify_inclusion(leaf, index, size, [b"", *path], good_root) is False
    assert verify_inclusion(leaf, index, size, [good_root, *path], good_root) is False
    if path:
        assert verify_inclusion(leaf, index, size, path[:-1], good_root) is False
    for i in range(len(path)):
        flipped = [*path]
        flipped[i] = bytes([path[i][0] ^ 8]) + path[i][1:]
        assert verify_inclusion(leaf, index, size, flipped, good_root) is False


@pytest.mark.parametrize(("old_size", "new_size", "proof"), CT_CONSISTENCY_PROOFS)
def test_consistency_proofs_match_published_vectors(
    old_size: int, new_size: int, proof: list[bytes]
) -> None:
    assert consistency_proof(CT_LEAVES[:new_size], old_size) == proof
    assert (
        verify_consistency(old_size, new_size, CT_ROOTS[old_size], CT_ROOTS[new_size], proof)
        is True
    )


@pytest.mark.parametrize(
    ("old_size", "new_size", "proof"), [v for v in CT_CONSISTENCY_PROOFS if v[2]]
)
def test_published_consistency_proofs_reject_corruption(
    old_size: int, new_size: int, proof: list[bytes]
) -> None:
    root1, root2 = CT_ROOTS[old_size], CT_ROOTS[new_size]

    def ok(m: int, n: int, r1: bytes, r2: bytes, p: list[bytes]) -> bool:
        return verify_consistency(m, n, r1, r2, p)

    for wrong_old in {old_size - 1, old_size + 1, old_size ^ 2}:
        if 0 <= wrong_old <= new_size:
            assert ok(wrong_old, new_size, root1, root2, proof) is False
    for wrong_new in {new_size * 2, new_size // 2}:
        if old_size <= wrong_new:
            assert ok(old_size, wrong_new, root1, root2, proof) is False
    assert ok(old_size, new_size, b"WrongRoot", root2, proof) is False
    assert ok(old_size, new_size, root1, b"WrongRoot", proof) is False
    assert ok(old_size, new_size, root2, root1, proof) is False
    assert ok(old_size, new_size, root1, root2, []) is False
    assert ok(old_size, new_size, root1, root2, [*proof, b""]) is False
    assert ok(old_size, new_size, root1, root2, [*proof, root1]) is False
    assert ok(old_size, new_size, root1, root2, [*proof, root2]) is False
    assert ok(old_size, new_size, root1, root2, [b"", *proof]) is False
    assert ok(old_size, new_size, root1, root2, [root1, *proof]) is False
    assert ok(old_size, new_size, root1, root2, [root2, *proof]) is False
    assert ok(old_size, new_size, root1, root2, [proof[0], *proof]) is False
    assert ok(old_size, new_size, root1, root2, proof[:-1]) is False
    for i in range(len(proof)):
        flipped = [*proof]
        flipped[i] = bytes([proof[i][0] ^ 16]) + proof[i][1:]
        assert ok(old_size, new_size, root1, root2, flipped) is False


def test_trivial_consistency_cases() -> None:
    # Equal sizes need equal roots and no proof; size 0 needs the empty root.
    some = CT_ROOTS[3]
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, []) is True
    assert verify_consistency(0, 5, EMPTY_ROOT, CT_ROOTS[5], []) is True
    assert verify_consistency(3, 3, some, some, []) is True
    assert verify_consistency(3, 3, some, CT_ROOTS[4], []) is False
    assert verify_consistency(0, 0, EMPTY_ROOT, some, []) is False
    assert verify_consistency(0, 5, some, CT_ROOTS[5], []) is False
    assert verify_consistency(0, 1, EMPTY_ROOT, CT_ROOTS[1], [EMPTY_ROOT]) is False
    assert verify_consistency(1, 1, CT_ROOTS[1], CT_ROOTS[1], [EMPTY_ROOT]) is False
    assert verify_consistency(1, 2, CT_ROOTS[1], CT_ROOTS[2], []) is False
    assert consistency_proof(CT_LEAVES, 0) == []
    assert consistency_proof(CT_LEAVES, 8) == []
    assert consistency_proof([], 0) == []


# --------------------------------------------------------------------------
# Bad arguments
# --------------------------------------------------------------------------


def test_bad_arguments_raise_value_error() -> None:
    leaves = CT_LEAVES[:5]
    cases = [
        (lambda: inclusion_proof(leaves, 5), "out of range"),
        (lambda: inclusion_proof(leaves, -1), "out of range"),
        (lambda: inclusion_proof([], 0), "out of range"),
        (lambda: consistency_proof(leaves, 6), "larger than"),
        (lambda: consistency_proof(leaves, -1), "non-negative"),
        (lambda: verify_inclusion(leaves[0], 5, 5, [], CT_ROOTS[5]), "out of range"),
        (lambda: verify_inclusion(leaves[0], 0, -1, [], CT_ROOTS[5]), "non-negative"),
        (lambda: verify_consistency(6, 5, CT_ROOTS[5], CT_ROOTS[5], []), "larger than"),
        (lambda: verify_consistency(-1, 5, CT_ROOTS[5], CT_ROOTS[5], []), "non-negative"),
        (lambda: root([b"short"]), "leaf 0"),
        (lambda: root(b"\x00" * 32), "sequence"),
        (lambda: Frontier().append(b"short"), "32 bytes"),
        (lambda: Frontier.from_json(3, ["00" * 32]), "has 2 hashes"),
        (lambda: Frontier.from_json(1, ["zz" * 32]), "not hex"),
        (lambda: Frontier.from_json(1, ["00" * 31]), "64 hex"),
        (lambda: Frontier.from_json(-1, []), "non-negative"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message) as info:
            call()
        assert "\n" not in str(info.value)


def test_verifiers_reject_malformed_hashes_without_raising() -> None:
    path = CT_INCLUSION_PROOFS[1][2]
    assert verify_inclusion(b"short", 0, 8, path, CT_ROOTS[8]) is False
    assert verify_inclusion(CT_LEAVES[0], 0, 8, path, b"short") is False
    assert verify_inclusion(CT_LEAVES[0], 0, 8, [*path[:2], path[2][:31]], CT_ROOTS[8]) is False


# --------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------

# Distinct leaves, hashed as the ledger hashes them. Distinctness matters for
# the wrong-index and swap properties: with two equal leaves, swapping them or
# proving one at the other's index is legitimately indistinguishable.
distinct_leaves = st.lists(st.binary(max_size=8), unique=True, max_size=70).map(
    lambda items: [leaf_hash(b"leaf:" + item) for item in items]
)
nonempty_leaves = distinct_leaves.filter(bool)


def test_every_proof_verifies_exhaustively_for_small_trees() -> None:
    leaves = [leaf_hash(i.to_bytes(2, "big")) for i in range(40)]
    roots = [root(leaves[:n]) for n in range(len(leaves) + 1)]
    for n in range(1, len(leaves) + 1):
        for i in range(n):
            proof = inclusion_proof(leaves[:n], i)
            assert verify_inclusion(leaves[i], i, n, proof, roots[n]) is True
        for m in range(n + 1):
            proof = consistency_proof(leaves[:n], m)
            assert verify_consistency(m, n, roots[m], roots[n], proof) is True


@given(nonempty_leaves)
def test_every_inclusion_proof_verifies(leaves: list[bytes]) -> None:
    tree_root = root(leaves)
    results = [
        verify_inclusion(leaves[i], i, len(leaves), inclusion_proof(leaves, i), tree_root)
        for i in range(len(leaves))
    ]
    assert results == [True] * len(leaves)


@given(distinct_leaves)
def test_every_consistency_proof_verifies(leaves: list[bytes]) -> None:
    n = len(leaves)
    new_root = root(leaves)
    results = [
        verify_consistency(m, n, root(leaves[:m]), new_root, consistency_proof(leaves, m))
        for m in range(n + 1)
    ]
    assert results == [True] * (n + 1)


@given(nonempty_leaves, st.data())
def test_inclusion_proof_fails_with_any_leaf_byte_changed(
    leaves: list[bytes], data: st.DataObject
) -> None:
    n = len(leaves)
    index = data.draw(st.integers(0, n - 1), label="index")
    changed = data.draw(st.integers(0, n - 1), label="changed leaf")
    byte = data.draw(st.integers(0, 31), label="byte")
    delta = data.draw(st.integers(1, 255), label="xor")
    proof, tree_root = inclusion_proof(leaves, index), root(leaves)

    tampered = bytearray(leaves[changed])
    tampered[byte] ^= delta
    tampered_leaves = [*leaves]
    tampered_leaves[changed] = bytes(tampered)

    # The changed leaf no longer proves against the original root ...
    assert verify_inclusion(bytes(tampered), changed, n, inclusion_proof(leaves, changed),
                            tree_root) is False
    # ... and no old proof verifies against the changed tree's root.
    assert verify_inclusion(leaves[index], index, n, proof, root(tampered_leaves)) is False


@given(nonempty_leaves, st.data())
def test_inclusion_proof_fails_with_any_proof_byte_changed(
    leaves: list[bytes], data: st.DataObject
) -> None:
    n = len(leaves)
    index = data.draw(st.integers(0, n - 1), label="index")
    proof = inclusion_proof(leaves, index)
    assume(proof)
    element = data.draw(st.integers(0, len(proof) - 1), label="element")
    byte = data.draw(st.integers(0, 31), label="byte")
    delta = data.draw(st.integers(1, 255), label="xor")
    tampered = bytearray(proof[element])
    tampered[byte] ^= delta
    bad_proof = [*proof]
    bad_proof[element] = bytes(tampered)
    assert verify_inclusion(leaves[index], index, n, bad_proof, root(leaves)) is False


@given(nonempty_leaves, st.data())
def test_inclusion_proof_fails_with_wrong_index(
    leaves: list[bytes], data: st.DataObject
) -> None:
    n = len(leaves)
    assume(n >= 2)
    index = data.draw(st.integers(0, n - 1), label="index")
    wrong = data.draw(st.integers(0, n - 1).filter(lambda i: i != index), label="wrong")
    proof = inclusion_proof(leaves, index)
    assert verify_inclusion(leaves[index], wrong, n, proof, root(leaves)) is False


@given(nonempty_leaves, st.data())
def test_inclusion_proof_fails_with_wrong_root(
    leaves: list[bytes], data: st.DataObject
) -> None:
    n = len(leaves)
    index = data.draw(st.integers(0, n - 1), label="index")
    good_root = root(leaves)
    wrong_root = data.draw(
        st.one_of(
            st.binary(min_size=32, max_size=32),
            st.sampled_from([root(leaves[:m]) for m in range(n)] or [EMPTY_ROOT]),
        ).filter(lambda r: r != good_root),
        label="wrong root",
    )
    proof = inclusion_proof(leaves, index)
    assert verify_inclusion(leaves[index], index, n, proof, good_root) is True
    assert verify_inclusion(leaves[index], index, n, proof, wrong_root) is False


@given(distinct_leaves, st.data())
def test_consistency_proof_fails_when_tampered(
    leaves: list[bytes], data: st.DataObject
) -> None:
    n = len(leaves)
    assume(n >= 2)
    m = data.draw(st.integers(1, n - 1), label="old size")
    proof = consistency_proof(leaves, m)
    old_root, new_root = root(leaves[:m]), root(leaves)
    element = data.draw(st.integers(0, len(proof) - 1), label="element")
    byte = data.draw(st.integers(0, 31), label="byte")
    delta = data.draw(st.integers(1, 255), label="xor")
    tampered = bytearray(proof[element])
    tampered[byte] ^= delta
    bad_proof = [*proof]
    bad_proof[element] = bytes(tampered)

    assert verify_consistency(m, n, old_root, new_root, proof) is True
    assert verify_consistency(m, n, old_root, new_root, bad_proof) is False
    # A history rewritten inside the old prefix is not consistent.
    rewritten = [*leaves]
    rewritten[data.draw(st.integers(0, m - 1), label="rewritten")] = leaf_hash(b"forged")
    assert verify_consistency(m, n, root(rewritten[:m]), new_root, proof) is False


@given(distinct_leaves)
def test_frontier_root_matches_root_for_every_prefix(leaves: list[bytes]) -> None:
    frontier = Frontier()
    frontier_roots = [frontier.root()]
    for leaf in leaves:
        frontier.append(leaf)
        frontier_roots.append(frontier.root())
    assert frontier.size == len(leaves)
    assert frontier_roots == [root(leaves[:n]) for n in range(len(leaves) + 1)]
    assert Frontier.from_leaves(leaves) == frontier
    # A frontier keeps one hash per set bit of its size, never the leaves.
    assert len(frontier.to_json()) == bin(len(leaves)).count("1")


@given(distinct_leaves, st.data())
def test_frontier_json_round_trip_keeps_appending(
    leaves: list[bytes], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(0, len(leaves)), label="checkpoint at")
    saved = Frontier.from_leaves(leaves[:cut])
    stored = (saved.size, saved.to_json())
    assert all(isinstance(x, str) and len(x) == 64 for x in stored[1])

    resumed = Frontier.from_json(*stored)
    assert resumed == saved
    assert resumed.size == cut
    assert resumed.root() == root(leaves[:cut])

    resumed.extend(leaves[cut:])
    assert resumed.size == len(leaves)
    assert resumed.root() == root(leaves)
    assert resumed == Frontier.from_leaves(leaves)


@given(nonempty_leaves, st.data())
def test_changing_any_leaf_changes_root(leaves: list[bytes], data: st.DataObject) -> None:
    original = root(leaves)
    i = data.draw(st.integers(0, len(leaves) - 1), label="index")
    replacement = data.draw(
        st.binary(min_size=32, max_size=32).filter(lambda b: b != leaves[i]),
        label="replacement",
    )
    changed = [*leaves]
    changed[i] = replacement
    assert root(changed) != original


@given(nonempty_leaves, st.data())
def test_deleting_any_leaf_changes_root(leaves: list[bytes], data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(leaves) - 1), label="index")
    assert root(leaves[:i] + leaves[i + 1 :]) != root(leaves)


@given(distinct_leaves, st.data())
def test_inserting_any_leaf_changes_root(leaves: list[bytes], data: st.DataObject) -> None:
    i = data.draw(st.integers(0, len(leaves)), label="position")
    extra = leaf_hash(data.draw(st.binary(max_size=8), label="extra data"))
    assert root(leaves[:i] + [extra] + leaves[i:]) != root(leaves)


@given(nonempty_leaves, st.data())
def test_swapping_any_two_leaves_changes_root(
    leaves: list[bytes], data: st.DataObject
) -> None:
    n = len(leaves)
    assume(n >= 2)
    i = data.draw(st.integers(0, n - 1), label="i")
    j = data.draw(st.integers(0, n - 1).filter(lambda j: j != i), label="j")
    swapped = [*leaves]
    swapped[i], swapped[j] = swapped[j], swapped[i]
    assert root(swapped) != root(leaves)


# --------------------------------------------------------------------------
# Scale
# --------------------------------------------------------------------------


def test_a_million_leaves() -> None:
    # Two independent constructions (level by level, and the frontier) must
    # agree; neither may recurse per leaf.
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(1_000_000)]
    tree_root = root(leaves)
    assert Frontier.from_leaves(leaves).root() == tree_root
    index = 765_432
    proof = inclusion_proof(leaves, index)
    assert len(proof) == 20
    assert verify_inclusion(leaves[index], index, len(leaves), proof, tree_root) is True
