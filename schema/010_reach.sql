-- SPDX-License-Identifier: Apache-2.0
-- requires-extension: hll
--
-- 010_reach: distinct residents reached (issue 14), with postgresql-hll.
-- kanalctl migrate applies this file only when the server has the
-- extension hll (Debian: postgresql-NN-hll); without it migrate stops
-- before this file, says so, and kanald runs with reach off.
--
-- A service may send an opaque citizen_ref with an event. kanald hashes it
-- with the city's secret key (SipHash-2-4, 64 bits) and adds the hash to a
-- HyperLogLog sketch (postgresql-hll storage format: log2m 11, regwidth 5,
-- expthresh 0, sparse on) per key below; in every flush transaction, the
-- one that also moves its checkpoint, it merges its sketches into
--
--   kanal.reach_daily           per local (WIB) day, service, channel,
--                               region and key
--   kanal.reach_monthly_sketch  the same per local (WIB) month
--
-- with INSERT .. ON CONFLICT DO UPDATE SET sketch = hll_union(t.sketch,
-- excluded.sketch). region_code is the event's kecamatan code (a desa code
-- is cut to its kecamatan by kanald), or the shorter code it carried
-- ('32.73', '32').
--
-- Exactly once, for free: a union is idempotent (a register is the max of
-- the registers merged), so a flush replayed after a crash, a duplicate
-- batch the ledger missed, or the same resident seen by two kanald
-- instances adds nothing a second time. Counts here cannot over-count by
-- repetition; they are estimates with the error below.
--
-- What is never stored: no citizen_ref, no pseudonym, no hash of one.
-- expthresh 0 turns the explicit representation (a list of the raw 64-bit
-- hashes, used below some hundred elements) off, so a sketch holds only
-- registers: 2,048 small integers (the longest run of zero bits seen per
-- bucket), from which no hash can be read back. What a register does give
-- away: a cell of one resident holds 16 bits of that resident's keyed hash
-- (which bucket, and the run length), so two such cells of the same
-- resident look alike; with 2,048 buckets that is weak evidence, and
-- without the key it says nothing of who. The key never leaves kanald:
-- reach_key holds a 64-bit fingerprint derived from it, so that sketches
-- of two keys are never merged.
--
-- Keys. A resident's hash depends on the key, so sketches made with two
-- keys count the same resident twice when unioned: every sketch carries
-- its key_id, every union below groups by key_id, and at most one key is
-- unretired (in use) at a time. kanald calls kanal.reach_key_use(its
-- fingerprint) on every connect: 'active' (registered now, or already the
-- one in use): it writes sketches; 'other' (another key is in use) or
-- 'retired' (this key was retired, never to come back): it writes no
-- sketches and says so. Rotation, at the start of a local (WIB) month:
-- stop every kanald, SELECT kanal.reach_key_retire() as the owner, put the
-- new key file in place, start kanald (its first connect registers the new
-- key). A month that two keys wrote shows two rows per cell, one per
-- key_id, and neither is the month's full count (kanalctl report uses the
-- row of the key that reached the most residents and says the month was
-- split).
--
-- The views (kanal.reach_monthly, kanal.published_reach_monthly) union a
-- cell's sketches of the month per key, a channel's mode (digital or
-- manual) taken from kanal.channel at query time, and estimate:
--
--   A = |all sketches of the cell|          residents_any
--   D = |digital channels|, M = |manual|    residents_digital, _manual
--   U = |D union M| (= A unless a channel has no mode in kanal.channel)
--   both         = D + M - U   (inclusion-exclusion)
--   digital_only = U - M,  manual_only = U - D
--   digital_only_share = digital_only / A
--
-- Counts are rounded to integers, derived ones clamped at 0.
--
-- Error bound. One HyperLogLog estimate of n has a relative standard error
-- r = 1.04 / sqrt(2^log2m) (Flajolet et al. 2007): 1.04 / sqrt(2048) =
-- 2.30% at log2m 11 (the column relative_standard_error, from hll_log2m of
-- the cell's union); below about 2.5 * 2^log2m (5,120) the estimator
-- switches to linear counting, which is more precise, so r is an upper
-- bound there. se_any = r A, se_digital = r D, se_manual = r M. A derived
-- figure is a sum of estimates with signs, whose errors are correlated
-- (they share registers) in ways that depend on the overlap; without
-- assuming a sign we bound its standard deviation by the sum of theirs
-- (sd(X +- Y) <= sd(X) + sd(Y) for any correlation):
--
--   se_both         = r (D + M + U)
--   se_digital_only = r (U + M),   se_manual_only = r (U + D)
--   se_digital_only_share = (se_digital_only + share * se_any) / A
--                           (first-order, for a quotient)
--
-- So a small overlap carries a large relative error: 1,000 residents who
-- used both channels out of 20,000 have se_both around 0.023 * 41,000, some
-- 940, nearly the whole figure.
--
-- Published view: a cell (month, key, city or kecamatan, service or all)
-- whose residents_any is under 10 is suppressed (every figure NULL), and in
-- a shown cell each other count under 10, with its error and the share it
-- enters, is NULL: the small-cell rule of published_adoption_monthly. A
-- suppressed kecamatan could in principle be approached by subtracting
-- kecamatan estimates from the city's, but those differences carry the
-- errors of the city's estimate (2.3% of it), far above 10 residents.

-- The extension's objects go in public, where a session's default
-- search_path finds them (an analyst's hll_cardinality(...)), not in kanal
-- (the migration's search_path). If a superuser made it in another schema
-- first, it stays there: kanald names the type and functions with the
-- schema pg_extension gives, and this file finds them through the
-- search_path set below (for the rest of this transaction only).
CREATE EXTENSION IF NOT EXISTS hll SCHEMA public;
SELECT set_config('search_path', 'kanal, ' || quote_ident(n.nspname), true)
  FROM pg_extension e
  JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE e.extname = 'hll';

-- kanald (its staging table's type, hll_union) and the analysts (their
-- own unions) use the extension's objects: its schema must be usable by
-- both, wherever it is (public is, by default; another schema is not).
DO $$
BEGIN
    EXECUTE (SELECT format('GRANT USAGE ON SCHEMA %I TO kanal_ingest, kanal_analyst',
                           n.nspname)
               FROM pg_extension e
               JOIN pg_namespace n ON n.oid = e.extnamespace
              WHERE e.extname = 'hll');
END
$$;

CREATE TABLE kanal.reach_key (
    key_id      bigint      PRIMARY KEY,
    first_used  timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz
);

-- At most one key in use at a time.
CREATE UNIQUE INDEX reach_key_one_active ON kanal.reach_key ((true))
    WHERE retired_at IS NULL;

COMMENT ON TABLE kanal.reach_key IS
    'Fingerprints (64-bit values derived from the key, never the key) of the city keys that kanald hashes citizen_ref with. At most one unretired. Written by kanal.reach_key_use and kanal.reach_key_retire only.';

CREATE TABLE kanal.reach_daily (
    day           date   NOT NULL,
    service_code  text   NOT NULL,
    channel       text   NOT NULL,
    region_code   text   NOT NULL,
    key_id        bigint NOT NULL REFERENCES kanal.reach_key,
    sketch        hll    NOT NULL,
    PRIMARY KEY (day, service_code, channel, region_code, key_id)
) WITH (fillfactor = 80);

CREATE TABLE kanal.reach_monthly_sketch (
    month         date   NOT NULL,
    service_code  text   NOT NULL,
    channel       text   NOT NULL,
    region_code   text   NOT NULL,
    key_id        bigint NOT NULL REFERENCES kanal.reach_key,
    sketch        hll    NOT NULL,
    PRIMARY KEY (month, service_code, channel, region_code, key_id),
    CONSTRAINT reach_monthly_sketch_month_first_day
        CHECK (month = date_trunc('month', month::timestamp)::date)
) WITH (fillfactor = 80);

-- A city's or a kecamatan's month (month, then the region prefix: LIKE
-- '32.73.%'), and the city expression of the views, so that WHERE month =
-- .. AND city_code = .. on them reads only that city's month.
CREATE INDEX reach_monthly_sketch_month_region ON kanal.reach_monthly_sketch
    (month, region_code text_pattern_ops);
CREATE INDEX reach_monthly_sketch_month_city ON kanal.reach_monthly_sketch
    (month, (substring(region_code FROM '^([0-9]+[.][0-9]+)([.]|$)')));
CREATE INDEX reach_daily_region ON kanal.reach_daily
    (region_code text_pattern_ops, day);

COMMENT ON TABLE kanal.reach_daily IS
    'HyperLogLog sketch (postgresql-hll, log2m 11, regwidth 5, no explicit representation) of the keyed hashes of citizen_ref per local (WIB) day, service, channel, region (kecamatan or shorter code) and key. Written by kanald (hll_union upsert, idempotent). Never union sketches of two key_id.';
COMMENT ON TABLE kanal.reach_monthly_sketch IS
    'As reach_daily, per local (WIB) month (the first of the month). Read by reach_monthly and published_reach_monthly.';

-- kanald, on every connect. The table lock (SHARE ROW EXCLUSIVE conflicts
-- with itself, not with the FOR KEY SHARE checks of the sketch tables'
-- foreign keys) makes two kanald connecting at once with different keys
-- take turns: the first registers its key, the second sees it and gets
-- 'other'. The lock lasts until the caller's transaction ends: call it
-- outside one (autocommit), it takes microseconds.
CREATE FUNCTION kanal.reach_key_use(p_key_id bigint) RETURNS text
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_active bigint;
BEGIN
    IF p_key_id IS NULL THEN
        RAISE EXCEPTION 'kanal.reach_key_use: key_id is NULL';
    END IF;
    LOCK TABLE kanal.reach_key IN SHARE ROW EXCLUSIVE MODE;
    -- A retired key says so first, whatever is in use now: its kanald
    -- needs the new key file, not another instance's.
    PERFORM 1 FROM kanal.reach_key
     WHERE key_id = p_key_id AND retired_at IS NOT NULL;
    IF FOUND THEN
        RETURN 'retired';
    END IF;
    SELECT key_id INTO v_active FROM kanal.reach_key WHERE retired_at IS NULL;
    IF FOUND THEN
        RETURN CASE WHEN v_active = p_key_id THEN 'active' ELSE 'other' END;
    END IF;
    INSERT INTO kanal.reach_key (key_id) VALUES (p_key_id);
    RETURN 'active';
END
$$;

COMMENT ON FUNCTION kanal.reach_key_use(bigint) IS
    'Called by kanald on connecting with its key''s fingerprint: ''retired'' (this key was retired: write no sketches), else ''active'' (registered now when no key is in use, or already the key in use), else ''other'' (another key is in use: write no sketches).';

-- The rotation procedure's step (header). Owner only: runs with the
-- caller's rights, no grant.
CREATE FUNCTION kanal.reach_key_retire() RETURNS bigint
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key bigint;
BEGIN
    LOCK TABLE kanal.reach_key IN SHARE ROW EXCLUSIVE MODE;
    UPDATE kanal.reach_key SET retired_at = now()
     WHERE retired_at IS NULL
    RETURNING key_id INTO v_key;
    RETURN v_key;
END
$$;

COMMENT ON FUNCTION kanal.reach_key_retire() IS
    'Retires the key in use (retired_at = now()) and returns its key_id, or NULL when none is. Stop every kanald first; the next kanald''s key becomes the active one. Owner only.';

-- The sketches with their city, kecamatan and channel mode: what the four
-- groupings of reach_monthly read. A view rather than a CTE so that each
-- of them is planned on its own and a query's month and city reach the
-- table's indexes (a CTE read four times is materialised whole, and a
-- GROUPING SETS query keeps such conditions above the aggregation: both
-- measured at 16 s for a city's month out of three years). Owner only.
CREATE VIEW kanal.reach_monthly_input AS
SELECT m.month,
       m.key_id,
       substring(m.region_code FROM '^([0-9]+[.][0-9]+)([.]|$)') AS city_code,
       substring(m.region_code FROM '^([0-9]+[.][0-9]+[.][0-9]+)([.]|$)') AS kecamatan_code,
       m.service_code,
       c.mode,
       m.sketch
  FROM kanal.reach_monthly_sketch m
  LEFT JOIN kanal.channel c ON c.code = m.channel;

COMMENT ON VIEW kanal.reach_monthly_input IS
    'reach_monthly_sketch with city_code, kecamatan_code and the channel''s mode: the input of reach_monthly. Owner only.';

CREATE VIEW kanal.reach_monthly AS
WITH u AS (
    -- One branch per grouping: the whole city, the city per service, each
    -- kecamatan, each kecamatan per service. A city-level code ('32.73')
    -- is in the city's rows only; a code with no city ('32') in none.
    SELECT s.month, s.key_id, s.city_code, NULL::text AS kecamatan_code,
           NULL::text AS service_code,
           hll_union_agg(s.sketch) AS u_any,
           hll_union_agg(s.sketch) FILTER (WHERE s.mode = 'digital') AS u_digital,
           hll_union_agg(s.sketch) FILTER (WHERE s.mode = 'manual') AS u_manual
      FROM kanal.reach_monthly_input s
     WHERE s.city_code IS NOT NULL
     GROUP BY s.month, s.key_id, s.city_code
    UNION ALL
    SELECT s.month, s.key_id, s.city_code, NULL::text, s.service_code,
           hll_union_agg(s.sketch),
           hll_union_agg(s.sketch) FILTER (WHERE s.mode = 'digital'),
           hll_union_agg(s.sketch) FILTER (WHERE s.mode = 'manual')
      FROM kanal.reach_monthly_input s
     WHERE s.city_code IS NOT NULL
     GROUP BY s.month, s.key_id, s.city_code, s.service_code
    UNION ALL
    SELECT s.month, s.key_id, s.city_code, s.kecamatan_code, NULL::text,
           hll_union_agg(s.sketch),
           hll_union_agg(s.sketch) FILTER (WHERE s.mode = 'digital'),
           hll_union_agg(s.sketch) FILTER (WHERE s.mode = 'manual')
      FROM kanal.reach_monthly_input s
     WHERE s.kecamatan_code IS NOT NULL
     GROUP BY s.month, s.key_id, s.city_code, s.kecamatan_code
    UNION ALL
    SELECT s.month, s.key_id, s.city_code, s.kecamatan_code, s.service_code,
           hll_union_agg(s.sketch),
           hll_union_agg(s.sketch) FILTER (WHERE s.mode = 'digital'),
           hll_union_agg(s.sketch) FILTER (WHERE s.mode = 'manual')
      FROM kanal.reach_monthly_input s
     WHERE s.kecamatan_code IS NOT NULL
     GROUP BY s.month, s.key_id, s.city_code, s.kecamatan_code, s.service_code
), e AS (
    SELECT u.month,
           u.key_id,
           u.city_code,
           u.kecamatan_code,
           u.service_code,
           coalesce(hll_cardinality(u.u_any), 0) AS a,
           coalesce(hll_cardinality(u.u_digital), 0) AS d,
           coalesce(hll_cardinality(u.u_manual), 0) AS m,
           coalesce(hll_cardinality(CASE
               WHEN u.u_digital IS NULL THEN u.u_manual
               WHEN u.u_manual IS NULL THEN u.u_digital
               ELSE hll_union(u.u_digital, u.u_manual) END), 0) AS dm,
           1.04 / sqrt(2.0 ^ hll_log2m(u.u_any)) AS r
      FROM u
), f AS (
    SELECT e.*,
           round(e.a)::bigint AS n_any,
           greatest(round(e.dm - e.m), 0)::bigint AS n_digital_only
      FROM e
)
SELECT f.month,
       f.key_id,
       k.first_used AS key_first_used,
       f.city_code,
       f.kecamatan_code,
       f.service_code,
       f.n_any                                          AS residents_any,
       round(f.d)::bigint                               AS residents_digital,
       round(f.m)::bigint                               AS residents_manual,
       greatest(round(f.d + f.m - f.dm), 0)::bigint     AS residents_both,
       f.n_digital_only                                 AS residents_digital_only,
       greatest(round(f.dm - f.d), 0)::bigint           AS residents_manual_only,
       f.n_digital_only::numeric / nullif(f.n_any, 0)   AS digital_only_share,
       round(f.r::numeric, 5)                           AS relative_standard_error,
       round(f.r * f.a)::bigint                         AS se_any,
       round(f.r * f.d)::bigint                         AS se_digital,
       round(f.r * f.m)::bigint                         AS se_manual,
       round(f.r * (f.d + f.m + f.dm))::bigint          AS se_both,
       round(f.r * (f.dm + f.m))::bigint                AS se_digital_only,
       round(f.r * (f.dm + f.d))::bigint                AS se_manual_only,
       -- (se_digital_only + share * se_any) / A, share * se_any being
       -- r * digital_only.
       round((f.r * (f.dm + f.m + f.n_digital_only)
              / nullif(f.a, 0))::numeric, 5)            AS se_digital_only_share
  FROM f
  JOIN kanal.reach_key k ON k.key_id = f.key_id;

COMMENT ON VIEW kanal.reach_monthly IS
    'Distinct residents (estimated from the HyperLogLog sketches) per local (WIB) month, key_id, city, kecamatan (NULL: the whole city) and service (NULL: all services): any channel, digital, manual, both, digital only, manual only, the digital-only share, and their standard errors (schema/010_reach.sql). Two keys'' rows are never merged.';

CREATE VIEW kanal.published_reach_monthly AS
SELECT r.month,
       r.key_id,
       r.key_first_used,
       r.city_code,
       rc.name AS city_name,
       r.kecamatan_code,
       rk.name AS kecamatan_name,
       r.service_code,
       r.residents_any < 10 AS suppressed,
       CASE WHEN r.residents_any >= 10 THEN r.residents_any END AS residents_any,
       CASE WHEN r.residents_any >= 10 AND r.residents_digital >= 10
            THEN r.residents_digital END AS residents_digital,
       CASE WHEN r.residents_any >= 10 AND r.residents_manual >= 10
            THEN r.residents_manual END AS residents_manual,
       CASE WHEN r.residents_any >= 10 AND r.residents_both >= 10
            THEN r.residents_both END AS residents_both,
       CASE WHEN r.residents_any >= 10 AND r.residents_digital_only >= 10
            THEN r.residents_digital_only END AS residents_digital_only,
       CASE WHEN r.residents_any >= 10 AND r.residents_manual_only >= 10
            THEN r.residents_manual_only END AS residents_manual_only,
       CASE WHEN r.residents_any >= 10 AND r.residents_digital_only >= 10
            THEN r.digital_only_share END AS digital_only_share,
       CASE WHEN r.residents_any >= 10 THEN r.relative_standard_error END
            AS relative_standard_error,
       CASE WHEN r.residents_any >= 10 THEN r.se_any END AS se_any,
       CASE WHEN r.residents_any >= 10 AND r.residents_digital >= 10
            THEN r.se_digital END AS se_digital,
       CASE WHEN r.residents_any >= 10 AND r.residents_manual >= 10
            THEN r.se_manual END AS se_manual,
       CASE WHEN r.residents_any >= 10 AND r.residents_both >= 10
            THEN r.se_both END AS se_both,
       CASE WHEN r.residents_any >= 10 AND r.residents_digital_only >= 10
            THEN r.se_digital_only END AS se_digital_only,
       CASE WHEN r.residents_any >= 10 AND r.residents_manual_only >= 10
            THEN r.se_manual_only END AS se_manual_only,
       CASE WHEN r.residents_any >= 10 AND r.residents_digital_only >= 10
            THEN r.se_digital_only_share END AS se_digital_only_share
  FROM kanal.reach_monthly r
  LEFT JOIN kanal.region rc ON rc.code = r.city_code
  LEFT JOIN kanal.region rk ON rk.code = r.kecamatan_code
                           AND rk.level = 'kecamatan';

COMMENT ON VIEW kanal.published_reach_monthly IS
    'kanal.reach_monthly for open data, with region names: a cell with fewer than 10 residents is suppressed (suppressed = true, every figure NULL), and in a shown cell a count under 10 (with its error and the share it enters) is NULL.';

-- kanald merges sketches (SELECT for ON CONFLICT DO UPDATE, as for the
-- tiers), reads the keys and registers its own through reach_key_use; no
-- DELETE, no TRUNCATE, no retire.
GRANT SELECT, INSERT, UPDATE ON kanal.reach_daily, kanal.reach_monthly_sketch
    TO kanal_ingest;
GRANT SELECT ON kanal.reach_key TO kanal_ingest;
REVOKE ALL ON FUNCTION kanal.reach_key_use(bigint), kanal.reach_key_retire()
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kanal.reach_key_use(bigint) TO kanal_ingest;

-- Analysts read the views, and the sketches themselves, to union or
-- intersect them their own way (within one key_id).
GRANT SELECT ON kanal.reach_monthly, kanal.published_reach_monthly,
    kanal.reach_daily, kanal.reach_monthly_sketch TO kanal_analyst;
