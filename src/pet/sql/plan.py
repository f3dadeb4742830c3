"""Planning: from the SQL text and both parties' schemas to a :class:`Plan`.

Both parties run the planner on the same inputs (the SQL text and the schemas exchanged
at the start), so they derive the same plan, or raise the same error, without talking.

Steps:

1. parse with sqlglot (DuckDB dialect) and check the statement shape (one SELECT; no set
   operations, CTEs, DISTINCT, window functions, subqueries in expressions);
2. bind and type-check the whole query with DuckDB on *empty* tables of both schemas:
   unknown tables/columns, ambiguous names and type errors are DuckDB's binder errors,
   and the output names and types are DuckDB's;
3. find the sources of the outer FROM (tables or derived tables) and their owners; a
   query over one party's tables only is a *local* plan (run whole by that party);
4. otherwise the FROM must be an inner equi-join of one source of each party; qualify all
   column references (sqlglot), then split every expression into maximal single-party
   parts, which are *pushed down* as columns of that party's local DuckDB query, and a
   cross-party remainder kept as a small expression tree (:data:`IR`) for MPC:

   - WHERE conjuncts of one party -> that party's local WHERE (before the join);
     cross-party conjuncts -> the shared row mask;
   - GROUP BY expressions must each belong to one party (its key column);
   - aggregate arguments, HAVING and the select list -> IR over pushed columns,
     group keys and aggregates.

IR nodes are tuples: ``("col", name)`` a pushed-down column, ``("lit", value, kind)``,
``("key", i)`` group key ``i``, ``("agg", j)`` aggregate ``j``, and
``("op", name, args)`` with name in ``add sub mul div neg lt le gt ge eq ne and or not
case abs mulinv`` (``mulinv``: times a pushed-down reciprocal ``1/d``).
Kinds: ``int``, ``float``, ``bool``, ``str``, ``other``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pet.sql.errors import SqlError, SqlNotSupported, keyword_position, position_of
from pet.sql.tables import empty_catalog, quote

__all__ = ["Plan", "LocalColumn", "Aggregate", "build_plan", "kind_of"]


def decimal_scale(duck_type: str) -> int | None:
    """The scale ``s`` of a ``DECIMAL(p, s)`` type name (None for other types)."""
    import re
    m = re.fullmatch(r"\s*DECIMAL\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)\s*", duck_type.upper())
    return int(m.group(2)) if m else None


def kind_of(duck_type: str) -> str:
    """The value kind of a DuckDB type name."""
    t = duck_type.upper()
    if t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
             "UINTEGER", "UBIGINT", "UHUGEINT"):
        return "int"
    if t in ("DOUBLE", "FLOAT", "REAL") or t.startswith("DECIMAL"):
        return "float"
    if t == "BOOLEAN":
        return "bool"
    if t == "VARCHAR":
        return "str"
    return "other"


@dataclass
class LocalColumn:
    """A column of one party's pushed-down local query."""
    name: str
    party: int
    sql: str
    kind: str = "other"
    dec: int | None = None  # DECIMAL(p, s): pushed down as the exact integer value * 10^s


@dataclass
class Aggregate:
    """An aggregate call: ``func`` in sum/count/avg/min/max; ``arg`` an IR (None for
    COUNT(*))."""
    func: str
    arg: tuple | None
    from_count: bool = False  # a COUNT(e) computed as the SUM of "e is not NULL" (never NULL)


@dataclass
class Plan:
    """What both parties execute (see the module docstring)."""
    kind: str                                   # "local" or "join"
    sql: str
    out_names: list = field(default_factory=list)
    out_types: list = field(default_factory=list)
    owner: int | None = None                    # local plans
    local_sql: list = field(default_factory=lambda: [None, None])
    n_join_keys: int = 0
    columns: dict = field(default_factory=dict)  # name -> LocalColumn
    mask: tuple | None = None
    group_keys: list = field(default_factory=list)  # names of key columns
    aggs: list = field(default_factory=list)
    having: tuple | None = None
    outputs: list = field(default_factory=list)  # IR per output column
    row_level: bool = False
    order: list = field(default_factory=list)    # (output index, descending, nulls_first)
    limit: int | None = None
    offset: int = 0
    alias_tables: dict = field(default_factory=dict)  # alias -> base table name (for declared bounds)
    own_filters: dict = field(default_factory=dict)   # dp: party -> its 0/1 WHERE column (not pushed below the PSI)


_AGGS = {"Sum": "sum", "Count": "count", "Avg": "avg", "Min": "min", "Max": "max"}
_BINOPS = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "LT": "lt", "LTE": "le",
           "GT": "gt", "GTE": "ge", "EQ": "eq", "NEQ": "ne", "And": "and", "Or": "or"}


def _exp():
    from sqlglot import exp
    return exp


def _unsupported(construct, node, sql, hint=""):
    line, col = position_of(node, sql) if node is not None else (None, None)
    return SqlNotSupported(construct, line=line, column=col, hint=hint)


# -- step 1: parse and check the statement shape -------------------------------------------

