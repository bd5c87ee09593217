CREATE OR REPLACE TEMP TABLE __skewless_a0_ev AS SELECT x.* FROM (SELECT s."src_user_id" AS k0, epoch_us(CAST(s."event_ts" AS TIMESTAMPTZ)) AS ts, coalesce(epoch_us(CAST(s."created_ts" AS TIMESTAMPTZ)), -9223372036854775808) AS cr, CAST(s."amount" AS DOUBLE) AS v0, CAST(s."merchant" AS VARCHAR) AS v1 FROM read_parquet(['/repo/data/tx/a.parquet'], hive_partitioning = true, union_by_name = true) AS s WHERE CAST(s."event_ts" AS TIMESTAMPTZ) IS NOT NULL AND s."src_user_id" IS NOT NULL AND CAST(s."created_ts" AS TIMESTAMPTZ) <= ?::TIMESTAMPTZ QUALIFY s."tx_id" IS NULL OR row_number() OVER (PARTITION BY s."tx_id" ORDER BY coalesce(epoch_us(CAST(s."created_ts" AS TIMESTAMPTZ)), -9223372036854775808) ASC, epoch_us(CAST(s."event_ts" AS TIMESTAMPTZ)) ASC, CAST(s."amount" AS DOUBLE) ASC NULLS FIRST, CAST(s."merchant" AS VARCHAR) ASC NULLS FIRST) = 1) AS x SEMI JOIN (SELECT DISTINCT "user_id" AS k0 FROM __skewless_entity) AS ek ON x.k0 = ek.k0;
-- params: [datetime.datetime(2024, 3, 1, 0, 0, tzinfo=datetime.timezone.utc)]

CREATE OR REPLACE TEMP TABLE __skewless_a0_lab AS SELECT e.__skewless_row, e."user_id" AS k0, epoch_us(CAST(e."event_timestamp" AS TIMESTAMPTZ)) AS t FROM __skewless_entity AS e WHERE CAST(e."event_timestamp" AS TIMESTAMPTZ) IS NOT NULL AND e."user_id" IS NOT NULL;
-- params: []

