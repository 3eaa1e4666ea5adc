-- SPDX-License-Identifier: Apache-2.0
--
-- 007_tiers: years of data. Three tiers of the same counts, each written
-- once, in the flush transaction that writes the checkpoint:
--
--   kanal.usage_hourly   per UTC hour (as before), now partitioned by UTC
--                        month, with a default partition; old months are
--                        dropped whole by retention (retention-hourly-days,
--                        default 400)
--   kanal.usage_daily    per local (WIB) day; never dropped
--   kanal.usage_monthly  per local (WIB) month; never dropped
--
-- The keys below the time column are the same in every tier (service_code,
-- channel, region_code, outcome, assisted) and so are the counts; a tier's
-- row is the sum of the hourly rows of its day or month, because kanald
-- adds one flush's deltas to all three in one transaction (replay, the
-- local duplicate check and the fleet ledger hold for each alike). The
-- views of 003 and 004 read the daily and monthly tiers and return the
-- same rows as before; usage_local_hourly reads the hourly tier, so it
-- covers the hours retention keeps (kanal.hourly_retention.kept_from on).
--
-- An event whose hour is older than kept_from (a late event for a month
-- already dropped) is counted in the daily and monthly tiers only: the
-- hourly upsert leaves such rows out, and kanald's metric
-- kanal_late_events_past_retention_total counts them.
--
-- Partitions are made ahead of time by kanal.hourly_partitions_ensure
-- (kanald on connecting and every day, and when a flush carries an hour
-- outside the months it made sure of; kanalctl retention; this migration),
-- and dropped by kanal.hourly_retention_apply (kanald every day, kanalctl
-- retention). Both run with their owner's rights (SECURITY DEFINER), so
-- kanald's role needs no DDL rights of its own. Rows that meet no
-- partition land in usage_hourly_default and are moved out when their
-- month's partition is made.
--
-- Locks, so that retention never loses a row and never holds a flush up
-- for long: a flush takes ROW EXCLUSIVE on the parent alone (LOCK TABLE
-- ONLY) before it reads kept_from; retention takes ACCESS EXCLUSIVE on the
-- parent, raises kept_from, detaches and drops, and commits. A flush that
-- read the old kept_from has its lock already, so retention waits for it to
-- commit (those rows are then dropped with their month, after they reached
-- the other tiers); a later flush waits for retention and reads the new
-- kept_from. Both functions set lock_timeout to 1 s: retention behind a
-- long analyst query gives up (and is tried again) rather than stall every
-- flush behind its lock request.
--
-- The migration runs in one transaction: it moves the hourly rows into the
-- partitioned table and fills the daily and monthly tiers from them.

-- Room for HOT updates of the current day's and month's rows, as for
-- usage_hourly in 001.
CREATE TABLE kanal.usage_daily (
    day             date        NOT NULL,
    service_code    text        NOT NULL,
    channel         text        NOT NULL,
    region_code     text        NOT NULL,
    outcome         text        NOT NULL,
    assisted        boolean     NOT NULL,
    events          bigint      NOT NULL,
    duration_ms_sum bigint      NOT NULL,
    duration_events bigint      NOT NULL,
    PRIMARY KEY (day, service_code, channel, region_code, outcome, assisted),
    CONSTRAINT usage_daily_outcome_known
        CHECK (outcome IN ('completed', 'abandoned', 'failed', 'unknown')),
    CONSTRAINT usage_daily_counts_valid
        CHECK (events > 0 AND duration_ms_sum >= 0
               AND duration_events >= 0 AND duration_events <= events)
) WITH (fillfactor = 80);

CREATE TABLE kanal.usage_monthly (
    month           date        NOT NULL,
    service_code    text        NOT NULL,
    channel         text        NOT NULL,
    region_code     text        NOT NULL,
    outcome         text        NOT NULL,
    assisted        boolean     NOT NULL,
    events          bigint      NOT NULL,
    duration_ms_sum bigint      NOT NULL,
    duration_events bigint      NOT NULL,
    PRIMARY KEY (month, service_code, channel, region_code, outcome, assisted),
    CONSTRAINT usage_monthly_is_first_day
        CHECK (extract(day FROM month) = 1),
    CONSTRAINT usage_monthly_outcome_known
        CHECK (outcome IN ('completed', 'abandoned', 'failed', 'unknown')),
    CONSTRAINT usage_monthly_counts_valid
        CHECK (events > 0 AND duration_ms_sum >= 0
               AND duration_events >= 0 AND duration_events <= events)
) WITH (fillfactor = 80);

