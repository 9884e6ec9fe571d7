"""The hostile corpus: (mode, sql, expected) run as the demo analyst.

The analyst may use every demo table but ``support_tickets``; ``web_sessions`` is remote
(in the DuckDB warehouse, alias ``warehouse``). ``expected`` is ``ok`` or the refusal code.
"""

from __future__ import annotations

L, R, A = "local", "remote", "auto"
OK = "ok"

CASES: list[tuple[str, str, str]] = [
    # --- plain reads that must work --------------------------------------------------------
    (L, "SELECT * FROM orders", OK),
    (L, "select count(*) from ORDERS", OK),
    (L, 'SELECT "order_id" FROM "orders"', OK),
    (L, "FROM orders SELECT order_id LIMIT 3", OK),
    (L, "FROM orders", OK),
    (L, "SELECT * FROM main.orders", OK),
    (L, "SELECT o.order_id, c.country_code FROM orders o JOIN customers c USING (customer_id)", OK),
    (L, "WITH x AS (SELECT * FROM orders) SELECT count(*) FROM x", OK),
    (L, "WITH x AS (SELECT * FROM orders), y AS (SELECT * FROM x) SELECT * FROM y", OK),
    (L, "WITH orders AS (SELECT * FROM customers) SELECT * FROM orders", OK),
    (L, "WITH orders AS (SELECT * FROM orders) SELECT * FROM orders", OK),
    (L, "SELECT * FROM orders WHERE customer_id IN (SELECT customer_id FROM customers)", OK),
    (L, "SELECT (SELECT count(*) FROM products) AS n", OK),
    (L, "SELECT * FROM orders UNION ALL SELECT * FROM orders", OK),
    (L, "SELECT customer_id FROM orders INTERSECT SELECT customer_id FROM customers", OK),
    (L, "SELECT customer_id FROM customers EXCEPT SELECT customer_id FROM orders", OK),
    (L, "(SELECT 1) UNION (SELECT 2)", OK),
    (L, "VALUES (1, 'a'), (2, 'b')", OK),
    (L, "SELECT * FROM (VALUES (1), (2)) t(x)", OK),
    (L, "SELECT * FROM range(5)", OK),
    (L, "SELECT * FROM generate_series(1, 3)", OK),
    (L, "SELECT unnest([1, 2, 3]) AS x", OK),
    (
        L,
        "SELECT * FROM orders o, LATERAL (SELECT * FROM customers c WHERE c.customer_id = o.customer_id) x",
        OK,
    ),
    (
        L,
        "SELECT order_id, row_number() OVER (PARTITION BY customer_id ORDER BY order_date) FROM orders",
        OK,
    ),
    (L, "SELECT status, count(*) FROM orders GROUP BY ALL ORDER BY ALL", OK),
    (L, "SELECT * FROM orders PIVOT (count(*) FOR status IN ('completed', 'refunded'))", OK),
    (L, "(TABLE orders)", OK),
    (L, "SELECT 1", OK),
    (L, "SELECT 1;", OK),
    (L, "SELECT 1 -- trailing comment", OK),
    (L, "/* leading comment */ SELECT 1", OK),
    (L, "/*! DROP TABLE orders */ SELECT 1", OK),
    (L, "SELECT 'a; DROP TABLE orders' AS s", OK),
    (L, "SELECT '--' AS s FROM orders LIMIT 1", OK),
    (L, "SELECT $$ ; DROP TABLE x $$ AS s", OK),
    (L, "SELECT * FROM web_sessions_daily", OK),
    (L, "SELECT e.* FROM order_items e WHERE e.quantity > 1", OK),
    (L, "SELECT lower(status), date_trunc('month', order_date) FROM orders", OK),
    (L, "SELECT * FROM orders WHERE order_date >= current_date - INTERVAL 30 DAY", OK),
    (L, "SELECT CASE WHEN total_amount > 100 THEN 'big' ELSE 'small' END FROM orders", OK),
    (L, "SELECT list(order_id) FROM orders GROUP BY customer_id", OK),
    (L, "SELECT {'a': 1} AS s", OK),
    (L, "SELECT * FROM orders QUALIFY row_number() OVER (ORDER BY order_id) <= 2", OK),
    (L, "SELECT * FROM orders ORDER BY order_id LIMIT 5 OFFSET 2", OK),
    (L, "SELECT * FROM orders USING SAMPLE 10%", OK),
    (L, "SELECT count(*) FILTER (WHERE status = 'refunded') FROM orders", OK),
    (
        L,
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r",
        OK,
    ),
    (
        L,
        "SELECT * FROM orders ASOF JOIN customers ON orders.customer_id = customers.customer_id AND orders.order_date >= customers.signup_date",
        OK,
    ),
    (L, "select * from orders where status ilike '%COMP%'", OK),
    (L, "SELECT * FROM orders NATURAL JOIN order_items", OK),
    (L, "SELECT regexp_matches(status, '^c') FROM orders", OK),
    # --- parse errors -------------------------------------------------------------------------
    (L, "SELEC 1", "sql_parse_error"),
    (L, "SELECT FROM WHERE", "sql_parse_error"),
    (L, "SELECT (1", "sql_parse_error"),
    (L, "SELECT 'unterminated", "sql_parse_error"),
    (L, 'SELECT 1 AS "a\x00b"', "sql_parse_error"),  # the name was cut at the NUL
    (L, "SELECT 'a\x00b' AS v", "sql_parse_error"),
    (R, 'SELECT device AS "d\x00x" FROM web_sessions LIMIT 1', "sql_parse_error"),
    (L, "", "sql_parse_error"),
    (L, ";", "sql_parse_error"),
    (L, "   ", "sql_parse_error"),
    (L, "SELECT * FROM orders WHERE", "sql_parse_error"),
    (L, "/* unclosed comment SELECT 1", "sql_parse_error"),
    (L, "SELECT * FROM `proj.ds.tbl`", "sql_parse_error"),
    # pipe syntax: sqlglot reads it into CTEs of its own ("__tmp1"), DuckDB not at all; the
    # refusal was of "'__tmp1' is an internal object", a name the caller never wrote
    (L, "FROM orders |> SELECT order_id", "sql_parse_error"),
    (L, "FROM support_tickets |> SELECT 1", "sql_parse_error"),
    (L, "FROM orders |> WHERE status = 'x' |> SELECT read_text('x')", "sql_parse_error"),
    (L, "SELECT * FROM orders |> WHERE order_id = 1", "sql_parse_error"),
    # --- several statements -----------------------------------------------------------------------
    (L, "SELECT 1; SELECT 2", "multiple_statements"),
    (L, "SELECT 1;SELECT 2;", "multiple_statements"),
    (L, "SELECT 1; DROP TABLE orders", "multiple_statements"),
    (L, "SELECT '--'; DROP TABLE orders", "multiple_statements"),
    (L, "SELECT 1 /* x */; /* y */ SELECT 2", "multiple_statements"),
    (L, "SELECT * FROM orders;\nDELETE FROM orders", "multiple_statements"),
    (L, "select 1; attach 'x.db' as y", "multiple_statements"),
    (L, "SELECT 1;\n;\nSELECT 2", "multiple_statements"),
    (L, "SELECT 1; /* y */ ; SELECT 2", "multiple_statements"),
    (L, "SELECT 1; -- the rest\nDROP TABLE orders", "multiple_statements"),
    # a comment after the closing ";" is no second statement
    (L, "SELECT count(*) FROM orders; -- done", OK),
    (L, "SELECT count(*) FROM orders -- done\n;", OK),
    (L, "SELECT count(*) FROM orders; /* done */ ;", OK),
    (L, "SELECT ';' AS semi -- ;", OK),
    # --- writes and state changes -----------------------------------------------------------------
    (L, "DROP TABLE orders", "read_only"),
    (L, "DELETE FROM orders", "read_only"),
    (L, "UPDATE orders SET status = 'x'", "read_only"),
    (L, "INSERT INTO orders VALUES (1)", "read_only"),
    (L, "INSERT INTO orders SELECT * FROM orders", "read_only"),
    (L, "CREATE TABLE t AS SELECT * FROM orders", "read_only"),
    (L, "CREATE VIEW v AS SELECT * FROM support_tickets", "read_only"),
    (L, "CREATE OR REPLACE VIEW orders AS SELECT * FROM support_tickets", "read_only"),
    (L, "CREATE TEMP TABLE t (a INT)", "read_only"),
    (L, "CREATE MACRO m(x) AS x + 1", "read_only"),
    (L, "CREATE SECRET s (TYPE s3, KEY_ID 'x', SECRET 'y')", "read_only"),
    (L, "CREATE SCHEMA s", "read_only"),
    (L, "ALTER TABLE orders ADD COLUMN x INT", "read_only"),
    (L, "ALTER VIEW orders RENAME TO o2", "read_only"),
    (L, "TRUNCATE orders", "read_only"),
    (L, "COPY orders TO '/tmp/out.csv'", "read_only"),
    (L, "COPY (SELECT * FROM orders) TO '/tmp/out.parquet' (FORMAT parquet)", "read_only"),
    (L, "COPY orders FROM '/etc/passwd'", "read_only"),
    (L, "ATTACH '/tmp/evil.duckdb' AS evil", "read_only"),
    (L, "ATTACH 'md:' AS m", "read_only"),
    (L, "DETACH warehouse", "read_only"),
    (L, "INSTALL httpfs", "read_only"),
    (L, "LOAD httpfs", "read_only"),
    (L, "FORCE INSTALL httpfs", "read_only"),
    (L, "SET enable_external_access = true", "read_only"),
    (L, "SET lock_configuration = false", "read_only"),
    (L, "RESET threads", "read_only"),
    (L, "PRAGMA database_list", "read_only"),
    (L, "PRAGMA enable_profiling", "read_only"),
    (L, "CALL pragma_version()", "read_only"),
    (L, "USE warehouse", "read_only"),
    (L, "BEGIN TRANSACTION", "read_only"),
    (L, "COMMIT", "read_only"),
    (L, "ROLLBACK", "read_only"),
    (L, "CHECKPOINT", "read_only"),
    (L, "VACUUM", "read_only"),
    (L, "EXPORT DATABASE '/tmp/dump'", "read_only"),
    (L, "IMPORT DATABASE '/tmp/dump'", "read_only"),
    (L, "SELECT * INTO new_table FROM orders", "read_only"),
    (L, "WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d", "read_only"),
    (L, "WITH i AS (INSERT INTO orders VALUES (1) RETURNING *) SELECT * FROM i", "read_only"),
    (
        L,
        "WITH u AS (UPDATE orders SET status = 'x' RETURNING *) SELECT count(*) FROM u",
        "read_only",
    ),
    (L, "SELECT * FROM (DELETE FROM orders RETURNING *)", "sql_parse_error"),
    (L, "DROP VIEW IF EXISTS orders", "read_only"),
    (L, "CREATE TYPE mood AS ENUM ('a')", "read_only"),
    (L, "CREATE SEQUENCE s", "read_only"),
    (L, "CREATE INDEX i ON orders (order_id)", "read_only"),
    (
        L,
        "MERGE INTO orders USING customers ON false WHEN NOT MATCHED THEN INSERT VALUES (1)",
        "read_only",
    ),
    (L, "drop table orders", "read_only"),
    (L, "dRoP TaBlE orders", "read_only"),
    # --- not queries ----------------------------------------------------------------------------------
    (L, "DESCRIBE orders", "statement_not_allowed"),
    (L, "DESCRIBE SELECT * FROM orders", "statement_not_allowed"),
    (L, "SHOW TABLES", "statement_not_allowed"),
    (L, "SHOW ALL TABLES", "statement_not_allowed"),
    # as a subquery: sqlglot reads a table named "show" there (it was parser_disagreement)
    (L, "SELECT * FROM (SHOW TABLES)", "statement_not_allowed"),
    (L, "SELECT count(*) FROM (SHOW DATABASES)", "statement_not_allowed"),
    (
        L,
        "SELECT * FROM orders WHERE status IN (SELECT name FROM (SHOW orders))",
        "statement_not_allowed",
    ),
    (L, "SUMMARIZE orders", "statement_not_allowed"),
    (L, "SUMMARIZE SELECT * FROM support_tickets", "statement_not_allowed"),
    (L, "EXPLAIN SELECT * FROM orders", "statement_not_allowed"),
    (L, "EXPLAIN ANALYZE SELECT * FROM orders", "statement_not_allowed"),
    (L, "PIVOT orders ON status USING count(*)", "statement_not_allowed"),
    # --- files and functions that reach outside ----------------------------------------------------
    (L, "SELECT * FROM 'orders.parquet'", "function_not_allowed"),
    (L, "SELECT * FROM '/etc/passwd'", "function_not_allowed"),
    (L, 'SELECT * FROM "/etc/passwd"', "function_not_allowed"),
    (L, "SELECT * FROM 'data/*.csv'", "function_not_allowed"),
    (L, "SELECT * FROM '~/.ssh/id_rsa'", "function_not_allowed"),
    (L, "SELECT * FROM 'https://example.com/x.parquet'", "function_not_allowed"),
    (L, "SELECT * FROM read_parquet('/tmp/x.parquet')", "function_not_allowed"),
    (L, "SELECT * FROM read_csv('/etc/passwd')", "function_not_allowed"),
    (L, "SELECT * FROM read_csv_auto('/etc/passwd')", "function_not_allowed"),
    (L, "SELECT * FROM read_json('/etc/hosts')", "function_not_allowed"),
    (L, "SELECT * FROM read_json_auto('x.json')", "function_not_allowed"),
    (L, "SELECT * FROM read_text('/etc/hostname')", "function_not_allowed"),
    (L, "SELECT * FROM read_blob('/etc/hostname')", "function_not_allowed"),
    (L, "SELECT * FROM parquet_scan('x.parquet')", "function_not_allowed"),
    (L, "SELECT * FROM parquet_metadata('x.parquet')", "function_not_allowed"),
    (L, "SELECT * FROM parquet_schema('x.parquet')", "function_not_allowed"),
    (L, "SELECT * FROM sniff_csv('x.csv')", "function_not_allowed"),
    (L, "SELECT * FROM glob('/etc/*')", "function_not_allowed"),
    (L, "SELECT * FROM query('SELECT * FROM support_tickets')", "function_not_allowed"),
    (L, "SELECT * FROM query_table('support_tickets')", "function_not_allowed"),
    (L, "SELECT * FROM duckdb_tables()", "function_not_allowed"),
    (L, "SELECT * FROM duckdb_settings()", "function_not_allowed"),
    (L, "SELECT * FROM duckdb_secrets()", "function_not_allowed"),
    (L, "SELECT * FROM pragma_table_info('orders')", "function_not_allowed"),
    (L, "SELECT * FROM pragma_storage_info('orders')", "function_not_allowed"),
    (L, "SELECT * FROM sqlite_scan('x.db', 't')", "function_not_allowed"),
    (L, "SELECT * FROM postgres_scan('host=x', 'public', 't')", "function_not_allowed"),
    (L, "SELECT * FROM delta_scan('s3://b/t')", "function_not_allowed"),
    (L, "SELECT * FROM iceberg_scan('s3://b/t')", "function_not_allowed"),
    (L, "SELECT * FROM arrow_scan(1)", "function_not_allowed"),
    (L, "SELECT getenv('HOME')", "function_not_allowed"),
    (L, "SELECT current_setting('allowed_paths')", "function_not_allowed"),
    (L, "SELECT json_execute_serialized_sql('{}')", "function_not_allowed"),
    (L, "SELECT json_serialize_sql('SELECT 1')", "function_not_allowed"),
    (L, "SELECT (SELECT content FROM read_text('/etc/hostname'))", "function_not_allowed"),
    (
        L,
        "SELECT * FROM orders WHERE status IN (SELECT content FROM read_text('/etc/hosts'))",
        "function_not_allowed",
    ),
    (L, "SELECT * FROM orders WHERE EXISTS (SELECT 1 FROM glob('/etc/*'))", "function_not_allowed"),
    (
        L,
        "WITH f AS (SELECT * FROM read_csv('/etc/passwd')) SELECT * FROM f",
        "function_not_allowed",
    ),
    (L, "SELECT * FROM orders, read_parquet('/tmp/x.parquet')", "function_not_allowed"),
    (L, "SELECT * FROM orders o, LATERAL read_csv('/etc/passwd') f", "function_not_allowed"),
    (
        L,
        "SELECT * FROM orders UNION ALL SELECT * FROM read_parquet('/tmp/x.parquet')",
        "function_not_allowed",
    ),
    (L, "SELECT READ_CSV('/etc/passwd')", "function_not_allowed"),
    (L, "SELECT * FROM Read_Parquet('x')", "function_not_allowed"),
    (L, "SELECT * FROM test_all_types()", "function_not_allowed"),
    (L, "SELECT * FROM which_secret('s3://x', 's3')", "function_not_allowed"),
    (L, "SELECT checkpoint()", "function_not_allowed"),
    (L, "SELECT set_variable('x', 1)", "function_not_allowed"),
    (L, "SELECT getvariable('x')", "function_not_allowed"),
    (L, "SELECT * FROM bigquery_query('p', 'SELECT 1')", "function_not_allowed"),
    (L, "SELECT * FROM summary((SELECT * FROM orders))", "function_not_allowed"),
    (L, "SELECT * FROM http_get('https://example.com')", "function_not_allowed"),
    (L, "SELECT * FROM load_aws_credentials()", "function_not_allowed"),
    # --- internal objects -----------------------------------------------------------------------------
    (L, "SELECT * FROM _meta", "internal_object_not_allowed"),
    (L, "SELECT * FROM _remote_attach", "internal_object_not_allowed"),
    (L, "SELECT * FROM _files", "internal_object_not_allowed"),
    (L, "SELECT * FROM _catalog", "internal_object_not_allowed"),
    (L, "SELECT * FROM _conflicts", "internal_object_not_allowed"),
    (L, 'SELECT * FROM "_meta"', "internal_object_not_allowed"),
    (L, "SELECT * FROM information_schema.tables", "internal_object_not_allowed"),
    (L, "SELECT * FROM INFORMATION_SCHEMA.COLUMNS", "internal_object_not_allowed"),
    (L, "SELECT * FROM pg_catalog.pg_tables", "internal_object_not_allowed"),
    (L, "SELECT * FROM duckdb_tables", "internal_object_not_allowed"),
    (L, "SELECT * FROM duckdb_views", "internal_object_not_allowed"),
    (L, "SELECT * FROM system.main.orders", "internal_object_not_allowed"),
    (L, "SELECT * FROM temp.main.t", "internal_object_not_allowed"),
    (L, "SELECT * FROM sqlite_master", "internal_object_not_allowed"),
    (L, "SELECT * FROM pragma_version", "internal_object_not_allowed"),
    (L, "WITH x AS (SELECT * FROM _meta) SELECT * FROM x", "internal_object_not_allowed"),
    # --- unknown names ------------------------------------------------------------------------------------
    (L, "SELECT * FROM ordres", "table_not_found"),
    (L, "SELECT * FROM \u043erders", "table_not_found"),  # Cyrillic o
    # DuckDB reads "orders" here, sqlglot "orders\u200b": the parsers disagree, so refuse
    (L, "SELECT * FROM orders\u200b", "parser_disagreement"),
    (L, "SELECT * FROM users", "table_not_found"),
    (L, "SELECT * FROM personal_access_tokens", "table_not_found"),
    (L, "SELECT * FROM resource_grants", "table_not_found"),
    (L, "SELECT * FROM audit_log", "table_not_found"),
    (L, "SELECT * FROM nope", "table_not_found"),
    (L, "SELECT * FROM (WITH x AS (SELECT 1) SELECT * FROM x) t, x", "table_not_found"),
    (L, "WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a", "table_not_found"),
    # --- not granted (support_tickets) -------------------------------------------------------------------
    (L, "SELECT * FROM support_tickets", "table_not_found"),
    (L, "SELECT * FROM SUPPORT_TICKETS", "table_not_found"),
    (L, 'SELECT * FROM "support_tickets"', "table_not_found"),
    (L, "SELECT * FROM main.support_tickets", "table_not_found"),
    (L, "SELECT * FROM support_tickets AS orders", "table_not_found"),
    (L, "WITH orders AS (SELECT * FROM support_tickets) SELECT * FROM orders", "table_not_found"),
    (
        L,
        "WITH x AS (SELECT * FROM orders), y AS (SELECT * FROM support_tickets) SELECT * FROM x",
        "table_not_found",
    ),
    (
        L,
        "SELECT * FROM orders WHERE customer_id IN (SELECT customer_id FROM support_tickets)",
        "table_not_found",
    ),
    (L, "SELECT (SELECT count(*) FROM support_tickets) AS n", "table_not_found"),
    (L, "SELECT * FROM orders UNION ALL SELECT * FROM support_tickets", "table_not_found"),
    (
        L,
        "SELECT * FROM orders o, LATERAL (SELECT * FROM support_tickets t WHERE t.customer_id = o.customer_id) x",
        "table_not_found",
    ),
    (L, "SELECT * FROM orders JOIN support_tickets USING (customer_id)", "table_not_found"),
    (L, "SELECT * FROM (SELECT * FROM (SELECT * FROM support_tickets))", "table_not_found"),
    (L, "(TABLE support_tickets)", "table_not_found"),
    (L, "FROM support_tickets", "table_not_found"),
    (L, "SELECT * FROM orders WHERE EXISTS (SELECT 1 FROM support_tickets)", "table_not_found"),
    (
        L,
        "SELECT * FROM support_tickets PIVOT (count(*) FOR priority IN ('low'))",
        "table_not_found",
    ),
    (L, "WITH RECURSIVE r AS (SELECT * FROM support_tickets) SELECT * FROM r", "table_not_found"),
    # only a UNION recurses in DuckDB: over an EXCEPT or INTERSECT the name inside is the table
    (
        L,
        "WITH RECURSIVE support_tickets AS (SELECT customer_id FROM support_tickets "
        "EXCEPT SELECT 0) SELECT * FROM support_tickets",
        "table_not_found",
    ),
    # --- remote tables in a local query -------------------------------------------------------------
    (L, "SELECT * FROM web_sessions", "remote_table_needs_snapshot"),
    (L, "SELECT count(*) FROM web_sessions", "remote_table_needs_snapshot"),
    (L, "WITH w AS (SELECT * FROM web_sessions) SELECT * FROM w", "remote_table_needs_snapshot"),
    (
        L,
        "SELECT * FROM orders WHERE customer_id IN (SELECT customer_id FROM web_sessions)",
        "remote_table_needs_snapshot",
    ),
    (L, "SELECT * FROM warehouse.main.web_sessions", "remote_table_needs_snapshot"),
    (L, 'SELECT * FROM "warehouse"."main"."web_sessions"', "remote_table_needs_snapshot"),
    (L, "SELECT * FROM other.main.web_sessions", "path_not_registered"),
    (L, "SELECT * FROM warehouse.main.secret_table", "path_not_registered"),
    (L, "SELECT * FROM some_schema.orders", "path_not_registered"),
    # --- remote queries ---------------------------------------------------------------------------------
    (R, "SELECT count(*) FROM web_sessions", OK),
    (
        R,
        "SELECT device, count(*) FROM web_sessions WHERE event_date >= DATE '2026-10-01' GROUP BY 1",
        OK,
    ),
    (R, "SELECT * FROM warehouse.main.web_sessions LIMIT 5", OK),
    (R, "SELECT * FROM main.web_sessions LIMIT 5", OK),
    (R, "SELECT w.session_id FROM web_sessions w WHERE w.converted LIMIT 5", OK),
    (R, "WITH w AS (SELECT * FROM web_sessions) SELECT count(*) FROM w", OK),
    (R, "SELECT * FROM orders", "local_table_in_remote_query"),
    (
        R,
        "SELECT * FROM web_sessions JOIN orders USING (customer_id)",
        "local_table_in_remote_query",
    ),
    (R, "SELECT * FROM warehouse.main.nope", "path_not_registered"),
    (R, "SELECT * FROM other.main.web_sessions", "path_not_registered"),
    (R, "SELECT * FROM web_sessions, read_parquet('/tmp/x.parquet')", "function_not_allowed"),
    (R, "DROP TABLE web_sessions", "read_only"),
    (R, "SELECT * FROM warehouse._meta", "internal_object_not_allowed"),
    (R, "SELECT * FROM support_tickets", "table_not_found"),
    (
        R,
        "WITH RECURSIVE secret_table AS (SELECT session_id FROM secret_table INTERSECT "
        "SELECT session_id FROM web_sessions) SELECT * FROM secret_table, web_sessions",
        "table_not_found",
    ),
    (
        R,
        "WITH RECURSIVE web_sessions AS (SELECT * FROM web_sessions EXCEPT SELECT * FROM "
        "web_sessions WHERE false) SELECT count(*) FROM web_sessions",
        OK,
    ),
    # --- auto mode ---------------------------------------------------------------------------------------
    (A, "SELECT count(*) FROM orders", OK),
    (A, "SELECT count(*) FROM web_sessions", OK),
    (A, "SELECT * FROM orders JOIN web_sessions USING (customer_id)", "mixed_engines"),
    # --- sizes -------------------------------------------------------------------------------------------
    (L, "SELECT " + "(" * 300 + "1" + ")" * 300, "sql_too_large"),
    (L, "SELECT 1 " + "-- pad\n" * 20_000, "sql_too_large"),
    (L, "SELECT " + " + ".join(["1"] * 200), OK),
    (L, "SELECT " + " + ".join(["1"] * 500), "sql_too_large"),
    (L, "SELECT " + " + ".join(["1"] * 3000), "sql_too_large"),  # over DuckDB's depth limit
    (L, "SELECT * FROM orders WHERE " + " OR ".join(f"order_id = {i}" for i in range(500)), OK),
    # postfix chains: quadratic to parse (sqlglot) and bind (DuckDB), past the timeout
    (L, "SELECT status.lower().upper().trim(), o.status[1:2][1] FROM orders o", OK),
    (L, "SELECT 1 FROM orders WHERE status" + ".lower()" * 101 + " = 'x'", "sql_too_large"),
    (L, "SELECT [1]" + "[1]" * 101, "sql_too_large"),
    (L, "SELECT x" + "[1]/**/.f" * 60 + " FROM orders", "sql_too_large"),
    (L, "SELECT a" + ".b" * 3000 + " FROM orders", "sql_too_large"),
    # --- class 2, the sandbox's own catalog: functions off the allow-list ------------------------
    # Built-in macros (pg_catalog's above all) that read the catalog, functions with side
    # effects or system facts, reached in every place a function can stand; and functions
    # an analyst needs, which stay allowed. (agnes_mcp/rails/functions.csv, docs/query.md)
    (L, "SELECT pg_get_viewdef(i) FROM range(100) t(i)", "function_not_allowed"),
    (L, "SELECT pg_catalog.pg_get_viewdef(1)", "function_not_allowed"),
    (L, "SELECT PG_GET_VIEWDEF(1)", "function_not_allowed"),
    (L, 'SELECT "pg_get_viewdef"(1)', "function_not_allowed"),
    (L, "SELECT (1).pg_get_viewdef()", "function_not_allowed"),
    (L, "SELECT order_id FROM orders WHERE pg_get_viewdef(1) IS NOT NULL", "function_not_allowed"),
    (L, "WITH v AS (SELECT format_type(23, NULL) AS t) SELECT * FROM v", "function_not_allowed"),
    (L, "SELECT length(pg_get_constraintdef(1)) + 1", "function_not_allowed"),
    (L, "SELECT get_block_size('memory')", "function_not_allowed"),
    (L, "SELECT list_transform([1, 2], lambda x: pg_get_viewdef(x))", "function_not_allowed"),
    (L, "SELECT [x FOR x IN [1] IF pg_get_viewdef(x) IS NULL]", "function_not_allowed"),
    (L, "SELECT COALESCE(NULL, format_type(1043, NULL))", "function_not_allowed"),
    (
        L,
        "SELECT * FROM orders WHERE status = (SELECT format_type(1043, NULL))",
        "function_not_allowed",
    ),
    (
        L,
        "SELECT * FROM orders o JOIN customers c ON pg_get_viewdef(1) IS NULL",
        "function_not_allowed",
    ),
    (L, "SELECT * REPLACE (pg_get_viewdef(1) AS status) FROM orders", "function_not_allowed"),
    (
        L,
        "SELECT * FROM orders QUALIFY row_number() OVER (PARTITION BY pg_get_viewdef(1)) = 1",
        "function_not_allowed",
    ),
    (
        L,
        "SELECT sum(total_amount) OVER w FROM orders WINDOW w AS (ORDER BY pg_get_viewdef(1))",
        "function_not_allowed",
    ),
    (
        L,
        "SELECT * FROM orders PIVOT (max(pg_get_viewdef(1)) FOR status IN ('completed'))",
        "function_not_allowed",
    ),
    (L, "SELECT * FROM range(length(pg_get_viewdef(1)))", "function_not_allowed"),
    (L, "SELECT write_log('x')", "function_not_allowed"),
    (L, "SELECT sleep_ms(10000)", "function_not_allowed"),
    (L, "SELECT pg_sleep(10)", "function_not_allowed"),
    (L, "SELECT * FROM orders ORDER BY sleep_ms(1)", "function_not_allowed"),
    (L, "SELECT CASE WHEN true THEN write_log('x') END", "function_not_allowed"),
    (L, "SELECT version()", "function_not_allowed"),
    (L, "SELECT system.main.version()", "function_not_allowed"),
    (L, "SELECT current_database(), current_schemas(true)", "function_not_allowed"),
    (L, "SELECT current_user", "function_not_allowed"),
    # names both parsers read as columns, which DuckDB calls when no column has them
    (L, "SELECT user", "function_not_allowed"),
    (L, "SELECT current_role, 1 AS x", "function_not_allowed"),
    (L, "SELECT * FROM orders WHERE status <> current_schema", "function_not_allowed"),
    (R, "SELECT user FROM web_sessions LIMIT 1", "function_not_allowed"),
    (L, "SELECT user FROM (SELECT 1 AS user)", OK),  # a column of the name is the column
    (L, "SELECT current_timestamp > localtimestamp - INTERVAL 1 DAY, current_date", OK),
    (L, "SELECT txid_current(), current_query()", "function_not_allowed"),
    (L, "SELECT nextval('s')", "function_not_allowed"),
    (L, "SELECT setseed(0.5)", "function_not_allowed"),
    (L, "SELECT stats(order_id) FROM orders", "function_not_allowed"),
    (L, "SELECT json_serialize_plan('SELECT * FROM support_tickets')", "function_not_allowed"),
    (L, "SELECT list_aggr([1, 2], 'su' || 'm')", "function_not_allowed"),
    (L, "SELECT sum(total_amount) EXPORT_STATE FROM orders", "function_not_allowed"),
    (L, "SELECT cout(*) FROM orders", "function_not_allowed"),  # unknown: named, with a suggestion
    (R, "SELECT pg_get_viewdef(1) FROM web_sessions LIMIT 1", "function_not_allowed"),
    (
        R,
        "SELECT count(*) FROM web_sessions WHERE format_type(1043, NULL) IS NOT NULL",
        "function_not_allowed",
    ),
    (R, "SELECT device, sleep_ms(1) FROM web_sessions LIMIT 1", "function_not_allowed"),
    (
        R,
        "WITH d AS (SELECT pg_catalog.pg_get_viewdef(1) AS v) SELECT v FROM d, web_sessions LIMIT 1",
        "function_not_allowed",
    ),
    (R, "SELECT current_database() FROM web_sessions LIMIT 1", "function_not_allowed"),
    (A, "SELECT pg_get_viewdef(1) FROM web_sessions LIMIT 1", "function_not_allowed"),
    (
        L,
        "SELECT date_trunc('month', order_date) AS m, count(*), sum(total_amount), "
        "count(DISTINCT customer_id), coalesce(max(status), '-') FROM orders GROUP BY 1",
        OK,
    ),
    (L, "SELECT list_aggr(list(total_amount), 'sum') FROM orders", OK),
    # reductions that keep one copy of the accumulator: a maximum, a sum, a join
    (L, "SELECT list_reduce([3, 1, 2], lambda a, b: CASE WHEN a > b THEN a ELSE b END)", OK),
    (L, "SELECT list_reduce(['a', 'b', 'c'], lambda a, b: a || ',' || b)", OK),
    (L, "SELECT list_reduce([1, 2, 3], lambda a, b: a + a * b)", OK),
    (L, "SELECT list_reduce(['a', 'b'], lambda a, b: printf('%s,%s', a, b))", OK),
    # ...and ones that copy it twice without writing it twice (each doubles it an element)
    (
        L,
        "SELECT list_reduce(['a', 'b', 'c'], lambda a, b: "
        "array_to_string(list_transform([1, 2], lambda y: a), ''))",
        "value_too_large",
    ),
    (
        L,
        "SELECT list_reduce(['a', 'b', 'c'], lambda a, b: concat_ws(a, b, b, b))",
        "value_too_large",
    ),
    (L, "SELECT list_reduce(['a', 'b', 'c'], lambda a, b: format('{0}{0}', a))", "value_too_large"),
    (L, "SELECT list_reduce(['a', 'b'], lambda a, b: printf('%1$s%1$s', a))", "value_too_large"),
    (L, "SELECT list_reduce(['a', 'b', 'c'], lambda a, b: hex(a))", "value_too_large"),
    (L, "SELECT list_reduce(['a', 'b', 'c'], lambda a, b: to_json(a)::VARCHAR)", "value_too_large"),
    (L, "SELECT typeof(order_id), round(avg(total_amount), 2) FROM orders GROUP BY 1", OK),
    (L, "SELECT strftime(order_date, '%Y-%m'), regexp_replace(status, 'ed$', '') FROM orders", OK),
    (L, "SELECT list_transform([1, 2], lambda x: x * 2), [x * 2 FOR x IN [1, 2]]", OK),
    # lambdas that add a large value to every element of a list: counted as they run
    (L, "SELECT [x || status FOR x IN ['a', 'b'] IF x > 'a'] FROM orders", OK),
    (R, "SELECT list_transform([1, 2], lambda x: device || x) FROM web_sessions LIMIT 2", OK),
    (
        R,
        "SELECT len(list_transform(range(5000), lambda x: device || repeat('x', 600))) "
        "FROM web_sessions LIMIT 2",
        "value_too_large",
    ),
    (L, "SELECT list_transform(range(3), lambda x, i: repeat(status, i)) FROM orders", OK),
    (L, "SELECT len(list_transform(range(2000), lambda x: repeat('x', 60000)))", "value_too_large"),
    (
        L,
        "SELECT len([s FOR x IN range(2000)]) FROM (SELECT repeat(status, 5000) AS s FROM orders "
        "LIMIT 1)",
        "value_too_large",
    ),
    (L, "SELECT len(range(2000).apply(lambda x: ['y' || repeat('z', 1000)]))", "value_too_large"),
    # copies of the element itself, as many as the SQL spells (a list 40 times its range)
    (
        L,
        "SELECT len(list_transform(range(8000), lambda x: "
        + " || ".join(["x::VARCHAR"] * 40)
        + "))",
        "value_too_large",
    ),
    (
        L,
        "SELECT len(list_transform(range(8000), lambda x: hex(hex(hex(x::VARCHAR)))))",
        "value_too_large",
    ),
    (
        L,
        "SELECT len(list_reduce(range(1000), lambda a, b: a || s, '')) "
        "FROM (SELECT repeat('x', 60000) AS s)",
        "value_too_large",
    ),
    (L, "SELECT quantile_cont(total_amount, 0.5), median(total_amount) FROM orders", OK),
    (
        L,
        "SELECT status.upper(), nullif(status, 'x'), if(total_amount > 100, 'big', 'small') FROM orders",
        OK,
    ),
    (
        L,
        "SELECT lag(total_amount) OVER (ORDER BY order_date), ntile(4) OVER (ORDER BY total_amount) "
        "FROM orders",
        OK,
    ),
    (
        L,
        "SELECT * FROM orders WHERE order_date >= today() - INTERVAL 3650 DAY AND status LIKE 'c%'",
        OK,
    ),
    (R, "SELECT date_trunc('day', event_date) AS d, count(*) FROM web_sessions GROUP BY 1", OK),
    (R, "SELECT device, approx_count_distinct(session_id) FROM web_sessions GROUP BY device", OK),
]

