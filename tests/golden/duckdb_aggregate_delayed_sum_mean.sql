CREATE OR REPLACE TEMP TABLE __skewless_a0_ev AS SELECT x.* FROM (SELECT s."src_user_id" AS k0, epoch_us(CAST(s."event_ts" AS TIMESTAMPTZ)) AS ts, coalesce(NULL, -9223372036854775808) AS cr, CAST(s."amount" AS DOUBLE) AS v0, CAST(s."merchant" AS VARCHAR) AS v1 FROM read_parquet(['/repo/data/tx/a.parquet'], hive_partitioning = true, union_by_name = true) AS s WHERE CAST(s."event_ts" AS TIMESTAMPTZ) IS NOT NULL AND s."src_user_id" IS NOT NULL) AS x SEMI JOIN (SELECT DISTINCT "user_id" AS k0 FROM __skewless_entity) AS ek ON x.k0 = ek.k0;
-- params: []

CREATE OR REPLACE TEMP TABLE __skewless_a0_lab AS SELECT e.__skewless_row, e."user_id" AS k0, epoch_us(CAST(e."event_timestamp" AS TIMESTAMPTZ)) AS t, epoch_us(CAST(e."event_timestamp" AS TIMESTAMPTZ)) - 21599999999 AS u FROM __skewless_entity AS e WHERE CAST(e."event_timestamp" AS TIMESTAMPTZ) IS NOT NULL AND e."user_id" IS NOT NULL;
-- params: []