def _parse(sql: str):
    import sqlglot
    from sqlglot.errors import ParseError

    exp = _exp()
    if not isinstance(sql, str) or not sql.strip():
        raise SqlError("sql must be a non-empty string")
    try:
        stmts = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except ParseError as exc:
        raise SqlError(f"cannot parse the SQL: {exc}") from None
    if len(stmts) != 1:
        raise SqlNotSupported(f"{len(stmts)} statements (give exactly one SELECT)")
    tree = stmts[0]
    if isinstance(tree, (exp.Union, exp.Intersect, exp.Except)):
        line, col = keyword_position(sql, type(tree).__name__.upper())
        raise SqlNotSupported(f"set operation {type(tree).__name__.upper()}", line=line, column=col)
    if not isinstance(tree, exp.Select):
        raise _unsupported(f"statement {type(tree).__name__.upper()} (only SELECT queries)", tree, sql)
    if tree.args.get("with_") or tree.args.get("with"):
        line, col = keyword_position(sql, "WITH")
        raise SqlNotSupported("WITH (common table expressions)", line=line, column=col,
                              hint="use a derived table in FROM")
    return tree


def _outer_nodes(select):
    """The nodes of ``select`` outside its FROM sources (select list, WHERE, GROUP BY,
    HAVING, ORDER BY, join conditions)."""
    exp = _exp()
    parts = list(select.expressions)
    for key in ("where", "group", "having", "order", "qualify"):
        if select.args.get(key) is not None:
            parts.append(select.args[key])
    for j in select.args.get("joins") or []:
        for key in ("on", "using"):
            v = j.args.get(key)
            if isinstance(v, list):
                parts.extend(v)
            elif v is not None:
                parts.append(v)
    out = []
    for p in parts:
        for n in p.walk():
            out.append(n)
    del exp
    return out


def _check_outer(select, sql):
    exp = _exp()
    if select.args.get("distinct"):
        line, col = keyword_position(sql, "DISTINCT")
        raise SqlNotSupported("SELECT DISTINCT", line=line, column=col)
    if select.args.get("qualify") is not None:
        raise _unsupported("QUALIFY", select.args["qualify"], sql)
    for n in _outer_nodes(select):
        if isinstance(n, exp.Window):
            line, col = position_of(n, sql)
            if line is None:
                line, col = keyword_position(sql, "OVER")
            raise SqlNotSupported("window function (OVER)", line=line, column=col)
        if isinstance(n, (exp.Subquery, exp.Exists)) or (isinstance(n, exp.Select) and n is not select):
            raise _unsupported("subquery in an expression", n, sql)
        if isinstance(n, (exp.Rollup, exp.Cube, exp.GroupingSets)):
            raise _unsupported(f"GROUP BY {type(n).__name__.upper()}", n, sql)
        if isinstance(n, exp.AggFunc) and type(n).__name__ not in _AGGS:
            raise _unsupported(f"aggregate function {n.sql('duckdb').split('(')[0].upper()}", n, sql,
                               "supported: SUM, COUNT, AVG, MIN, MAX")
        if isinstance(n, exp.Distinct) or (isinstance(n, exp.AggFunc) and n.find(exp.Distinct)):
            raise _unsupported("DISTINCT inside an aggregate", n, sql)


# -- step 1b: the function allow-list ----------------------------------------------------
#
# Every function the query calls -- in the outer query, in derived tables, in pushed-down
# parts -- must be on this list. What is not on it is refused before DuckDB sees the
# query: error() (its message would carry data to the peer), table functions (read_csv,
# read_parquet, glob, query_table...), settings and environment (current_setting, getenv,
# version), sequences, and anything sqlglot does not know.

#: sqlglot expression keys (typed functions) the query may use
ALLOWED_FUNCTION_KEYS = frozenset("""
and or xor not case if coalesce nullif nvl2 greatest least equalnull boolnot
cast trycast try collate columns typeof
sum count avg min max median mode stddev stddevpop stddevsamp variance variancepop quantile
approxquantile approxdistinct percentilecont percentiledisc groupconcat arrayagg countif
anyvalue first last argmax argmin corr covarpop covarsamp logicaland logicalor booland boolor
bitwiseandagg bitwiseoragg bitwisexoragg kurtosis skewness regrslope regrintercept regrr2
regrcount regravgx regravgy regrsxx regrsyy regrsxy
rownumber rank denserank percentrank cumedist ntile lag lead firstvalue lastvalue nthvalue
abs ceil floor round trunc sqrt cbrt ln log exp pow sign degrees radians pi sin cos tan cot
asin acos atan atan2 sinh cosh tanh isnan isinf factorial rand safedivide negative
lower upper length bytelength bitlength substring trim concat concatws left right replace
reverse repeat pad initcap splitpart split strposition contains startswith endswith
regexplike regexpextract regexpreplace regexpfullmatch regexpsplit regexpilike levenshtein
jarowinklersimilarity md5 sha sha2 hex unhex ascii chr unicode translate soundex format
date datetime time timestamp currentdate currenttime currenttimestamp datetrunc
timestamptrunc datetimetrunc timetrunc extract year month day dayofweek dayofweekiso
dayofmonth dayofyear week weekofyear quarter hour minute second dateadd datesub datediff
datetimeadd datetimesub datetimediff timestampadd timestampsub timestampdiff timeadd timesub
timediff timetostr strtotime strtodate strtounix todays makeinterval lastday dayname
monthname unixtotime timetounix unixtostr datestrtodate timestrtotime timestrtodate
tsordstodate tsordstotimestamp tsordsadd tsordsdiff datefromparts timestampfromparts
array list struct structextract arraysize arraycontains unnest explode
""".split())

