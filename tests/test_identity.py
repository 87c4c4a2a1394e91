"""Tests for socialcredit.ledger.identity: references, pseudonyms, key storage."""

from __future__ import annotations

import datetime
import json
import os
import re
import stat
import unicodedata
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from socialcredit.intake.identity import (
    IdentityError,
    KeyFileError,
    Pseudonymizer,
    create_key_file,
    identifier_in,
    is_valid_uscc,
    load_key,
    make_resident_id,
    make_uscc,
    normalize_reference,
    resident_id_check_character,
    uscc_check_character,
)

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
KEY_A = bytes(range(32))
KEY_B = bytes(range(1, 33))


def one_line(exc: BaseException) -> str:
    msg = str(exc)
    assert "\n" not in msg and "\r" not in msg, msg
    assert msg and msg == msg.strip()
    return msg


# ---------------------------------------------------------------------------
# Unified social credit codes (GB 32100-2015)
# ---------------------------------------------------------------------------

# 91350100M000100Y43 is the example cited by many validators. By hand:
#   chars   9  1  3  5  0  1  0  0  M  0  0  0  1  0  0  Y  4
#   values  9  1  3  5  0  1  0  0 21  0  0  0  1  0  0 30  4
#   weights 1  3  9 27 19 26 16 17 20 29 25 13  8 24 10 30 28
#   products 9+3+27+135+0+26+0+0+420+0+0+0+8+0+0+900+112 = 1640
#   1640 mod 31 = 28 (31*52 = 1612); 31 - 28 = 3  ->  check character "3".
# The others are registered codes used as valid examples in public test suites:
# 91310110666007217T (hutool CreditCodeUtilTest), 91440300708461136T and
# 91110108551385082Q (listed as "real registered enterprise codes" in a public
# validator's test script).
REAL_VALID_USCC = [
    "91350100M000100Y43",
    "91310110666007217T",
    "91440300708461136T",
    "91110108551385082Q",
]


@pytest.mark.parametrize("code", REAL_VALID_USCC)
def test_real_uscc_examples_are_valid(code: str) -> None:
    assert is_valid_uscc(code)
    assert normalize_reference(code, "organization") == code
    assert uscc_check_character(code[:17]) == code[17]
    assert make_uscc(code[:17]) == code


def test_uscc_hand_computed_check() -> None:
    assert uscc_check_character("91350100M000100Y4") == "3"


def test_uscc_normalization_spelling() -> None:
    assert normalize_reference("  9135-0100 m000-100y43\t", "organization") == "91350100M000100Y43"
    # Full-width input (as typed with a CJK input method) folds to the same code.
    assert normalize_reference("９１３５０１００Ｍ０００１００Ｙ４３", "organization") == "91350100M000100Y43"
    assert is_valid_uscc("91350100m000100y43")


def test_uscc_wrong_length() -> None:
    with pytest.raises(IdentityError) as ei:
        normalize_reference("91350100M000100Y4", "organization")
    msg = one_line(ei.value)
    assert "17 characters" in msg and "18" in msg
    assert not is_valid_uscc("91350100M000100Y433")
    assert not is_valid_uscc("")


@pytest.mark.parametrize("bad", ["I", "O", "Z", "S", "V", "!", "é"])
def test_uscc_bad_character_and_position(bad: str) -> None:
    code = "91350100" + bad + "000100Y43"
    with pytest.raises(IdentityError) as ei:
        normalize_reference(code, "organization")
    msg = one_line(ei.value)
    assert "position 9" in msg
    assert repr(bad.upper()) in msg


def test_uscc_wrong_check_character() -> None:
    with pytest.raises(IdentityError) as ei:
        normalize_reference("91350100M000100Y44", "organization")
    msg = one_line(ei.value)
    assert msg == (
        "unified social credit code 91350100M000100Y44 has a wrong check character: expected 3"
    )


def test_real_early_pilot_code_fails_the_standard_check() -> None:
    # hutool notes that some codes issued in early pilot regions do not follow
    # GB 32100-2015; a strict check rejects them. Documented, not a bug.
    assert not is_valid_uscc("91350211M00013FA1N")