# --- the scan-cap family: queries whose reads an estimate could miss --------------------
# Run against the DuckDB warehouse's web_sessions (alias w where used). For each, the
# estimate must be at least what the engine measures it read (tests/test_scan_cap.py).
SCAN_CAP_CASES: list[str] = [
    "SELECT max(w) FROM web_sessions w",
    "SELECT to_json(w) FROM web_sessions w LIMIT 5",
    "SELECT count(DISTINCT w) FROM web_sessions w",
    "SELECT web_sessions FROM web_sessions LIMIT 3",
    "SELECT max(COLUMNS('.*')) FROM web_sessions",
    "SELECT min(COLUMNS(c -> c LIKE '%e%')) FROM web_sessions",
    "SELECT max(#2), max(#3) FROM web_sessions",
    "SELECT count(*) FROM web_sessions NATURAL JOIN web_sessions x",
    "SELECT count(*) FROM web_sessions a JOIN web_sessions b USING (session_id)",
    "SELECT count(*), max(device) FROM web_sessions WHERE amount < 'nan'::DOUBLE",
    "SELECT max(device) FROM web_sessions WHERE event_date > 'infinity'::DATE OR true",
    "SELECT max(device) FROM web_sessions WHERE event_date >= DATE '2026-10-01' "
    "UNION ALL SELECT max(device) FROM web_sessions",
    "SELECT max(device) FROM web_sessions WHERE EXISTS (SELECT 1) OR true",
    "WITH unused AS (SELECT * FROM web_sessions WHERE event_date > DATE '2099-01-01') "
    "SELECT max(device) FROM web_sessions",
    "SELECT max(device) FROM web_sessions WHERE session_id NOT IN "
    "(SELECT session_id FROM web_sessions WHERE event_date > DATE '2099-01-01')",
    "SELECT max(a.device) FROM web_sessions a LEFT JOIN web_sessions b "
    "ON a.session_id = b.session_id WHERE b.event_date > DATE '2099-01-01'",
    "SELECT max(device) FROM (SELECT * FROM web_sessions) s WHERE event_date > DATE '2099-01-01'",
    "SELECT max(device) FROM web_sessions WHERE CAST(event_date AS VARCHAR) > '2099'",
    "SELECT max(device) FROM web_sessions WHERE event_date + 1 > DATE '2099-01-01'",
    "SELECT max(device) FROM web_sessions WHERE event_date::TIMESTAMP > TIMESTAMP '2099-01-01'",
    "SELECT max(device) FROM web_sessions WHERE strftime(event_date, '%Y') > '2099'",
    "SELECT max(device) FROM web_sessions WHERE event_date > DATE '2099-01-01' OR device = 'x'",
    "SELECT max(w.device || CAST(w AS VARCHAR)) FROM web_sessions w",
    "SELECT max(x.device) FROM web_sessions x, web_sessions y WHERE y.event_date > DATE '2099-01-01' "
    "AND x.session_id = y.session_id",
    # a CTE named like the table: the read inside it is still a read of the table
    "WITH web_sessions AS (SELECT * FROM web_sessions) "
    "SELECT max(amount), string_agg(landing_page, '') FROM web_sessions",
    "WITH a AS (SELECT * FROM web_sessions), web_sessions AS (SELECT 1 AS x) "
    "SELECT max(device) FROM a",
    # a recursive CTE with no UNION reads the table of its own name, not itself
    "WITH RECURSIVE web_sessions AS (SELECT * FROM web_sessions) "
    "SELECT max(amount), string_agg(landing_page, '') FROM web_sessions",
    # ...nor does one over an EXCEPT or INTERSECT: every read of the name is the table
    "WITH RECURSIVE web_sessions AS (SELECT * FROM web_sessions INTERSECT SELECT * FROM "
    "web_sessions) SELECT max(amount), string_agg(landing_page, '') FROM web_sessions",
    # DuckDB's method-call syntax: sqlglot reads no Column in it (priced at 0 bytes once)
    "SELECT count(*) FROM web_sessions WHERE device.lower().upper() = 'MOBILE'",
    "SELECT count(*) FROM web_sessions t WHERE t.landing_page.upper() = '/'",
    # the table under new column names: max(f) names no column of web_sessions
    "SELECT length(string_agg(e, '')) FROM web_sessions w(a, b, c, d, e)",
    "SELECT max(s.a), length(string_agg(s.e, '')) FROM web_sessions AS s(a, b, c, d, e)",
    # PIVOT without GROUP BY groups by every column it does not name
    "SELECT count(*) FROM web_sessions PIVOT (count(*) FOR device IN ('web'))",
    "SELECT count(*) FROM web_sessions PIVOT (max(amount) FOR device IN ('web', 'ios'))",
    "SELECT count(*) FROM web_sessions UNPIVOT (v FOR k IN (device, landing_page))",
]

