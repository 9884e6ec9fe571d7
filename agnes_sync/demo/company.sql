-- A small fictional company, generated deterministically.
-- Randomness comes from hash(row, salt, seed), never from random(): the output is the
-- same on every run and thread count. Placeholders: {seed}, {customers}, {products},
-- {orders}, {tickets}.

CREATE TEMP MACRO u(i, salt) AS (hash(i, salt, {seed}) % 1000003)::DOUBLE / 1000003;
CREATE TEMP MACRO pick(i, salt, arr) AS arr[1 + (hash(i, salt, {seed}) % len(arr))::INTEGER];

CREATE TABLE customers AS
SELECT
    i AS customer_id,
    pick(i, 'first', ['Ada', 'Bruno', 'Chen', 'Dana', 'Emil', 'Fatima', 'Goran', 'Hana',
                      'Ivan', 'Jana', 'Kofi', 'Lena', 'Mateo', 'Nora', 'Omar', 'Petra',
                      'Quinn', 'Rosa', 'Sven', 'Tereza', 'Umar', 'Vera', 'Wen', 'Yara'])
      || ' ' ||
    pick(i, 'last', ['Novak', 'Smith', 'Garcia', 'Müller', 'Kim', 'Rossi', 'Dubois', 'Silva',
                     'Kowalski', 'Tanaka', 'Okafor', 'Larsen', 'Horak', 'Singh', 'Brown'])
      AS name,
    'customer' || i || '@example.com' AS email,
    pick(i, 'country', ['US', 'US', 'US', 'US', 'GB', 'GB', 'DE', 'DE', 'FR', 'CZ', 'NL',
                        'CA', 'AU', 'JP', 'BR', 'IN', 'ES', 'PL', 'SE', 'MX']) AS country_code,
    pick(i, 'segment', ['smb', 'smb', 'smb', 'smb', 'mid_market', 'mid_market', 'enterprise'])
      AS segment,
    pick(i, 'acq', ['organic', 'organic', 'paid_search', 'referral', 'partner', 'outbound'])
      AS acquisition_channel,
    -- customers sign up in id order, a little faster each month, from 2022-01 to 2026-10
    DATE '2022-01-01' + floor(1764 * pow((i - 1) / {customers}, 0.75))::INTEGER AS signup_date
FROM range(1, {customers} + 1) t(i);

-- How many customers had signed up by each day orders and tickets are placed on
-- (customer ids follow the signup order, so they are customers 1..signed_up).
CREATE TABLE signed_up AS
SELECT d.day, count(c.customer_id) AS customers
FROM range(0, 1035) d(day)
LEFT JOIN customers c ON c.signup_date <= DATE '2024-01-01' + d.day::INTEGER
GROUP BY d.day;

CREATE TABLE products AS
SELECT
    i AS product_id,
    pick(i, 'category', ['Analytics', 'Storage', 'Compute', 'Security', 'Support', 'Training'])
      AS category,
    pick(i, 'adj', ['Basic', 'Pro', 'Team', 'Plus', 'Max', 'Lite', 'Edge', 'Core'])
      || ' ' || pick(i, 'noun', ['Panel', 'Vault', 'Engine', 'Shield', 'Desk', 'Course', 'Node'])
      || ' ' || i AS name,
    round(5 + u(i, 'price') * 495, 2)::DECIMAL(10, 2) AS unit_price,
    u(i, 'active') < 0.9 AS active
FROM range(1, {products} + 1) t(i);

CREATE TABLE order_headers AS
WITH o AS (SELECT i, (u(i, 'date') * 1034)::INTEGER AS day FROM range(1, {orders} + 1) t(i))
SELECT
    i AS order_id,
    -- a customer who had signed up by then, skewed: long-standing customers order a lot
    1 + floor(s.customers * pow(u(i, 'cust'), 2))::BIGINT AS customer_id,
    DATE '2024-01-01' + o.day AS order_date,
    pick(i, 'status', ['completed', 'completed', 'completed', 'completed', 'completed',
                       'completed', 'completed', 'completed', 'refunded', 'cancelled'])
      AS status,
    pick(i, 'channel', ['web', 'web', 'web', 'mobile', 'mobile', 'store', 'partner']) AS channel
