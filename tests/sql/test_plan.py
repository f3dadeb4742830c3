"""Planning without MPC: ownership, pushdown, errors with positions (no data involved)."""

from __future__ import annotations

import json

import pytest

from pet.data import reference_path
from pet.sql.errors import SqlError, SqlNotSupported
from pet.sql.plan import build_plan

S0 = {"table_from_a": [["id1", "INTEGER"], ["id2", "INTEGER"], ["f1", "DOUBLE"]]}
S1 = {"table_from_b": [["id1", "INTEGER"], ["id2", "INTEGER"], ["f1", "DOUBLE"], ["f2", "DOUBLE"],
                       ["f3", "INTEGER"]]}
REF = """SELECT b.f3 as f3, sum(b.f1) as sum_f, sum(b.f1 + b.f2) as sum_f2,
       max(b.f1 * b.f1 + a.f1 - a.f1 / b.f1) AS max_f, min(b.f1 * a.f1 + 1) as min_f
FROM (select id1, id2, f1 from table_from_a where f1 < 90) AS a
JOIN (select id1, id2, f1 + f2 + 2.01 as f1, f1 * f2 + 1 as f2, f3 from table_from_b) AS b
  ON a.id1 = b.id1
GROUP BY b.f3"""
FIXTURES = reference_path("PETSQL")  # shipped copy of the reference fixtures


def plan(sql):
    return build_plan(sql, [S0, S1])


def _ir_parties(ir, p):
    if ir[0] == "col":
        return {p.columns[ir[1]].party}
    if ir[0] == "op":
        out = set()
        for a in ir[2]:
            out |= _ir_parties(a, p)
        return out
    return set()


def test_reference_query_ownership_matches_petsql_physical_plan():
    """Acceptance case 13: b-only expressions stay with party 1, a/b mixes become shared,
    SUM over b-only columns by b.f3 is party 1's; MAX/MIN mix both."""
    golden = json.loads((FIXTURES / "test_physical_plan.v0.1.0.json").read_text())
    agg = [op for op in golden if op["operatorName"] == "Aggregate"][0]
    want = {a["name"].lower(): a["operands"][0]["party"] for a in agg["aggregates"]}
    assert want == {"sum_f": 1, "sum_f2": 1, "max_f": -1, "min_f": -1}
    p = plan(REF)
    assert p.kind == "join" and p.n_join_keys == 1
    assert [p.columns[k].party for k in p.group_keys] == [agg["group"][0]["party"]] == [1]
    got = {}
    for name, out in zip(p.out_names, p.outputs):
        if out[0] == "agg":
            parties = _ir_parties(p.aggs[out[1]].arg, p)
            got[name] = parties.pop() if len(parties) == 1 else -1
    assert got == want
    # party 0's filter is pushed into its local query; party 1 computes f1*f1 and 1/f1
    assert "< 90" in p.local_sql[0] and "table_from_b" not in p.local_sql[0]
    assert "table_from_a" not in p.local_sql[1]
    assert any("1.0 /" in c.sql and c.party == 1 for c in p.columns.values())
    assert p.out_names == ["f3", "sum_f", "sum_f2", "max_f", "min_f"]


def test_golden_logical_plan_filter_is_party_0_local():
    rels = json.loads((FIXTURES / "test_compiler_ret.json").read_text())
    assert rels[1]["relOp"].endswith("Filter")
    p = plan(REF)
    assert p.mask is None  # the only WHERE is party 0's, run before the join


def test_mixed_where_becomes_mask_and_single_party_conjuncts_are_pushed():
    p = plan("select count(*) from table_from_a a join table_from_b b on a.id1 = b.id1 "
             "where a.f1 > 1 and b.f2 < 3 and a.f1 + b.f1 > 0")
    assert '"a"."f1" > 1' in p.local_sql[0] and '"b"."f2" < 3' in p.local_sql[1]
    assert p.mask[0] == "op" and p.mask[1] == "gt"
    assert _ir_parties(p.mask, p) == {0, 1}


def test_composite_keys_using_group_by_all_and_order():
    p = plan("select b.f3, a.id2, count(*) n from table_from_a a join table_from_b b using (id1, id2) "
             "group by all order by n desc limit 5")
    assert p.n_join_keys == 2
    assert sorted(p.columns[k].party for k in p.group_keys) == [0, 1]
    assert p.order == [(2, True, False)] and p.limit == 5


def test_single_party_query_is_local():
    p = plan("select f3, count(*) from table_from_b group by f3")
    assert p.kind == "local" and p.owner == 1


