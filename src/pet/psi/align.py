"""Row alignment of two parties' tables by PSI on a (possibly composite) key.

Each party has a DataFrame with a key (one column, or several forming a composite key) and
its own other columns. :func:`align` runs :func:`~pet.psi.ecdh.run_protocol` on the keys and
returns the party's rows whose key is in the intersection, in the joint order: row ``i``
of party 0's result and row ``i`` of party 1's result have equal keys. Key columns are
paired by position in ``on`` (names may differ between the parties); the number of key
columns must agree (checked). Keys are encoded by :mod:`pet.psi.encoding`: an int column
does not match a str column.

``protocol="kkrt"`` runs :func:`pet.psi.kkrt.run_protocol` instead (OT-extension OPRF,
faster on large tables; same result, same joint-order guarantee).

Leakage: as :func:`~pet.psi.ecdh_psi` (or :func:`~pet.psi.kkrt_psi`) -- with
``reveal="both"`` both parties learn which of their rows are in the intersection and the
peer's row count; nothing about the peer's other columns.
"""

from __future__ import annotations

from pet._validate import NOT_GIVEN, check_party
from pet.errors import InputError, PetTypeError
from pet.psi.ecdh import check_channel, check_options, check_reveal, drop_duplicates, run_protocol
from pet.psi.encoding import to_list
from pet.psi.store import store_from_columns

__all__ = ["align"]


def _key_columns(df, on) -> list[str]:
    if isinstance(on, str) or not hasattr(on, "__iter__"):
        on = [on]
    on = list(on)
    if not on:
        raise InputError("on: give at least one key column")
    missing = [c for c in on if c not in df.columns]
    if missing:
        raise InputError(f"on: column(s) {missing} not in the DataFrame (columns: {list(df.columns)})")
    if len(set(on)) != len(on):
        raise InputError(f"on: repeated key column in {on}")
    return on


def align(channel, df, on, *, party, reveal_to=NOT_GIVEN, reveal=NOT_GIVEN, dedupe: bool = False,
          keep_index: bool = False, hash_suite: str = "NU", workers=None, chunk_size: int = 1 << 14, progress=None,
          protocol: str | None = None):
    """The rows of ``df`` whose key is in the intersection with the peer's keys, in the
    joint order shared with the peer.

    Parameters
    ----------
    channel : :class:`pet.transport.Channel` to the peer.
    df : pandas.DataFrame.
    on : a column name, or a list of names for a composite key (paired with the peer's key
        columns by position).
    party : 0 or 1.
    reveal_to : ``None`` (both, default), ``0`` or ``1``; the party that does not learn gets None.
    reveal : deprecated spelling of ``reveal_to`` (``"both"``, 0 or 1; DeprecationWarning).
    dedupe : duplicate keys raise :class:`~pet.errors.InputError` unless True (keep first).
    keep_index : keep ``df``'s index labels (default: a fresh 0..k-1 index).
    hash_suite, workers, chunk_size, progress : as :func:`~pet.psi.ecdh_psi` (ECDH only,
        except ``workers``).
    protocol : ``"kkrt"`` (:func:`~pet.psi.kkrt_psi`, the default: OT-extension OPRF, about
        20x faster than ECDH at 2^20) or ``"ecdh"`` (:func:`~pet.psi.ecdh_psi`; the default
        when a ``hash_suite`` other than ``"NU"`` is asked); both parties alike.

    Returns
    -------
    pandas.DataFrame (all of ``df``'s columns), or None for a party that does not learn.
    """
    import pandas as pd

    check_channel(channel)
    party = check_party(party)
    mode = check_reveal(reveal, reveal_to, deprecated_reveal=True)
    check_options(hash_suite, chunk_size, workers, progress)
    if protocol is None:
        protocol = "kkrt" if hash_suite == "NU" else "ecdh"
    if protocol not in ("ecdh", "kkrt"):
        raise InputError(f"protocol must be 'ecdh' or 'kkrt', got {protocol!r}")
    if not isinstance(df, pd.DataFrame):
        raise PetTypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    cols = _key_columns(df, on)
    columns = [to_list(df[c], f"df[{c!r}]") for c in cols]
    store = store_from_columns(columns, [f"df[{c!r}]" for c in cols], name=f"key {cols}")
    del columns
    store, positions = drop_duplicates(store, dedupe=dedupe, name=f"key {cols}")
    if protocol == "kkrt":
        from pet.psi import kkrt

        out = kkrt.run_protocol(channel, store, party=party, op="align", mode=mode, arity=len(cols), workers=workers)
    else:
        out = run_protocol(channel, store, party=party, op="align", mode=mode, suite=hash_suite,
                           arity=len(cols), workers=workers, chunk_size=chunk_size, progress=progress)
    if "matched" not in out:
        return None
    rows = df.iloc[positions[out["matched"]]]
    return rows if keep_index else rows.reset_index(drop=True)
