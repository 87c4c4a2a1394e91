"""References to subjects and their keyed pseudonyms.

A *reference* is how the outside world names a subject:

* an organization by its 18-character unified social credit code (USCC,
  GB 32100-2015);
* a person by a PRC resident identity number (GB 11643-1999) or by a username.

A username, after NFKC and casefolding (``Alice`` and ``ＡＬＩＣＥ`` are ``alice``), is 1 to
64 characters: a letter first, then letters, digits, ``.``, ``_`` or ``-``. Letters and
digits are those of any script (``张伟``, ``naïve``, ``peer-17``, ``lacie_c``); combining
marks may follow a letter (Devanagari vowel signs). Whitespace, punctuation other than
those three, symbols, control and invisible characters are refused.

Something that looks like a national identifier typed wrong is not a username, even when
it would fit the shape: mostly digits and 15 to 19 characters long (``l10105...``, a
17-digit number that lost its check character, an old 15-digit number), or an
organization's code with a character missing or wrong. It is refused with a hint of what it
looks like, so a mistyped ID is never scored as a stranger with a clean record.

References are normalized (:func:`normalize_reference`) and then replaced by a
keyed pseudonym (:class:`Pseudonymizer`) before anything is stored, so the
ledger never holds a national ID. The pseudonym is
``"{key version}:{32 hex}"``: the first 128 bits of
HMAC-SHA256(key, ``"{kind}:{normalized}"``). The kind is part of the HMAC
input, so a person and an organization can never share a pseudonym.

Error messages are one line of plain words and never contain a full resident
identity number (it is masked: first 3 and last 2 characters kept), nor anything that
looks like one. Valid organization codes and usernames are not secret and may be echoed.

:func:`identifier_in` finds a resident identity number or an organization code inside
other text (an event's key, a provider's name), which is stored in clear.

Key storage: :func:`create_key_file` and :func:`load_key` (the environment
variable ``SOCIALCREDIT_KEY`` takes precedence over the key file).
"""

from __future__ import annotations

import datetime
import functools
import hmac
import json
import operator
import os
import re
import stat
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from ..errors import EXCERPT_LENGTH, InvalidInput, excerpt

__all__ = [
    "IdentityError",
    "KeyFileError",
    "SubjectKind",
    "normalize_reference",
    "uscc_check_character",
    "is_valid_uscc",
    "make_uscc",
    "resident_id_check_character",
    "make_resident_id",
    "identifier_in",
    "Pseudonymizer",
    "create_key_file",
    "load_key",
    "KEY_ENV",
    "KEY_VERSION_ENV",
]

SubjectKind = Literal["person", "organization"]
_KINDS: tuple[str, ...] = ("person", "organization")

KEY_ENV = "SOCIALCREDIT_KEY"
KEY_VERSION_ENV = "SOCIALCREDIT_KEY_VERSION"


class IdentityError(InvalidInput):
    """A reference, key or key file is not acceptable.

    The message is always a single line: any line break or other control
    character that slips into it is shown escaped (as for every error of the tree).
    """


class KeyFileError(IdentityError):
    """The pseudonymization key could not be created or loaded."""


def _mask(value: str) -> str:
    """Mask a national ID for messages: keep the first 3 and last 2 characters (and, of a long
    value, show no more than the start: a message quotes a short excerpt)."""
    if len(value) <= 5:
        return "*" * len(value)
    if len(value) > EXCERPT_LENGTH:
        return value[:3] + "*" * (EXCERPT_LENGTH - 4) + "…"
    return value[:3] + "*" * (len(value) - 5) + value[-2:]


def _echo_person(value: str) -> str:
    # A username is not secret, but something rejected as a username may still
    # be a national ID typed with a space or a stray character in it.
    digits = sum(1 for c in value if "0" <= c <= "9")
    if digits >= 15:
        return _mask(value)
    return excerpt(value)


# --------------------------------------------------------------------------
# Unified social credit code (GB 32100-2015)
# --------------------------------------------------------------------------