def test_uscc_helpers_reject_bad_bodies() -> None:
    with pytest.raises(IdentityError):
        uscc_check_character("91350100M000100Y")
    with pytest.raises(IdentityError):
        make_uscc("91350100I000100Y4")


uscc_bodies = st.text(alphabet=USCC_ALPHABET, min_size=17, max_size=17)


@given(uscc_bodies)
def test_make_uscc_always_valid(body: str) -> None:
    code = make_uscc(body)
    assert len(code) == 18 and code.startswith(body)
    assert is_valid_uscc(code)
    assert normalize_reference(code, "organization") == code


@given(uscc_bodies, st.integers(0, 17), st.sampled_from(USCC_ALPHABET))
def test_any_single_character_change_is_detected(body: str, pos: int, new: str) -> None:
    # Detected always: 31 is prime and every weight 3^(i-1) mod 31 is nonzero,
    # so changing c_i by d (1 <= |d| <= 30) changes the sum by d*w_i != 0 mod 31;
    # and a change of the check character itself cannot match.
    code = make_uscc(body)
    assume(code[pos] != new)
    changed = code[:pos] + new + code[pos + 1 :]
    assert not is_valid_uscc(changed)
    with pytest.raises(IdentityError, match="wrong check character"):
        normalize_reference(changed, "organization")


@given(uscc_bodies, st.integers(0, 16), st.integers(0, 16))
def test_any_transposition_in_body_is_detected(body: str, i: int, j: int) -> None:
    # 3 is a primitive root mod 31, so the 17 weights are distinct and
    # swapping a != b changes the sum by (a-b)(w_i-w_j) != 0 mod 31.
    code = make_uscc(body)
    assume(code[i] != code[j])
    chars = list(code)
    chars[i], chars[j] = chars[j], chars[i]
    assert not is_valid_uscc("".join(chars))


# ---------------------------------------------------------------------------
# Resident identity numbers (GB 11643-1999)
# ---------------------------------------------------------------------------

# 11010519491231002X is the example printed in GB 11643-1999. By hand:
#   digits  1 1  0 1 0 5 1 9 4 9 1 2  3 1 0 0 2
#   weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2
#   sum 7+9+0+5+0+20+2+9+24+27+7+18+30+5+0+0+4 = 167; 167 mod 11 = 2;
#   "10X98765432"[2] = "X".
GB_EXAMPLE_ID = "11010519491231002X"


def test_published_resident_id_example() -> None:
    assert resident_id_check_character(GB_EXAMPLE_ID[:17]) == "X"
    assert normalize_reference(GB_EXAMPLE_ID, "person") == GB_EXAMPLE_ID
    assert normalize_reference(" 11010519491231002x\n", "person") == GB_EXAMPLE_ID
    assert make_resident_id("110105", datetime.date(1949, 12, 31), "002") == GB_EXAMPLE_ID


def test_full_width_resident_id_is_still_an_id() -> None:
    assert normalize_reference("１１０１０５１９４９１２３１００２ｘ", "person") == GB_EXAMPLE_ID


def test_resident_id_wrong_check_is_rejected_and_masked() -> None:
    bad = "110105194912310021"
    with pytest.raises(IdentityError) as ei:
        normalize_reference(bad, "person")
    msg = one_line(ei.value)
    assert "check character" in msg
    assert bad not in msg
    assert "19491231" not in msg  # the birth date is not leaked either
    assert "110" + "*" * 13 + "21" in msg


def test_resident_id_impossible_date_is_rejected() -> None:
    first17 = "11010519490230002"  # 30 February
    bad = first17 + resident_id_check_character(first17)
    with pytest.raises(IdentityError) as ei:
        normalize_reference(bad, "person")
    msg = one_line(ei.value)
    assert "birth date" in msg
    assert bad not in msg and "19490230" not in msg


def test_id_like_string_with_a_space_is_masked_in_the_username_error() -> None:
    with pytest.raises(IdentityError) as ei:
        normalize_reference("110105 19491231002X", "person")
    msg = one_line(ei.value)
    assert "19491231" not in msg


def test_resident_id_helpers_validate_input() -> None:
    with pytest.raises(IdentityError) as ei:
        resident_id_check_character("1101051949123100")
    assert "1101051949123100" not in one_line(ei.value)
    with pytest.raises(IdentityError):
        make_resident_id("11010", datetime.date(2000, 1, 1), "001")
    with pytest.raises(IdentityError):
        make_resident_id("110105", datetime.date(2000, 1, 1), "01")


