"""The booru query language, term by term, against a small Danbooru-schema table (and its
CSV, TSV, JSON Lines and list-column twins); --sql refusals; ids, samples, limits and order."""

from __future__ import annotations

import json
import os

import duckdb
import pytest

from pools.metadata import MappingError, QueryError, open_table, parse_mapping

POSTS = [
    # id, rating, score, w, h, ext, created_at, general, character, copyright, artist, meta
    (1, "g", 10, 1024, 768, "png", "2023-01-05 10:00:00", "cat_ears solo 1girl", "hatsune_miku", "vocaloid", "artist_a", "highres"),
    (2, "s", 50, 2048, 2048, "jpg", "2023-06-05 00:00:00", "cat_ears 1girl", "", "original", "artist_b", "comic"),
    (3, "e", -2, 800, 600, "webp", "2022-01-05 00:00:00", "dog solo hat", "", "", "artist_a", ""),
    (4, "q", 100, 1200, 1600, "png", "2024-01-05 00:00:00", "ribbon 1boy cat", "kagamine_len", "vocaloid", "", "absurdres"),
    (5, "g", 9, 1023, 1024, "gif", "2023-01-01 00:00:00", "scenery no_humans", "", "original", "artist_c", "animated"),
    (7, "s", 10, 4000, 3000, "jpeg", "2022-12-31 23:59:59", "hat ribbon solo", "", "", "artist_a", "comic translated"),
]
COLUMNS = ("id, rating, score, image_width, image_height, file_ext, created_at, tag_string_general, "
           "tag_string_character, tag_string_copyright, tag_string_artist, tag_string_meta")


def _values() -> str:
    rows = []
    for p in POSTS:
        rows.append("(" + ", ".join([str(p[0]), repr(p[1]), str(p[2]), str(p[3]), str(p[4]), repr(p[5]),
                                     f"TIMESTAMP '{p[6]}'", *(repr(x) for x in p[7:])]) + ")")
    return ", ".join(rows)


@pytest.fixture(scope="module")
def table_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("meta")
    con = duckdb.connect()
    con.execute(f"CREATE TABLE posts AS SELECT * FROM (VALUES {_values()}) t({COLUMNS})")
    con.execute(f"COPY posts TO '{d / 'posts.parquet'}'")
    con.execute(f"COPY posts TO '{d / 'posts.csv'}' (HEADER)")
    con.execute(f"COPY posts TO '{d / 'posts.tsv'}' (HEADER, DELIMITER '\t')")
    con.execute(f"COPY posts TO '{d / 'posts.jsonl'}' (FORMAT json)")
    # another schema: one list column of tags, other names
    con.execute(f"""COPY (SELECT id AS post_id, rating, score, image_width AS w, image_height AS h,
                   string_split(trim(concat_ws(' ', tag_string_general, tag_string_character, tag_string_copyright,
                                 tag_string_artist, tag_string_meta)), ' ') AS tag_list FROM posts)
                   TO '{d / 'list.parquet'}'""")
    return d


#: the file queried in place, and its DuckDB-native copy with every tag a bit, none, or a few
MODES = {"file": None, "copy-bits": 256, "copy-lists": 0, "copy-mixed": 3}


@pytest.fixture(scope="module", params=list(MODES))
def table(request, table_dir, tmp_path_factory):
    bits = MODES[request.param]
    options = {} if bits is None else {"index": True, "index_bits": bits,
                                       "index_dir": str(tmp_path_factory.mktemp("copies"))}
    with open_table(str(table_dir / "posts.parquet"), **options) as t:
        assert (t.index_path is not None) == (bits is not None)
        yield t