CREATE OR REPLACE TEMP TABLE __skewless_a0_t300000000 AS SELECT k0, idx, count(v0) AS n0, sum(v0) AS s0, avg(CAST(v0 AS DOUBLE) * 0.0009765625) * 1024 AS m0, var_pop(CAST(v0 AS DOUBLE)) * count(v0) AS q0, max(v0) AS hi0, count(v1) AS n1, max({'t': ts, 'c': cr, 'v': v1}) FILTER (WHERE v1 IS NOT NULL) AS l1 FROM (SELECT x.*, (x.ts - (((x.ts) % 300000000 + 300000000) % 300000000)) // 300000000 AS idx FROM __skewless_a0_ev AS x) AS x SEMI JOIN (SELECT DISTINCT l.k0, ((((l.t - (((l.t) % 300000000 + 300000000) % 300000000)) // 300000000) - (((((l.t - (((l.t) % 300000000 + 300000000) % 300000000)) // 300000000)) % 12 + 12) % 12)) // 12) - 1 + b.d AS bucket FROM __skewless_a0_lab AS l CROSS JOIN (VALUES (0), (1)) AS b(d)) AS nb ON x.k0 = nb.k0 AND ((x.idx - (((x.idx) % 12 + 12) % 12)) // 12) = nb.bucket GROUP BY k0, idx;
-- params: []

CREATE OR REPLACE TEMP TABLE __skewless_a0_h300000000 AS SELECT l.__skewless_row, CASE WHEN e.v0 IS NULL THEN 0 ELSE 1 END AS n0, e.v0 AS s0, CAST(e.v0 AS DOUBLE) AS m0, CAST(0 AS DOUBLE) AS q0, e.v0 AS hi0, CASE WHEN e.v1 IS NULL THEN 0 ELSE 1 END AS n1, CASE WHEN e.v1 IS NOT NULL THEN {'t': e.ts, 'c': e.cr, 'v': e.v1} END AS l1 FROM __skewless_a0_lab AS l JOIN __skewless_a0_ev AS e ON e.k0 = l.k0 AND (e.ts - (((e.ts) % 300000000 + 300000000) % 300000000)) = (l.t - (((l.t) % 300000000 + 300000000) % 300000000)) AND e.ts < l.t;
-- params: []

CREATE OR REPLACE TEMP TABLE __skewless_a0_t3600000000 AS SELECT k0, idx, count(v0) AS n0, sum(v0) AS s0, avg(CAST(v0 AS DOUBLE) * 0.0009765625) * 1024 AS m0, var_pop(CAST(v0 AS DOUBLE)) * count(v0) AS q0, max(v0) AS hi0, count(v1) AS n1, max({'t': ts, 'c': cr, 'v': v1}) FILTER (WHERE v1 IS NOT NULL) AS l1 FROM (SELECT x.*, (x.ts - (((x.ts) % 3600000000 + 3600000000) % 3600000000)) // 3600000000 AS idx FROM __skewless_a0_ev AS x) AS x SEMI JOIN (SELECT DISTINCT l.k0, ((((l.t - (((l.t) % 3600000000 + 3600000000) % 3600000000)) // 3600000000) - (((((l.t - (((l.t) % 3600000000 + 3600000000) % 3600000000)) // 3600000000)) % 168 + 168) % 168)) // 168) - 1 + b.d AS bucket FROM __skewless_a0_lab AS l CROSS JOIN (VALUES (0), (1)) AS b(d)) AS nb ON x.k0 = nb.k0 AND ((x.idx - (((x.idx) % 168 + 168) % 168)) // 168) = nb.bucket GROUP BY k0, idx;
-- params: []

CREATE OR REPLACE TEMP TABLE __skewless_a0_h3600000000 AS SELECT l.__skewless_row, CASE WHEN e.v0 IS NULL THEN 0 ELSE 1 END AS n0, e.v0 AS s0, CAST(e.v0 AS DOUBLE) AS m0, CAST(0 AS DOUBLE) AS q0, e.v0 AS hi0, CASE WHEN e.v1 IS NULL THEN 0 ELSE 1 END AS n1, CASE WHEN e.v1 IS NOT NULL THEN {'t': e.ts, 'c': e.cr, 'v': e.v1} END AS l1 FROM __skewless_a0_lab AS l JOIN __skewless_a0_ev AS e ON e.k0 = l.k0 AND (e.ts - (((e.ts) % 3600000000 + 3600000000) % 3600000000)) = (l.t - (((l.t) % 3600000000 + 3600000000) % 3600000000)) AND e.ts < l.t;
-- params: []

CREATE OR REPLACE TEMP TABLE __skewless_a0_w0 AS SELECT __skewless_row, CAST((max(l1)).v AS VARCHAR) AS o0_0 FROM (SELECT l.__skewless_row, p.n1, p.l1 FROM (SELECT l.*, (l.t - (((l.t) % 300000000 + 300000000) % 300000000)) // 300000000 AS hidx, ((((l.t - (((l.t) % 300000000 + 300000000) % 300000000)) // 300000000) - (((((l.t - (((l.t) % 300000000 + 300000000) % 300000000)) // 300000000)) % 12 + 12) % 12)) // 12) - 1 + b.d AS bucket FROM __skewless_a0_lab AS l CROSS JOIN (VALUES (0), (1)) AS b(d)) AS l JOIN __skewless_a0_t300000000 AS p ON p.k0 = l.k0 AND ((p.idx - (((p.idx) % 12 + 12) % 12)) // 12) = l.bucket AND p.idx >= l.hidx - 12 AND p.idx < l.hidx
UNION ALL
SELECT __skewless_row, n1, l1 FROM __skewless_a0_h300000000) GROUP BY __skewless_row;
-- params: []

CREATE OR REPLACE TEMP TABLE __skewless_a0_w1 AS SELECT __skewless_row, CAST(max(hi0) AS DOUBLE) AS o1_0 FROM (SELECT l.__skewless_row, p.n0, p.s0, p.m0, p.q0, p.hi0 FROM (SELECT l.*, (l.t - (((l.t) % 3600000000 + 3600000000) % 3600000000)) // 3600000000 AS hidx, ((((l.t - (((l.t) % 3600000000 + 3600000000) % 3600000000)) // 3600000000) - (((((l.t - (((l.t) % 3600000000 + 3600000000) % 3600000000)) // 3600000000)) % 24 + 24) % 24)) // 24) - 1 + b.d AS bucket FROM __skewless_a0_lab AS l CROSS JOIN (VALUES (0), (1)) AS b(d)) AS l JOIN __skewless_a0_t3600000000 AS p ON p.k0 = l.k0 AND ((p.idx - (((p.idx) % 24 + 24) % 24)) // 24) = l.bucket AND p.idx >= l.hidx - 24 AND p.idx < l.hidx
UNION ALL
SELECT __skewless_row, n0, s0, m0, q0, hi0 FROM __skewless_a0_h3600000000) GROUP BY __skewless_row;
-- params: []

CREATE OR REPLACE TEMP TABLE __skewless_a0_w2 AS SELECT __skewless_row, CAST(CASE WHEN sum(n0) > 1 THEN sqrt(greatest((sum(q0) + sum(n0 * (m0 - mu0) * (m0 - mu0))), 0.0) / (sum(n0) - 1)) END AS DOUBLE) AS o2_0 FROM (SELECT *, sum(m0 * w0) OVER (PARTITION BY __skewless_row) AS mu0 FROM (SELECT *, CAST(n0 AS DOUBLE) / nullif(sum(n0) OVER (PARTITION BY __skewless_row), 0) AS w0 FROM (SELECT l.__skewless_row, p.n0, p.s0, p.m0, p.q0, p.hi0 FROM (SELECT l.*, (l.t - (((l.t) % 3600000000 + 3600000000) % 3600000000)) // 3600000000 AS hidx, ((((l.t - (((l.t) % 3600000000 + 3600000000) % 3600000000)) // 3600000000) - (((((l.t - (((l.t) % 3600000000 + 3600000000) % 3600000000)) // 3600000000)) % 168 + 168) % 168)) // 168) - 1 + b.d AS bucket FROM __skewless_a0_lab AS l CROSS JOIN (VALUES (0), (1)) AS b(d)) AS l JOIN __skewless_a0_t3600000000 AS p ON p.k0 = l.k0 AND ((p.idx - (((p.idx) % 168 + 168) % 168)) // 168) = l.bucket AND p.idx >= l.hidx - 168 AND p.idx < l.hidx
UNION ALL
SELECT __skewless_row, n0, s0, m0, q0, hi0 FROM __skewless_a0_h3600000000))) GROUP BY __skewless_row;
-- params: []

SELECT e.__skewless_row, w2.o2_0 AS "amount_stddev_samp_7d", w0.o0_0 AS "merchant_last_1h", w1.o1_0 AS "amount_max_1d"
FROM __skewless_entity AS e
LEFT JOIN __skewless_a0_w0 AS w0 ON w0.__skewless_row = e.__skewless_row
LEFT JOIN __skewless_a0_w1 AS w1 ON w1.__skewless_row = e.__skewless_row
LEFT JOIN __skewless_a0_w2 AS w2 ON w2.__skewless_row = e.__skewless_row
ORDER BY e.__skewless_row;
-- params: []