# --- odd values: every value DuckDB can return renders (never a crash or a 500) -------------
# (sql, text the first cell must render as, or None to only require an answer)
ODD_VALUE_CASES: list[tuple[str, str | None]] = [
    ("SELECT DATE 'infinity' AS v", "infinity"),
    ("SELECT DATE '-infinity' AS v", "-infinity"),
    ("SELECT TIMESTAMP 'infinity' AS v", "infinity"),
    ("SELECT TIMESTAMP '-infinity' AS v", "-infinity"),
    ("SELECT 'infinity'::TIMESTAMPTZ AS v", "infinity"),
    ("SELECT '-infinity'::TIMESTAMP_MS AS v", "-infinity"),
    ("SELECT 'infinity'::TIMESTAMP_S AS v", "infinity"),
    ("SELECT 'infinity'::TIMESTAMP_NS AS v", "infinity"),
    ("SELECT DATE '10000-01-01' AS v", "10000-01-01"),
    ("SELECT DATE '0001-01-01' - 1 AS v", "0001-12-31 (BC)"),
    ("SELECT TIMESTAMP '294247-01-01 10:00:00' AS v", "294247-01-01 10:00:00"),
    ("SELECT DATE '5877642-06-25' AS v", "5877642-06-25"),
    ("SELECT TIME '24:00:00' AS v", "24:00:00"),
    ("SELECT [DATE 'infinity', NULL, DATE '2026-01-05'] AS v", None),
    ("SELECT {'a': TIMESTAMP 'infinity', 'b': [DATE '10000-01-01']} AS v", None),
    ("SELECT MAP {DATE 'infinity': 1} AS v", None),
    ("SELECT [[TIMESTAMP '-infinity']] AS v", None),
    ("SELECT 'nan'::DOUBLE AS v", "nan"),
    ("SELECT 'inf'::DOUBLE AS v", "inf"),
    ("SELECT -'inf'::FLOAT AS v", "-inf"),
    ("SELECT INTERVAL 1000000 YEAR AS v", "1000000 years"),
    ("SELECT INTERVAL '3 days 11:22:46.472209' AS v", "3 days 11:22:46.472209"),
    ("SELECT -INTERVAL '13 months' AS v", "-1 year -1 month"),
    ("SELECT [INTERVAL '1 day', NULL] AS v", None),
    ("SELECT HUGEINT '170141183460469231731687303715884105727' AS v", None),
    ("SELECT 'ab'::BLOB AS v", "ab"),
    ("SELECT from_hex('005c2761') AS v", "\\x00\\x5C\\x27a"),
    ("SELECT {'b': from_hex('ff')} AS v", None),
    ("SELECT order_date, DATE 'infinity' AS open_end FROM orders LIMIT 3", None),
    (
        "SELECT UHUGEINT '340282366920938463463374607431768211455' AS v",
        "340282366920938463463374607431768211455",
    ),
    ("SELECT TIMETZ '12:00:00+05' AS v", "12:00:00+05"),
    ("SELECT '101'::BIT AS v", "101"),
    ("SELECT [UHUGEINT '1', NULL] AS v", "[1, NULL]"),
]