-- A region and what is under it ("region_code LIKE '32.73.%'", a city;
-- '32.73.01%', a kecamatan) across months or days: text_pattern_ops lets
-- LIKE with a fixed prefix use the index whatever the database's collation.
-- The kecamatan expression is the one published_adoption_monthly groups by,
-- so "kecamatan_code = '32.73.01'" on that view is an index scan.
CREATE INDEX usage_daily_region ON kanal.usage_daily
    (region_code text_pattern_ops, day);
CREATE INDEX usage_monthly_region ON kanal.usage_monthly
    (region_code text_pattern_ops, month);
CREATE INDEX usage_monthly_month_region ON kanal.usage_monthly
    (month, region_code text_pattern_ops);
CREATE INDEX usage_monthly_kecamatan ON kanal.usage_monthly
    ((substring(region_code FROM '^([0-9]+[.][0-9]+[.][0-9]+)([.]|$)')), month);

COMMENT ON TABLE kanal.usage_daily IS
    'Event counts per local (WIB) day, written by kanald in the same transaction as usage_hourly; never dropped by retention.';
COMMENT ON COLUMN kanal.usage_daily.day IS
    'The local (Asia/Jakarta) date: (bucket AT TIME ZONE ''Asia/Jakarta'')::date of the hours it sums.';
COMMENT ON TABLE kanal.usage_monthly IS
    'Event counts per local (WIB) month, written by kanald in the same transaction as usage_hourly; never dropped by retention.';
COMMENT ON COLUMN kanal.usage_monthly.month IS
    'First day of the local (Asia/Jakarta) month of the hours it sums.';

-- Where the hourly tier begins: hours before kept_from were dropped by
-- retention (or never kept). Only rises.
CREATE TABLE kanal.hourly_retention (
    only_row    boolean     PRIMARY KEY DEFAULT true CHECK (only_row),
    kept_from   timestamptz NOT NULL,
    hourly_days integer     CHECK (hourly_days > 0),
    applied_at  timestamptz
);
INSERT INTO kanal.hourly_retention (kept_from) VALUES ('-infinity');

COMMENT ON TABLE kanal.hourly_retention IS
    'The first hour usage_hourly keeps (earlier months were dropped whole), and the retention last applied: hourly_days, when.';

-- The hourly tier, partitioned. The old table is renamed out of the way and
-- emptied into the new one below.
ALTER TABLE kanal.usage_hourly RENAME TO usage_hourly_unpartitioned;
ALTER INDEX kanal.usage_hourly_pkey RENAME TO usage_hourly_unpartitioned_pkey;

CREATE TABLE kanal.usage_hourly (
    bucket          timestamptz NOT NULL,
    service_code    text        NOT NULL,
    channel         text        NOT NULL,
    region_code     text        NOT NULL,
    outcome         text        NOT NULL,
    assisted        boolean     NOT NULL,
    events          bigint      NOT NULL,
    duration_ms_sum bigint      NOT NULL,
    duration_events bigint      NOT NULL,
    PRIMARY KEY (bucket, service_code, channel, region_code, outcome, assisted),
    CONSTRAINT usage_hourly_bucket_is_utc_hour
        CHECK (date_trunc('hour', bucket AT TIME ZONE 'UTC') = bucket AT TIME ZONE 'UTC'),
    CONSTRAINT usage_hourly_outcome_known
        CHECK (outcome IN ('completed', 'abandoned', 'failed', 'unknown')),
    CONSTRAINT usage_hourly_counts_valid
        CHECK (events > 0 AND duration_ms_sum >= 0
               AND duration_events >= 0 AND duration_events <= events)
) PARTITION BY RANGE (bucket);

CREATE TABLE kanal.usage_hourly_default PARTITION OF kanal.usage_hourly
    DEFAULT WITH (fillfactor = 80);

COMMENT ON TABLE kanal.usage_hourly IS
    'Hourly event counts written by kanald. bucket is the UTC hour; no foreign keys by design. Partitioned by UTC month (usage_hourly_YYYYMM); months before kanal.hourly_retention.kept_from are dropped.';
