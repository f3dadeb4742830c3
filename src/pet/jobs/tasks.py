"""Built-in job task types: thin adapters from job parameters to library calls.

Each is ``fn(ctx: TaskContext) -> dict`` (a small JSON summary stored in the state file).
Tasks marked (MPC) use the job's :class:`pet.mpc.Session`: a dealer (``network.dealer``), or
dealer-free with ``network.correlations: ot`` (``pet run --no-dealer``).

``psi``
    Align a CSV/Parquet table with the peer's by private set intersection.
    Parameters: ``input`` (path), ``column`` (name, or list for a composite key; the
    reference platform's ``column_name`` is accepted too), ``output`` (path, written
    atomically), optional ``reveal`` (``both``/0/1), ``dedupe``, ``protocol`` (``kkrt``,
    the default, or ``ecdh``, the default and only choice when bucketed; the same at both parties). The reference layout
    ``inputs: {data: ...}`` / ``outputs: {data: ...}`` is accepted. Bucketed (below): the
    output is a ``.parquet`` file or a directory of parts.

``sql`` (MPC)
    :func:`pet.sql.query` over this party's tables. Parameters: ``sql`` (or ``query``),
    ``tables`` (``{name: path}``, this party's only), ``output`` (path; written at the
    receiving party), optional ``reveal_to`` (0/1; default both), ``min_group_size``,
    ``protocol`` (the join's PSI: ``kkrt``, the default, or ``ecdh``; bucketed: ``ecdh``).
    Bucketed (below): the join's PSI step.

Bucketed PSI on Dask (``psi`` and ``sql``; docs/scale-out.md): the job file's top-level
``scale_out`` section (``buckets``, ``cluster``, ``state_dir``, ``max_retries``,
``listen_ports``; per party in ``scale_out.party0`` / ``party1``) applies to every ``psi``
and ``sql`` task; a task's own parameters of the same names override it (``buckets: null``
turns it off for that task). The bucket tasks' data connections use the job's
``network.tls_dir`` (mutual TLS, party roles pinned) when it is set.

``xgb_classifier_fit`` / ``xgb_regressor_fit`` (MPC)
    Train :class:`pet.ml.VerticalXGBClassifier` / ``...Regressor`` on an *aligned* table
    (e.g. a ``psi`` task's output). Parameters: ``input``, ``model`` (output path), ``label``
    (at the label party), ``drop`` (columns that are not features, e.g. the id), the
    hyper-parameters (``n_estimators``, ``max_depth``, ``learning_rate``, ``reg_lambda``,
    ``gamma``, ``min_child_weight``, ``max_bin``, ``base_score``).

``xgb_classifier_predict`` / ``xgb_regressor_predict`` (MPC)
    Parameters: ``input`` (aligned the same way), ``model``, ``output`` (written at the label
    party), ``drop``.

``leiden`` (MPC)
    :func:`pet.graph.leiden`. Parameters: ``edges`` + ``nodes`` (CSV), or the reference
    layout ``inputs: {user_weights, local_nodes}`` (JSON); ``output`` / ``outputs.cluster``;
    optional ``resolution``, ``seed``.

``dp_count``
    One party releases a differentially private row count of a table, charged to a block of
    a durable :class:`pet.dp.BudgetLedger`; a claim the block cannot cover is refused (the
    task fails with :class:`~pet.errors.BudgetExceeded`) and nothing is released. The count
    is released as an integer: the true count plus discrete Laplace noise
    (:func:`pet.dp.discrete_laplace_mechanism`, sensitivity 1, epsilon-DP).
    Parameters: ``party`` (who computes), ``input``, ``ledger`` (SQLite path), ``block``,
    ``block_epsilon`` (created if missing), ``epsilon``, ``claim`` (id; default job.task).
"""

from __future__ import annotations

from pet._io import read_table, write_table
from pet.errors import BudgetExceeded, InputError

__all__ = ["TASK_TYPES", "psi_task", "sql_task", "leiden_task", "dp_count_task"]


def _param(params: dict, *names, required=True, default=None):
    for name in names:
        if name in params:
            return params[name]
        nested = name.split(".")
        if len(nested) == 2 and isinstance(params.get(nested[0]), dict) and nested[1] in params[nested[0]]:
            return params[nested[0]][nested[1]]
    if required:
        raise InputError(f"missing task parameter {names[0]!r}")
    return default


_BUCKETED_KEYS = ("buckets", "cluster", "state_dir", "max_retries", "listen_ports")


