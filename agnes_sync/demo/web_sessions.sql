-- The demo's big table, kept in a DuckDB "warehouse" file and served as a remote table.
-- Rows come ordered by event_date (as a date-partitioned warehouse table would be), so
-- storage metadata can prune scans by date. Two hashes per row, sliced into fields,
-- keep 20M rows fast. Placeholders: {seed}, {sessions}, {customers}.

CREATE TABLE web_sessions AS
WITH h AS (
    SELECT i, hash(i, {seed}) AS a, hash(i, {seed} + 1) AS b
    FROM range(1, {sessions} + 1) t(i)
)
SELECT
    i AS session_id,
    DATE '2024-01-01' + ((i - 1) * 1035 // {sessions})::INTEGER AS event_date,
    (['US', 'US', 'US', 'US', 'GB', 'GB', 'DE', 'DE', 'FR', 'CZ', 'NL', 'CA', 'AU', 'JP', 'BR',
      'IN', 'ES', 'PL', 'SE', 'MX'])[1 + (a % 20)::INTEGER] AS country_code,
    (['desktop', 'desktop', 'mobile', 'mobile', 'mobile', 'tablet'])[1 + ((a >> 8) % 6)::INTEGER]
      AS device,
    (['organic', 'organic', 'direct', 'paid_search', 'social', 'email', 'referral'])
      [1 + ((a >> 16) % 7)::INTEGER] AS traffic_source,
    (['/', '/', '/pricing', '/product', '/blog', '/docs', '/signup'])[1 + ((a >> 24) % 7)::INTEGER]
      AS landing_page,
    CASE WHEN (a >> 32) % 1000 < 300 THEN 1 + (b % {customers})::BIGINT END AS customer_id,
    (1 + floor(20 * pow(((a >> 42) % 1024) / 1024.0, 2)))::INTEGER AS pageviews,
    (5 + floor(1800 * pow(((b >> 32) % 65536) / 65536.0, 2)))::INTEGER AS duration_seconds,
    (b >> 50) % 1000 < 30 AS converted
FROM h;