FROM o JOIN signed_up s USING (day);

CREATE TABLE order_items AS
WITH lines AS (
    SELECT order_id, unnest(range(1, 2 + (hash(order_id, 'lines', {seed}) % 4)::INTEGER)) AS line_no
    FROM order_headers
)
SELECT
    l.order_id,
    l.line_no::INTEGER AS line_no,
    p.product_id,
    (1 + hash(l.order_id, l.line_no, 'qty', {seed}) % 3)::INTEGER AS quantity,
    p.unit_price,
    (CASE WHEN u(l.order_id * 10 + l.line_no, 'disc') < 0.15 THEN 0.10 ELSE 0 END)::DECIMAL(4, 2)
      AS discount
FROM lines l
JOIN products p
  ON p.product_id = 1 + (hash(l.order_id, l.line_no, 'product', {seed}) % {products})
ORDER BY l.order_id, l.line_no;

CREATE TABLE orders AS
SELECT
    h.order_id,
    h.customer_id,
    h.order_date,
    h.status,
    h.channel,
    sum(i.quantity * i.unit_price * (1 - i.discount))::DECIMAL(12, 2) AS total_amount,
    count(*)::INTEGER AS item_count
FROM order_headers h
JOIN order_items i USING (order_id)
GROUP BY ALL
ORDER BY h.order_id;

CREATE TABLE subscriptions AS
WITH subscribers AS (
    SELECT customer_id, signup_date FROM customers WHERE u(customer_id, 'subscribes') < 0.45
)
SELECT
    row_number() OVER (ORDER BY customer_id) AS subscription_id,
    customer_id,
    pick(customer_id, 'plan', ['starter', 'starter', 'growth', 'growth', 'scale', 'enterprise'])
      AS plan,
    CASE pick(customer_id, 'plan', ['starter', 'starter', 'growth', 'growth', 'scale', 'enterprise'])
        WHEN 'starter' THEN 29 WHEN 'growth' THEN 99 WHEN 'scale' THEN 299 ELSE 999
    END::DECIMAL(10, 2) AS mrr,
    least(signup_date + (u(customer_id, 'substart') * 60)::INTEGER, DATE '2026-10-31')
      AS started_at,
    CASE WHEN u(customer_id, 'churn') < 0.3 AND signup_date < DATE '2026-09-01'
         THEN signup_date + 60 + (u(customer_id, 'subend')
              * (DATE '2026-10-31' - signup_date - 60))::INTEGER END AS ended_at,
    CASE WHEN u(customer_id, 'churn') < 0.3 AND signup_date < DATE '2026-09-01'
         THEN 'cancelled' ELSE 'active' END AS status
FROM subscribers
ORDER BY customer_id;

CREATE TABLE support_tickets AS
SELECT
    i AS ticket_id,
    -- a customer who had signed up by the day the ticket was opened
    1 + (hash(i, 'tcust', {seed}) % s.customers)::BIGINT AS customer_id,
    TIMESTAMP '2024-01-01 00:00:00' + to_seconds((u(i, 'tcreated') * 1034 * 86400)::BIGINT)
      AS created_at,
    pick(i, 'priority', ['low', 'low', 'normal', 'normal', 'normal', 'high', 'urgent'])
      AS priority,
    pick(i, 'tcat', ['billing', 'bug', 'how_to', 'how_to', 'feature_request', 'account'])
      AS category,
    CASE WHEN u(i, 'open') < 0.12 THEN 'open' ELSE 'resolved' END AS status,
    CASE WHEN u(i, 'open') >= 0.12
         THEN TIMESTAMP '2024-01-01 00:00:00'
              + to_seconds((u(i, 'tcreated') * 1034 * 86400)::BIGINT)
              + to_seconds((600 + pow(u(i, 'tres'), 3) * 14 * 86400)::BIGINT)
    END AS resolved_at,
    CASE WHEN u(i, 'open') >= 0.12 AND u(i, 'rated') < 0.6
         THEN (1 + floor(5 * pow(u(i, 'csat'), 0.5)))::INTEGER END AS satisfaction
FROM range(1, {tickets} + 1) t(i)
JOIN signed_up s ON s.day = floor(u(i, 'tcreated') * 1034)::INTEGER
ORDER BY i;