#: DuckDB function names (lower case) the query may call that sqlglot leaves untyped
ALLOWED_FUNCTION_NAMES = frozenset("""
strlen length_grapheme ltrim rtrim lpad rpad instr position prefix suffix ilike_escape
like_escape string_split str_split regexp_full_match concat_ws printf to_base bin
lower upper trim substr substring replace reverse repeat
ifnull nullif coalesce greatest least
epoch epoch_ms epoch_us epoch_ns date_part datepart date_diff datediff date_sub date_add
date_trunc datetrunc make_date make_time make_timestamp to_timestamp century decade
millennium isodow isoyear yearweek dayofweek weekday weekofyear today now
current_localtimestamp current_localtime strftime strptime try_strptime age
nextafter gcd lcm log2 log10 even round_even bit_count ceiling mod fmod power signbit
isfinite divide add subtract multiply hash md5_number sha256 gamma lgamma
len array_length list_value list_extract array_extract list_contains list_has list_sum
list_min list_max list_avg list_count array_to_string struct_pack row
bool_and bool_or arg_max arg_min max_by min_by product fsum sumkahan kahan_sum favg
entropy histogram string_agg listagg any_value count_star approx_count_distinct bit_and
bit_or bit_xor var_pop var_samp stddev_pop stddev_samp covar_pop covar_samp
quantile_cont quantile_disc reservoir_quantile mad
""".split())


def _function_name(node) -> str:
    exp = _exp()
    if isinstance(node, (exp.Anonymous, exp.AnonymousAggFunc)):
        return str(node.name)
    try:
        return node.sql("duckdb").split("(")[0].strip() or node.key
    except Exception:  # noqa: BLE001 - only used for the message
        return node.key


def check_functions(tree, sql: str) -> None:
    """Refuse (SqlNotSupported naming it) any function call not on the allow-list."""
    exp = _exp()
    for node in tree.walk():
        if not isinstance(node, exp.Func):
            continue
        if isinstance(node, (exp.Anonymous, exp.AnonymousAggFunc)):
            ok = str(node.name).lower() in ALLOWED_FUNCTION_NAMES
        else:
            ok = node.key in ALLOWED_FUNCTION_KEYS
        if not ok:
            name = _function_name(node)[:60].upper()
            raise _unsupported(f"function {name}", node, sql,
                               "only allow-listed functions may run (docs/sql.md); error(), table "
                               "functions, file, setting and environment functions are refused")


# -- step 2: bind with DuckDB on empty tables ----------------------------------------------

def _bind(catalog, sql):
    try:
        rows = catalog.execute(f"DESCRIBE {sql}").fetchall()
    except Exception as exc:
        msg = str(exc).replace("LINE 1: DESCRIBE ", "LINE 1: ")
        raise SqlError(f"invalid query: {msg}") from None
    return [r[0] for r in rows], [r[1] for r in rows]


def _describe(catalog, sql):
    try:
        return [r[1] for r in catalog.execute(f"DESCRIBE {sql}").fetchall()]
    except Exception as exc:
        raise SqlError(f"invalid query part: {exc}") from None


# -- step 3: sources and owners ------------------------------------------------------------

def _table_owner(name: str, owners: dict, node, sql) -> int:
    low = name.lower()
    if low not in owners:
        raise SqlError(f"unknown table {name!r} (tables: {', '.join(sorted(owners)) or 'none'})")
    return owners[low]


def _source_owner(src, owners, sql) -> int:
    exp = _exp()
    if isinstance(src, exp.Table):
        if not isinstance(src.this, exp.Identifier):
            raise _unsupported("table function in FROM", src, sql)
        return _table_owner(src.name, owners, src, sql)
    if isinstance(src, exp.Subquery):
        parties = set()
        for t in src.find_all(exp.Table):
            if not isinstance(t.this, exp.Identifier):
                raise _unsupported("table function in FROM", t, sql)
            parties.add(_table_owner(t.name, owners, t, sql))
        if not parties:
            raise _unsupported("derived table without a table", src, sql)
        if len(parties) > 1:
            raise _unsupported("derived table mixing both parties' tables", src, sql,
                               "a derived table must read one party's tables only")
        return parties.pop()
    raise _unsupported(f"FROM item {type(src).__name__}", src, sql)


def _join_position(join, sql, word):
    """Position of the join keyword ``word`` (LEFT, SEMI, ...) before the joined table."""
    starts = [int(m["start"]) for n in join.this.walk() for m in [getattr(n, "_meta", None) or {}]
              if "start" in m]
    if not starts:
        return keyword_position(sql, word)
    i = sql.lower().rfind(word.lower(), 0, min(starts))
    if i < 0:
        return position_of(join.this, sql)
    from pet.sql.errors import line_col
    return line_col(sql, i)


def _alias_of(src) -> str:
    return (src.alias_or_name or "").lower()


# -- the planner ---------------------------------------------------------------------------

