-- The demo's big table, kept in a DuckDB "warehouse" file and served as a remote table.
-- Rows come ordered by event_date (as a date-partitioned warehouse table would be), so
-- storage metadata can prune scans by date. Two hashes per row, sliced into fields,
-- keep 20M rows fast. Placeholders: {seed}, {sessions}, {customers}.
--
-- Signed-in sessions follow each customer's own activity pattern, so monthly active
-- users grow, dip and churn like a real product's instead of being every customer every
-- month. Months are numbered from 0 (2024-01) to 33 (2026-10), the span of event_date.

CREATE TEMP MACRO u(i, salt) AS (hash(i, salt, {seed}) % 1000003)::DOUBLE / 1000003;
-- An exponential lag in whole months with the given mean (0 is the most likely).
CREATE TEMP MACRO months_after(i, salt, mean) AS floor(-ln(1 - u(i, salt)) * mean)::INTEGER;

CREATE TEMP TABLE profiles AS
SELECT
    c AS customer_id,
    -- customers.csv's signup_date (the same formula as company.sql), as a month number
    datediff('month', DATE '2024-01-01',
             DATE '2022-01-01' + floor(1764 * pow((c - 1) / {customers}, 0.75))::INTEGER)
      AS signup_month,
    -- customers.csv's country (company.sql's pick(i, 'country', ...))
    (['US', 'US', 'US', 'US', 'GB', 'GB', 'DE', 'DE', 'FR', 'CZ', 'NL', 'CA', 'AU', 'JP', 'BR',
      'IN', 'ES', 'PL', 'SE', 'MX'])[1 + (hash(c, 'country', {seed}) % 20)::INTEGER]
      AS country_code,
    -- the web app opened in 2024-01; customers take it up in the months after it opened
    -- and after they signed up
    greatest(0, signup_month + 1) + months_after(c, 'web_start', 8) AS first_month,
    -- about a third stop using it after a while
    CASE WHEN u(c, 'web_churn') < 0.35 THEN first_month + months_after(c, 'web_life', 12)
         ELSE 99 END AS last_month,
    -- one in five is seasonal: active four months a year, from a month of their own
    CASE WHEN u(c, 'seasonal') < 0.2 THEN (hash(c, 'season', {seed}) % 12)::INTEGER END
      AS season_start,
    -- how likely an active-period month has a visit at all
    0.45 + 0.5 * u(c, 'engagement') AS engagement,
    -- the /product page shipped in 2024-05; seven in ten customers take it up, gradually
    CASE WHEN u(c, 'product') < 0.7 THEN 4 + months_after(c, 'product_lag', 10) ELSE 99 END
      AS product_month,
    -- heavy users first: signed-in sessions are drawn with a skew towards the start
    hash(c, 'intensity', {seed}) AS intensity
FROM range(1, {customers} + 1) t(c);

-- Who is active in which month; k numbers a month's actives from 0, heaviest first.
CREATE TEMP TABLE actives AS
SELECT
    m AS month,
    (row_number() OVER (PARTITION BY m ORDER BY intensity, customer_id) - 1)::INTEGER AS k,
    customer_id,
    country_code,
    m >= product_month AS uses_product
FROM profiles, range(0, 34) t(m)
WHERE m BETWEEN first_month AND last_month
  AND (season_start IS NULL OR (m % 12 - season_start + 12) % 12 < 4)
  -- fewer visits in July, August and December
  AND u(customer_id * 64 + m, 'visits')
      < engagement * (CASE m % 12 WHEN 6 THEN 0.8 WHEN 7 THEN 0.75 WHEN 11 THEN 0.8 ELSE 1 END);

-- One row per day: its date, month, and how many customers are active that month.
CREATE TEMP TABLE days AS
WITH d AS (
    SELECT day, DATE '2024-01-01' + day::INTEGER AS event_date FROM range(0, 1035) t(day)
)
SELECT
    d.day,
    d.event_date,
    datediff('month', DATE '2024-01-01', d.event_date) AS month,
    coalesce(n.actives, 0) AS actives
FROM d
LEFT JOIN (SELECT month, count(*) AS actives FROM actives GROUP BY month) n
  ON n.month = datediff('month', DATE '2024-01-01', d.event_date);

CREATE TABLE web_sessions AS
WITH h AS (
    SELECT i, (i - 1) * 1035 // {sessions} AS day, hash(i, {seed}) AS a, hash(i, {seed} + 1) AS b
    FROM range(1, {sessions} + 1) t(i)
),
s AS (
    SELECT
        h.*,
        d.event_date,
        d.month,
        -- the signed-in share follows the active base: ~40 sessions per active customer
        -- a month, the rest anonymous
        CASE WHEN (a >> 32) % 1000 < 700.0 * d.actives / {customers}
             THEN floor(d.actives * pow((b % 1000003) / 1000003.0, 1.5))::INTEGER END AS k
    FROM h JOIN days d USING (day)
)
SELECT
    s.i AS session_id,
    s.event_date,
    coalesce(x.country_code,
        (['US', 'US', 'US', 'US', 'GB', 'GB', 'DE', 'DE', 'FR', 'CZ', 'NL', 'CA', 'AU', 'JP',
          'BR', 'IN', 'ES', 'PL', 'SE', 'MX'])[1 + (a % 20)::INTEGER]) AS country_code,
    (['desktop', 'desktop', 'mobile', 'mobile', 'mobile', 'tablet'])[1 + ((a >> 8) % 6)::INTEGER]
      AS device,
    (['organic', 'organic', 'direct', 'paid_search', 'social', 'email', 'referral'])
      [1 + ((a >> 16) % 7)::INTEGER] AS traffic_source,
    CASE
        -- signed-in customers land on /product only once they use it
        WHEN x.customer_id IS NULL
          THEN (['/', '/', '/pricing', '/product', '/blog', '/docs', '/signup'])
               [1 + ((a >> 24) % 7)::INTEGER]
        WHEN x.uses_product AND (b >> 20) % 4 = 0 THEN '/product'
        ELSE (['/', '/', '/', '/pricing', '/blog', '/docs', '/docs'])[1 + ((a >> 24) % 7)::INTEGER]
    END AS landing_page,
    x.customer_id,
    (1 + floor(20 * pow(((a >> 42) % 1024) / 1024.0, 2)))::INTEGER AS pageviews,
    (5 + floor(1800 * pow(((b >> 32) % 65536) / 65536.0, 2)))::INTEGER AS duration_seconds,
    (b >> 50) % 1000 < 30 AS converted
FROM s
LEFT JOIN actives x ON x.month = s.month AND x.k = s.k;