region6 = st.text(alphabet="0123456789", min_size=6, max_size=6)
seq3 = st.text(alphabet="0123456789", min_size=3, max_size=3)
births = st.dates(min_value=datetime.date(1900, 1, 1), max_value=datetime.date(2025, 12, 31))


@given(region6, births, seq3)
def test_make_resident_id_always_valid(region: str, birth: datetime.date, seq: str) -> None:
    rid = make_resident_id(region, birth, seq)
    assert len(rid) == 18
    assert normalize_reference(rid, "person") == rid
    assert normalize_reference(rid.lower(), "person") == rid


@given(region6, births, seq3, st.integers(0, 17), st.sampled_from("0123456789X"))
def test_any_single_digit_change_of_resident_id_is_detected(
    region: str, birth: datetime.date, seq: str, pos: int, new: str
) -> None:
    # Weights 2^(18-i) mod 11 are nonzero and 11 is prime: a digit change by d
    # (1 <= |d| <= 9) changes the sum by d*w_i != 0 mod 11.
    rid = make_resident_id(region, birth, seq)
    if pos < 17:
        assume(new != "X")
    assume(rid[pos] != new)
    changed = rid[:pos] + new + rid[pos + 1 :]
    with pytest.raises(IdentityError) as ei:
        normalize_reference(changed, "person")
    assert changed not in one_line(ei.value)


# ---------------------------------------------------------------------------
# Usernames
# ---------------------------------------------------------------------------


def test_username_normalization() -> None:
    assert normalize_reference("Ａｌｉｃｅ", "person") == "alice"
    assert normalize_reference("  ALICE ", "person") == "alice"
    assert normalize_reference("Straße", "person") == "strasse"
    assert normalize_reference("ﬁsh", "person") == "fish"


@pytest.mark.parametrize(
    "bad, words",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("a" * 65, "65 characters"),
        ("ali ce", "whitespace"),
        ("ali\u3000ce", "whitespace"),
        ("ali\tce", "whitespace"),
        ("ali\nce", "whitespace"),
        ("ali\x00ce", "control"),
        ("ali\u202ece", "control"),  # right-to-left override
        ("ali\u200bce", "control"),  # zero-width space
    ],
)
def test_username_rejections(bad: str, words: str) -> None:
    with pytest.raises(IdentityError) as ei:
        normalize_reference(bad, "person")
    assert words in one_line(ei.value)


def test_username_length_limit_is_inclusive() -> None:
    assert normalize_reference("a" * 64, "person") == "a" * 64
    assert normalize_reference("a", "person") == "a"
    with pytest.raises(IdentityError, match="65 characters; at most 64"):
        normalize_reference("a" * 65, "person")


# Names the tests, the packs and the docs use, and names in other scripts.
GOOD_USERNAMES = ["alice", "lacie", "lacie_c", "naomi", "peer-17", "r119", "nd3-2", "run12-person1", "big2049",
                  "j.doe", "a", "张伟", "naïve", "сергей", "محمد", "सुनील", "ｊｕｌｉａ"]


@pytest.mark.parametrize("name", GOOD_USERNAMES)
def test_usernames_of_the_documented_shape_are_accepted(name: str) -> None:
    assert normalize_reference(name, "person") == unicodedata.normalize("NFKC", name).casefold()


@pytest.mark.parametrize(
    "bad, words",
    [
        ("!!!", "username '!!!' must start with a letter"),
        ("9lives", "must start with a letter"),
        ("_bob", "must start with a letter"),
        ("-x", "must start with a letter"),
        ("१२३", "must start with a letter"),  # digits, if Devanagari ones
        ("user@example.com", "not allowed at position 5: '@'"),
        ("a/b", "not allowed at position 2: '/'"),
        ("bob☺", "not allowed at position 4: '☺'"),
    ],
)
def test_usernames_outside_the_shape_are_refused_saying_what_the_shape_is(bad: str, words: str) -> None:
    with pytest.raises(IdentityError) as ei:
        normalize_reference(bad, "person")
    msg = one_line(ei.value)
    assert words in msg
    assert "a letter, then letters, digits, '.', '_' or '-'" in msg