CASES = [
    ("", [1, 2, 3, 4, 5, 7]),
    ("cat_ears", [1, 2]),
    ("cat_ears solo", [1]),  # all of
    ("cat", [4]),  # a whole tag, not a substring of cat_ears
    ("-comic", [1, 3, 4, 5]),  # none of (comic is a meta tag: bare tags look in every column)
    ("cat_ears -comic", [1]),
    ("~hat ~ribbon", [3, 4, 7]),  # any of
    ("~hat ~ribbon -solo", [4]),
    ("solo ~dog ~cat_ears", [1, 3]),
    ("cat*", [1, 2, 4]),  # prefix
    ("*_ears", [1, 2]),
    ("*humans", [5]),
    ("rating:g", [1, 5]),
    ("rating:g,s", [1, 2, 5, 7]),
    ("rating:explicit", [3]),
    ("-rating:e,q", [1, 2, 5, 7]),
    ("score:>=10", [1, 2, 4, 7]),
    ("score:>10", [2, 4]),
    ("score:<10", [3, 5]),
    ("score:<=9", [3, 5]),
    ("score:10", [1, 7]),
    ("score:10..60", [1, 2, 7]),
    ("score:..9", [3, 5]),
    ("score:50..", [2, 4]),
    ("score:-2", [3]),
    ("id:2..4", [2, 3, 4]),
    ("id:1,5,7", [1, 5, 7]),
    ("id:1,4..5", [1, 4, 5]),
    ("width:>=1024", [1, 2, 4, 7]),
    ("height:>=1024", [2, 4, 5, 7]),
    ("height:600", [3]),
    ("ext:png", [1, 4]),
    ("ext:png,webp", [1, 3, 4]),
    ("ext:jpg", [2, 7]),  # jpg and jpeg are one format
    ("ext:.GIF", [5]),
    ("date:>=2023-01-01", [1, 2, 4, 5]),
    ("date:<2023-01-01", [3, 7]),
    ("date:2023-01-05", [1]),
    ("date:2023-01-01..2023-06-30", [1, 2, 5]),
    ("artist:artist_a", [1, 3, 7]),
    ("artist:artist_*", [1, 2, 3, 5, 7]),
    ("character:hatsune_miku", [1]),
    ("character:cat_ears", []),  # a category prefix looks in one column only
    ("copyright:vocaloid", [1, 4]),
    ("general:solo", [1, 3, 7]),
    ("meta:comic", [2, 7]),
    ("-meta:comic -artist:artist_a", [4, 5]),
    ("CAT_EARS Rating:G", [1]),  # case does not matter
    ("1girl solo -comic rating:g,s score:>=10 width:>=1024", [1]),  # the benchmark query
]


@pytest.mark.parametrize("query,expected", CASES)
def test_each_term(table, query, expected):
    assert list(table.ids(query)) == expected
    assert table.count(query) == len(expected)
    assert len(table.ids(query)) == len(expected)


@pytest.mark.parametrize("name", ["posts.csv", "posts.tsv", "posts.jsonl"])
def test_other_formats_give_the_same_answers(table_dir, name):
    with open_table(str(table_dir / name)) as t:
        for query, expected in CASES:
            assert list(t.ids(query)) == expected, query


def test_a_list_column_and_other_names_through_a_mapping(table_dir):
    mapping = parse_mapping("id=post_id,width=w,height=h,tags=tag_list")
    with open_table(str(table_dir / "list.parquet"), columns=mapping) as t:
        assert list(t.ids("cat_ears -comic")) == [1]
        assert list(t.ids("~hat ~ribbon")) == [3, 4, 7]
        assert list(t.ids("cat* width:>=1100")) == [2, 4]
        assert list(t.ids("rating:g,s score:>=10")) == [1, 2, 7]
        with pytest.raises(QueryError, match="no artist tag column"):
            t.count("artist:artist_a")
        with pytest.raises(QueryError, match="no ext column"):
            t.count("ext:png")
        assert t.tags_of([4])[4]["tags"] == ["ribbon", "1boy", "cat", "kagamine_len", "vocaloid", "absurdres"]


def test_mapping_errors(table_dir, tmp_path):
    duckdb.connect().execute(f"COPY (SELECT 1 AS pid, 'a' AS tags) TO '{tmp_path / 'pid.parquet'}'")
    with pytest.raises(MappingError, match="no id column"):
        open_table(str(tmp_path / "pid.parquet"))
    with open_table(str(tmp_path / "pid.parquet"), columns={"id": "pid"}) as t:
        assert list(t.ids("a")) == [1]
    with pytest.raises(MappingError, match="no such column"):
        open_table(str(table_dir / "posts.parquet"), columns={"width": "nope"})
    with pytest.raises(MappingError, match="unknown field"):
        open_table(str(table_dir / "posts.parquet"), columns={"colour": "id"})
    with pytest.raises(MappingError, match="FIELD=COLUMN"):
        parse_mapping("width")


BAD = [
    ("score:>=abc", "score:>=abc", "whole number"),
    ("cat score:abc", "score:abc", "whole number"),
    ("rating:x", "rating:x", "rating is one of g, s, q, e"),
    ("rating:", "rating:", "needs a value"),
    ("solo -", "-", "needs a tag"),
    ("~", "~", "needs a tag"),
    ("--comic", "--comic", "once"),
    ("scroe:>10", "scroe:>10", "unknown field 'scroe'"),
    ("score:10..5", "score:10..5", "reversed"),
    ("score:..", "score:..", "needs an end"),
    ("score:>=", "score:>=", "needs a value"),
    ("score:1,,2", "score:1,,2", "empty item"),
    ("score:>1,2", "score:>1,2", "comma list"),
    ("date:2023", "date:2023", "YYYY-MM-DD"),
    ("date:2023-02-30", "date:2023-02-30", "YYYY-MM-DD"),
    ("ext:", "ext:", "needs a value"),
    ("ext:p/ng", "ext:p/ng", "file extensions"),
    ("***", "***", "only '*'"),
    ("artist:", "artist:", "needs a value"),
]


