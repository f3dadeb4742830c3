"""Built-in job task types: thin adapters from job parameters to library calls.

Each is ``fn(ctx: TaskContext) -> dict`` (a small JSON summary stored in the state file).
More types are added as the library grows (sql, xgb, leiden).

``psi``
    Align a CSV/Parquet table with the peer's by private set intersection.
    Parameters: ``input`` (path), ``column`` (name, or list for a composite key; the
    reference platform's ``column_name`` is accepted too), ``output`` (path, written
    atomically), optional ``reveal`` (``both``/0/1), ``dedupe``. The reference layout
    ``inputs: {data: ...}`` / ``outputs: {data: ...}`` is accepted.

``dp_count``
    One party releases a differentially private row count of a table, charged to a block of
    a durable :class:`pet.dp.BudgetLedger`; a claim the block cannot cover is refused (the
    task fails with :class:`~pet.errors.BudgetExceeded`) and nothing is released.
    Parameters: ``party`` (who computes), ``input``, ``ledger`` (SQLite path), ``block``,
    ``block_epsilon`` (created if missing), ``epsilon``, ``claim`` (id; default job.task).
"""

from __future__ import annotations

from pet._io import read_table, write_table
from pet.errors import BudgetExceeded, InputError

__all__ = ["TASK_TYPES", "psi_task", "dp_count_task"]


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


def psi_task(ctx) -> dict:
    from pet.psi import align

    params = ctx.params
    source = _param(params, "input", "inputs.data")
    output = _param(params, "output", "outputs.data")
    column = _param(params, "column", "column_name")
    reveal = _param(params, "reveal", required=False, default="both")
    if isinstance(reveal, str) and reveal.isdigit():
        reveal = int(reveal)
    df = read_table(source, what=f"task {ctx.task}: input")
    rows = align(ctx.channel, df, column, party=ctx.party, reveal=reveal,
                 dedupe=bool(_param(params, "dedupe", required=False, default=False)))
    if rows is None:
        return {"rows_in": len(df), "learned": "set sizes only"}
    write_table(rows, output)
    return {"rows_in": len(df), "rows_out": len(rows), "output": str(output)}


def dp_count_task(ctx) -> dict:
    from pet.dp import BudgetLedger, laplace_mechanism

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
            left = ledger.block(block)
            raise BudgetExceeded(f"block {block!r} cannot cover epsilon={epsilon} (state: {left})")
        noisy = laplace_mechanism(float(len(df)), 1.0, epsilon)
        ledger.consume(claim)
    return {"noisy_count": noisy, "epsilon": epsilon, "block": block, "claim": claim}


#: Task type name -> function(ctx) -> JSON-serialisable summary.
TASK_TYPES = {
    "psi": psi_task,
    "dp_count": dp_count_task,
}