MISTYPED_IDS = [
    (GB_EXAMPLE_ID[:-1], "resident identity number with a character missing"),
    (GB_EXAMPLE_ID[1:-1], "resident identity number with 2 characters missing"),
    ("110105491231002", "first-generation 15-digit resident identity number"),
    (GB_EXAMPLE_ID[:-1] + "07", "resident identity number with a character too many"),
    ("110105 19491231002X", "written with spaces or hyphens"),
    ("110105-19491231-002X", "written with spaces or hyphens"),
    ("l" + GB_EXAMPLE_ID[1:], "character mistyped or missing"),   # a letter l for the digit 1
    (GB_EXAMPLE_ID[:-1] + "Y", "character mistyped or missing"),
    ("91350100M000100Y4", "character mistyped or missing"),  # a code's check character dropped
    ("91350100MA8RT5LX4", "unified social credit code with a character missing"),  # its check character dropped
]


@pytest.mark.parametrize("mistyped, hint", MISTYPED_IDS)
def test_a_mistyped_identifier_is_not_a_username_and_the_hint_says_what_it_looks_like(mistyped, hint) -> None:
    with pytest.raises(IdentityError) as ei:
        normalize_reference(mistyped, "person")
    msg = one_line(ei.value)
    assert "is neither a valid identifier nor a username: it looks like a" in msg
    assert hint in msg
    assert not re.search(r"[0-9]{4}", msg.split(":")[0]), msg  # the reference is masked


def test_an_organization_code_with_a_wrong_check_character_given_as_a_person_gets_a_hint() -> None:
    code = make_uscc("91350100MA8RT5LX4")
    wrong = code[:17] + ("0" if code[17] != "0" else "1")
    with pytest.raises(IdentityError, match="unified social credit code with a wrong check character"):
        normalize_reference(wrong, "person")


@given(st.text(alphabet="0123456789", min_size=15, max_size=19).filter(lambda s: len(s) != 18))
def test_a_number_of_15_to_19_digits_is_never_a_username_and_never_echoed(digits: str) -> None:
    with pytest.raises(IdentityError) as ei:
        normalize_reference(digits, "person")
    assert digits[3:-2] not in one_line(ei.value)


def test_a_letter_and_fourteen_digits_is_a_mistyped_id_not_a_username() -> None:
    # Casefolding makes "ß" two letters: the check looks at the name as it would be stored.
    with pytest.raises(IdentityError, match="mistyped or missing"):
        normalize_reference("ß1234567890123", "person")
    assert normalize_reference("ß123456789012", "person") == "ss123456789012"


def test_eighteen_digits_with_bad_check_is_not_a_username() -> None:
    with pytest.raises(IdentityError):
        normalize_reference("123456789012345678", "person")


@settings(max_examples=300)
@given(st.text(min_size=1, max_size=40))
def test_normalization_is_idempotent(text: str) -> None:
    try:
        once = normalize_reference(text, "person")
    except IdentityError as exc:
        one_line(exc)
        return
    assert normalize_reference(once, "person") == once


def test_unknown_kind_and_non_string() -> None:
    with pytest.raises(IdentityError, match="unknown subject kind"):
        normalize_reference("alice", "robot")  # type: ignore[arg-type]
    with pytest.raises(IdentityError, match="must be a string"):
        normalize_reference(12345, "person")  # type: ignore[arg-type]
    with pytest.raises(IdentityError, match="unknown subject kind"):
        Pseudonymizer(KEY_A).pseudonym("alice", "robot")  # type: ignore[arg-type]
    with pytest.raises(IdentityError, match="must be a string"):
        Pseudonymizer(KEY_A).pseudonym(["alice"], "person")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Pseudonyms
# ---------------------------------------------------------------------------