CREATE OR REPLACE TEMP TABLE __skewless_a0_t300000000 AS SELECT k0, idx, count(v0) AS n0, sum(v0) AS s0 FROM (SELECT x.*, (x.ts - (((x.ts) % 300000000 + 300000000) % 300000000)) // 300000000 AS idx FROM __skewless_a0_ev AS x) AS x SEMI JOIN (SELECT DISTINCT l.k0, ((((l.t - (((l.t) % 300000000 + 300000000) % 300000000)) // 300000000) - (((((l.t - (((l.t) % 300000000 + 300000000) % 300000000)) // 300000000)) % 12 + 12) % 12)) // 12) - 1 + b.d AS bucket FROM __skewless_a0_lab AS l CROSS JOIN (VALUES (0), (1)) AS b(d)) AS nb ON x.k0 = nb.k0 AND ((x.idx - (((x.idx) % 12 + 12) % 12)) // 12) = nb.bucket GROUP BY k0, idx;
-- params: []

CREATE OR REPLACE TEMP TABLE __skewless_a0_h300000000 AS SELECT l.__skewless_row, (l.t - (((l.t) % 300000000 + 300000000) % 300000000)) // 300000000 AS ht, (l.u - (((l.u) % 300000000 + 300000000) % 300000000)) // 300000000 AS hu, CASE WHEN e.v0 IS NULL THEN 0 ELSE 1 END AS n0, e.v0 AS s0 FROM __skewless_a0_lab AS l JOIN __skewless_a0_ev AS e ON e.k0 = l.k0 AND (e.ts - (((e.ts) % 300000000 + 300000000) % 300000000)) = (l.u - (((l.u) % 300000000 + 300000000) % 300000000)) AND e.ts < l.u;
-- params: []

CREATE OR REPLACE TEMP TABLE __skewless_a0_t3600000000 AS SELECT k0, idx, count(v0) AS n0, sum(v0) AS s0 FROM (SELECT x.*, (x.ts - (((x.ts) % 3600000000 + 3600000000) % 3600000000)) // 3600000000 AS idx FROM __skewless_a0_ev AS x) AS x SEMI JOIN (SELECT DISTINCT l.k0, ((((l.t - (((l.t) % 3600000000 + 3600000000) % 3600000000)) // 3600000000) - (((((l.t - (((l.t) % 3600000000 + 3600000000) % 3600000000)) // 3600000000)) % 24 + 24) % 24)) // 24) - 1 + b.d AS bucket FROM __skewless_a0_lab AS l CROSS JOIN (VALUES (0), (1)) AS b(d)) AS nb ON x.k0 = nb.k0 AND ((x.idx - (((x.idx) % 24 + 24) % 24)) // 24) = nb.bucket GROUP BY k0, idx;
-- params: []

CREATE OR REPLACE TEMP TABLE __skewless_a0_h3600000000 AS SELECT l.__skewless_row, (l.t - (((l.t) % 3600000000 + 3600000000) % 3600000000)) // 3600000000 AS ht, (l.u - (((l.u) % 3600000000 + 3600000000) % 3600000000)) // 3600000000 AS hu, CASE WHEN e.v0 IS NULL THEN 0 ELSE 1 END AS n0, e.v0 AS s0 FROM __skewless_a0_lab AS l JOIN __skewless_a0_ev AS e ON e.k0 = l.k0 AND (e.ts - (((e.ts) % 3600000000 + 3600000000) % 3600000000)) = (l.u - (((l.u) % 3600000000 + 3600000000) % 3600000000)) AND e.ts < l.u;
-- params: []

CREATE OR REPLACE TEMP TABLE __skewless_a0_w0 AS SELECT __skewless_row, CAST(CASE WHEN sum(n0) > 0 THEN CAST(sum(s0) AS DOUBLE) / sum(n0) END AS DOUBLE) AS o0_0 FROM (SELECT l.__skewless_row, p.n0, p.s0 FROM (SELECT l.*, (l.t - (((l.t) % 300000000 + 300000000) % 300000000)) // 300000000 AS hidx, ((((l.t - (((l.t) % 300000000 + 300000000) % 300000000)) // 300000000) - (((((l.t - (((l.t) % 300000000 + 300000000) % 300000000)) // 300000000)) % 12 + 12) % 12)) // 12) - 1 + b.d AS bucket FROM __skewless_a0_lab AS l CROSS JOIN (VALUES (0), (1)) AS b(d)) AS l JOIN __skewless_a0_t300000000 AS p ON p.k0 = l.k0 AND ((p.idx - (((p.idx) % 12 + 12) % 12)) // 12) = l.bucket AND p.idx >= l.hidx - 12 AND p.idx < (l.u - (((l.u) % 300000000 + 300000000) % 300000000)) // 300000000
UNION ALL
SELECT __skewless_row, n0, s0 FROM __skewless_a0_h300000000 WHERE hu >= ht - 12) GROUP BY __skewless_row;
-- params: []

CREATE OR REPLACE TEMP TABLE __skewless_a0_w1 AS SELECT __skewless_row, CAST(CASE WHEN sum(n0) > 0 THEN CAST(sum(s0) AS DOUBLE) END AS DOUBLE) AS o1_0 FROM (SELECT l.__skewless_row, p.n0, p.s0 FROM (SELECT l.*, (l.t - (((l.t) % 3600000000 + 3600000000) % 3600000000)) // 3600000000 AS hidx, ((((l.t - (((l.t) % 3600000000 + 3600000000) % 3600000000)) // 3600000000) - (((((l.t - (((l.t) % 3600000000 + 3600000000) % 3600000000)) // 3600000000)) % 24 + 24) % 24)) // 24) - 1 + b.d AS bucket FROM __skewless_a0_lab AS l CROSS JOIN (VALUES (0), (1)) AS b(d)) AS l JOIN __skewless_a0_t3600000000 AS p ON p.k0 = l.k0 AND ((p.idx - (((p.idx) % 24 + 24) % 24)) // 24) = l.bucket AND p.idx >= l.hidx - 24 AND p.idx < (l.u - (((l.u) % 3600000000 + 3600000000) % 3600000000)) // 3600000000
UNION ALL
SELECT __skewless_row, n0, s0 FROM __skewless_a0_h3600000000 WHERE hu >= ht - 24) GROUP BY __skewless_row;
-- params: []

SELECT e.__skewless_row, w1.o1_0 AS "amount_sum_1d", w0.o0_0 AS "amount_mean_1h"
FROM __skewless_entity AS e
LEFT JOIN __skewless_a0_w0 AS w0 ON w0.__skewless_row = e.__skewless_row
LEFT JOIN __skewless_a0_w1 AS w1 ON w1.__skewless_row = e.__skewless_row
ORDER BY e.__skewless_row;
-- params: []
