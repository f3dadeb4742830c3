"""Model files at rest: HKDF-derived AES-256-GCM key, model id / party / version bound in the
associated data, key material (not passphrases) only, older-format files refused."""

import base64
import json
import os
import struct

import numpy as np
import pytest

from pet.cli.xgb import _key as key_from_file
from pet.errors import InputError, PetTypeError
from pet.ml.model_io import load_state, save_state

MAGIC = b"PETXGB-AESGCM2\n"


def state(party=0, model_id="ab" * 16):
    return {"model_id": model_id, "party": party, "leaf_share": np.arange(5, dtype=np.uint64), "params": {"n": 3}}


def split(raw: bytes):
    """(header dict, header bytes, rest) of an encrypted model file."""
    (n,) = struct.unpack(">H", raw[len(MAGIC):len(MAGIC) + 2])
    header = raw[len(MAGIC) + 2:len(MAGIC) + 2 + n]
    return json.loads(header), header, raw[len(MAGIC) + 2 + n:]


def rebuild(fields: dict, rest: bytes) -> bytes:
    header = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    return MAGIC + struct.pack(">H", len(header)) + header + rest


def test_round_trip_header_and_fresh_salt(tmp_path):
    key = os.urandom(32)
    save_state(tmp_path / "a.model", "classifier", state(), key=key)
    save_state(tmp_path / "b.model", "classifier", state(), key=key)
    a, b = (tmp_path / "a.model").read_bytes(), (tmp_path / "b.model").read_bytes()
    fields, _, rest = split(a)
    assert fields["party"] == 0 and fields["model_id"] == "ab" * 16 and fields["version"] == 1
    assert fields["kdf"] == "HKDF-SHA256" and len(base64.b64decode(fields["salt"])) == 16
    assert split(b)[0]["salt"] != fields["salt"] and split(b)[2] != rest
    kind, back = load_state(tmp_path / "a.model", key=key, party=0, model_id="ab" * 16)
    assert kind == "classifier" and np.array_equal(back["leaf_share"], np.arange(5, dtype=np.uint64))


@pytest.mark.parametrize("field,value", [("party", 1), ("model_id", "cd" * 16), ("version", 2),
                                         ("salt", base64.b64encode(b"\0" * 16).decode())])
def test_changing_the_header_fails_authentication(tmp_path, field, value):
    """Old format: nothing but the magic was authenticated (no party or model id at all)."""
    key = os.urandom(32)
    save_state(tmp_path / "m.model", "classifier", state(), key=key)
    fields, _, rest = split((tmp_path / "m.model").read_bytes())
    fields[field] = value
    (tmp_path / "swapped.model").write_bytes(rebuild(fields, rest))
    with pytest.raises(InputError, match="wrong key or the file was modified"):
        load_state(tmp_path / "swapped.model", key=key)


def test_swapping_two_parties_files_is_detected(tmp_path):
    """Same key at both parties: party 1's ciphertext under party 0's header fails, and a
    loader expecting party 0 refuses party 1's intact file."""
    key = os.urandom(32)
    save_state(tmp_path / "p0.model", "classifier", state(0), key=key)
    save_state(tmp_path / "p1.model", "classifier", state(1), key=key)
    h0, _, _ = split((tmp_path / "p0.model").read_bytes())
    h1, _, rest1 = split((tmp_path / "p1.model").read_bytes())
    h0["salt"] = h1["salt"]  # party 0's header with party 1's salt and ciphertext
    (tmp_path / "mixed.model").write_bytes(rebuild(h0, rest1))
    with pytest.raises(InputError, match="wrong key or the file was modified"):
        load_state(tmp_path / "mixed.model", key=key)
    with pytest.raises(InputError, match="party 1's half"):
        load_state(tmp_path / "p1.model", key=key, party=0)
    with pytest.raises(InputError, match="another model"):
        load_state(tmp_path / "p1.model", key=key, model_id="ef" * 16)


def test_tampered_ciphertext_and_truncation_fail(tmp_path):
    key = os.urandom(32)
    save_state(tmp_path / "m.model", "classifier", state(), key=key)
    raw = (tmp_path / "m.model").read_bytes()
    for i in (len(raw) - 1, len(raw) - 30, len(raw) - 60):
        bad = bytearray(raw)
        bad[i] ^= 1
        (tmp_path / "bad.model").write_bytes(bytes(bad))
        with pytest.raises(InputError, match="wrong key or the file was modified"):
            load_state(tmp_path / "bad.model", key=key)
    for cut in (len(MAGIC) + 1, len(MAGIC) + 40, len(raw) - 20):
        (tmp_path / "short.model").write_bytes(raw[:cut])
        with pytest.raises(InputError):
            load_state(tmp_path / "short.model", key=key)
    with pytest.raises(InputError, match="wrong key"):
        load_state(tmp_path / "m.model", key=os.urandom(32))


@pytest.mark.parametrize("key", [b"correct horse battery staple 2026!!", b"0123456789abcdef" * 4,
                                 bytes(32), b"\x01\x02" * 32, os.urandom(16), os.urandom(24)])
def test_passphrase_like_or_short_keys_are_refused(tmp_path, key):
    """Old code took any 16/24/32 bytes as the AES key: a 32-character passphrase worked."""
    with pytest.raises(InputError, match="key"):
        save_state(tmp_path / "m.model", "classifier", state(), key=key)
    assert not (tmp_path / "m.model").exists()


def test_key_must_be_bytes(tmp_path):
    with pytest.raises(PetTypeError):
        save_state(tmp_path / "m.model", "classifier", state(), key="a passphrase of some length, 32+")


def test_encrypting_needs_model_id_and_party(tmp_path):
    with pytest.raises(InputError, match="model_id"):
        save_state(tmp_path / "m.model", "classifier", {"party": 0}, key=os.urandom(32))
    with pytest.raises(InputError, match="party"):
        save_state(tmp_path / "m.model", "classifier", {"model_id": "x", "party": 2}, key=os.urandom(32))


def test_files_of_the_old_format_are_refused_with_advice(tmp_path):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = os.urandom(32)
    magic = b"PETXGB-AESGCM1\n"
    doc = json.dumps({"format": "pet.ml.vertical_xgb", "version": 1, "estimator": "classifier",
                      "state": {"n": 1}}).encode()
    nonce = os.urandom(12)
    (tmp_path / "old.model").write_bytes(magic + nonce + AESGCM(key).encrypt(nonce, doc, magic))
    with pytest.raises(InputError, match="older pet.*save it without a key"):
        load_state(tmp_path / "old.model", key=key)


def test_cli_key_file_format(tmp_path, capsys):
    good = tmp_path / "good.key"
    good.write_text(os.urandom(32).hex() + "\n")
    os.chmod(good, 0o600)
    assert len(key_from_file(good)) == 32
    assert capsys.readouterr().err == ""
    os.chmod(good, 0o644)
    with pytest.warns(UserWarning, match="chmod 600"):
        key_from_file(good)
    for text in ("correct horse battery staple, my model key!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
                 os.urandom(16).hex(), "zz" * 32):
        (tmp_path / "bad.key").write_text(text)
        with pytest.raises(InputError, match="--key-file"):
            key_from_file(tmp_path / "bad.key")
    (tmp_path / "raw.key").write_bytes(os.urandom(32))  # raw bytes: not the documented format
    with pytest.raises(InputError, match="hex digits"):
        key_from_file(tmp_path / "raw.key")
    (tmp_path / "weak.key").write_text("11" * 32)  # hex, but no randomness
    with pytest.raises(InputError, match="does not look like random"):
        key_from_file(tmp_path / "weak.key")