def test_pseudonym_format_and_normalization() -> None:
    p = Pseudonymizer(KEY_A)
    ps = p.pseudonym("alice", "person")
    version, _, hexpart = ps.partition(":")
    assert version == "1"
    assert len(hexpart) == 32 and all(c in "0123456789abcdef" for c in hexpart)
    assert p.pseudonym("Ａｌｉｃｅ", "person") == ps
    assert p.pseudonym(" ALICE ", "person") == ps
    assert p.pseudonym("11010519491231002x", "person") == p.pseudonym(GB_EXAMPLE_ID, "person")
    assert p.pseudonym("9135-0100m000100y43", "organization") == p.pseudonym(
        "91350100M000100Y43", "organization"
    )


def test_pseudonym_matches_the_documented_construction() -> None:
    import hashlib
    import hmac as _hmac

    p = Pseudonymizer(KEY_A, version=3)
    expected = _hmac.new(KEY_A, b"organization:91350100M000100Y43", hashlib.sha256).hexdigest()[:32]
    assert p.pseudonym("91350100M000100Y43", "organization") == "3:" + expected


def test_pseudonyms_differ_by_kind_key_and_version() -> None:
    a, b = Pseudonymizer(KEY_A), Pseudonymizer(KEY_B)
    # 110105199001010299 is both a valid resident ID and a valid USCC, so it
    # normalizes to the same string under both kinds: only the kind separates them.
    both = "110105199001010299"
    assert normalize_reference(both, "person") == normalize_reference(both, "organization") == both
    assert a.pseudonym(both, "person") != a.pseudonym(both, "organization")
    assert a.pseudonym("alice", "person") != b.pseudonym("alice", "person")
    assert a.fingerprint != b.fingerprint
    a2 = Pseudonymizer(KEY_A, version=2)
    assert a2.pseudonym("alice", "person").startswith("2:")
    assert a2.pseudonym("alice", "person")[2:] == a.pseudonym("alice", "person")[2:]
    assert a2.fingerprint == a.fingerprint  # the fingerprint identifies the key


@pytest.mark.parametrize(
    "ref, kind",
    [
        ("alice", "person"),
        (GB_EXAMPLE_ID, "person"),
        ("91350100M000100Y43", "organization"),
    ],
)
def test_raw_reference_never_appears(ref: str, kind: str) -> None:
    p = Pseudonymizer(KEY_A)
    ps = p.pseudonym(ref, kind)  # type: ignore[arg-type]
    assert ref not in ps and ref.lower() not in ps
    assert KEY_A.hex() not in ps
    assert KEY_A.hex() not in p.fingerprint and KEY_A.hex() not in repr(p)


def test_fingerprint_is_stable_short_hex() -> None:
    fp = Pseudonymizer(KEY_A).fingerprint
    assert fp == Pseudonymizer(KEY_A, version=9).fingerprint
    assert 8 <= len(fp) <= 32 and all(c in "0123456789abcdef" for c in fp)


def test_pseudonymizer_rejects_bad_keys() -> None:
    with pytest.raises(IdentityError):
        Pseudonymizer(b"short")
    with pytest.raises(IdentityError):
        Pseudonymizer("0" * 64)  # type: ignore[arg-type]
    with pytest.raises(IdentityError):
        Pseudonymizer(KEY_A, version=0)


def test_cache_is_consistent_and_bounded() -> None:
    p = Pseudonymizer(KEY_A)
    first = p.pseudonym("alice", "person")
    for i in range(2000):
        p.pseudonym(f"user{i}", "person")
    assert p.pseudonym("alice", "person") == first
    info = p._cached.cache_info()  # noqa: SLF001 - checking the bound
    assert info.maxsize == 131_072 and info.hits >= 1  # bounded: a long-lived service does not grow without end


# ---------------------------------------------------------------------------
# Key storage
# ---------------------------------------------------------------------------