class _Builder:
    def __init__(self, sql, catalog, aliases, src_sql):
        self.sql = sql
        self.catalog = catalog
        self.aliases = aliases        # alias -> party
        self.src_sql = src_sql        # party -> "FROM" text of its source
        self.columns = {}             # name -> LocalColumn
        self.by_text = {}             # (party, sql) -> name
        self.filters = {0: [], 1: []}
        self.aggs = []
        self.agg_text = {}
        self.group_text = {}          # sql -> index
        self.group_keys = []

    # ownership of a (qualified) expression
    def parties(self, node) -> set:
        exp = _exp()
        out = set()
        for c in node.find_all(exp.Column):
            t = (c.table or "").lower()
            if t not in self.aliases:
                raise _unsupported(f"column reference {c.sql('duckdb')}", c, self.sql)
            out.add(self.aliases[t])
        return out

    def push(self, party: int, node, *, prefix="c", text=None) -> str:
        text = node.sql("duckdb") if text is None else text
        key = (party, prefix, text)
        if key in self.by_text:
            return self.by_text[key]
        name = f"_{prefix}{len(self.columns)}"
        self.columns[name] = LocalColumn(name, party, text)
        self.by_text[key] = name
        return name

    def row_ir(self, node):
        """IR of a row-level expression (no aggregates)."""
        exp = _exp()
        if isinstance(node, exp.AggFunc):
            raise _unsupported("nested aggregate", node, self.sql)
        parties = self.parties(node)
        if len(parties) == 1 and not isinstance(node, exp.Literal):
            return ("col", self.push(parties.pop(), node))
        return self._tree(node, self.row_ir)

    def group_ir(self, node):
        """IR of a post-aggregation expression (select list, HAVING)."""
        exp = _exp()
        text = node.sql("duckdb")
        if text in self.group_text:
            return ("key", self.group_text[text])
        if isinstance(node, exp.AggFunc):
            return ("agg", self.add_agg(node))
        if isinstance(node, exp.Column):
            raise SqlError(f"column {text} must appear in GROUP BY or inside an aggregate")
        return self._tree(node, self.group_ir)

    def add_agg(self, node) -> int:
        exp = _exp()
        text = node.sql("duckdb")
        if text in self.agg_text:
            return self.agg_text[text]
        func = _AGGS[type(node).__name__]
        arg = node.this
        if func == "count" and (arg is None or isinstance(arg, exp.Star)):
            agg = Aggregate("count", None)
        elif func == "count":
            parties = self.parties(arg)
            if len(parties) == 1:
                # COUNT(e) of one party's e: its owner pushes down the 0/1 "e is not NULL"
                ind = f"CASE WHEN ({arg.sql('duckdb')}) IS NULL THEN 0 ELSE 1 END"
                agg = Aggregate("sum", ("col", self.push(parties.pop(), arg, text=ind)), from_count=True)
            else:
                agg = Aggregate("count", None)  # cross-party values are never NULL (checked)
        else:
            agg = Aggregate(func, self.row_ir(arg))
        self.aggs.append(agg)
        self.agg_text[text] = len(self.aggs) - 1
        return len(self.aggs) - 1

    def _tree(self, node, rec):
        exp = _exp()
        name = type(node).__name__
        if isinstance(node, exp.Paren):
            return rec(node.this)
        if isinstance(node, exp.Alias):
            return rec(node.this)
        if isinstance(node, exp.Literal):
            if node.is_string and rec == self.row_ir:
                raise _unsupported("a string literal in an expression over both parties' values", node,
                                   self.sql)
            if node.is_string:
                return ("lit", node.this, "str")
            text = node.this
            try:
                return ("lit", int(text), "int")
            except ValueError:
                try:
                    return ("lit", float(text), "float")
                except ValueError:
                    raise _unsupported(f"literal {text}", node, self.sql) from None
        if isinstance(node, exp.Boolean):
            return ("lit", bool(node.this), "bool")
        if isinstance(node, exp.Div) and rec == self.row_ir:
            d = node.expression
            while isinstance(d, exp.Paren):
                d = d.this
            dp = self.parties(d)
            if len(dp) == 1 and not isinstance(d, exp.Literal):
                # the divisor's owner computes 1/d in plaintext: one MPC product instead of
                # a secure division (a zero divisor gives inf there: a clear error)
                recip = self.push(dp.pop(), d, prefix="r", text=f"1.0 / ({d.sql('duckdb')})")
                return ("op", "mulinv", (rec(node.this), ("col", recip)))
        if name in _BINOPS:
            return ("op", _BINOPS[name], (rec(node.this), rec(node.expression)))
        if isinstance(node, exp.Neg):
            return ("op", "neg", (rec(node.this),))
        if isinstance(node, exp.Not):
            return ("op", "not", (rec(node.this),))
        if isinstance(node, exp.Abs):
            return ("op", "abs", (rec(node.this),))
        if isinstance(node, exp.Between):
            x = rec(node.this)
            return ("op", "and", (("op", "ge", (x, rec(node.args["low"]))),
                                  ("op", "le", (x, rec(node.args["high"])))))
        if isinstance(node, exp.Case):
            if node.this is not None:
                raise _unsupported("CASE <expr> WHEN (simple CASE) across parties", node, self.sql,
                                   "write CASE WHEN <condition> THEN ...")
            default = node.args.get("default")
            if default is None:
                raise _unsupported("CASE without ELSE across parties", node, self.sql)
            args = []
            for w in node.args.get("ifs") or []:
                args.extend([rec(w.this), rec(w.args["true"])])
            args.append(rec(default))
            return ("op", "case", tuple(args))
        if isinstance(node, exp.If):
            f = node.args.get("false")
            if f is None:
                raise _unsupported("IF without ELSE across parties", node, self.sql)
            return ("op", "case", (rec(node.this), rec(node.args["true"]), rec(f)))
        if isinstance(node, exp.Cast) and node.to.is_type(*exp.DataType.REAL_TYPES):
            return ("op", "tofloat", (rec(node.this),))
        if isinstance(node, exp.Column):
            raise _unsupported(f"column {node.sql('duckdb')} here", node, self.sql)
        what = name.upper() if not isinstance(node, exp.Func) else node.sql("duckdb").split("(")[0].upper()
        raise _unsupported(f"{what} over both parties' values", node, self.sql,
                           "only + - * / ABS, comparisons, AND/OR/NOT, BETWEEN and CASE WHEN mix parties")

    def group_key(self, node):
        parties = self.parties(node)
        if len(parties) != 1:
            raise _unsupported("GROUP BY expression mixing both parties' columns" if parties else
                               "GROUP BY a constant", node, self.sql)
        party = parties.pop()
        name = self.push(party, node, prefix="g")
        self.group_text[node.sql("duckdb")] = len(self.group_keys)
        self.group_keys.append(name)


