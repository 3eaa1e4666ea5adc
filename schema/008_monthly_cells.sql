-- SPDX-License-Identifier: Apache-2.0
--
-- 008_monthly_cells: the monthly indicators without aggregating at query
-- time. usage_monthly keeps every key (service, channel, region, outcome,
-- assisted) per local month, about 280,000 rows a month for a province:
-- the monthly views summed some 14,000 of them for one city's month and
-- the report's twelve-month trend 170,000, so bench/analyst measured 33
-- ms, 81 ms and 1.2 s where the targets are 50 ms and 1 s. A cell is what
-- those views group by, (month, service_code, region_code), with each
-- count they sum already summed: 28 services x 810 regions is at most
-- 22,680 cells a month, and a city's month is some 840 of them.
--
--   kanal.usage_monthly_cell  per local (WIB) month, service and region:
--                             the counts of digital_adoption_monthly and
--                             adoption_counts_monthly; never dropped
--
-- kanald adds to it in the flush transaction, like the other tiers, from
-- the same staging rows (ledger duplicates summed out the same way), with
-- the channel's mode from kanal.channel at the time of writing. So a
-- channel's mode is now fixed for the months already counted: kanal.channel
-- is reference data that a migration changes, and one that changed a mode
-- would have to rebuild the cells from usage_monthly
-- (kanal.usage_monthly_cell_from_tier, below, is that rebuild).
--
-- digital_adoption_monthly, published_adoption_monthly and
-- adoption_counts_monthly read the cells and return the same rows as
-- before (the counts were sums of bigints, the rates numeric divisions:
-- the same values, checked by md5 in test_pg_tiers and bench/analyst).
-- The daily view stays on usage_daily.

CREATE TABLE kanal.usage_monthly_cell (
    month                   date   NOT NULL,
    service_code            text   NOT NULL,
    region_code             text   NOT NULL,
    events                  bigint NOT NULL,
    digital_events          bigint NOT NULL,
    manual_events           bigint NOT NULL,
    assisted_events         bigint NOT NULL,
    completed_events        bigint NOT NULL,
    completed_digital       bigint NOT NULL,
    completed_self_service  bigint NOT NULL,
    concluded_events        bigint NOT NULL,
    duration_digital_ms     bigint NOT NULL,
    duration_digital_events bigint NOT NULL,
    duration_manual_ms      bigint NOT NULL,
    duration_manual_events  bigint NOT NULL,
    PRIMARY KEY (month, service_code, region_code)
) WITH (fillfactor = 80);

-- As on usage_monthly: a city's month (month, then the region prefix), one
-- region's months, and the kecamatan expression of
-- published_adoption_monthly.
CREATE INDEX usage_monthly_cell_month_region ON kanal.usage_monthly_cell
    (month, region_code text_pattern_ops);
CREATE INDEX usage_monthly_cell_region ON kanal.usage_monthly_cell
    (region_code text_pattern_ops, month);
CREATE INDEX usage_monthly_cell_kecamatan ON kanal.usage_monthly_cell
    ((substring(region_code FROM '^([0-9]+[.][0-9]+[.][0-9]+)([.]|$)')), month);

COMMENT ON TABLE kanal.usage_monthly_cell IS
    'Monthly indicator counts per local (WIB) month, service and region: usage_monthly summed over channel, outcome and assisted, with the channel''s mode (kanal.channel) at writing. Written by kanald in the flush transaction; never dropped.';