def test_create_key_file_mode_and_content(tmp_path: Path) -> None:
    path = tmp_path / "registry.key"
    old = os.umask(0)  # even with a permissive umask the file is 0600
    try:
        p = create_key_file(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = json.loads(path.read_text())
    assert doc["version"] == 1
    assert len(doc["key"]) == 64 and bytes.fromhex(doc["key"])
    created = datetime.datetime.fromisoformat(doc["created_at"].replace("Z", "+00:00"))
    assert created.tzinfo is not None
    loaded = load_key(path, env={})
    assert loaded.fingerprint == p.fingerprint
    assert loaded.pseudonym("alice", "person") == p.pseudonym("alice", "person")


def test_create_key_file_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "registry.key"
    first = create_key_file(path)
    before = path.read_bytes()
    with pytest.raises(KeyFileError) as ei:
        create_key_file(path)
    assert "already exists" in one_line(ei.value)
    assert path.read_bytes() == before
    assert load_key(path, env={}).fingerprint == first.fingerprint


def test_two_keys_are_different(tmp_path: Path) -> None:
    a = create_key_file(tmp_path / "a.key")
    b = create_key_file(tmp_path / "b.key")
    assert a.fingerprint != b.fingerprint


def test_load_key_refuses_group_or_world_readable(tmp_path: Path) -> None:
    path = tmp_path / "registry.key"
    create_key_file(path)
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError) as ei:
        load_key(path, env={})
    msg = one_line(ei.value)
    assert "0644" in msg and "chmod 600" in msg
    os.chmod(path, 0o640)
    with pytest.raises(KeyFileError, match="0640"):
        load_key(path, env={})
    os.chmod(path, 0o400)
    assert load_key(path, env={}).version == 1


def test_load_key_missing_file_message(tmp_path: Path) -> None:
    path = tmp_path / "nope.key"
    with pytest.raises(KeyFileError) as ei:
        load_key(path, env={})
    msg = one_line(ei.value)
    assert "not found" in msg and str(path) in msg
    assert "socialcredit init" in msg and "SOCIALCREDIT_KEY" in msg
    assert isinstance(ei.value, IdentityError) and isinstance(ei.value, ValueError)


