"""A durable privacy-budget ledger in SQLite.

:class:`BudgetLedger` keeps blocks, claims and every budget movement in one SQLite file. Each
operation is one transaction started with ``BEGIN IMMEDIATE`` (it takes the database's write
lock before reading), so operations from any number of threads or processes are serialised:
two processes claiming at once can never both see the same unlocked budget, and a block can
never be over-spent. The database runs with ``journal_mode=WAL`` and ``synchronous=FULL``; a
process killed at any point (even by SIGKILL) leaves the last committed state: a claim either
happened entirely (block rows, claim rows and movement rows) or not at all.

Amounts: basic budgets are stored as exact integers in units of 10⁻¹² ε (see
:mod:`pet.dp.budget`), so there is no drift however many operations run; Rényi curves are
stored as JSON lists of doubles (exact round trip) and checked to a relative tolerance of 1e-9.

The ledger applies the same rules as the in-memory :class:`~pet.dp.Block`: allocate is
all-or-nothing across blocks (first come, first served on unlocked budget), consume moves
allocated → consumed, release returns the unconsumed part to unlocked.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pet.dp.budget import Block, Claim
from pet.dp.budget import allocate as _allocate
from pet.dp.budget import consume as _consume
from pet.dp.budget import release as _release
from pet.errors import BudgetError, InputError

__all__ = ["BudgetLedger"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
    block_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    epsilon TEXT NOT NULL,
    delta REAL NOT NULL,
    orders TEXT,
    capacity TEXT NOT NULL,
    locked TEXT NOT NULL,
    unlocked TEXT NOT NULL,
    allocated TEXT NOT NULL,
    consumed TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS claims (
    claim_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS claim_blocks (
    claim_id TEXT NOT NULL REFERENCES claims(claim_id),
    block_id TEXT NOT NULL REFERENCES blocks(block_id),
    demand TEXT NOT NULL,
    allocated TEXT NOT NULL,
    consumed TEXT NOT NULL,
    PRIMARY KEY (claim_id, block_id)
);
CREATE TABLE IF NOT EXISTS movements (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    op TEXT NOT NULL,
    claim_id TEXT,
    block_id TEXT NOT NULL,
    amount TEXT NOT NULL
);
"""

_SCHEMA_VERSION = "1"