# --- resource exhaustion: queries that would take the server's memory or time --------------
# (sql, expected) run as the demo analyst, through the whole service and through the
# sandbox alone (tests/test_sandbox_memory.py), on a sandbox of 256 MB and a 32 MiB answer.
# expected: the refusal code of the limit that stops it, or "cut:rows" / "cut:bytes" for an
# answer the row or byte cap cuts while it is read. Never a crash, never the memory.
CUT_ROWS, CUT_BYTES = "cut:rows", "cut:bytes"
RESOURCE_CASES: list[tuple[str, str]] = [
    # values one function builds (DuckDB does not count them against memory_limit)
    ("SELECT repeat('x', 1000000000)", "value_too_large"),
    ("SELECT sum(length(repeat('x', 1000000000 + i))) FROM range(3) t(i)", "value_too_large"),
    ("SELECT repeat('x', 1000000) FROM range(1001)", "value_too_large"),
    ("SELECT max(length(repeat(status, 1000000))) FROM orders", "value_too_large"),
    ("SELECT repeat([order_id], 100000000) FROM orders", "value_too_large"),
    ("SELECT lpad('a', 2000000000, 'b')", "value_too_large"),
    ("SELECT rpad(status, 100000000, '*') FROM orders", "value_too_large"),
    ("SELECT len(range(1000000000))", "value_too_large"),
    ("SELECT unnest(generate_series(1, 100000000))", "value_too_large"),
    (
        "SELECT len(generate_series(TIMESTAMP '1970-01-01', TIMESTAMP '2030-01-01', "
        "INTERVAL 1 SECOND))",
        "value_too_large",
    ),
    ("SELECT list_resize([1], 100000000)", "value_too_large"),
    # a list of few elements repeated or resized a few thousand times is small only while
    # its elements are (each was counted 16 bytes): 240 MB from one 60 KB string
    ("SELECT len(repeat([repeat('x', 60000)], 4000))", "value_too_large"),
    ("SELECT len(list_resize([''], 4000, repeat('x', 60000)))", "value_too_large"),
    ("SELECT len(array_resize([['']], 4000, [repeat('x', 60000)]))", "value_too_large"),
    ("SELECT printf('%2000000000d', 1)", "value_too_large"),
    ("SELECT format('{:>2000000000}', 'x')", "value_too_large"),
    ("SELECT regexp_replace(repeat('ab', 30000), '', 'xyz', 'g')", "value_too_large"),
    ("SELECT replace(repeat('x', 50000), 'x', repeat('y', 50000))", "value_too_large"),
    ("SELECT string_agg(repeat('x', 100000), ',') FROM orders", "value_too_large"),
    # array_to_string's own aggregate, past its wrapper: a 2 MB value a row (1001 rows: 2 GB)
    (
        "SELECT list_aggr(range(8000), 'string_agg', '" + "x" * 250 + "') FROM range(1001)",
        "value_too_large",
    ),
    # a reduction whose lambda doubles its accumulator: 2^30 bytes from 31 elements (40: 512 GB)
    (
        "SELECT length(list_reduce(list_transform(range(31), lambda x: 'x'), lambda a, b: a || a))",
        "value_too_large",
    ),
    (
        "SELECT len(array_reduce([[1]] || range(25).list_transform(lambda x: [x]), "
        "lambda a, b: list_concat(a, a)))",
        "value_too_large",
    ),
    # a lambda adding a large value to each element of a list (480 MB a row; a vector of
    # rows asks for a terabyte), directly, through a comprehension, a nested list
    (
        "SELECT sum(len(list_transform(range(8000), lambda x: repeat('x', 60000 + i)))) "
        "FROM range(3) t(i)",
        "value_too_large",
    ),
    (
        "SELECT sum(len([s FOR x IN range(8000)])) "
        "FROM (SELECT repeat('x', 60000) || i AS s FROM range(3) t(i))",
        "value_too_large",
    ),
    (
        "SELECT sum(len(list_transform(range(3), lambda x: list_transform(range(8000), "
        "lambda y: repeat('x', 600))))) FROM range(1000)",
        "value_too_large",
    ),
    # a constant of a nested ARRAY type: one DuckDB Value an element, bound outside the
    # memory limit (~1.2 GB here; a list of such NULLs adds up)
    ("SELECT NULL::BIGINT[5000][1000] IS NULL", "value_too_large"),
    ("SELECT len([" + ", ".join(["NULL::INT[100000]"] * 50) + "])", "value_too_large"),
    (
        "SELECT count(*) FROM orders WHERE CAST(NULL AS STRUCT(a INT[1000][1000])) IS NULL",
        "value_too_large",
    ),
    # working memory a function takes outside DuckDB's memory_limit (1.2 GB of matrix)
    ("SELECT damerau_levenshtein(repeat('a', 12000), repeat('b', 12000))", "value_too_large"),
    # memory DuckDB tracks: aggregates, lists, distinct, recursion
    (
        "SELECT length(string_agg(repeat('x', 60000), ',')) FROM range(100000)",
        "memory_limit_exceeded",
    ),
    (
        "SELECT length(list(repeat('x', 60000))::VARCHAR) FROM range(100000)",
        "memory_limit_exceeded",
    ),
    (
        "SELECT count(DISTINCT repeat('x', 60000) || i) FROM range(1000000) t(i)",
        "memory_limit_exceeded",
    ),
    (
        "WITH RECURSIVE t(s) AS (SELECT 'x' UNION ALL SELECT s || s FROM t "
        "WHERE length(s) < 2000000000) SELECT max(length(s)) FROM t",
        "memory_limit_exceeded",
    ),
    (
        "WITH RECURSIVE t(l) AS (SELECT [1] UNION ALL SELECT list_concat(l, l) FROM t "
        "WHERE len(l) < 1000000000) SELECT max(len(l)) FROM t",
        "memory_limit_exceeded",
    ),
    # NOT MATERIALIZED CTEs each reading the one before twice: DuckDB binds a copy per
    # read, 2^15 copies (13 s and 1.3 GB of plan outside the timeout and memory_limit)
    (
        "WITH t0 AS NOT MATERIALIZED (SELECT order_id AS x FROM orders LIMIT 2), "
        + ", ".join(
            f"t{i} AS NOT MATERIALIZED (SELECT x FROM t{i - 1} UNION ALL SELECT x FROM t{i - 1})"
            for i in range(1, 16)
        )
        + " SELECT count(*) FROM t15",
        "sql_too_large",
    ),
    # 100 joins: DuckDB's join-order optimizer, deaf to the interrupt, took ~4 s (300: 115 s)
    (
        "SELECT count(*) FROM products p0 "
        + " ".join(
            f"JOIN products p{i} ON p{i}.product_id = p{i - 1}.product_id "
            f"AND p{i}.product_id = p0.product_id"
            for i in range(1, 100)
        ),
        "sql_too_large",
    ),
    # a name of 8,000 parts: DuckDB's binder spent 15 s on it, deaf to the timeout's interrupt
    ("SELECT a" + ".b" * 8000 + " FROM orders", "sql_too_large"),
    # time: cross joins, endless recursion, deep series (each needs far more than the timeout)
    ("SELECT count(*) FROM range(1000000) a, range(1000000) b", "query_timeout"),
    (
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
        "query_timeout",
    ),
    ("SELECT count(*) FROM generate_series(1, 1000000000000000)", "query_timeout"),
    (
        "SELECT max(a.order_id * b.order_id * c.order_id) FROM orders a, orders b, orders c",
        "query_timeout",
    ),
    # answers cut while they are read
    ("SELECT * FROM range(1000000000000)", CUT_ROWS),
    ("SELECT a.*, b.* FROM orders a CROSS JOIN orders b", CUT_ROWS),
    ("SELECT * FROM generate_series(1, 1000000000000) g, orders", CUT_ROWS),
    ("SELECT repeat('x', 60000) AS s FROM range(100000)", CUT_BYTES),
    ("SELECT repeat(status, 5000) AS s, o.* FROM orders o, range(1000)", CUT_BYTES),
]