def _bucketed(ctx) -> dict | None:
    """The bucketed-PSI options of this task (the job's ``scale_out`` updated by the task's
    parameters), or None when it has no ``buckets``."""
    opts = dict(getattr(ctx, "scale_out", None) or {})
    opts.update({k: ctx.params[k] for k in _BUCKETED_KEYS if k in ctx.params})
    if opts.get("buckets") is None:
        return None
    buckets = opts["buckets"]
    if isinstance(buckets, bool) or not isinstance(buckets, int):
        raise InputError(f"task {ctx.task}: buckets must be an integer, got {buckets!r}")
    from pet.psi.bucketed_join import port_range

    ports = port_range(opts.get("listen_ports"), f"task {ctx.task}: listen_ports")
    tls = None
    if getattr(ctx, "tls_dir", None):
        from pet.transport.tls import TLSConfig

        tls = TLSConfig.from_dir(ctx.tls_dir, f"party{ctx.party}")  # the peer's tasks must be party<1-P>
    out = {"buckets": buckets, "cluster": opts.get("cluster"), "state_dir": opts.get("state_dir"),
           "max_retries": opts.get("max_retries"), "listen_ports": ports, "tls": tls}
    return {k: v for k, v in out.items() if v is not None}


def _psi_task_bucketed(ctx, source, output, column, mode, opts) -> dict:
    from pet.psi.bucketed import align_dataset

    res = align_dataset(ctx.channel, source, column, output, party=ctx.party, reveal=mode,
                        dedupe=bool(_param(ctx.params, "dedupe", required=False, default=False)), **opts)
    summary = {"rows_in": res.rows, "buckets": res.buckets, "resumed": res.resumed, "retries": res.retries}
    if res.written is None:
        return dict(summary, learned="set sizes only (and the peer's row count per bucket)")
    return dict(summary, rows_out=res.written, output=str(output))


def psi_task(ctx) -> dict:
    from pet.psi import align
    from pet.psi.ecdh import check_reveal

    params = ctx.params
    source = _param(params, "input", "inputs.data")
    output = _param(params, "output", "outputs.data")
    column = _param(params, "column", "column_name")
    reveal = _param(params, "reveal", required=False, default="both")
    if isinstance(reveal, str) and reveal.isdigit():
        reveal = int(reveal)
    mode = check_reveal(reveal)  # the job file keeps the reference layout's "reveal" ("both"/0/1)
    bucketed = _bucketed(ctx)
    if bucketed is not None:
        return _psi_task_bucketed(ctx, source, output, column, mode, dict(bucketed, protocol=_protocol(params)))
    df = read_table(source, what=f"task {ctx.task}: input")
    _check_keys(ctx, df, [column] if isinstance(column, str) else list(column), source)
    rows = align(ctx.channel, df, column, party=ctx.party, reveal_to=None if mode == "both" else int(mode),
                 dedupe=bool(_param(params, "dedupe", required=False, default=False)), protocol=_protocol(params))
    if rows is None:
        return {"rows_in": len(df), "learned": "set sizes only"}
    write_table(rows, output)
    return {"rows_in": len(df), "rows_out": len(rows), "output": str(output)}


def _join_psi_options(ctx, params: dict) -> dict:
    """The sql task's ``psi_options``: bucketed (``scale_out``/``buckets``) or the ``protocol``."""
    bucketed = _bucketed(ctx)
    protocol = _protocol(params)
    if bucketed is None:
        return {"protocol": protocol}
    return dict(bucketed, protocol=protocol)  # the protocol of every bucket


def _protocol(params: dict) -> str:
    """The ``protocol`` task parameter: the PSI protocol, ``"kkrt"`` (default) or ``"ecdh"``;
    with buckets, the protocol of every bucket."""
    protocol = _param(params, "protocol", required=False, default="kkrt")
    if protocol not in ("ecdh", "kkrt"):
        raise InputError(f"task parameter 'protocol' must be 'ecdh' or 'kkrt', got {str(protocol)[:40]!r}")
    return protocol


def _check_keys(ctx, df, columns, source) -> None:
    """Key columns exist and have no empty value, named by 1-based data row (line N + 1 of a
    CSV file with its header)."""
    from pet.psi.files import data_row

    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"task {ctx.task}: key column(s) {missing} not in {source} ({list(df.columns)})")
    for c in columns:
        na = df[c].isna().to_numpy().nonzero()[0]
        if na.size:
            raise InputError(f"task {ctx.task}: column {c!r} of {source}: {data_row(int(na[0]))} has no value "
                             "(keys must not be empty)")


def dp_count_task(ctx) -> dict:
    from pet.dp import BudgetLedger, discrete_laplace_mechanism

    params = ctx.params
    owner = int(_param(params, "party", required=False, default=0))
    if ctx.party != owner:
        return {"role": "idle"}
    df = read_table(_param(params, "input"), what=f"task {ctx.task}: input")
    epsilon = float(_param(params, "epsilon"))
    block = str(_param(params, "block"))
    claim = str(_param(params, "claim", required=False, default=f"{ctx.job}.{ctx.task}"))
    with BudgetLedger(_param(params, "ledger")) as ledger:
        if block not in ledger.block_ids():
            ledger.add_block(block, float(_param(params, "block_epsilon")))
        if claim in ledger.claim_ids():
            claim = f"{claim}.{len(ledger.claim_ids())}"
        if not ledger.allocate(claim, {block: epsilon}):
            raise BudgetExceeded(f"task {ctx.task}: block {block!r} cannot cover epsilon={epsilon:g}: "
                                 f"{_budget_left(ledger, block)}")
        noisy = discrete_laplace_mechanism(len(df), 1, epsilon)  # an integer count
        ledger.consume(claim)
    return {"noisy_count": noisy, "epsilon": epsilon, "block": block, "claim": claim}