@pytest.mark.parametrize("query,term,message", BAD)
def test_bad_queries_point_at_the_term(table, query, term, message):
    with pytest.raises(QueryError) as info:
        table.count(query)
    err = info.value
    assert err.term == term
    assert query[err.position:].startswith(term)
    text = str(err)
    assert "\n" not in text and message in text and repr(term) in text


def test_tags_with_colons_are_tags(table):
    assert table.count("re:zero") == 0  # a tag such as re:zero is not a field
    assert table.count(":d") == 0


def test_very_long_queries_are_refused(table):
    with pytest.raises(QueryError, match="at most"):
        table.count("a " * 3000)


SQL_OK = [
    ("score > 20 AND rating = 's'", [2]),
    ("image_width * image_height >= 4000000", [2, 7]),
    ("tag_string_meta LIKE '%comic%' OR id = 3", [2, 3, 7]),
]


@pytest.mark.parametrize("sql,expected", SQL_OK)
def test_sql_where_clauses(table, sql, expected):
    assert list(table.ids(sql=sql)) == expected


def test_sql_and_query_combine(table):
    assert list(table.ids("solo", sql="score >= 10")) == [1, 7]


SQL_REFUSED = [
    ("1=1; DROP TABLE posts", "';' is not allowed"),
    ("id IN (SELECT 1)", "subquery"),
    ("EXISTS (SELECT * FROM read_csv('/etc/passwd'))", "subquery"),
    ("score > 1) UNION SELECT 1 FROM posts WHERE (1=1", "only a WHERE clause"),
    ("score > 1) ORDER BY (1", "only a WHERE clause"),
    ("read_text('/etc/passwd') IS NOT NULL", "read_text"),
    ("length(getenv('HOME')) > 0", "getenv"),
    ("current_setting('memory_limit') <> ''", "current_setting"),
    ("nosuchcolumn > 1", "nosuchcolumn"),
    ("score >", "not a valid WHERE clause"),
    ("score > 1 --", "comments"),
    ("score > 1 /* x */", "comments"),
    ("", "needs a WHERE clause"),
    # no bound on their memory or time: refused before they run
    ("len(range(3000000000)) > 0", "no bound"),
    ("length(repeat('x', 2000000000)) > 0", "no bound"),
    ("sleep_ms(5000) IS NULL", "no bound"),
    ("levenshtein(tag_string_general, repeat('a', 100000)) > 0", "no bound"),
    ("len(generate_series(1, 3000000000)) > 0", "no bound"),
    ("length(lpad('x', 2000000000, 'y')) > 0", "no bound"),
    # nested deeper than the check can walk (400 deep was a RecursionError traceback)
    ("md5(" * 400 + "id" + ")" * 400 + " > 'z'", "more than 64 deep"),
    ("1+" * 900 + "1 > 0", "too deep to check"),
]


@pytest.mark.parametrize("sql,message", SQL_REFUSED)
def test_sql_refused(table, sql, message):
    with pytest.raises(QueryError) as info:
        table.count(sql=sql)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_the_connection_cannot_reach_files_after_open(table, tmp_path):
    cur = table.cursor()
    for statement in (f"SELECT * FROM read_csv('{tmp_path}/x.csv')", f"COPY posts TO '{tmp_path}/out.csv'",
                      "SET enable_external_access=true", "INSTALL httpfs"):
        with pytest.raises(duckdb.Error):
            cur.execute(statement)
    assert not os.path.exists(tmp_path / "out.csv")


def test_within_intersects_with_ids(table):
    from pools import parse_ids
    assert list(table.ids("solo", within=parse_ids("2-5"))) == [3]
    assert list(table.ids("", within=parse_ids("1, 4-100"))) == [1, 4, 5, 7]
    scattered = parse_ids(", ".join(str(i) for i in range(1, 400, 2)))  # 200 ranges: one list parameter
    assert list(table.ids("", within=scattered)) == [1, 3, 5, 7]
    assert list(table.ids("solo", within=scattered)) == [1, 3, 7]


