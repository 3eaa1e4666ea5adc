-- SPDX-License-Identifier: Apache-2.0
--
-- 001_core: the tables kanald writes (usage_hourly, collector_checkpoint)
-- and the two roles. Applied once by `kanalctl migrate`, in one transaction,
-- as the database owner; never edit this file after it has been applied
-- anywhere: add a new numbered migration instead (the migrate module refuses
-- a file whose checksum changed).
--
-- Nothing here refers to the reference tables of 002: ingest must never
-- block on metadata, so usage_hourly has no foreign keys and accepts any
-- service, channel or region code the daemon validated.

-- migrate creates the schema before it applies anything; IF NOT EXISTS keeps
-- this file usable on its own with psql -f.
CREATE SCHEMA IF NOT EXISTS kanal;

-- One row per (UTC hour, service, channel, region, outcome, assisted). Counts
-- only ever grow: kanald adds to them with INSERT .. ON CONFLICT DO UPDATE.
-- fillfactor leaves room on each page so that those updates of the current
-- hour stay HOT (no key column changes, so no index update).
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
    -- bucket AT TIME ZONE 'UTC' is immutable; date_trunc on a timestamptz
    -- would depend on the session's TimeZone.
    CONSTRAINT usage_hourly_bucket_is_utc_hour
        CHECK (date_trunc('hour', bucket AT TIME ZONE 'UTC') = bucket AT TIME ZONE 'UTC'),
    CONSTRAINT usage_hourly_outcome_known
        CHECK (outcome IN ('completed', 'abandoned', 'failed', 'unknown')),
    CONSTRAINT usage_hourly_counts_valid
        CHECK (events > 0 AND duration_ms_sum >= 0
               AND duration_events >= 0 AND duration_events <= events)
) WITH (fillfactor = 80);

COMMENT ON TABLE kanal.usage_hourly IS
    'Hourly event counts written by kanald. bucket is the UTC hour; no foreign keys by design.';
COMMENT ON COLUMN kanal.usage_hourly.bucket IS 'Start of the UTC hour the events occurred in.';
COMMENT ON COLUMN kanal.usage_hourly.channel IS 'web, mobile_app, kiosk, chat, partner, counter, phone, outreach or paper; digital or manual per kanal.channel.mode.';
COMMENT ON COLUMN kanal.usage_hourly.region_code IS 'Kemendagri code as sent: 32, 32.73, 32.73.01 or 32.73.01.1001.';
COMMENT ON COLUMN kanal.usage_hourly.outcome IS 'completed, abandoned, failed or unknown.';
COMMENT ON COLUMN kanal.usage_hourly.assisted IS 'Done with help from staff or a community volunteer.';
COMMENT ON COLUMN kanal.usage_hourly.duration_ms_sum IS 'Sum of duration_ms over the events that carried one.';
COMMENT ON COLUMN kanal.usage_hourly.duration_events IS 'Events that carried a duration (duration_ms > 0).';

-- Where each kanald instance has got to in its own write-ahead log. Updated
-- in the same transaction as the counts, so after a crash the WAL is
-- replayed from exactly here (each event counted once).
CREATE TABLE kanal.collector_checkpoint (
    collector_id text        PRIMARY KEY,
    wal_position bigint      NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE kanal.collector_checkpoint IS
    'Per kanald instance: WAL position whose events are all counted in usage_hourly.';

-- Roles are cluster-wide while migrations are per database: create them only
-- when missing so that a second database in the same cluster migrates
-- cleanly. Two databases migrating at the same moment can both see a role
-- missing; the loser's CREATE ROLE then fails and is ignored. The comment is
-- set only by the creator: COMMENT ON ROLE writes a shared catalog row, and
-- two databases updating it at once would fail with "tuple concurrently
-- updated".
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'kanal_ingest') THEN
        BEGIN
            CREATE ROLE kanal_ingest LOGIN;
            COMMENT ON ROLE kanal_ingest IS
                'kanald: writes kanal.usage_hourly and kanal.collector_checkpoint.';
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'kanal_analyst') THEN
        BEGIN
            CREATE ROLE kanal_analyst LOGIN;
            COMMENT ON ROLE kanal_analyst IS
                'Read-only: kanal views and reference tables.';
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
END
$$;

-- The database name differs per installation, hence dynamic SQL. TEMPORARY
-- is for kanald's COPY staging table; PUBLIC usually has both already, but
-- a hardened cluster may have revoked them.
DO $$
BEGIN
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO kanal_ingest',
                   current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO kanal_analyst',
                   current_database());
END
$$;

GRANT USAGE ON SCHEMA kanal TO kanal_ingest, kanal_analyst;

-- SELECT is needed by INSERT .. ON CONFLICT DO UPDATE (it reads the existing
-- row) and to read a checkpoint back after a commit of unknown outcome. No
-- DELETE or TRUNCATE: counts only ever grow.
GRANT SELECT, INSERT, UPDATE ON kanal.usage_hourly TO kanal_ingest;
GRANT SELECT, INSERT, UPDATE ON kanal.collector_checkpoint TO kanal_ingest;
