"""Saving and loading one party's half of a vertical XGBoost model.

A party's file holds: the public tree shape and parameters, the owner party of every
node, this party's *own* splits (feature index, threshold, default direction; ``-1`` /
NaN at the other party's nodes), and this party's additive shares (uniform uint64 words)
of the split flags and leaf weights. The label party's file also holds its base margin,
its regression scale and the classes. A file alone therefore reveals nothing about the
other party's features, thresholds or leaf weights; prediction needs both files.

Format: UTF-8 JSON (never pickle); arrays as ``{"dtype", "shape", "b64"}``. Files are written
atomically (temporary file, fsync, rename).

Encrypted at rest (``key=``), the file is::

    b"PETXGB-AESGCM2\n" | header length (2 bytes, big endian) | header | nonce (12) | ciphertext+tag

``header`` is canonical JSON (sorted keys, UTF-8) with the document version, the model id (a
public random tag both halves share), the party, the KDF and a fresh 16-byte salt -- readable
without the key; the estimator kind and everything else are inside the ciphertext. The AES-256-GCM key is
``HKDF-SHA256(key, salt, info=b"pet.ml.vertical_xgb/aesgcm2", 32 bytes)`` -- a fresh key per
file -- and the associated data is the magic plus the header bytes, so changing the model id,
the party, the version or the salt in the header makes authentication fail. The model id and
party inside the ciphertext must equal the header's.

``key`` is *key material*, not a passphrase: at least 32 bytes (at most 1024) that look random --
not all printable ASCII (a typed passphrase, or hex text passed without decoding) and at least
16 distinct byte values; anything else is refused with :class:`~pet.errors.InputError`. Files
written by older pet versions (``PETXGB-AESGCM1``: the key used directly as the AES key, nothing
bound) are refused: read them with the pet version that wrote them, save them without a key,
and save them again with this one.
"""

from __future__ import annotations

import base64
import json
import os
import struct

import numpy as np

from pet._io import atomic_write_bytes
from pet.errors import InputError, PetTypeError

__all__ = ["save_state", "load_state", "write_atomic", "check_key_material"]

_FORMAT = "pet.ml.vertical_xgb"
_VERSION = 1
_MAGIC = b"PETXGB-AESGCM2\n"
_OLD_MAGICS = (b"PETXGB-AESGCM1\n",)
_KDF = "HKDF-SHA256"
_KDF_INFO = b"pet.ml.vertical_xgb/aesgcm2"
_SALT_BYTES = 16
_NONCE_BYTES = 12
_MAX_HEADER = 4096
_MIN_KEY, _MAX_KEY = 32, 1024
_DTYPES = {"int8", "int64", "uint64", "float64", "bool"}