#: Code characters in value order: 0-9 → 0..9, then the letters → 10..30.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {c: i for i, c in enumerate(USCC_ALPHABET)}
#: w_i = 3^(i-1) mod 31, i = 1..17.
USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
assert USCC_WEIGHTS == (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_ALLOWED = "0-9 and A-Z except I, O, Z, S, V"


def _uscc_check(first17: str) -> str:
    total = sum(_USCC_VALUE[c] * w for c, w in zip(first17, USCC_WEIGHTS))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def uscc_check_character(first17: str) -> str:
    """The GB 32100-2015 check character for the first 17 characters of a code.

    ``first17`` must already be in canonical form (upper case, no separators).
    """
    if not isinstance(first17, str):
        raise IdentityError(f"unified social credit code body must be a string, not {type(first17).__name__}")
    if len(first17) != 17:
        raise IdentityError(
            f"unified social credit code body {excerpt(first17)} has {len(first17)} characters; it needs 17"
        )
    for pos, c in enumerate(first17, start=1):
        if c not in _USCC_VALUE:
            raise IdentityError(
                f"unified social credit code body {excerpt(first17)} has a character that is not allowed"
                f" at position {pos}: {c!r} (allowed: {_USCC_ALLOWED})"
            )
    return _uscc_check(first17)


def make_uscc(body17: str) -> str:
    """Append the check character to a 17-character body (for synthetic data)."""
    return body17 + uscc_check_character(body17)


def is_valid_uscc(code: str) -> bool:
    """True if ``code`` is a valid unified social credit code.

    Accepts the same spellings as :func:`normalize_reference` (lower case,
    spaces and hyphens); use that function to obtain the canonical form.
    """
    try:
        _normalize_organization(code)
    except IdentityError:
        return False
    return True


def _normalize_organization(ref: str) -> str:
    code = unicodedata.normalize("NFKC", ref).strip()
    code = code.replace(" ", "").replace("-", "").upper()
    if len(code) != 18:
        raise IdentityError(
            f"unified social credit code {excerpt(code)} has {len(code)} characters; it needs 18"
        )
    for pos, c in enumerate(code, start=1):
        if c not in _USCC_VALUE:
            raise IdentityError(
                f"unified social credit code {excerpt(code)} has a character that is not allowed"
                f" at position {pos}: {c!r} (allowed: {_USCC_ALLOWED})"
            )
    expected = _uscc_check(code[:17])
    if code[17] != expected:
        if _looks_like_resident_id(code) and _resident_check(code[:17]) == code[17]:
            # A person's ID given as an organization: say so, and never echo it.
            raise IdentityError(
                f"{_mask(code)} is a resident identity number, not a unified social credit code "
                "(give the subject kind person)"
            )
        raise IdentityError(
            f"unified social credit code {code} has a wrong check character: expected {expected}"
        )
    return code


# --------------------------------------------------------------------------
# Resident identity number (GB 11643-1999, ISO 7064 MOD 11-2)
# --------------------------------------------------------------------------

RESIDENT_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
RESIDENT_ID_CHECK = "10X98765432"
_DIGITS = frozenset("0123456789")


def _is_ascii_digits(s: str) -> bool:
    return s.isascii() and s.isdigit()  # isdigit alone takes other scripts' digits (and superscripts)


def _looks_like_resident_id(s: str) -> bool:
    return len(s) == 18 and _is_ascii_digits(s[:17]) and (s[17] in _DIGITS or s[17] in "Xx")


def _resident_check(first17: str) -> str:
    total = sum(map(operator.mul, map(int, first17), RESIDENT_ID_WEIGHTS))
    return RESIDENT_ID_CHECK[total % 11]


def resident_id_check_character(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character ("0"-"9" or "X") for 17 digits."""
    if not isinstance(first17, str):
        raise IdentityError(f"resident identity number body must be a string, not {type(first17).__name__}")
    if len(first17) != 17 or not _is_ascii_digits(first17):
        raise IdentityError(
            f"resident identity number body {_mask(first17)} must be exactly 17 digits"
        )
    return _resident_check(first17)


def _birth_date(id18: str) -> datetime.date | None:
    try:
        return datetime.date(int(id18[6:10]), int(id18[10:12]), int(id18[12:14]))
    except ValueError:
        return None


def make_resident_id(region6: str, birth: datetime.date, seq3: str) -> str:
    """Build a valid 18-character resident identity number (for synthetic data).

    ``region6`` is the 6-digit administrative division code, ``seq3`` the
    3-digit sequence number (odd for men, even for women).
    """
    if not (isinstance(region6, str) and len(region6) == 6 and _is_ascii_digits(region6)):
        raise IdentityError("region code must be exactly 6 digits")
    if not (isinstance(seq3, str) and len(seq3) == 3 and _is_ascii_digits(seq3)):
        raise IdentityError("sequence number must be exactly 3 digits")
    if not isinstance(birth, datetime.date):
        raise IdentityError(f"birth date must be a datetime.date, not {type(birth).__name__}")
    first17 = f"{region6}{birth.year:04d}{birth.month:02d}{birth.day:02d}{seq3}"
    return first17 + _resident_check(first17)


def _normalize_resident_id(ref: str) -> str:
    rid = ref.upper()
    if _birth_date(rid) is None:
        raise IdentityError(
            f"resident identity number {_mask(rid)} does not contain a real birth date"
            " in digits 7 to 14"
        )
    if rid[17] != _resident_check(rid[:17]):
        raise IdentityError(f"resident identity number {_mask(rid)} has a wrong check character")
    return rid


# --------------------------------------------------------------------------
# Usernames
# --------------------------------------------------------------------------

USERNAME_MAX = 64
# Cc control, Cf invisible formatting (bidi overrides, zero-width), Cs lone
# surrogates (cannot be encoded), Cn unassigned (their normalization may
# change with a later Unicode version, which would change the pseudonym).
_REJECTED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Cn"})
_LETTERS = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo"})
# After the first letter: letters, the marks some scripts write letters with, decimal digits.
_USERNAME_CATEGORIES = _LETTERS | {"Mn", "Mc", "Nd"}
_USERNAME_PUNCTUATION = frozenset("._-")
_USERNAME_SHAPE = "a letter, then letters, digits, '.', '_' or '-'"


def _fold_username(name: str) -> str:
    # NFKC then casefold; a final NFKC makes the result stable, so that
    # normalizing a normalized username gives it back unchanged.
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


def _normalize_username(name: str) -> str:
    folded = _fold_username(name)
    if not folded:
        raise IdentityError("username is empty")
    if len(folded) > USERNAME_MAX:
        raise IdentityError(
            f"username {_echo_person(folded)} has {len(folded)} characters; at most {USERNAME_MAX} are allowed"
        )
    for pos, c in enumerate(folded, start=1):
        category = unicodedata.category(c)
        if c.isspace():
            raise IdentityError(
                f"username {_echo_person(folded)} contains whitespace at position {pos}"
            )
        if category in _REJECTED_CATEGORIES:
            raise IdentityError(
                f"username {_echo_person(folded)} contains a control, invisible or unassigned"
                f" character at position {pos} (U+{ord(c):04X})"
            )
        if pos == 1 and category not in _LETTERS:
            raise IdentityError(
                f"username {_echo_person(folded)} must start with a letter (a username is {_USERNAME_SHAPE})"
            )
        if category not in _USERNAME_CATEGORIES and c not in _USERNAME_PUNCTUATION:
            raise IdentityError(
                f"username {_echo_person(folded)} has a character that is not allowed at position {pos}:"
                f" {c!r} (a username is {_USERNAME_SHAPE})"
            )
    return folded


# --------------------------------------------------------------------------
# Identifiers typed wrong, and identifiers inside other text
# --------------------------------------------------------------------------

_SEPARATORS = str.maketrans("", "", " -\u3000")


def _mistyped_identifier(ref: str) -> str | None:
    """The hint for a person reference that looks like an identifier typed wrong, else None.

    ``ref`` is normalized as a username would be. Valid resident identity numbers and
    valid codes never get here; this names the near misses, before they can pass for
    usernames.
    """
    compact = ref.translate(_SEPARATORS).upper()
    if not 15 <= len(compact) <= 19:
        return None
    digits = sum(1 for c in compact if c in _DIGITS)
    if digits == len(compact) or (digits == len(compact) - 1 and compact[-1] == "X"):
        if len(compact) == 15:
            return ("looks like a first-generation 15-digit resident identity number;"
                    " give the 18-character number that replaced it")
        if len(compact) == 18:
            return ("looks like a resident identity number written with spaces or hyphens;"
                    " give its 18 characters without them")
        missing = 18 - len(compact)
        if missing > 0:
            what = "a character" if missing == 1 else f"{missing} characters"
            return (f"looks like a resident identity number with {what} missing"
                    " (it has 18: 17 digits, then a digit or X)")
        return "looks like a resident identity number with a character too many (it has 18)"
    code_shaped = 17 <= len(compact) <= 19 and all(c in _USCC_VALUE for c in compact) and compact[2:8].isdigit()
    if code_shaped and digits < len(compact) - 2:  # letters where a resident ID has none
        if len(compact) == 18:
            return ("looks like a unified social credit code with a wrong check character"
                    " (an organization also needs the subject kind organization)")
        what = "a character missing" if len(compact) == 17 else "a character too many"
        return f"looks like a unified social credit code with {what} (it has 18)"
    if code_shaped or digits >= len(compact) - 2:
        return ("looks like a resident identity number or a unified social credit code with a character"
                " mistyped or missing (an organization's code also needs the subject kind organization)")
    return None


# Cheap first look: nothing shorter than these can hold an identifier.
_IDENTIFIER_CANDIDATE = re.compile(r"\d{17}|(?<![0-9A-Za-z])[0-9A-Za-z]{18}(?![0-9A-Za-z])")
# Every 18-character window of digits (ending in a digit or X), overlapping: an ID glued to
# other digits is still an ID.
_RESIDENT_WINDOW = re.compile(r"(?=(\d{17}[\dXx]))")
# An organization's code only as a whole word: inside a longer run of letters and digits
# (a hex digest) one window in 31 would have a valid check character.
_USCC_WORD = re.compile(r"(?<![0-9A-Za-z])[0-9A-Za-z]{18}(?![0-9A-Za-z])")
# The first two digits of an administrative division (GB/T 2260): provinces, Hong Kong,
# Macao, and 83 for the residence permits of Taiwan residents. A code may also be national (10).
_PROVINCES = frozenset("11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 "
                       "50 51 52 53 54 61 62 63 64 65 71 81 82 83".split())


def identifier_in(text: str) -> tuple[str, str] | None:
    """A resident identity number or a unified social credit code inside ``text``.

    Returns (what it is, ``text`` with it masked) or None. For text that is stored in
    clear, such as an event's key: an identifier there would undo the pseudonym.

    What counts is what an ID is shaped like, so that a long number or a hash is rarely
    taken for one: a resident ID starts with a province, holds a birth date from 1900 to
    2099 and has its check character (18 random digits pass about once in 30,000); a code
    is a word of its own whose digits 3 to 8 are a region (a province, or 10 for a national
    registration) and whose check character is right (18 random hex digits: once in 1,500).
    """
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)  # full-width digits are digits too
    if _IDENTIFIER_CANDIDATE.search(text) is None:
        return None
    for match in _RESIDENT_WINDOW.finditer(text):
        candidate = match.group(1).upper()
        birth = _birth_date(candidate)
        if (candidate[:2] in _PROVINCES and birth is not None and 1900 <= birth.year <= 2099
                and _resident_check(candidate[:17]) == candidate[17]):
            return "resident identity number", _masked_inside(text, match.start(), 18)
    for match in _USCC_WORD.finditer(text):
        code = match.group().upper()
        if (code[2:8].isdigit() and (code[2:4] in _PROVINCES or code[2:4] == "10")
                and all(c in _USCC_VALUE for c in code) and _uscc_check(code[:17]) == code[17]):
            return "unified social credit code", _masked_inside(text, match.start(), 18)
    return None


def _masked_inside(text: str, start: int, length: int) -> str:
    return text[:start] + _mask(text[start : start + length]) + text[start + length :]


# --------------------------------------------------------------------------
# Normalization entry point
# --------------------------------------------------------------------------


def _check_kind(kind: str) -> None:
    if kind not in _KINDS:
        raise IdentityError(f"unknown subject kind {excerpt(kind)}: expected 'person' or 'organization'")


def normalize_reference(ref: str, kind: SubjectKind) -> str:
    """Canonical form of a reference to a subject; raises IdentityError.

    * organization: a GB 32100-2015 unified social credit code; surrounding
      whitespace, inner spaces and hyphens are removed and letters upper-cased
      (full-width characters are first folded with NFKC).
    * person: if, after NFKC and stripping, the reference is 17 ASCII digits
      followed by a digit or X, it is a resident identity number: it is
      upper-cased and its check character and birth date are validated.
      If it looks like an identifier typed wrong (see the module docstring),
      it is refused with a hint. Otherwise it is a username: NFKC, casefold,
      1-64 characters, a letter first, then letters, digits, '.', '_' or '-'.
    """
    _check_kind(kind)
    if not isinstance(ref, str):
        raise IdentityError(f"a {kind} reference must be a string, not {type(ref).__name__}")
    if kind == "organization":
        return _normalize_organization(ref)
    # NFKC first so that an ID typed in full-width digits is still recognized
    # as an ID (and not silently accepted as a different "username").
    # (ASCII text is its own NFKC form: the usual reference skips the normalization.)
    stripped = (ref if ref.isascii() else unicodedata.normalize("NFKC", ref)).strip()
    if _looks_like_resident_id(stripped):
        return _normalize_resident_id(stripped)
    if len(stripped) == 18 and is_valid_uscc(stripped):
        # An organization's code is not a username: storing it as one would file the
        # company's records under a person nobody will ever look up.
        raise IdentityError(
            f"{stripped.upper()} is a unified social credit code: give the subject kind organization "
            "(subject_kind in an event, --kind organization on the command line)"
        )
    # Looked at as it would be stored: casefolding can lengthen a name (ß becomes ss).
    folded = _fold_username(stripped)
    hint = _mistyped_identifier(folded)
    if hint is not None:
        raise IdentityError(f"{_mask(folded.upper())} is neither a valid identifier nor a username: it {hint}")
    return _normalize_username(stripped)


# --------------------------------------------------------------------------
# Pseudonyms
# --------------------------------------------------------------------------

_PSEUDONYM_HEX = 32
_FINGERPRINT_LABEL = b"socialcredit:key-fingerprint:v1"  # never "person:" / "organization:"
_CACHE_SIZE = 131_072  # a batch file names up to this many subjects before one is computed twice (~300 bytes each)
_MIN_KEY_BYTES = 16


class Pseudonymizer:
    """Turns references into keyed pseudonyms ``"{version}:{32 hex}"``."""

    __slots__ = ("_key", "_version", "_fingerprint", "_cached", "__weakref__")

    def __init__(self, key: bytes, version: int = 1) -> None:
        if not isinstance(key, (bytes, bytearray)):
            raise IdentityError(f"the pseudonymization key must be bytes, not {type(key).__name__}")
        if len(key) < _MIN_KEY_BYTES:
            raise IdentityError(
                f"the pseudonymization key is {len(key)} bytes long; at least {_MIN_KEY_BYTES} are needed"
            )
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise IdentityError(f"the key version must be a positive integer, not {version!r}")
        self._key = bytes(key)
        self._version = version
        self._fingerprint = hmac.digest(self._key, _FINGERPRINT_LABEL, "sha256").hex()[:16]
        self._cached = functools.lru_cache(maxsize=_CACHE_SIZE)(self._compute)

    @property
    def version(self) -> int:
        return self._version

    @property
    def fingerprint(self) -> str:
        """16 hex characters identifying the key (not the version) without revealing it."""
        return self._fingerprint

    def _compute(self, ref: str, kind: str) -> str:
        normalized = normalize_reference(ref, kind)  # type: ignore[arg-type]
        digest = hmac.digest(self._key, f"{kind}:{normalized}".encode("utf-8"), "sha256")
        return f"{self._version}:{digest.hex()[:_PSEUDONYM_HEX]}"

    def pseudonym(self, ref: str, kind: SubjectKind) -> str:
        """Normalize ``ref`` and return its pseudonym; raises IdentityError."""
        if kind not in _KINDS:  # checked before caching so junk kinds do not fill the cache
            _check_kind(kind)
        try:
            return self._cached(ref, kind)
        except TypeError:  # unhashable ref: let normalization report it
            normalize_reference(ref, kind)
            raise

    def cache_clear(self) -> None:
        self._cached.cache_clear()

    def __repr__(self) -> str:
        return f"Pseudonymizer(version={self._version}, fingerprint={self._fingerprint!r})"


# --------------------------------------------------------------------------
# Key storage
# --------------------------------------------------------------------------

_KEY_BYTES = 32
_KEY_FILE_MAX = 64 * 1024
_HEX = frozenset("0123456789abcdefABCDEF")


def _parse_hex_key(text: object, where: str) -> bytes:
    if not isinstance(text, str):
        raise KeyFileError(f"{where}: the key must be a string of 64 hexadecimal characters")
    if len(text) != 2 * _KEY_BYTES or not all(c in _HEX for c in text):
        # Never echo the value: it is (or is close to) the secret.
        raise KeyFileError(
            f"{where}: the key must be 64 hexadecimal characters (32 bytes);"
            f" got {len(text)} characters{'' if all(c in _HEX for c in text) else ', not all hexadecimal'}"
        )
    return bytes.fromhex(text)


def create_key_file(path: Path) -> Pseudonymizer:
    """Write a new random 32-byte key to ``path`` (mode 0600) and return its Pseudonymizer.

    Refuses to overwrite an existing file.
    """
    path = Path(path)
    key = os.urandom(_KEY_BYTES)
    created_at = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    data = json.dumps({"version": 1, "key": key.hex(), "created_at": created_at}, indent=2) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise KeyFileError(f"cannot create the directory for key file {path}: {exc.strerror or exc}") from None
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise KeyFileError(
            f"key file {path} already exists; refusing to overwrite it (records pseudonymized"
            " with the old key could no longer be matched)"
        ) from None
    except OSError as exc:
        raise KeyFileError(f"cannot create key file {path}: {exc.strerror or exc}") from None
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)  # in case the umask removed the owner's bits
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException as exc:
        try:
            os.unlink(path)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise KeyFileError(f"cannot write key file {path}: {exc.strerror or exc}") from None
        raise
    _fsync_dir(path.parent)
    return Pseudonymizer(key, 1)


def _fsync_dir(directory: Path) -> None:
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def _parse_version(value: object, where: str) -> int:
    if isinstance(value, bool):
        raise KeyFileError(f"{where}: the key version must be a positive integer")
    if isinstance(value, str):
        v = value.strip()
        if not (v.isascii() and v.isdigit()):
            raise KeyFileError(f"{where}: the key version must be a positive integer, not {excerpt(value)}")
        value = int(v)
    if not isinstance(value, int) or value < 1:
        raise KeyFileError(f"{where}: the key version must be a positive integer, not {excerpt(value)}")
    return value


def load_key(path: Path | None, env: Mapping[str, str] = os.environ) -> Pseudonymizer:
    """Load the pseudonymization key.

    ``SOCIALCREDIT_KEY`` (64 hex characters, with optional
    ``SOCIALCREDIT_KEY_VERSION``, default 1) wins over the key file at
    ``path``. The key file must not be accessible by group or others.
    """
    if KEY_ENV in env:
        raw = env[KEY_ENV].strip()
        if not raw:
            raise KeyFileError(f"{KEY_ENV} is set but empty; set it to 64 hexadecimal characters or unset it")
        key = _parse_hex_key(raw, KEY_ENV)
        version = _parse_version(env.get(KEY_VERSION_ENV, "1"), KEY_VERSION_ENV)
        return Pseudonymizer(key, version)

    if path is None:
        raise KeyFileError(
            f"no pseudonymization key: {KEY_ENV} is not set and no key file was given;"
            " `socialcredit init` creates one"
        )
    path = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise KeyFileError(
            f"the registry's key file {path} was not found; `socialcredit init` creates it,"
            f" or {KEY_ENV} can supply the key"
        ) from None
    except PermissionError:
        raise KeyFileError(f"cannot read key file {path}: permission denied") from None
    except OSError as exc:
        raise KeyFileError(f"cannot open key file {path}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"key file {path} is not a regular file")
        mode = stat.S_IMODE(st.st_mode)
        if os.name == "posix" and mode & 0o077:
            raise KeyFileError(
                f"key file {path} has permissions {mode:04o}, which are too open: it must not be"
                f" accessible by group or others; run chmod 600 {path}"
            )
        try:
            blob = os.read(fd, _KEY_FILE_MAX + 1)
        except OSError as exc:
            raise KeyFileError(f"cannot read key file {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)

    where = f"key file {path} is malformed"
    if len(blob) > _KEY_FILE_MAX:
        raise KeyFileError(f"{where}: it is larger than {_KEY_FILE_MAX} bytes")
    try:
        doc = json.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise KeyFileError(f"{where}: it is not valid JSON") from None
    if not isinstance(doc, dict):
        raise KeyFileError(f"{where}: expected a JSON object with \"version\" and \"key\"")
    if "key" not in doc:
        raise KeyFileError(f"{where}: the \"key\" field is missing")
    key = _parse_hex_key(doc["key"], where)
    version = _parse_version(doc.get("version", 1), where)
    return Pseudonymizer(key, version)
