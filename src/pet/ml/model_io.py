"""Saving and loading one party's half of a vertical XGBoost model.

A party's file holds: the public tree shape and parameters, the owner party of every
node, this party's *own* splits (feature index, threshold, default direction; ``-1`` /
NaN at the other party's nodes), and this party's additive shares (uniform uint64 words)
of the split flags and leaf weights. The label party's file also holds its base margin,
its regression scale and the classes. A file alone therefore reveals nothing about the
other party's features, thresholds or leaf weights; prediction needs both files.

Format: UTF-8 JSON (never pickle); arrays as ``{"dtype", "shape", "b64"}``. With a key
(16, 24 or 32 bytes) the JSON is encrypted at rest with AES-GCM: the file is the magic
``PETXGB-AESGCM1\\n``, a 12-byte random nonce and the ciphertext with its tag (the magic is
authenticated data). Files are written atomically (temporary file, fsync, rename).
"""

from __future__ import annotations

import base64
import json
import os

import numpy as np

from pet._io import atomic_write_bytes
from pet.errors import InputError, PetTypeError

__all__ = ["save_state", "load_state", "write_atomic"]

_FORMAT = "pet.ml.vertical_xgb"
_VERSION = 1
_MAGIC = b"PETXGB-AESGCM1\n"
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


def _check_key(key):
    if not isinstance(key, (bytes, bytearray)) or len(key) not in (16, 24, 32):
        raise InputError("key must be 16, 24 or 32 bytes (AES-128/192/256-GCM)")
    return bytes(key)


def write_atomic(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder + rename)."""
    atomic_write_bytes(path, data)


def save_state(path, kind: str, state: dict, *, key=None) -> None:
    """Write ``state`` (one party's model) of estimator ``kind`` to ``path``."""
    doc = {"format": _FORMAT, "version": _VERSION, "estimator": kind, "state": _enc(state)}
    data = json.dumps(doc, separators=(",", ":"), allow_nan=True).encode("utf-8")
    if key is not None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        nonce = os.urandom(12)
        data = _MAGIC + nonce + AESGCM(_check_key(key)).encrypt(nonce, data, _MAGIC)
    write_atomic(path, data)


def load_state(path, *, key=None) -> tuple[str, dict]:
    """Read a model file; returns ``(kind, state)``. Raises :class:`InputError` for a
    file that is not a pet model, is encrypted and no/the wrong key is given, or was
    tampered with."""
    with open(os.fspath(path), "rb") as fh:
        data = fh.read()
    if data.startswith(_MAGIC):
        if key is None:
            raise InputError(f"{path} is encrypted: pass key=")
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        body = data[len(_MAGIC):]
        try:
            data = AESGCM(_check_key(key)).decrypt(body[:12], body[12:], _MAGIC)
        except InvalidTag:
            raise InputError(f"cannot decrypt {path}: wrong key or the file was modified") from None
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
    return str(doc.get("estimator")), _dec(doc["state"])