def _enc(obj):
    if isinstance(obj, np.ndarray):
        if obj.dtype.name not in _DTYPES:
            raise PetTypeError(f"cannot store arrays of dtype {obj.dtype}")
        return {"__array__": True, "dtype": obj.dtype.name, "shape": list(obj.shape),
                "b64": base64.b64encode(np.ascontiguousarray(obj).tobytes()).decode("ascii")}
    if isinstance(obj, dict):
        return {str(k): _enc(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_enc(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _dec(obj):
    if isinstance(obj, dict):
        if obj.get("__array__") is True:
            if obj.get("dtype") not in _DTYPES:
                raise InputError(f"model file: unsupported array dtype {obj.get('dtype')!r}")
            raw = base64.b64decode(obj["b64"])
            arr = np.frombuffer(raw, dtype=np.dtype(obj["dtype"])).copy()
            return arr.reshape([int(s) for s in obj["shape"]])
        return {k: _dec(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_dec(v) for v in obj]
    return obj


def check_key_material(key) -> bytes:
    """``key`` as bytes, or :class:`InputError` if it is not random-looking key material."""
    if not isinstance(key, (bytes, bytearray)):
        raise PetTypeError(f"key must be bytes (at least {_MIN_KEY} random bytes), got {type(key).__name__}")
    key = bytes(key)
    if not _MIN_KEY <= len(key) <= _MAX_KEY:
        raise InputError(f"key must be {_MIN_KEY} to {_MAX_KEY} random bytes (e.g. os.urandom(32)), "
                         f"got {len(key)} bytes")
    if all(32 <= b < 127 for b in key) or len(set(key)) < 16:
        raise InputError("key does not look like random key material (it is printable text, or repeats a few "
                         "byte values): a passphrase or hex text is not a key -- use os.urandom(32), or decode "
                         "a hex key file first")
    return key


def _derive(key: bytes, salt: bytes):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_KDF_INFO).derive(key))


def _header_fields(state: dict) -> dict:
    model_id, party = state.get("model_id"), state.get("party")
    if not isinstance(model_id, str) or not model_id:
        raise InputError("an encrypted model file needs the state's 'model_id' (a non-empty string)")
    if isinstance(party, np.integer):
        party = int(party)
    if party not in (0, 1) or isinstance(party, bool):
        raise InputError("an encrypted model file needs the state's 'party' (0 or 1)")
    return {"version": _VERSION, "model_id": model_id, "party": party, "kdf": _KDF}


def _encrypt(state: dict, data: bytes, key) -> bytes:
    key = check_key_material(key)
    salt = os.urandom(_SALT_BYTES)
    fields = _header_fields(state)
    fields["salt"] = base64.b64encode(salt).decode("ascii")
    header = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode("utf-8")
    nonce = os.urandom(_NONCE_BYTES)
    aad = _MAGIC + struct.pack(">H", len(header)) + header
    return aad + nonce + _derive(key, salt).encrypt(nonce, data, aad)


def _decrypt(path, data: bytes, key) -> tuple[dict, bytes]:
    """(header, plaintext) of an encrypted model file; :class:`InputError` on any problem."""
    from cryptography.exceptions import InvalidTag

    key = check_key_material(key)
    fixed = len(_MAGIC) + 2
    if len(data) < fixed:
        raise InputError(f"{path}: truncated encrypted model file")
    (n,) = struct.unpack(">H", data[len(_MAGIC):fixed])
    if n > _MAX_HEADER or len(data) < fixed + n + _NONCE_BYTES + 16:
        raise InputError(f"{path}: malformed encrypted model file header")
    aad, body = data[:fixed + n], data[fixed + n:]
    try:
        header = json.loads(aad[fixed:].decode("utf-8"))
        salt = base64.b64decode(header["salt"], validate=True)
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise InputError(f"{path}: malformed encrypted model file header") from None
    if not isinstance(header, dict) or header.get("kdf") != _KDF or len(salt) != _SALT_BYTES:
        raise InputError(f"{path}: unsupported encrypted model file header")
    try:
        plain = _derive(key, salt).decrypt(body[:_NONCE_BYTES], body[_NONCE_BYTES:], aad)
    except InvalidTag:
        raise InputError(f"cannot decrypt {path}: wrong key or the file was modified") from None
    return header, plain


def write_atomic(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder + rename)."""
    atomic_write_bytes(path, data)


def save_state(path, kind: str, state: dict, *, key=None) -> None:
    """Write ``state`` (one party's model) of estimator ``kind`` to ``path``; encrypted (see
    the module docstring) if ``key`` is given, in which case ``state`` must hold ``model_id``
    and ``party``."""
    doc = {"format": _FORMAT, "version": _VERSION, "estimator": kind, "state": _enc(state)}
    data = json.dumps(doc, separators=(",", ":"), allow_nan=True).encode("utf-8")
    if key is not None:
        data = _encrypt(state, data, key)
    write_atomic(path, data)


def load_state(path, *, key=None, party: int | None = None, model_id: str | None = None) -> tuple[str, dict]:
    """Read a model file; returns ``(kind, state)``. Raises :class:`InputError` for a
    file that is not a pet model, is encrypted and no/the wrong key is given, was tampered
    with, was encrypted by an older pet, or (when ``party`` / ``model_id`` are given) holds
    another party's or another model's half."""
    with open(os.fspath(path), "rb") as fh:
        data = fh.read()
    header = None
    if data.startswith(_OLD_MAGICS):
        raise InputError(f"{path} was encrypted by an older pet (format AESGCM1: key used as the raw AES key, "
                         f"party and model id not bound); it is refused -- load it with the pet version that "
                         f"wrote it, save it without a key, then load and save it with key= in this version")
    if data.startswith(_MAGIC):
        if key is None:
            raise InputError(f"{path} is encrypted: pass key=")
        header, data = _decrypt(path, data, key)
    elif key is not None:
        raise InputError(f"{path} is not encrypted, but a key was given")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is not a pet model file ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
        raise InputError(f"{path} is not a pet vertical XGBoost model file")
    if doc.get("version") != _VERSION:
        raise InputError(f"{path}: unsupported model file version {doc.get('version')!r}")
    kind, state = str(doc.get("estimator")), _dec(doc["state"])
    if header is not None:
        inner = {"version": doc.get("version"), "model_id": state.get("model_id"), "party": state.get("party")}
        if any(header.get(k) != v for k, v in inner.items()):
            raise InputError(f"{path}: the encrypted model does not match its file header")
    if party is not None and state.get("party") != party:
        raise InputError(f"{path} holds party {state.get('party')}'s half of the model, expected party {party}'s")
    if model_id is not None and state.get("model_id") != model_id:
        raise InputError(f"{path} holds another model (model id differs from the one expected)")
    return kind, state
