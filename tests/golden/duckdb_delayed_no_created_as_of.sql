WITH e AS (SELECT *, CAST("event_timestamp" AS TIMESTAMPTZ) AS __skewless_ts FROM __skewless_entity),
v0 AS (SELECT s."src_user_id" AS k0, CAST(s."event_ts" AS TIMESTAMPTZ) AS ts, CAST(s."amount" AS DOUBLE) AS f0, CAST(s."n_raw" AS BIGINT) AS f1 FROM read_parquet('/repo/data/daily.parquet') AS s SEMI JOIN (SELECT DISTINCT "user_id" AS k0 FROM e) AS ek ON s."src_user_id" = ek.k0 WHERE CAST(s."event_ts" AS TIMESTAMPTZ) IS NOT NULL AND CAST(s."event_ts" AS TIMESTAMPTZ) <= ?::TIMESTAMPTZ)
SELECT e.__skewless_row, CASE WHEN e.__skewless_ts IS NOT NULL AND v0.ts IS NOT NULL THEN v0.f0 ELSE CAST(? AS DOUBLE) END AS "amount", CASE WHEN e.__skewless_ts IS NOT NULL AND v0.ts IS NOT NULL THEN v0.f1 END AS "daily__n"
FROM e
ASOF LEFT JOIN v0 ON e."user_id" = v0.k0 AND e.__skewless_ts - to_microseconds(21600000001) >= v0.ts
ORDER BY e.__skewless_row;
-- params: [datetime.datetime(2024, 3, 1, 0, 0, tzinfo=datetime.timezone.utc), 0.5]