def _conjuncts(node):
    exp = _exp()
    if node is None:
        return []
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        return _conjuncts(node.this) + _conjuncts(node.expression)
    return [node]


def _join_keys(join, left_alias, right_alias, aliases, sql):
    """Pairs (expr of party-of-left, expr of party-of-right) from the ON/USING clause, and
    single-party ON conjuncts (pushed down like WHERE)."""
    exp = _exp()
    using = join.args.get("using")
    if using:
        names = [u.name for u in using]
        return [(exp.column(n, left_alias), exp.column(n, right_alias)) for n in names], []
    on = join.args.get("on")
    if on is None:
        raise _unsupported("JOIN without ON (cross join)", join, sql)
    pairs, extra = [], []
    for c in _conjuncts(on):
        cols = list(c.find_all(exp.Column))
        owners = {aliases.get((x.table or "").lower()) for x in cols}
        if len(owners) == 1 and None not in owners:
            extra.append(c)
            continue
        if not isinstance(c, exp.EQ):
            raise _unsupported(f"non-equi join condition {c.sql('duckdb')}", c, sql,
                               "the ON clause must be equalities between the two sides")
        a, b = c.this, c.expression
        pa, pb = ({aliases.get((x.table or "").lower()) for x in a.find_all(exp.Column)},
                  {aliases.get((x.table or "").lower()) for x in b.find_all(exp.Column)})
        if len(pa) != 1 or len(pb) != 1 or pa == pb:
            raise _unsupported(f"join condition {c.sql('duckdb')}", c, sql,
                               "each side of = must use one party's columns")
        if pa == {aliases[left_alias]}:
            pairs.append((a, b))
        else:
            pairs.append((b, a))
    if not pairs:
        raise _unsupported("join without an equality between the two parties", join, sql)
    return pairs, extra


def build_plan(sql: str, schemas: list, *, dp: bool = False) -> Plan:
    """Plan ``sql`` over ``schemas = [schema_of_party0, schema_of_party1]``. With ``dp``
    (a differentially private query) one party's WHERE conjuncts are not pushed below the
    PSI but become that party's 0/1 column ``plan.own_filters[party]`` (step 9).

    Steps (each one call, in this order: the first failing check gives the error):

    1. parse and check the statement (functions, outer shape): :func:`_parse_checked`;
    2. the table owners and an empty catalog of both schemas: :func:`_catalog`;
    3. the sources of the outer FROM and their owners: :func:`_sources`;
    4. bind the query for the output names and types: :func:`_bind`;
    5. one party's tables only: a local plan, done (:func:`_local_plan`);
    6. the join between the parties (count, kind, method, aliases): :func:`_check_cross_party_join`;
    7. qualify the names; aliases and source SQL per party: :func:`_qualify`;
    8. the expression builder (:class:`_Builder`) and each party's join keys: :func:`_join_key_exprs`;
    9. WHERE: one party's conjuncts pushed down, the others a shared mask: :func:`_where_mask`;
    10. GROUP BY, row-level or grouped, outputs and HAVING: :func:`_group_keys_and_outputs`;
    11. the typed local queries (decimal scale, casts, join key types): :func:`_typed_local_sql`;
    12. the plan, ORDER BY / LIMIT and the MPC kind checks: :func:`_join_plan`.
    """
    tree = _parse_checked(sql)
    owners, all_schemas, catalog = _catalog(schemas)
    try:
        return _plan_with_catalog(sql, tree, owners, all_schemas, catalog, dp)
    finally:  # a DuckDB database holds native threads until closed: close it now, not at GC
        catalog.close()