def _enc(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return json.dumps([float(x) for x in v])
    return json.dumps(int(v))


def _dec(s: str, kind: str):
    v = json.loads(s)
    return np.asarray(v, dtype=np.float64) if kind == "renyi" else int(v)


def _name(x: Any, what: str) -> str:
    if not isinstance(x, str) or not x:
        raise InputError(f"{what} must be a non-empty string, got {x!r}")
    return x


class BudgetLedger:
    """Durable blocks and claims in the SQLite file at ``path`` (created if missing).

    Args:
        path: database file.
        timeout: how long an operation waits for another process's transaction (seconds).

    Ids are strings. Methods: :meth:`add_block`, :meth:`unlock`, :meth:`allocate`,
    :meth:`consume`, :meth:`release`, :meth:`block`, :meth:`claim`, :meth:`block_ids`,
    :meth:`movements`, :meth:`check`. Usable as a context manager.
    """

    def __init__(self, path: str | os.PathLike, *, timeout: float = 60.0, _fault_delay: float = 0.0) -> None:
        self.path = os.fspath(path)
        self._fault_delay = float(_fault_delay)  # test hook: pause inside write transactions
        self._conn = sqlite3.connect(self.path, timeout=float(timeout), isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        with self._tx():
            for stmt in _SCHEMA.strip().split(";"):
                if stmt.strip():
                    self._conn.execute(stmt)
            row = self._conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None:
                self._conn.execute("INSERT INTO meta VALUES ('schema', ?)", (_SCHEMA_VERSION,))
            elif row[0] != _SCHEMA_VERSION:
                raise BudgetError(f"{self.path}: unsupported ledger schema version {row[0]!r}")

    # ----- plumbing ---------------------------------------------------------------------------
    class _Tx:
        def __init__(self, conn: sqlite3.Connection) -> None:
            self.conn = conn

        def __enter__(self):
            self.conn.execute("BEGIN IMMEDIATE")
            return self.conn

        def __exit__(self, et, ev, tb):
            if et is None:
                self.conn.execute("COMMIT")
            else:
                self.conn.execute("ROLLBACK")
            return False

    def _tx(self) -> _Tx:
        return BudgetLedger._Tx(self._conn)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> BudgetLedger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _load_block(self, conn, block_id: str) -> Block:
        row = conn.execute(
            "SELECT kind, epsilon, delta, orders, capacity, locked, unlocked, allocated, consumed, created_at "
            "FROM blocks WHERE block_id=?",
            (block_id,),
        ).fetchone()
        if row is None:
            raise InputError(f"unknown block {block_id!r}")
        kind, eps, delta, orders, g, l, u, a, c, created = row
        blk = Block.__new__(Block)
        blk.block_id, blk.kind, blk.epsilon, blk.delta = block_id, kind, json.loads(eps), delta
        blk.orders = None if orders is None else np.asarray(json.loads(orders), dtype=np.float64)
        blk.created_at, blk.retired, blk.arrivals = created, False, 0
        blk._g, blk._l, blk._u, blk._a, blk._c = (_dec(x, kind) for x in (g, l, u, a, c))
        if kind == "renyi":
            blk._pos = blk._g > 0
        return blk

    def _save_block(self, conn, blk: Block) -> None:
        blk.check_invariant()
        conn.execute(
            "UPDATE blocks SET locked=?, unlocked=?, allocated=?, consumed=? WHERE block_id=?",
            (_enc(blk._l), _enc(blk._u), _enc(blk._a), _enc(blk._c), blk.block_id),
        )

    def _log(self, conn, op: str, claim_id: str | None, block_id: str, amount: Any) -> None:
        conn.execute(
            "INSERT INTO movements (at, op, claim_id, block_id, amount) VALUES (?, ?, ?, ?, ?)",
            (time.time(), op, claim_id, block_id, _enc(amount)),
        )

    def _load_claim(self, conn, claim_id: str) -> tuple[Claim, dict]:
        row = conn.execute("SELECT state FROM claims WHERE claim_id=?", (claim_id,)).fetchone()
        if row is None:
            raise InputError(f"unknown claim {claim_id!r}")
        parts = conn.execute(
            "SELECT block_id, demand, allocated, consumed FROM claim_blocks WHERE claim_id=?", (claim_id,)
        ).fetchall()
        blocks = {b: self._load_block(conn, b) for b, *_ in parts}
        claim = Claim({b: 0 for b, *_ in parts}, claim_id=claim_id)
        claim.state = row[0]
        claim._d = {}
        for b, d, a, c in parts:
            kind = blocks[b].kind
            claim._d[b] = _dec(d, kind)
            claim.allocated[b] = _dec(a, kind)
            claim.consumed[b] = _dec(c, kind)
            claim.demand[b] = blocks[b]._view(claim._d[b])
        return claim, blocks

    def _save_claim(self, conn, claim: Claim) -> None:
        conn.execute("UPDATE claims SET state=? WHERE claim_id=?", (claim.state, claim.claim_id))
        for b, a in claim.allocated.items():
            conn.execute(
                "UPDATE claim_blocks SET allocated=?, consumed=? WHERE claim_id=? AND block_id=?",
                (_enc(a), _enc(claim.consumed.get(b, a - a)), claim.claim_id, b),
            )

    # ----- blocks ------------------------------------------------------------------------------
    def add_block(
        self,
        block_id: str,
        epsilon: float,
        delta: float = 0.0,
        *,
        orders: Sequence[float] | None = None,
        unlocked: str = "all",
    ) -> Block:
        """Create a block (basic, or Rényi when ``orders`` is given); ``unlocked="all"`` by default."""
        _name(block_id, "block_id")
        blk = Block(epsilon, delta, orders=orders, block_id=block_id, unlocked=unlocked)
        eps_text = json.dumps(float(epsilon) if not isinstance(epsilon, str) else epsilon)
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM blocks WHERE block_id=?", (block_id,)).fetchone():
                raise InputError(f"block {block_id!r} already exists")
            conn.execute(
                "INSERT INTO blocks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    block_id,
                    blk.kind,
                    eps_text,
                    float(delta),
                    None if orders is None else json.dumps([float(a) for a in blk.orders]),
                    _enc(blk._g),
                    _enc(blk._l),
                    _enc(blk._u),
                    _enc(blk._a),
                    _enc(blk._c),
                    time.time(),
                ),
            )
            self._log(conn, "create", None, block_id, blk._g)
            if unlocked == "all":
                self._log(conn, "unlock", None, block_id, blk._u)
        return blk

    def unlock(self, block_id: str, amount: Any = None) -> None:
        """Move ``amount`` (default everything) of a block's locked budget to unlocked."""
        with self._tx() as conn:
            blk = self._load_block(conn, block_id)
            before = blk._u
            blk.unlock(amount)
            self._save_block(conn, blk)
            self._log(conn, "unlock", None, block_id, blk._u - before)

    def block(self, block_id: str) -> Block:
        """A detached snapshot of a block."""
        return self._load_block(self._conn, block_id)

    def block_ids(self) -> list[str]:
        return [r[0] for r in self._conn.execute("SELECT block_id FROM blocks ORDER BY block_id")]

    # ----- claims ------------------------------------------------------------------------------
    def allocate(self, claim_id: str, demand: Mapping[str, Any]) -> bool:
        """Grant ``demand`` ({block_id: ε or curve}) to a new claim, all-or-nothing.

        Returns True and records the claim if every block's unlocked budget covers its part;
        returns False and records nothing otherwise. Raises :class:`InputError` for an existing
        claim id or an unknown block.
        """
        _name(claim_id, "claim_id")
        if not isinstance(demand, Mapping) or not demand:
            raise InputError("demand must be a non-empty mapping {block_id: amount}")
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM claims WHERE claim_id=?", (claim_id,)).fetchone():
                raise InputError(f"claim {claim_id!r} already exists")
            blocks = {b: self._load_block(conn, _name(b, "block_id")) for b in demand}
            claim = Claim(demand, claim_id=claim_id)
            if not _allocate(claim, blocks):
                return False
            conn.execute("INSERT INTO claims VALUES (?, ?, ?)", (claim_id, claim.state, time.time()))
            for b, blk in blocks.items():
                self._save_block(conn, blk)
                x = claim._d[b]
                conn.execute(
                    "INSERT INTO claim_blocks VALUES (?, ?, ?, ?, ?)", (claim_id, b, _enc(x), _enc(x), _enc(x - x))
                )
                self._log(conn, "allocate", claim_id, b, x)
                if self._fault_delay:
                    time.sleep(self._fault_delay)
            return True

    def consume(self, claim_id: str, amount: Any = None) -> None:
        """Consume (part of) a claim's allocation (None: all of it); all-or-nothing."""
        with self._tx() as conn:
            claim, blocks = self._load_claim(conn, claim_id)
            before = dict(claim.allocated)
            _consume(claim, blocks, amount)
            for b, blk in blocks.items():
                self._save_block(conn, blk)
                self._log(conn, "consume", claim_id, b, before[b] - claim.allocated[b])
                if self._fault_delay:
                    time.sleep(self._fault_delay)
            self._save_claim(conn, claim)

    def release(self, claim_id: str) -> None:
        """Return a claim's unconsumed allocation to its blocks' unlocked budget."""
        with self._tx() as conn:
            claim, blocks = self._load_claim(conn, claim_id)
            before = dict(claim.allocated)
            _release(claim, blocks)
            for b, blk in blocks.items():
                self._save_block(conn, blk)
                self._log(conn, "release", claim_id, b, before[b])
            self._save_claim(conn, claim)

    def claim(self, claim_id: str) -> Claim:
        """A detached snapshot of a claim (``state``, ``allocated``, ``consumed`` per block)."""
        return self._load_claim(self._conn, claim_id)[0]

    def claim_ids(self) -> list[str]:
        return [r[0] for r in self._conn.execute("SELECT claim_id FROM claims ORDER BY created_at, claim_id")]

    def movements(self) -> list[tuple]:
        """Every movement ``(seq, at, op, claim_id, block_id, amount)``, oldest first."""
        return [tuple(r) for r in self._conn.execute("SELECT * FROM movements ORDER BY seq")]

    # ----- verification --------------------------------------------------------------------------
    def check(self) -> None:
        """Verify the whole ledger; raise :class:`BudgetError` describing the first problem.

        Checks, in one read transaction: every block's invariant (parts add up to ε_G, no
        negative part, consumed <= ε_G); per block, the claims' allocated and consumed amounts
        add up to the block's; and replaying the movement log reproduces every block.
        """
        conn = self._conn
        conn.execute("BEGIN")
        try:
            for b in self.block_ids():
                blk = self._load_block(conn, b)
                blk.check_invariant()
                rows = conn.execute(
                    "SELECT allocated, consumed FROM claim_blocks WHERE block_id=?", (b,)
                ).fetchall()
                a = sum((_dec(x, blk.kind) for x, _ in rows), blk._a - blk._a)
                c = sum((_dec(y, blk.kind) for _, y in rows), blk._c - blk._c)
                # released/unlocked budget is not held by claims; consumed must match exactly
                if not _close(c, blk._c, blk.kind):
                    raise BudgetError(f"block {b!r}: claims' consumed {c!r} != block consumed {blk._c!r}")
                if not _close(a, blk._a, blk.kind):
                    raise BudgetError(f"block {b!r}: claims' allocated {a!r} != block allocated {blk._a!r}")
                # replay the movement log
                g = blk._g - blk._g
                l = u = a2 = c2 = g
                for op, amt in conn.execute(
                    "SELECT op, amount FROM movements WHERE block_id=? ORDER BY seq", (b,)
                ):
                    x = _dec(amt, blk.kind)
                    if op == "create":
                        g, l = x, x
                    elif op == "unlock":
                        l, u = l - x, u + x
                    elif op == "allocate":
                        u, a2 = u - x, a2 + x
                    elif op == "consume":
                        a2, c2 = a2 - x, c2 + x
                    elif op == "release":
                        a2, u = a2 - x, u + x
                for name, mine, theirs in (("locked", l, blk._l), ("unlocked", u, blk._u),
                                           ("allocated", a2, blk._a), ("consumed", c2, blk._c)):
                    if not _close(mine, theirs, blk.kind):
                        raise BudgetError(
                            f"block {b!r}: replaying the movement log gives {name} {mine!r} != {theirs!r}")
        finally:
            conn.execute("COMMIT")


def _close(x, y, kind: str) -> bool:
    if kind == "basic":
        return x == y
    return bool(np.all(np.abs(np.asarray(x) - np.asarray(y)) <= 1e-9 * np.maximum(1.0, np.abs(np.asarray(y)))))