def test_limit_sample_and_order(table):
    assert list(table.ids(limit=3)) == [1, 2, 3]
    assert list(table.ids(limit=2, order_by="score", descending=True)) == [2, 4]  # the top 2, in id order
    assert [r.id for r in table.rows(order_by="score", descending=True, limit=3)] == [4, 2, 1]
    assert [r.id for r in table.rows(order_by="date", limit=2)] == [3, 7]
    seen = set()
    for seed in range(12):
        picked = list(table.ids("", sample=3, seed=seed))
        assert len(picked) == 3 and picked == sorted(picked)
        assert picked == list(table.ids("", sample=3, seed=seed))  # the same seed, the same ids
        assert set(picked) <= {1, 2, 3, 4, 5, 7}
        seen.add(tuple(picked))
    assert len(seen) > 3  # different seeds, different samples
    assert set(table.ids("rating:g,s", sample=10, seed=1)) == {1, 2, 5, 7}  # fewer than asked: all
    with pytest.raises(QueryError, match="cannot order by"):
        table.rows(order_by="nonsense")


def test_rows_and_tags(table):
    (row,) = table.rows("hatsune_miku")
    assert (row.id, row.rating, row.score, row.width, row.height, row.ext) == (1, "g", 10, 1024, 768, "png")
    assert row.tags == "cat_ears solo 1girl hatsune_miku vocaloid artist_a highres"
    assert table.tags_of([3, 99]) == {3: {"general": ["dog", "solo", "hat"], "character": [], "copyright": [],
                                          "artist": ["artist_a"], "meta": []}}
    assert [r.id for r in table.iter_rows("solo", order_by="score")] == [3, 1, 7]


def test_ids_are_lazy_batches(table_dir, tmp_path):
    path = tmp_path / "big.parquet"
    duckdb.connect().execute(f"COPY (SELECT range AS id, 'g' AS rating, range % 100 AS score, "
                             f"'a b' AS tag_string_general FROM range(200000)) TO '{path}'")
    with open_table(str(path)) as t:
        ids = t.ids("score:>=50")
        assert len(ids) == 100000
        it = iter(ids)
        first = [next(it) for _ in range(3)]
        assert first == [50, 51, 52]
        assert sum(1 for _ in it) == 100000 - 3


def test_jsonl_with_nulls(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        {"id": 1, "rating": "g", "score": None, "tag_string_general": "a"},
        {"id": 2, "rating": None, "score": 5, "tag_string_general": None},
        {"id": 2, "rating": None, "score": 5, "tag_string_general": None},  # a duplicate row
        {"id": None, "rating": "g", "score": 1, "tag_string_general": "a"},
    ]) + "\n")
    with open_table(str(path)) as t:
        assert list(t.ids("-a")) == [2]
        assert list(t.ids("-score:>1")) == [1]
        assert list(t.ids("-rating:g")) == [2]
        assert list(t.ids()) == [1, 2]


def test_a_sql_query_past_its_deadline_is_stopped(tmp_path):
    """A clause that is allowed but slow on a big table: interrupted at the deadline, one line."""
    path = tmp_path / "big.parquet"
    duckdb.connect().execute(f"COPY (SELECT i AS id, i % 100 AS score, 'g' AS rating, 'tag' AS tag_string_general "
                             f"FROM range(4000000) t(i)) TO '{path}'")
    with open_table(str(path)) as t:
        t.sql_deadline = 0.01
        with pytest.raises(QueryError, match="ran past 0.01 s"):
            t.count(sql="md5(CAST(id AS VARCHAR)) LIKE '%abc%' AND sha256(CAST(score AS VARCHAR)) <> ''")
        t.sql_deadline = 60
        assert t.count(sql="score = 5") == 40000  # the connection still answers afterwards


def test_ids_that_are_not_whole_finite_numbers_are_skipped_not_a_traceback(tmp_path):
    """A DOUBLE id column with inf and NaN was an OverflowError; one id past 2**62 aborted a download."""
    path = tmp_path / "dbl.parquet"
    duckdb.connect().execute(
        "COPY (SELECT * FROM (VALUES (1.0, 'a'), ('inf'::DOUBLE, 'b'), ('nan'::DOUBLE, 'c'), (4.6e18::DOUBLE, 'd'), "
        f"(5.5, 'e'), (-3.0, 'f'), (1e19::DOUBLE, 'g')) t(id, tag_string_general)) TO '{path}'")
    with open_table(str(path)) as t:
        assert list(t.ids("")) == [1, 4_600_000_000_000_000_000]
        assert len(t.ids("")) == 2