def _budget_left(ledger, block: str) -> str:
    """What ``block`` has left, in words (for a refused claim)."""
    try:
        return ledger.block(block).describe()
    except Exception:  # noqa: BLE001 - a description must never hide the refusal itself
        return "its remaining budget is smaller than that"


def sql_task(ctx) -> dict:
    from pet.sql import query

    params = ctx.params
    text = _param(params, "sql", "query")
    tables = _param(params, "tables")
    if not isinstance(tables, dict) or not tables:
        raise InputError("task parameter 'tables' must map table names to this party's files")
    reveal_to = _param(params, "reveal_to", required=False, default=None)
    result = query(ctx.session(), text, dict(tables), reveal_to=None if reveal_to is None else int(reveal_to),
                   min_group_size=_param(params, "min_group_size", required=False, default=None),
                   psi_options=_join_psi_options(ctx, params))
    if result is None:
        return {"learned": "nothing (the result went to the other party)"}
    write_table(result, _param(params, "output"))
    return {"rows": len(result), "output": str(_param(params, "output"))}


_XGB_PARAMS = ("n_estimators", "max_depth", "learning_rate", "reg_lambda", "gamma", "min_child_weight",
               "max_bin", "base_score")


def _features(ctx, df, label=None):
    drop = _param(ctx.params, "drop", required=False, default=[])
    drop = [drop] if isinstance(drop, str) else list(drop)
    if label is not None:
        drop.append(label)
    missing = [c for c in drop if c not in df.columns]
    if missing:
        raise InputError(f"task {ctx.task}: columns {missing} are not in the input ({list(df.columns)})")
    return df.drop(columns=drop)


def _xgb_fit(kind):
    def fit(ctx) -> dict:
        from pet.ml import VerticalXGBClassifier, VerticalXGBRegressor

        params = ctx.params
        df = read_table(_param(params, "input", "inputs.train_data"), what=f"task {ctx.task}: input")
        label = _param(params, "label", required=False, default=None)
        cls = VerticalXGBClassifier if kind == "classifier" else VerticalXGBRegressor
        model = cls(ctx.session(), **{k: params[k] for k in _XGB_PARAMS if k in params})
        model.fit(_features(ctx, df, label), None if label is None else df[label])
        path = _param(params, "model", "outputs.model_path")
        model.save(path)
        return {"rows": len(df), "model": str(path), "label_party": label is not None}
    return fit


def _xgb_predict(kind):
    def predict(ctx) -> dict:
        import pandas as pd

        from pet.ml import VerticalXGBClassifier, VerticalXGBRegressor

        params = ctx.params
        df = read_table(_param(params, "input", "inputs.predict_data"), what=f"task {ctx.task}: input")
        cls = VerticalXGBClassifier if kind == "classifier" else VerticalXGBRegressor
        model = cls.load(_param(params, "model", "inputs.model_path"), ctx.session())
        features = _features(ctx, df)
        if kind == "classifier":
            proba = model.predict_proba(features)
            out = None if proba is None else pd.DataFrame({"probability": proba[:, 1]})
        else:
            pred = model.predict(features)
            out = None if pred is None else pd.DataFrame({"prediction": pred})
        if out is None:
            return {"rows": len(df), "learned": "nothing (scores go to the label party)"}
        path = _param(params, "output", "outputs.inference_res_path")
        write_table(out, path)
        return {"rows": len(df), "output": str(path)}
    return predict


def leiden_task(ctx) -> dict:
    from pet.graph import leiden
    from pet.graph.io import read_csv_input, read_petml_json, write_communities

    params = ctx.params
    if "edges" in params:
        nodes, edges = read_csv_input(_param(params, "edges"), _param(params, "nodes"))
    else:
        nodes, edges = read_petml_json(_param(params, "inputs.user_weights"), _param(params, "inputs.local_nodes"))
    labels = leiden(ctx.session(), nodes, edges, resolution=float(_param(params, "resolution", required=False,
                                                                         default=1.0)),
                    seed=int(_param(params, "seed", required=False, default=0)))
    path = _param(params, "output", "outputs.cluster")
    write_communities(labels, path)
    return {"nodes": len(labels), "communities_seen": int(labels.nunique()), "output": str(path)}


#: Task type name -> function(ctx) -> JSON-serialisable summary.
TASK_TYPES = {
    "psi": psi_task,
    "sql": sql_task,
    "xgb_classifier_fit": _xgb_fit("classifier"),
    "xgb_regressor_fit": _xgb_fit("regressor"),
    "xgb_classifier_predict": _xgb_predict("classifier"),
    "xgb_regressor_predict": _xgb_predict("regressor"),
    "leiden": leiden_task,
    "dp_count": dp_count_task,
}