def _plan_with_catalog(sql, tree, owners, all_schemas, catalog, dp):
    """Steps 3-12 of :func:`build_plan` on the empty ``catalog`` of both schemas."""
    sources, src_owner = _sources(tree, owners, sql)
    out_names, out_types = _bind(catalog, sql)
    if len(set(src_owner)) == 1:
        return _local_plan(tree, sql, out_names, out_types, src_owner[0])
    _check_cross_party_join(tree, sources, sql)
    q, qsources, aliases, src_sql = _qualify(tree, all_schemas, src_owner)
    b = _Builder(sql, catalog, aliases, src_sql)
    pairs, extra, key_exprs = _join_key_exprs(q, qsources, aliases, src_owner, sql)
    mask = _where_mask(b, q, extra, sql, dp=dp)
    row_level, outputs, having_ir = _group_keys_and_outputs(b, q, mask, sql)
    local_sql = _typed_local_sql(b, catalog, key_exprs, src_sql, pairs, sql)
    return _join_plan(sql, out_names, out_types, local_sql, pairs, b, mask, having_ir, outputs, row_level,
                      qsources, q)


def _parse_checked(sql: str):
    """Step 1: the parsed statement, its functions and outer shape checked."""
    tree = _parse(sql)
    check_functions(tree, sql)
    _check_outer(tree, sql)
    return tree


def _catalog(schemas: list):
    """Step 2: ``(owners, all_schemas, catalog)``: the party owning each (lower-cased) table
    name, both parties' schemas merged, and an empty DuckDB catalog of them."""
    owners = {}
    for p in (0, 1):
        for name in schemas[p]:
            owners[name.lower()] = p
    all_schemas = {**schemas[0], **schemas[1]}
    catalog = empty_catalog(all_schemas)
    return owners, all_schemas, catalog


def _sources(tree, owners: dict, sql: str):
    """Step 3: the sources of the outer FROM (the FROM table, then the joined ones) and
    the party owning each."""
    from_ = tree.args.get("from_") or tree.args.get("from")
    if from_ is None:
        raise SqlNotSupported("SELECT without FROM")
    sources = [from_.this] + [j.this for j in tree.args.get("joins") or []]
    src_owner = [_source_owner(s, owners, sql) for s in sources]
    return sources, src_owner


def _local_plan(tree, sql: str, out_names, out_types, owner: int) -> Plan:
    """Step 5: every source belongs to ``owner``, who runs the whole query locally."""
    # the owner runs the SQL as sqlglot regenerates it from the checked tree (not the
    # original text), so a parser difference cannot hide a call from check_functions
    local_sql = [None, None]
    local_sql[owner] = tree.sql("duckdb")
    return Plan("local", sql, out_names, out_types, owner=owner, local_sql=local_sql)


def _check_cross_party_join(tree, sources, sql: str) -> None:
    """Step 6: exactly one source per party, joined by a plain inner join; derived tables
    have an alias."""
    exp = _exp()
    if len(sources) > 2:
        raise _unsupported(f"{len(sources)} tables across the two parties", tree.args["joins"][1], sql,
                           "join exactly one table (or derived table) of each party; combine one "
                           "party's tables in a derived table")
    join = tree.args["joins"][0]
    kind = (join.args.get("kind") or "").upper()
    side = (join.args.get("side") or "").upper()
    if side or kind not in ("", "INNER"):
        what = " ".join(x for x in (side, kind) if x) or "this"
        line, col = _join_position(join, sql, side or kind)
        raise SqlNotSupported(f"{what} JOIN", line=line, column=col,
                              hint="only inner equi-joins between the two parties")
    if join.args.get("method"):
        line, col = _join_position(join, sql, join.args["method"])
        raise SqlNotSupported(f"{join.args['method']} JOIN", line=line, column=col)
    for s in sources:
        if isinstance(s, exp.Subquery) and not s.alias:
            raise _unsupported("derived table without an alias", s, sql)


def _qualify(tree, all_schemas: dict, src_owner):
    """Step 7: ``(q, qsources, aliases, src_sql)``: the query with qualified names, its two
    sources, the party of each source alias and each party's source SQL."""
    from sqlglot.errors import OptimizeError
    from sqlglot.optimizer.qualify import qualify

    qschema = {t: {c: ty for c, ty in cols} for t, cols in all_schemas.items()}
    try:
        q = qualify(tree.copy(), schema=qschema, dialect="duckdb", quote_identifiers=True)
    except OptimizeError as exc:
        raise SqlError(f"cannot resolve the query's names: {exc}") from None
    qfrom = q.args.get("from_") or q.args.get("from")
    qsources = [qfrom.this, q.args["joins"][0].this]
    aliases, src_sql = {}, {}
    for s, p in zip(qsources, src_owner):
        alias = _alias_of(s)
        aliases[alias] = p
        src_sql[p] = s.sql("duckdb")
    if len(aliases) != 2:
        raise SqlError("the two joined tables need distinct aliases")
    return q, qsources, aliases, src_sql


def _join_key_exprs(q, qsources, aliases, src_owner, sql: str):
    """Step 8: ``(pairs, extra, key_exprs)``: the equality pairs of the join condition, its
    other conjuncts, and each party's join key expressions in pair order."""
    left_alias = _alias_of(qsources[0])
    right_alias = _alias_of(qsources[1])
    pairs, extra = _join_keys(q.args["joins"][0], left_alias, right_alias, aliases, sql)
    key_exprs = {src_owner[0]: [a for a, _ in pairs], src_owner[1]: [c for _, c in pairs]}
    return pairs, extra, key_exprs