COMMENT ON COLUMN kanal.usage_hourly.bucket IS 'Start of the UTC hour the events occurred in.';
COMMENT ON COLUMN kanal.usage_hourly.channel IS 'web, mobile_app, kiosk, chat, partner, counter, phone, outreach or paper; digital or manual per kanal.channel.mode.';
COMMENT ON COLUMN kanal.usage_hourly.region_code IS 'Kemendagri code as sent: 32, 32.73, 32.73.01 or 32.73.01.1001.';
COMMENT ON COLUMN kanal.usage_hourly.outcome IS 'completed, abandoned, failed or unknown.';
COMMENT ON COLUMN kanal.usage_hourly.assisted IS 'Done with help from staff or a community volunteer.';
COMMENT ON COLUMN kanal.usage_hourly.duration_ms_sum IS 'Sum of duration_ms over the events that carried one.';
COMMENT ON COLUMN kanal.usage_hourly.duration_events IS 'Events that carried a duration (duration_ms > 0).';
COMMENT ON TABLE kanal.usage_hourly_default IS
    'Rows whose month had no partition yet; moved into it when kanal.hourly_partitions_ensure makes it. Empty in normal running.';

-- Makes sure usage_hourly has a partition for every UTC month from lo's to
-- hi's, except months before kept_from (dropped: their late rows go to the
-- other tiers only). Returns how many partitions it made. A span of more
-- than 25 years is refused: it can only come from a broken clock.
CREATE FUNCTION kanal.hourly_partitions_ensure(lo timestamptz, hi timestamptz)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kept    timestamptz;
    m       timestamp;     -- month start, UTC wall clock
    last    timestamp;
    m_from  timestamptz;
    m_to    timestamptz;
    part    text;
    made    integer := 0;
BEGIN
    IF lo IS NULL OR hi IS NULL OR hi < lo OR lo = '-infinity' OR hi = 'infinity' THEN
        RAISE EXCEPTION 'hourly_partitions_ensure: lo and hi must be finite, lo <= hi (got % and %)', lo, hi
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM set_config('lock_timeout', '1s', true);
    -- Serializes with another ensure and with retention; flushes go on.
    LOCK TABLE ONLY kanal.usage_hourly IN SHARE UPDATE EXCLUSIVE MODE;
    SELECT r.kept_from INTO kept FROM kanal.hourly_retention r;
    IF lo < kept THEN
        lo := kept;
    END IF;
    IF hi < lo THEN
        RETURN 0;
    END IF;
    m := date_trunc('month', lo AT TIME ZONE 'UTC');
    last := date_trunc('month', hi AT TIME ZONE 'UTC');
    IF last > m + interval '25 years' THEN
        RAISE EXCEPTION 'hourly_partitions_ensure: % to % is more than 25 years of months', lo, hi
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WHILE m <= last LOOP
        part := 'usage_hourly_' || to_char(m, 'YYYYMM');
        m_from := m AT TIME ZONE 'UTC';
        m_to := (m + interval '1 month') AT TIME ZONE 'UTC';
        IF to_regclass('kanal.' || part) IS NULL THEN
            EXECUTE format('CREATE TABLE kanal.%I (LIKE kanal.usage_hourly'
                           ' INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)'
                           ' WITH (fillfactor = 80)', part);
            -- The default partition is locked first, so no flush can put
            -- a row of this month there between the move and the attach.
            LOCK TABLE kanal.usage_hourly_default IN ACCESS EXCLUSIVE MODE;
            EXECUTE format('WITH moved AS (DELETE FROM kanal.usage_hourly_default'
                           ' WHERE bucket >= $1 AND bucket < $2 RETURNING *)'
                           ' INSERT INTO kanal.%I SELECT * FROM moved', part)
                USING m_from, m_to;
            EXECUTE format('ALTER TABLE kanal.usage_hourly ATTACH PARTITION kanal.%I'
                           ' FOR VALUES FROM (%L) TO (%L)', part, m_from, m_to);
            EXECUTE format('COMMENT ON TABLE kanal.%I IS %L', part,
                           'usage_hourly for the UTC month ' || to_char(m, 'YYYY-MM')
                           || '; made by kanal.hourly_partitions_ensure.');
            made := made + 1;
        END IF;
        m := m + interval '1 month';
    END LOOP;
    RETURN made;