@pytest.mark.parametrize(
    "content, words",
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"version": 1}', '"key" field is missing'),
        ('{"version": 1, "key": "abc"}', "64 hexadecimal"),
        ('{"version": 1, "key": "' + "g" * 64 + '"}', "64 hexadecimal"),
        ('{"version": 0, "key": "' + "a" * 64 + '"}', "positive integer"),
        ('{"version": true, "key": "' + "a" * 64 + '"}', "positive integer"),
    ],
)
def test_load_key_malformed_file(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "registry.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(content)
    with pytest.raises(KeyFileError) as ei:
        load_key(path, env={})
    msg = one_line(ei.value)
    assert "malformed" in msg and words in msg
    assert "g" * 64 not in msg


def test_env_key_takes_precedence(tmp_path: Path) -> None:
    path = tmp_path / "registry.key"
    from_file = create_key_file(path)
    env = {"SOCIALCREDIT_KEY": KEY_B.hex()}
    p = load_key(path, env=env)
    assert p.fingerprint == Pseudonymizer(KEY_B).fingerprint != from_file.fingerprint
    assert p.version == 1
    # The env key works without any key file, and with a version.
    p7 = load_key(None, env={"SOCIALCREDIT_KEY": KEY_B.hex().upper(), "SOCIALCREDIT_KEY_VERSION": "7"})
    assert p7.version == 7 and p7.pseudonym("alice", "person").startswith("7:")
    assert load_key(tmp_path / "absent.key", env=env).fingerprint == p.fingerprint


@pytest.mark.parametrize(
    "env, words",
    [
        ({"SOCIALCREDIT_KEY": ""}, "empty"),
        ({"SOCIALCREDIT_KEY": "ab" * 31}, "64 hexadecimal"),
        ({"SOCIALCREDIT_KEY": "zz" * 32}, "64 hexadecimal"),
        ({"SOCIALCREDIT_KEY": "ab" * 32, "SOCIALCREDIT_KEY_VERSION": "x"}, "positive integer"),
        ({"SOCIALCREDIT_KEY": "ab" * 32, "SOCIALCREDIT_KEY_VERSION": "0"}, "positive integer"),
    ],
)
def test_env_key_errors(env: dict[str, str], words: str) -> None:
    with pytest.raises(KeyFileError) as ei:
        load_key(None, env=env)
    msg = one_line(ei.value)
    assert words in msg
    assert env["SOCIALCREDIT_KEY"] == "" or env["SOCIALCREDIT_KEY"] not in msg


def test_load_key_without_env_or_path() -> None:
    with pytest.raises(KeyFileError) as ei:
        load_key(None, env={})
    assert "SOCIALCREDIT_KEY" in one_line(ei.value)


def test_load_key_directory_is_not_a_key_file(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o700)
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_key(tmp_path, env={})


def test_an_organization_code_given_as_a_person_is_refused() -> None:
    # Filed as a username it would land on a person nobody looks up; the company stays clean.
    with pytest.raises(IdentityError, match="is a unified social credit code: give the subject kind organization"):
        normalize_reference("91350100M000100Y43", "person")


def test_a_resident_id_given_as_an_organization_is_named_and_masked() -> None:
    with pytest.raises(IdentityError) as error:
        normalize_reference(GB_EXAMPLE_ID, "organization")
    assert "is a resident identity number, not a unified social credit code" in str(error.value)
    assert GB_EXAMPLE_ID not in str(error.value)


# ---------------------------------------------------------------------------
# Identifiers inside other text (keys, providers)
# ---------------------------------------------------------------------------

PROVINCES = ["11", "31", "35", "37", "44", "65", "81", "83"]
separators = st.text(alphabet="-_:/. abcdefghjk", max_size=6)


@given(st.sampled_from(PROVINCES), st.text(alphabet="0123456789", min_size=4, max_size=4),
       st.dates(min_value=datetime.date(1900, 1, 1), max_value=datetime.date(2099, 12, 31)), seq3,
       separators, separators, st.booleans())
def test_a_resident_id_anywhere_in_a_text_is_found_and_masked(province, county, birth, seq, before, after, digits):
    rid = make_resident_id(province + county, birth, seq)
    text = before + ("7" if digits and rid[-1] != "X" else "") + rid + after  # glued to another digit too
    found = identifier_in(text)
    assert found is not None and found[0] == "resident identity number"
    assert rid not in found[1] and rid[3:-2] not in found[1]
    assert found[1].startswith(before) and found[1].endswith(after)


@given(st.sampled_from(["9", "1", "5", "Y"]), st.sampled_from("123"), st.sampled_from(PROVINCES + ["10"]),
       st.text(alphabet="0123456789", min_size=4, max_size=4), st.text(alphabet=USCC_ALPHABET, min_size=9, max_size=9),
       st.sampled_from(["", "org:", "loan-"]), st.sampled_from(["", ":7", "/2026"]), st.booleans())
def test_an_organization_code_as_a_word_of_a_text_is_found_and_masked(authority, kind, province, region, body,
                                                                      before, after, lower):
    code = make_uscc(authority + kind + province + region + body)
    found = identifier_in(before + (code.lower() if lower else code) + after)
    assert found is not None and found[0] == "unified social credit code"
    assert code[3:-2] not in found[1].upper()


def test_full_width_digits_are_digits_inside_a_text_too() -> None:
    assert identifier_in("case-１１０１０５１９４９１２３１００２Ｘ") == ("resident identity number",
                                                                 "case-110*************2X")


@pytest.mark.parametrize("text", [
    "loan-77-2026-02",
    "demo-0000042",
    "peer.opt_in:1:" + "0" * 32 + ":1780000000000000",  # what `enrol` builds
    "110105194912310021",                  # a resident ID's shape with a wrong check character
    make_resident_id("110105", datetime.date(1850, 12, 31), "002"),  # a birth year no resident has
    make_resident_id("990105", datetime.date(1990, 1, 1), "002"),    # no province 99
    "org91350100M000100Y43",               # a code glued to letters is not a word of its own
    "91350100M000100Y44",                  # a wrong check character
])
def test_text_that_only_resembles_an_identifier_passes(text: str) -> None:
    assert identifier_in(text) is None


def test_hashes_and_long_numbers_are_rarely_taken_for_identifiers() -> None:
    import hashlib
    import random

    digests = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(5000)]
    assert not [d for d in digests if identifier_in("rating:" + d[:32])]  # what `rate` builds
    assert sum(identifier_in(d[:18]) is not None for d in digests) <= 10  # 18 hex digits: about 1 in 1,500
    numbers = random.Random(1).choices("0123456789", k=25 * 5000)
    keys = ["".join(numbers[i : i + 25]) for i in range(0, len(numbers), 25)]
    assert sum(identifier_in(k) is not None for k in keys) <= 5  # 8 windows each: about 1 in 4,000