def _where_mask(b: _Builder, q, extra, sql: str, dp: bool = False):
    """Step 9: WHERE (and the join condition's ``extra`` conjuncts): a conjunct over one
    party's columns (or none) becomes a filter of its local query, a cross-party one part
    of the row mask; returns the mask IR (None without one).

    With ``dp``, a conjunct over one party's columns is *not* a local filter (the PSI would
    reveal the filtered intersection size exactly): the party's conjuncts become one pushed
    column ``COALESCE((c1) AND (c2) ..., FALSE)`` (``b.own_filters[party]``) that enters the
    MPC as a 0/1 mask known to its owner. Constant conjuncts stay local filters."""
    exp = _exp()
    mask_parts = []
    own = {0: [], 1: []}
    for c in _conjuncts(q.args.get("where").this if q.args.get("where") else None) + extra:
        ps = b.parties(c)
        if c.find(exp.AggFunc):
            raise _unsupported("aggregate in WHERE", c, sql)
        if dp and len(ps) == 1:
            own[next(iter(ps))].append(c.sql("duckdb"))
        elif len(ps) <= 1:
            for p in (ps or {0, 1}):
                b.filters[p].append(c.sql("duckdb"))
        else:
            mask_parts.append(b.row_ir(c))
    b.own_filters = {}
    for p in (0, 1):
        if own[p]:
            text = "COALESCE(" + " AND ".join(f"({c})" for c in own[p]) + ", FALSE)"
            b.own_filters[p] = b.push(p, None, prefix="w", text=text)
    mask = None
    for m in mask_parts:
        mask = m if mask is None else ("op", "and", (mask, m))
    return mask


def _group_keys_and_outputs(b: _Builder, q, mask, sql: str):
    """Step 10: GROUP BY keys, whether the query is row-level (no GROUP BY, aggregate or
    HAVING; refused with a cross-party ``mask``), the output IRs and the HAVING IR:
    returns ``(row_level, outputs, having_ir)``."""
    exp = _exp()
    group = q.args.get("group")
    gexprs = list(group.expressions) if group is not None else []
    if group is not None and group.args.get("all"):
        gexprs = [e.this if isinstance(e, exp.Alias) else e for e in q.expressions
                  if not any(isinstance(n, exp.AggFunc) for n in e.walk())]
    for g in gexprs:
        b.group_key(g)
    has_agg = any(isinstance(n, exp.AggFunc) for e in q.expressions for n in e.walk())
    having = q.args.get("having")
    row_level = group is None and not has_agg and having is None
    if row_level and mask is not None:
        # opening the 0/1 mask of row-level output in the joint order would tell the
        # receiver, for each of its own joined rows, whether the condition held
        where = q.args.get("where")
        raise _unsupported("a condition over both parties' columns in a row-level query (no GROUP BY or "
                           "aggregates)", where if where is not None else None, sql,
                           "the receiver would learn for each of its rows whether the condition held; "
                           "aggregate (GROUP BY / COUNT / SUM ...), or move the condition into one "
                           "party's columns")
    outputs = []
    for e in q.expressions:
        node = e.this if isinstance(e, exp.Alias) else e
        outputs.append(b.row_ir(node) if row_level else b.group_ir(node))
    having_ir = b.group_ir(having.this) if having is not None else None
    return row_level, outputs, having_ir


def _typed_local_sql(b: _Builder, catalog, key_exprs, src_sql, pairs, sql: str) -> list:
    """Step 11: each party's pushed-down query. Describe it once for the types, then cast
    join keys so that equal values encode equally at both parties, exact decimals to scaled
    integers, and non-numeric, non-string columns to VARCHAR."""
    key_types = {}
    for p in (0, 1):
        text = _local_text(key_exprs[p], [c for c in b.columns.values() if c.party == p], b.filters[p],
                           src_sql[p], None)
        types = _describe(catalog, text)
        nk = len(key_exprs[p])
        for c, t in zip([c for c in b.columns.values() if c.party == p], types[nk:]):
            c.kind = kind_of(t)
            scale = decimal_scale(t)
            if scale is not None and not c.name.startswith("_g"):
                # exact decimals: the owner pushes down the integer value * 10^s, computed
                # exactly by DuckDB in DECIMAL(38, s) (in the column's own DECIMAL(p, s), 10^s
                # times a value near 10^(p-s) overflows: "Overflow in multiplication of
                # DECIMAL(18)"); it fits BIGINT for every p <= 18, a value beyond BIGINT
                # (p > 18) fails the local step
                c.dec = scale
                c.sql = f"CAST(CAST(({c.sql}) AS DECIMAL(38, {scale})) * {10 ** scale} AS BIGINT)"
            if c.kind == "other":
                c.sql, c.kind = f"CAST(({c.sql}) AS VARCHAR)", "str"
        key_types[p] = types[:nk]
    casts = []
    for i, (t0, t1) in enumerate(zip(key_types[0], key_types[1])):
        k0, k1 = kind_of(t0), kind_of(t1)
        if k0 in ("int", "bool") and k1 in ("int", "bool"):
            casts.append("BIGINT")
        elif k0 == "str" and k1 == "str":
            casts.append("VARCHAR")
        elif k0 in ("int", "float") and k1 in ("int", "float"):
            raise _unsupported(f"join on non-integer numeric keys ({t0} = {t1})", pairs[i][0], sql)
        elif k0 == "other" and t0 == t1:
            casts.append("VARCHAR")
        else:
            raise SqlError(f"join key {i + 1} has different types at the two parties: {t0} vs {t1}")
    return [_local_text(key_exprs[p], [c for c in b.columns.values() if c.party == p], b.filters[p],
                        src_sql[p], casts) for p in (0, 1)]