END
$$;

COMMENT ON FUNCTION kanal.hourly_partitions_ensure(timestamptz, timestamptz) IS
    'Makes the usage_hourly partitions of every UTC month from lo to hi (not before kept_from); returns how many it made.';

-- Drops the hourly partitions whose whole month ended hourly_days days or
-- more before now(), raising kept_from to the end of the last one dropped;
-- the daily and monthly tiers keep their counts. NULL hourly_days takes the
-- one last applied (400 if none). dry_run only lists. One row per month
-- dropped (or that would be), oldest first.
CREATE FUNCTION kanal.hourly_retention_apply(hourly_days integer DEFAULT NULL,
                                             dry_run boolean DEFAULT false)
RETURNS TABLE (partition_name text, range_from timestamptz, range_to timestamptz,
               rows_dropped bigint, dropped boolean)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    days     integer := hourly_days;
    cutoff   timestamptz;
    kept     timestamptz;
    p        record;
BEGIN
    IF days IS NULL THEN
        SELECT coalesce(r.hourly_days, 400) INTO days FROM kanal.hourly_retention r;
    END IF;
    IF days < 1 OR days > 36500 THEN
        RAISE EXCEPTION 'hourly_retention_apply: hourly_days must be 1..36500, not %', days
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    cutoff := now() - make_interval(days => days);
    PERFORM set_config('lock_timeout', '1s', true);
    -- The lock only when there is a month to drop: a daily run with
    -- nothing to do holds no flush up.
    IF NOT dry_run AND EXISTS (
        SELECT 1
          FROM pg_catalog.pg_inherits i
          JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'kanal.usage_hourly'::regclass
           AND c.relname ~ '^usage_hourly_[0-9]{6}$'
           AND ((to_date(substr(c.relname, 14), 'YYYYMM') + interval '1 month')::timestamp
                AT TIME ZONE 'UTC') <= cutoff) THEN
        -- Waits for the flushes in progress and holds new ones until commit.
        LOCK TABLE ONLY kanal.usage_hourly IN ACCESS EXCLUSIVE MODE;
    END IF;
    FOR p IN
        SELECT c.relname::text AS name,
               to_date(substr(c.relname, 14), 'YYYYMM')::timestamp
                   AT TIME ZONE 'UTC' AS m_from
          FROM pg_catalog.pg_inherits i
          JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'kanal.usage_hourly'::regclass
           AND c.relname ~ '^usage_hourly_[0-9]{6}$'
         ORDER BY c.relname
    LOOP
        range_from := p.m_from;
        range_to := (p.m_from AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC';
        EXIT WHEN range_to > cutoff;
        partition_name := p.name;
        EXECUTE format('SELECT count(*) FROM kanal.%I', p.name) INTO rows_dropped;
        dropped := NOT dry_run;
        IF NOT dry_run THEN
            EXECUTE format('ALTER TABLE kanal.usage_hourly DETACH PARTITION kanal.%I', p.name);
            EXECUTE format('DROP TABLE kanal.%I', p.name);
            kept := range_to;
        END IF;
        RETURN NEXT;
    END LOOP;
    IF NOT dry_run THEN
        UPDATE kanal.hourly_retention r
           SET kept_from = greatest(r.kept_from, coalesce(kept, r.kept_from)),
               hourly_days = days,
               applied_at = now();
        -- Rows of dropped months that met no partition go the same way.
        DELETE FROM kanal.usage_hourly_default d
         USING kanal.hourly_retention r
         WHERE d.bucket < r.kept_from;
    END IF;
END
$$;

COMMENT ON FUNCTION kanal.hourly_retention_apply(integer, boolean) IS
    'Drops whole usage_hourly months that ended hourly_days (default: as last applied, else 400) before now(); dry_run lists them only.';

-- Partitions for the months the old table holds, and two ahead. Hours
-- more than 20 years back (a clock that was wrong when they were counted)
-- get no partition of their own: the default partition keeps them.
SELECT kanal.hourly_partitions_ensure(
    greatest(coalesce((SELECT min(bucket) FROM kanal.usage_hourly_unpartitioned),
                      now()),
             now() - interval '20 years'),
    now() + interval '2 months');

INSERT INTO kanal.usage_hourly
SELECT * FROM kanal.usage_hourly_unpartitioned;

INSERT INTO kanal.usage_daily
SELECT (bucket AT TIME ZONE 'Asia/Jakarta')::date,
       service_code, channel, region_code, outcome, assisted,
       sum(events), sum(duration_ms_sum), sum(duration_events)
  FROM kanal.usage_hourly_unpartitioned
 GROUP BY 1, 2, 3, 4, 5, 6;

INSERT INTO kanal.usage_monthly
SELECT date_trunc('month', bucket AT TIME ZONE 'Asia/Jakarta')::date,
       service_code, channel, region_code, outcome, assisted,
       sum(events), sum(duration_ms_sum), sum(duration_events)
  FROM kanal.usage_hourly_unpartitioned
 GROUP BY 1, 2, 3, 4, 5, 6;

-- The views, now on the tiers. Same columns, same formulas, same rows
-- (003 and 004 explain them); the day or month is a column of the tier, so
-- "WHERE month = ..." and region prefixes are index scans.
CREATE OR REPLACE VIEW kanal.digital_adoption_daily AS
WITH cell AS (
    SELECT u.day,
           u.service_code,
           u.region_code,
           sum(u.events) FILTER (WHERE c.mode = 'digital') AS digital_events,
           sum(u.events) FILTER (WHERE c.mode = 'manual') AS manual_events,
           sum(u.events) FILTER (WHERE u.assisted) AS assisted_events,
           sum(u.events) FILTER (WHERE u.outcome = 'completed') AS completed_events,
           sum(u.events) FILTER (WHERE u.outcome = 'completed' AND c.mode = 'digital') AS completed_digital,
           sum(u.events) FILTER (WHERE u.outcome = 'completed' AND c.mode = 'digital'
                                       AND NOT u.assisted) AS completed_self_service,
           sum(u.events) FILTER (WHERE u.outcome IN ('completed', 'abandoned', 'failed')) AS concluded_events,
           sum(u.duration_ms_sum) FILTER (WHERE c.mode = 'digital') AS duration_digital_ms,
           sum(u.duration_events) FILTER (WHERE c.mode = 'digital') AS duration_digital_events,
           sum(u.duration_ms_sum) FILTER (WHERE c.mode = 'manual') AS duration_manual_ms,
           sum(u.duration_events) FILTER (WHERE c.mode = 'manual') AS duration_manual_events
      FROM kanal.usage_daily u
      LEFT JOIN kanal.channel c ON c.code = u.channel
     GROUP BY 1, 2, 3
)
SELECT day,
       service_code,
       region_code,
       coalesce(digital_events, 0)::bigint   AS digital_events,
       coalesce(manual_events, 0)::bigint    AS manual_events,
       coalesce(assisted_events, 0)::bigint  AS assisted_events,
       coalesce(completed_events, 0)::bigint AS completed_events,
       coalesce(completed_digital, 0) / nullif(completed_events, 0)      AS digital_take_up,
       coalesce(completed_self_service, 0) / nullif(completed_events, 0) AS self_service_rate,
       coalesce(completed_events, 0) / nullif(concluded_events, 0)       AS completion_rate,
       duration_digital_ms / nullif(duration_digital_events, 0)          AS mean_duration_digital_ms,
       duration_manual_ms / nullif(duration_manual_events, 0)            AS mean_duration_manual_ms
  FROM cell;

CREATE OR REPLACE VIEW kanal.digital_adoption_monthly AS
WITH cell AS (
    SELECT u.month,
           u.service_code,
           u.region_code,
           sum(u.events) FILTER (WHERE c.mode = 'digital') AS digital_events,
           sum(u.events) FILTER (WHERE c.mode = 'manual') AS manual_events,
           sum(u.events) FILTER (WHERE u.assisted) AS assisted_events,
           sum(u.events) FILTER (WHERE u.outcome = 'completed') AS completed_events,
           sum(u.events) FILTER (WHERE u.outcome = 'completed' AND c.mode = 'digital') AS completed_digital,
           sum(u.events) FILTER (WHERE u.outcome = 'completed' AND c.mode = 'digital'
                                       AND NOT u.assisted) AS completed_self_service,
           sum(u.events) FILTER (WHERE u.outcome IN ('completed', 'abandoned', 'failed')) AS concluded_events,
           sum(u.duration_ms_sum) FILTER (WHERE c.mode = 'digital') AS duration_digital_ms,
           sum(u.duration_events) FILTER (WHERE c.mode = 'digital') AS duration_digital_events,
           sum(u.duration_ms_sum) FILTER (WHERE c.mode = 'manual') AS duration_manual_ms,
           sum(u.duration_events) FILTER (WHERE c.mode = 'manual') AS duration_manual_events
      FROM kanal.usage_monthly u
      LEFT JOIN kanal.channel c ON c.code = u.channel
     GROUP BY 1, 2, 3
)
SELECT month,
       service_code,
       region_code,
       coalesce(digital_events, 0)::bigint   AS digital_events,
       coalesce(manual_events, 0)::bigint    AS manual_events,
       coalesce(assisted_events, 0)::bigint  AS assisted_events,
       coalesce(completed_events, 0)::bigint AS completed_events,
       coalesce(completed_digital, 0) / nullif(completed_events, 0)      AS digital_take_up,
       coalesce(completed_self_service, 0) / nullif(completed_events, 0) AS self_service_rate,
       coalesce(completed_events, 0) / nullif(concluded_events, 0)       AS completion_rate,
       duration_digital_ms / nullif(duration_digital_events, 0)          AS mean_duration_digital_ms,
       duration_manual_ms / nullif(duration_manual_events, 0)            AS mean_duration_manual_ms
  FROM cell;

CREATE OR REPLACE VIEW kanal.published_adoption_monthly AS
WITH cell AS (
    SELECT u.month,
           substring(u.region_code FROM '^([0-9]+[.][0-9]+[.][0-9]+)([.]|$)') AS kecamatan_code,
           u.service_code,
           sum(u.events) AS events,
           sum(u.events) FILTER (WHERE c.mode = 'digital') AS digital_events,
           sum(u.events) FILTER (WHERE c.mode = 'manual') AS manual_events,
           sum(u.events) FILTER (WHERE u.assisted) AS assisted_events,
           sum(u.events) FILTER (WHERE u.outcome = 'completed') AS completed_events,
           sum(u.events) FILTER (WHERE u.outcome = 'completed' AND c.mode = 'digital') AS completed_digital,
           sum(u.events) FILTER (WHERE u.outcome = 'completed' AND c.mode = 'digital'
                                       AND NOT u.assisted) AS completed_self_service,
           sum(u.events) FILTER (WHERE u.outcome IN ('completed', 'abandoned', 'failed')) AS concluded_events,
           sum(u.duration_ms_sum) FILTER (WHERE c.mode = 'digital') AS duration_digital_ms,
           sum(u.duration_events) FILTER (WHERE c.mode = 'digital') AS duration_digital_events,
           sum(u.duration_ms_sum) FILTER (WHERE c.mode = 'manual') AS duration_manual_ms,
           sum(u.duration_events) FILTER (WHERE c.mode = 'manual') AS duration_manual_events
      FROM kanal.usage_monthly u
      LEFT JOIN kanal.channel c ON c.code = u.channel
     WHERE u.region_code ~ '^[0-9]+[.][0-9]+[.][0-9]+([.]|$)'
     GROUP BY 1, 2, 3
), shown AS (
    SELECT cell.*, cell.events >= 10 AS ok
      FROM cell
)
SELECT s.month,
       s.kecamatan_code,
       r.name AS kecamatan_name,
       s.service_code,
       NOT s.ok AS suppressed,
       CASE WHEN s.ok THEN s.events::bigint END                          AS events,
       CASE WHEN s.ok THEN coalesce(s.digital_events, 0)::bigint END     AS digital_events,
       CASE WHEN s.ok THEN coalesce(s.manual_events, 0)::bigint END      AS manual_events,
       CASE WHEN s.ok THEN coalesce(s.assisted_events, 0)::bigint END    AS assisted_events,
       CASE WHEN s.ok THEN coalesce(s.completed_events, 0)::bigint END   AS completed_events,
       CASE WHEN s.ok THEN coalesce(s.completed_digital, 0) / nullif(s.completed_events, 0) END      AS digital_take_up,
       CASE WHEN s.ok THEN coalesce(s.completed_self_service, 0) / nullif(s.completed_events, 0) END AS self_service_rate,
       CASE WHEN s.ok THEN coalesce(s.completed_events, 0) / nullif(s.concluded_events, 0) END       AS completion_rate,
       CASE WHEN s.ok THEN s.duration_digital_ms / nullif(s.duration_digital_events, 0) END          AS mean_duration_digital_ms,
       CASE WHEN s.ok THEN s.duration_manual_ms / nullif(s.duration_manual_events, 0) END            AS mean_duration_manual_ms
  FROM shown s
  LEFT JOIN kanal.region r ON r.code = s.kecamatan_code AND r.level = 'kecamatan';

CREATE OR REPLACE VIEW kanal.adoption_counts_monthly AS
SELECT u.month,
       u.service_code,
       u.region_code,
       coalesce(sum(u.events) FILTER (WHERE c.mode = 'digital'), 0)::bigint AS digital_events,
       coalesce(sum(u.events) FILTER (WHERE c.mode = 'manual'), 0)::bigint AS manual_events,
       coalesce(sum(u.events) FILTER (WHERE u.assisted), 0)::bigint AS assisted_events,
       coalesce(sum(u.events) FILTER (WHERE u.outcome = 'completed'), 0)::bigint AS completed_events,
       coalesce(sum(u.events) FILTER (WHERE u.outcome = 'completed'
                                        AND c.mode = 'digital'), 0)::bigint AS completed_digital,
       coalesce(sum(u.events) FILTER (WHERE u.outcome = 'completed' AND c.mode = 'digital'
                                        AND NOT u.assisted), 0)::bigint AS completed_self_service,
       coalesce(sum(u.events) FILTER (WHERE u.outcome IN ('completed', 'abandoned',
                                                          'failed')), 0)::bigint AS concluded_events,
       coalesce(sum(u.duration_ms_sum) FILTER (WHERE c.mode = 'digital'), 0)::bigint AS duration_digital_ms,
       coalesce(sum(u.duration_events) FILTER (WHERE c.mode = 'digital'), 0)::bigint AS duration_digital_events,
       coalesce(sum(u.duration_ms_sum) FILTER (WHERE c.mode = 'manual'), 0)::bigint AS duration_manual_ms,
       coalesce(sum(u.duration_events) FILTER (WHERE c.mode = 'manual'), 0)::bigint AS duration_manual_events
  FROM kanal.usage_monthly u
  LEFT JOIN kanal.channel c ON c.code = u.channel
 GROUP BY 1, 2, 3;

-- Unchanged text: re-created so that it reads the new usage_hourly.
CREATE OR REPLACE VIEW kanal.usage_local_hourly AS
SELECT (u.bucket AT TIME ZONE 'Asia/Jakarta')                             AS local_hour,
       (u.bucket AT TIME ZONE 'Asia/Jakarta')::date                       AS day,
       date_trunc('month', u.bucket AT TIME ZONE 'Asia/Jakarta')::date    AS month,
       u.service_code,
       u.channel,
       c.mode,
       u.region_code,
       u.outcome,
       u.assisted,
       u.events,
       u.duration_ms_sum,
       u.duration_events
  FROM kanal.usage_hourly u
  LEFT JOIN kanal.channel c ON c.code = u.channel;

DROP TABLE kanal.usage_hourly_unpartitioned;

-- kanald adds to every tier (SELECT for ON CONFLICT DO UPDATE, as in 001),
-- reads where the hourly tier begins, and makes and drops partitions only
-- through the two functions. No DELETE or TRUNCATE on any tier.
GRANT SELECT, INSERT, UPDATE ON kanal.usage_hourly, kanal.usage_daily,
    kanal.usage_monthly TO kanal_ingest;
GRANT SELECT ON kanal.hourly_retention TO kanal_ingest;
-- Its row count is a metric (normally 0).
GRANT SELECT ON kanal.usage_hourly_default TO kanal_ingest;
REVOKE ALL ON FUNCTION kanal.hourly_partitions_ensure(timestamptz, timestamptz),
    kanal.hourly_retention_apply(integer, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kanal.hourly_partitions_ensure(timestamptz, timestamptz),
    kanal.hourly_retention_apply(integer, boolean) TO kanal_ingest;