-- The cells as computed from usage_monthly: this migration fills the table
-- with it, tests compare the two, and an operator can rebuild from it.
-- Owner only.
CREATE VIEW kanal.usage_monthly_cell_from_tier AS
SELECT u.month,
       u.service_code,
       u.region_code,
       sum(u.events)::bigint AS events,
       coalesce(sum(u.events) FILTER (WHERE c.mode = 'digital'), 0)::bigint AS digital_events,
       coalesce(sum(u.events) FILTER (WHERE c.mode = 'manual'), 0)::bigint AS manual_events,
       coalesce(sum(u.events) FILTER (WHERE u.assisted), 0)::bigint AS assisted_events,
       coalesce(sum(u.events) FILTER (WHERE u.outcome = 'completed'), 0)::bigint AS completed_events,
       coalesce(sum(u.events) FILTER (WHERE u.outcome = 'completed' AND c.mode = 'digital'), 0)::bigint AS completed_digital,
       coalesce(sum(u.events) FILTER (WHERE u.outcome = 'completed' AND c.mode = 'digital' AND NOT u.assisted), 0)::bigint AS completed_self_service,
       coalesce(sum(u.events) FILTER (WHERE u.outcome IN ('completed', 'abandoned', 'failed')), 0)::bigint AS concluded_events,
       coalesce(sum(u.duration_ms_sum) FILTER (WHERE c.mode = 'digital'), 0)::bigint AS duration_digital_ms,
       coalesce(sum(u.duration_events) FILTER (WHERE c.mode = 'digital'), 0)::bigint AS duration_digital_events,
       coalesce(sum(u.duration_ms_sum) FILTER (WHERE c.mode = 'manual'), 0)::bigint AS duration_manual_ms,
       coalesce(sum(u.duration_events) FILTER (WHERE c.mode = 'manual'), 0)::bigint AS duration_manual_events
  FROM kanal.usage_monthly u
  LEFT JOIN kanal.channel c ON c.code = u.channel
 GROUP BY 1, 2, 3
HAVING sum(u.events) > 0;

INSERT INTO kanal.usage_monthly_cell SELECT * FROM kanal.usage_monthly_cell_from_tier;

CREATE OR REPLACE VIEW kanal.digital_adoption_monthly AS
SELECT month,
       service_code,
       region_code,
       digital_events,
       manual_events,
       assisted_events,
       completed_events,
       completed_digital::numeric / nullif(completed_events, 0)         AS digital_take_up,
       completed_self_service::numeric / nullif(completed_events, 0)    AS self_service_rate,
       completed_events::numeric / nullif(concluded_events, 0)          AS completion_rate,
       duration_digital_ms::numeric / nullif(duration_digital_events, 0) AS mean_duration_digital_ms,
       duration_manual_ms::numeric / nullif(duration_manual_events, 0)   AS mean_duration_manual_ms
  FROM kanal.usage_monthly_cell;

CREATE OR REPLACE VIEW kanal.published_adoption_monthly AS
WITH cell AS (
    SELECT u.month,
           substring(u.region_code FROM '^([0-9]+[.][0-9]+[.][0-9]+)([.]|$)') AS kecamatan_code,
           u.service_code,
           sum(u.events) AS events,
           sum(u.digital_events) AS digital_events,
           sum(u.manual_events) AS manual_events,
           sum(u.assisted_events) AS assisted_events,
           sum(u.completed_events) AS completed_events,
           sum(u.completed_digital) AS completed_digital,
           sum(u.completed_self_service) AS completed_self_service,
           sum(u.concluded_events) AS concluded_events,
           sum(u.duration_digital_ms) AS duration_digital_ms,
           sum(u.duration_digital_events) AS duration_digital_events,
           sum(u.duration_manual_ms) AS duration_manual_ms,
           sum(u.duration_manual_events) AS duration_manual_events
      FROM kanal.usage_monthly_cell u
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
SELECT month,
       service_code,
       region_code,
       digital_events,
       manual_events,
       assisted_events,
       completed_events,
       completed_digital,
       completed_self_service,
       concluded_events,
       duration_digital_ms,
       duration_digital_events,
       duration_manual_ms,
       duration_manual_events
  FROM kanal.usage_monthly_cell;

GRANT SELECT, INSERT, UPDATE ON kanal.usage_monthly_cell TO kanal_ingest;
-- The flush joins its staging rows to the channels' modes.
GRANT SELECT ON kanal.channel TO kanal_ingest;