@pytest.mark.parametrize("sql, construct, line, col", [
    ("select count(*) from table_from_a a left join table_from_b b on a.id1 = b.id1",
     "LEFT JOIN", 1, 37),
    ("select count(*) from table_from_a a\nfull outer join table_from_b b on a.id1 = b.id1",
     "FULL OUTER JOIN", 2, 1),
    ("select count(*) from table_from_a a semi join table_from_b b on a.id1 = b.id1", "SEMI JOIN", 1, 37),
    ("select count(*) from table_from_a a join table_from_b b on a.id1 < b.id1", "non-equi", 1, 60),
    ("select count(*) from table_from_a a, table_from_b b where a.id1 = b.id1", "cross join", 1, 38),
    ("select count(*) from table_from_a a join table_from_b b on a.id1 = b.id1 join table_from_b c "
     "on c.id1 = a.id1", "3 tables", 1, 79),
    ("select a.f1, row_number() over (order by b.f1) from table_from_a a join table_from_b b on a.id1 = b.id1",
     "window function", 1, 14),
    ("select a.id1 from table_from_a a union select id1 from table_from_b", "set operation UNION", 1, 34),
    ("select count(distinct a.f1) from table_from_a a join table_from_b b on a.id1 = b.id1",
     "DISTINCT inside an aggregate", 1, 8),
    ("select distinct a.f1 from table_from_a a join table_from_b b on a.id1 = b.id1", "SELECT DISTINCT", 1, 8),
    ("select median(a.f1) from table_from_a a join table_from_b b on a.id1 = b.id1", "MEDIAN", 1, 8),
    ("select count(*) from table_from_a a join table_from_b b on a.id1 = b.id1 group by a.f1 + b.f1",
     "GROUP BY expression mixing", 1, 83),
    ("select sum(sqrt(a.f1 * b.f1)) from table_from_a a join table_from_b b on a.id1 = b.id1",
     "SQRT over both parties", 1, 12),
    ("select count(*) from table_from_a a join table_from_b b on a.id1 = b.id1 "
     "where a.f1 in (select f1 from table_from_b)", "subquery in an expression", 1, 96),
    ("with t as (select * from table_from_a) select count(*) from t join table_from_b b on t.id1 = b.id1",
     "WITH", 1, 1),
    ("select count(*) from (select a.id1 from table_from_a a join table_from_b b on a.id1 = b.id1) x "
     "join table_from_b c on x.id1 = c.id1", "derived table mixing", 1, 30),
    ("select a.f1 from table_from_a a join table_from_b b on a.id1 = b.id1 order by a.f1 + 1",
     "ORDER BY", 1, 79),
])
def test_unsupported_sql_names_the_construct_and_position(sql, construct, line, col):
    with pytest.raises(SqlNotSupported) as err:
        plan(sql)
    assert construct.lower() in str(err.value).lower()
    if line is not None:
        assert (err.value.line, err.value.column) == (line, col), str(err.value)


@pytest.mark.parametrize("sql, words", [
    ("select a.nope from table_from_a a join table_from_b b on a.id1 = b.id1", ["nope"]),
    ("select f1 from table_from_a a join table_from_b b on a.id1 = b.id1", ["ambiguous", "f1"]),
    ("select count(*) from table_from_a a join missing_table b on a.id1 = b.id1", ["missing_table"]),
    ("select sum(a.f1 + CAST(b.f3 AS VARCHAR)) from table_from_a a join table_from_b b on a.id1 = b.id1", ["varchar"]),
    ("select b.f3, count(*) from table_from_a a join table_from_b b on a.id1 = b.id1", ["group by"]),
    ("selec count(*) from table_from_a", ["parse"]),
])
def test_bad_queries_give_clear_errors(sql, words):
    with pytest.raises(SqlError) as err:
        plan(sql)
    assert not isinstance(err.value, SqlNotSupported)
    for w in words:
        assert w.lower() in str(err.value).lower()


def test_join_key_type_mismatch_is_an_error():
    s1 = {"table_from_b": [["id1", "VARCHAR"], ["f1", "DOUBLE"]]}
    with pytest.raises(SqlError, match="VARCHAR"):
        build_plan("select count(*) from table_from_a a join table_from_b b on a.id1 = b.id1", [S0, s1])


def test_strings_in_cross_party_expressions_are_rejected():
    with pytest.raises(SqlNotSupported, match="string literal"):
        plan("select case when a.f1 > b.f1 then 'x' else 'y' end from table_from_a a "
             "join table_from_b b on a.id1 = b.id1")
