"""``pet xgb``: vertical federated XGBoost between two processes over TCP.

    pet dealer --listen 127.0.0.1:9100
    pet xgb fit --party 0 --listen 127.0.0.1:9000 --dealer 127.0.0.1:9100 \\
        --input client.csv --id id --label y --model client.model
    pet xgb fit --party 1 --connect 127.0.0.1:9000 --dealer 127.0.0.1:9100 \\
        --input server.csv --id id --model server.model
    pet xgb predict --party 0 ... --input new_client.csv --id id --model client.model --output pred.csv
    pet xgb predict --party 1 ... --input new_server.csv --id id --model server.model

Each party's rows are first aligned with the peer's by ECDH-PSI on the id column
(:func:`pet.psi.align`); every other column except the label is a feature. Training and
prediction run in MPC (:mod:`pet.ml.booster`). Model files are written atomically and,
with ``--key-file`` (64+ hex digits of random key material: ``openssl rand -hex 32``),
encrypted with AES-256-GCM under an HKDF-derived key, bound to the model id and party.
``--tls-*`` secure both links with mutual TLS (``pet dealer --tls-dir``). Predictions
(``id`` + ``prediction`` and, for a classifier, ``probability``) are written by the label
party only.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pet._io import read_table, write_table
from pet.cli._net import add_tls_arguments, check_addresses, open_peer, tls_from_args
from pet.cli._source import add_source_arguments, open_source
from pet.errors import InputError

__all__ = ["register", "run"]


def _common(p, fit: bool):
    p.add_argument("--party", type=int, choices=(0, 1), required=True, help="this party's number")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--listen", metavar="HOST:PORT", help="wait for the peer on this address")
    where.add_argument("--connect", metavar="HOST:PORT", help="connect to the peer at this address")
    add_source_arguments(p)
    p.add_argument("--input", required=True, help="CSV or Parquet file (by extension: .parquet/.pq)")
    p.add_argument("--id", required=True, help="id column aligned with the peer by PSI")
    p.add_argument("--model", required=True, help=("where to write" if fit else "where to read") +
                   " this party's model file")
    p.add_argument("--key-file", help="file with 64+ hex digits of random key material (openssl rand -hex 32) "
                   + ("to encrypt the model file at rest" if fit else "to decrypt the model file (the one given to "
                      "fit)") + " (AES-256-GCM, key derived with HKDF-SHA256)")
    p.add_argument("--wait", type=float, default=120.0, metavar="SECONDS", help="wait for the peer (default 120)")
    p.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS", help="receive timeout (default 600)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress report (default: a bar on a terminal, a line per 10%% of trees otherwise)")
    add_tls_arguments(p)


def register(subparsers) -> None:
    top = subparsers.add_parser("xgb", help="vertical federated XGBoost (fit / predict)",
                                description=__doc__.split("\n\n")[0])
    sub = top.add_subparsers(title="actions", metavar="ACTION")
    fit = sub.add_parser("fit", help="train; each party writes its half of the model",
                         description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(fit, True)
    fit.add_argument("--label", help="label column (only at the label party, which learns the predictions)")
    fit.add_argument("--task", choices=("classifier", "regressor"), default="classifier",
                     help="binary classification (logistic loss) or regression (squared error); default classifier")
    fit.add_argument("--n-estimators", type=int, default=100, metavar="N", help="number of trees (default 100)")
    fit.add_argument("--max-depth", type=int, default=6, metavar="D", help="maximum depth of each tree (default 6)")
    fit.add_argument("--learning-rate", type=float, default=0.3, metavar="ETA",
                     help="shrinkage applied to each tree's leaf values (default 0.3)")
    fit.add_argument("--reg-lambda", type=float, default=1.0, metavar="L",
                     help="L2 regularisation of the leaf weights (default 1.0)")
    fit.add_argument("--gamma", type=float, default=0.0, metavar="G",
                     help="minimum loss reduction to make a split (default 0.0)")
    fit.add_argument("--min-child-weight", type=float, default=1.0, metavar="W",
                     help="minimum sum of hessians in a child (default 1.0)")
    fit.add_argument("--max-bin", type=int, default=32, metavar="B",
                     help="histogram bins per feature (default 32)")
    fit.add_argument("--base-score", type=float, default=None, metavar="S",
                     help="initial prediction (default: from the labels' mean)")
    fit.set_defaults(func=run, action="fit")
    pred = sub.add_parser("predict", help="predict; the label party writes the predictions",
                          description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(pred, False)
    pred.add_argument("--output", help="predictions file (label party; CSV or Parquet)")
    pred.set_defaults(func=run, action="predict")
    top.set_defaults(func=lambda args: (top.print_help(), 2)[1])




def _key(path):
    """The key material in ``--key-file``: 64 to 2048 hex digits (32 to 1024 bytes; whitespace
    ignored), e.g. from ``openssl rand -hex 32``. A passphrase or raw bytes are refused;
    the decoded bytes must also look random (:mod:`pet.ml.model_io`). Warns on stderr when
    the file is readable by group or others."""
    if path is None:
        return None

    from pet.transport.tls import check_key_file_mode

    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"--key-file: cannot read {str(path)!r}: {exc.strerror}") from None
    check_key_file_mode(path, "--key-file")  # a UserWarning (on stderr at the command line)
    text = b"".join(raw.split())
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        key = None
    if key is None or not 32 <= len(key) <= 1024:
        raise InputError("--key-file must hold 64 to 2048 hex digits (32 or more random bytes), e.g. made by "
                         "`openssl rand -hex 32 > model.key`; a passphrase is not a key")
    from pet.ml.model_io import check_key_material

    try:
        return check_key_material(key)
    except InputError as exc:
        raise InputError(f"--key-file: {exc}") from None


class _PlainProgress:
    """Progress as whole lines (no carriage returns) for a log file: about every 10% of trees."""

    def __init__(self, party: int, total: int, stream):
        self.party, self.total, self.stream, self.done = party, total, stream, 0
        self.step = max(1, total // 10)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.done % self.step == 0 or self.done == self.total:
            print(f"pet xgb party {self.party}: {self.done}/{self.total} trees", file=self.stream, flush=True)

    def close(self) -> None:
        pass


def tree_progress(party: int, total: int, stream):
    """A tqdm bar when ``stream`` is a terminal, else plain lines (:class:`_PlainProgress`)."""
    if stream.isatty():
        from tqdm import tqdm

        return tqdm(total=total, desc=f"pet xgb party {party}", unit="tree", file=stream)
    return _PlainProgress(party, total, stream)


def _check_model_locally(args, key) -> None:
    """Before waiting for the peer: fit's --model can be written; predict's --model exists and
    opens with this --key-file (or none) as this party's half, and --output can be written."""
    from pet.cli._checks import check_input_file, check_output_path

    if args.action == "fit":
        check_output_path(args.model, "--model")
        return
    check_input_file(args.model, "--model")
    from pet.ml.model_io import load_state

    try:
        load_state(args.model, key=key, party=args.party)
    except InputError as exc:
        raise InputError(f"--model {args.model}: {exc}") from None
    check_output_path(args.output)