def _join_plan(sql, out_names, out_types, local_sql, pairs, b: _Builder, mask, having_ir, outputs,
               row_level, qsources, q) -> Plan:
    """Step 12: the join plan, with its ORDER BY / LIMIT and the MPC kind checks."""
    exp = _exp()
    plan = Plan("join", sql, out_names, out_types, local_sql=local_sql, n_join_keys=len(pairs),
                columns=b.columns, mask=mask, group_keys=b.group_keys, aggs=b.aggs, having=having_ir,
                outputs=outputs, row_level=row_level)
    plan.alias_tables = {_alias_of(s): s.name.lower() for s in qsources if isinstance(s, exp.Table)}
    plan.own_filters = dict(getattr(b, "own_filters", {}))
    _order_limit(plan, q, sql)
    _check_mpc_kinds(plan, sql)
    return plan


def _local_text(keys, cols, filters, source, casts) -> str:
    """One party's pushed-down query: join keys ``_j*`` (cast), then its columns."""
    out = []
    for i, k in enumerate(keys):
        e = k.sql("duckdb")
        out.append(f"CAST({e} AS {casts[i]}) AS {quote(f'_j{i}')}" if casts else f"{e} AS {quote(f'_j{i}')}")
    out += [f"{c.sql} AS {quote(c.name)}" for c in cols]
    where = list(filters) + [f"({k.sql('duckdb')}) IS NOT NULL" for k in keys]
    text = f"SELECT {', '.join(out)} FROM {source}"
    if where:
        text += " WHERE " + " AND ".join(f"({w})" for w in where)
    return text


def _order_limit(plan: Plan, q, sql: str) -> None:
    """ORDER BY / LIMIT / OFFSET, applied to the revealed result: terms must name an
    output column (alias, position or the same expression as a select item)."""
    exp = _exp()
    names = [n.lower() for n in plan.out_names]
    texts = []
    for e in q.expressions:
        texts.append((e.this if isinstance(e, exp.Alias) else e).sql("duckdb"))
    order = q.args.get("order")
    for o in (order.expressions if order is not None else []):
        t = o.this
        idx = None
        if isinstance(t, exp.Literal) and not t.is_string and t.this.isdigit():
            idx = int(t.this) - 1
        elif t.sql("duckdb") in texts:
            idx = texts.index(t.sql("duckdb"))
        elif isinstance(t, exp.Column) and t.name.lower() in names:
            idx = names.index(t.name.lower())
        if idx is None or not 0 <= idx < len(names):
            raise _unsupported(f"ORDER BY {t.sql('duckdb')} (not an output column)", o, sql,
                               "order by a selected column, its alias or position")
        desc = bool(o.args.get("desc"))
        nf = o.args.get("nulls_first")
        plan.order.append((idx, desc, bool(nf)))
    for key in ("limit", "offset"):
        node = q.args.get(key)
        if node is None:
            continue
        val = node.expression if key == "limit" else node.this
        if val is None and key == "offset":
            val = node.expression
        if not (isinstance(val, exp.Literal) and not val.is_string and val.this.isdigit()):
            raise _unsupported(f"{key.upper()} that is not a non-negative integer literal", node, sql)
        if key == "limit":
            plan.limit = int(val.this)
        else:
            plan.offset = int(val.this)


def _ir_cols(ir, out):
    if ir is None:
        return out
    if ir[0] == "col":
        out.append(ir[1])
    elif ir[0] == "op":
        for a in ir[2]:
            _ir_cols(a, out)
    return out


def _check_mpc_kinds(plan: Plan, sql: str) -> None:
    """Columns that enter MPC arithmetic must be numeric or boolean."""
    used = []
    _ir_cols(plan.mask, used)
    for a in plan.aggs:
        if a.func in ("sum", "avg", "min", "max") and a.arg is not None:
            if a.arg[0] == "col" and plan.columns[a.arg[1]].kind == "str" and a.func in ("min", "max"):
                raise SqlNotSupported(f"{a.func.upper()} of a string across parties")
            _ir_cols(a.arg, used)
    for o in plan.outputs if plan.row_level else []:
        if o[0] == "op":
            _ir_cols(o, used)
    for o in plan.outputs if not plan.row_level else []:
        _ir_cols(o, used)
    for name in used:
        c = plan.columns[name]
        if c.kind not in ("int", "float", "bool") and not (
                plan.row_level and any(o == ("col", name) for o in plan.outputs)):
            raise SqlNotSupported(f"{c.kind if c.kind != 'str' else 'string'} value {c.sql} in a "
                                  "computation across parties", hint="only numbers and booleans can be "
                                  "computed on in MPC")
