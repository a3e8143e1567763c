"""``--sql``: a read-only WHERE clause for power users, checked by DuckDB itself.

Three walls, each enough on its own for the cases it knows:

1. the text: no ``;`` (one statement only), no comments;
2. DuckDB's parser (``json_serialize_sql``) on ``SELECT 1 FROM posts WHERE (<clause>)``: it must
   be one plain SELECT of the table, with no subquery, table function or set operation anywhere,
   and no function that reads files or settings;
3. the connection the clause runs on has external access disabled and its configuration locked
   once the table is open, so a file, an extension or a setting is out of reach whatever slips by.
"""

from __future__ import annotations

import json
from typing import Any

from pools.metadata.language import QueryError

MAX_SQL = 4000
MAX_DEPTH = 64  # parentheses nested in a clause (400 deep was a RecursionError in the check)
#: function names refused in a clause (case-insensitive prefixes); the sandbox backs this up
_DENY_PREFIXES = ("read_", "parquet_", "glob", "getenv", "current_setting", "query", "sniff_",
                  "duckdb_", "pragma_", "load_", "install_", "iceberg_", "delta_", "sqlite_",
                  "postgres_", "mysql_", "json_execute", "which_secret", "import_", "export_",
                  "http", "s3", "from_json_file", "checkpoint", "enable_", "disable_", "set_")


#: functions that build lists or strings of any size, or burn CPU without bound (``len(range(3e9))``
#: reached 10 GB outside DuckDB's memory limit; ``repeat('x', 2e9)`` 21 GB; ``sleep_ms``): refused
_UNBOUNDED = ("range", "generate_series", "repeat", "sleep", "list_", "array_", "unnest", "levenshtein",
              "damerau", "jaro", "mismatches", "hamming", "editdist", "string_split", "str_split",
              "regexp_split", "regexp_extract_all", "lpad", "rpad", "bar", "printf", "format", "flatten",
              "string_agg", "list", "array", "range_", "unnest")


def _walk(node: Any):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _depth(clause: str) -> int:
    """How deep the clause's parentheses nest, outside quoted text."""
    depth = deepest = 0
    quote = ""
    for ch in clause:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == ")":
            depth -= 1
    return deepest


def check_where_sql(con, clause: str, table: str = "posts") -> str:
    """Return ``clause`` when it is a read-only WHERE clause over ``table``; else raise QueryError."""
    clause = (clause or "").strip()
    if not clause:
        raise QueryError("--sql needs a WHERE clause, like \"score > 50 AND rating = 'g'\"")
    if len(clause) > MAX_SQL:
        raise QueryError(f"--sql is {len(clause)} characters long; at most {MAX_SQL}")
    if ";" in clause:
        raise QueryError("--sql takes one WHERE clause: ';' is not allowed")
    if "--" in clause or "/*" in clause:
        raise QueryError("--sql may not hold comments ('--' or '/*')")
    if _depth(clause) > MAX_DEPTH:
        raise QueryError(f"--sql nests parentheses more than {MAX_DEPTH} deep")
    statement = f"SELECT 1 FROM {table} WHERE ({clause}\n)"
    raw = con.execute("SELECT json_serialize_sql(?)", [statement]).fetchone()[0]
    try:
        tree = json.loads(raw)
    except RecursionError:  # nesting without parentheses (a long chain of operators)
        raise QueryError("--sql nests too deep to check") from None
    if tree.get("error"):
        message = tree.get("error_message") or "not a WHERE clause"
        raise QueryError(f"--sql is not a valid WHERE clause: {message}")
    statements = tree.get("statements") or []
    if len(statements) != 1:
        raise QueryError("--sql takes one WHERE clause, not several statements")
    node = statements[0].get("node") or {}
    if node.get("type") != "SELECT_NODE" or (node.get("from_table") or {}).get("type") != "BASE_TABLE" \
            or (node.get("from_table") or {}).get("table_name") != table or node.get("modifiers") \
            or (node.get("cte_map") or {}).get("map") or node.get("group_expressions") \
            or node.get("having") or len(node.get("select_list") or []) != 1:
        raise QueryError("--sql must be only a WHERE clause (no UNION, ORDER BY, LIMIT or GROUP BY)")
    try:
        items = list(_walk(node.get("where_clause")))
    except RecursionError:
        raise QueryError("--sql nests too deep to check") from None
    for item in items:
        kind = str(item.get("class", "")), str(item.get("type", ""))
        if "SUBQUERY" in kind or "TABLE_FUNCTION" in kind or kind[1] in ("SELECT_NODE", "SET_OPERATION_NODE"):
            raise QueryError("--sql may not hold a subquery or read another table")
        name = item.get("function_name")
        if isinstance(name, str) and name.lower().startswith(_DENY_PREFIXES):
            raise QueryError(f"--sql may not call {name}(): it reads outside the table")
        if isinstance(name, str) and name.lower().startswith(_UNBOUNDED):
            raise QueryError(f"--sql may not call {name}(): its memory or time has no bound")
    return clause
