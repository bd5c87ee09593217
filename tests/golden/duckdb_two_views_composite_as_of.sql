CREATE OR REPLACE TEMP TABLE __skewless_e AS SELECT *, CAST("event_timestamp" AS TIMESTAMPTZ) AS __skewless_ts FROM __skewless_entity;
-- params: []

CREATE OR REPLACE TEMP TABLE __skewless_r0 AS WITH v0 AS (SELECT s."src_user_id" AS k0, CAST(s."event_ts" AS TIMESTAMPTZ) AS ts, {'t': CAST(s."event_ts" AS TIMESTAMPTZ), 'c': coalesce(CAST(s."created_ts" AS TIMESTAMPTZ), '-infinity'::TIMESTAMPTZ)} AS sk, CAST(s."amount" AS DOUBLE) AS f0, CAST(s."n_raw" AS BIGINT) AS f1 FROM read_parquet('/repo/data/spend.parquet') AS s SEMI JOIN (SELECT DISTINCT "user_id" AS k0 FROM __skewless_e) AS ek ON s."src_user_id" = ek.k0 WHERE CAST(s."event_ts" AS TIMESTAMPTZ) IS NOT NULL AND CAST(s."created_ts" AS TIMESTAMPTZ) <= ?::TIMESTAMPTZ)
SELECT e.__skewless_row, CASE WHEN e.__skewless_ts IS NOT NULL AND v0.ts IS NOT NULL AND v0.ts >= e.__skewless_ts - to_microseconds(3600000000) THEN v0.f0 END AS "amount", CASE WHEN e.__skewless_ts IS NOT NULL AND v0.ts IS NOT NULL AND v0.ts >= e.__skewless_ts - to_microseconds(3600000000) THEN v0.f1 END AS "spend__n"
FROM __skewless_e AS e
ASOF LEFT JOIN v0 ON e."user_id" = v0.k0 AND {'t': e.__skewless_ts, 'c': 'infinity'::TIMESTAMPTZ} >= v0.sk;
-- params: [datetime.datetime(2024, 3, 1, 0, 0, tzinfo=datetime.timezone.utc)]

CREATE OR REPLACE TEMP TABLE __skewless_r1 AS WITH v1 AS (SELECT s."src_user_id" AS k0, s."src_merchant_id" AS k1, CAST(s."event_ts" AS TIMESTAMPTZ) AS ts, CAST(s."amount" AS DOUBLE) AS f0, CAST(s."n_raw" AS BIGINT) AS f1 FROM read_parquet('/repo/data/pair/**/*.parquet', hive_partitioning = true, union_by_name = true) AS s SEMI JOIN (SELECT DISTINCT "user_id" AS k0, "merchant_id" AS k1 FROM __skewless_e) AS ek ON s."src_user_id" = ek.k0 AND s."src_merchant_id" = ek.k1 WHERE CAST(s."event_ts" AS TIMESTAMPTZ) IS NOT NULL AND CAST(s."event_ts" AS TIMESTAMPTZ) <= ?::TIMESTAMPTZ)
SELECT e.__skewless_row, CASE WHEN e.__skewless_ts IS NOT NULL AND v1.ts IS NOT NULL THEN v1.f0 END AS "amount", CASE WHEN e.__skewless_ts IS NOT NULL AND v1.ts IS NOT NULL THEN v1.f1 END AS "pair__n"
FROM __skewless_e AS e
ASOF LEFT JOIN v1 ON e."user_id" = v1.k0 AND e."merchant_id" = v1.k1 AND e.__skewless_ts >= v1.ts;
-- params: [datetime.datetime(2024, 3, 1, 0, 0, tzinfo=datetime.timezone.utc)]

SELECT e.__skewless_row, r0."amount", r0."spend__n", r1."amount", r1."pair__n"
FROM __skewless_e AS e
JOIN __skewless_r0 AS r0 ON r0.__skewless_row = e.__skewless_row
JOIN __skewless_r1 AS r1 ON r1.__skewless_row = e.__skewless_row
ORDER BY e.__skewless_row;
-- params: []