def run(args) -> int:
    from pet.ml import VerticalXGBClassifier, VerticalXGBRegressor
    from pet.mpc import Session
    from pet.psi import align

    key = _key(args.key_file)
    own = f"party{args.party}"
    tls = tls_from_args(args, own)  # peer pinned to --tls-peer-name, dealer to --tls-dealer-name
    check_addresses(args, tls, "xgb")
    df = read_table(args.input, what="--input")
    if args.id not in df.columns:
        raise InputError(f"--id {args.id!r} is not a column of {args.input} ({list(df.columns)})")
    label = getattr(args, "label", None)
    if label is not None and label not in df.columns:
        raise InputError(f"--label {label!r} is not a column of {args.input} ({list(df.columns)})")
    _check_model_locally(args, key)
    channel = open_peer(args, tls, "xgb")
    start = time.perf_counter()
    with channel, open_source(args, tls) as source:
        rows = align(channel, df, args.id, party=args.party)
        features = rows.drop(columns=[c for c in (args.id, label) if c is not None])
        with Session(args.party, channel, **source) as session:
            if args.action == "fit":
                cls = VerticalXGBClassifier if args.task == "classifier" else VerticalXGBRegressor
                bar = None if args.no_progress else tree_progress(args.party, args.n_estimators, sys.stderr)
                est = cls(session, n_estimators=args.n_estimators, max_depth=args.max_depth,
                          learning_rate=args.learning_rate, reg_lambda=args.reg_lambda, gamma=args.gamma,
                          min_child_weight=args.min_child_weight, max_bin=args.max_bin,
                          base_score=args.base_score,
                          callback=(lambda done, total: bar.update(1)) if bar is not None else None)
                try:
                    est.fit(features, rows[label] if label is not None else None)
                finally:
                    if bar is not None:
                        bar.close()
                est.save(args.model, key=key)
                msg = f"wrote {args.model}"
            else:
                from pet.ml.model_io import load_state
                kind, _ = load_state(args.model, key=key, party=args.party)
                cls = VerticalXGBClassifier if kind == "classifier" else VerticalXGBRegressor
                est = cls.load(args.model, session, key=key)
                if est.is_label_party_ and args.output is None:
                    raise InputError("--output is required at the label party")
                import pandas as pd
                if kind == "classifier":
                    proba = est.predict_proba(features)
                    out = None if proba is None else pd.DataFrame(
                        {args.id: rows[args.id], "prediction": est.classes_[(proba[:, 1] > 0.5).astype(int)],
                         "probability": proba[:, 1]})
                else:
                    pred = est.predict(features)
                    out = None if pred is None else pd.DataFrame({args.id: rows[args.id], "prediction": pred})
                if out is not None:
                    write_table(out, args.output)
                    msg = f"wrote {len(out)} predictions to {args.output}"
                else:
                    msg = "predictions went to the label party"
        stats = channel.stats
    print(f"pet xgb {args.action}: party {args.party}, {len(rows)} aligned rows; {msg} "
          f"({time.perf_counter() - start:.1f} s, sent {stats.bytes_sent:,} B, received {stats.bytes_received:,} B)")
    return 0
