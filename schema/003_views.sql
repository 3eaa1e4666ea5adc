-- SPDX-License-Identifier: Apache-2.0
--
-- 003_views: the analyst indicators. Days and months are local (Asia/Jakarta,
-- WIB = UTC+7, so a local day starts at 17:00 UTC the day before) whatever
-- the session's TimeZone: bucket AT TIME ZONE 'Asia/Jakarta' gives the local
-- wall-clock time, and the date is taken from that.
--
-- Formulas (docs/schema.md has the same text for analysts):
--   digital_events    events on a channel whose kanal.channel.mode is digital
--   manual_events     events on a channel whose mode is manual
--                     (a channel missing from kanal.channel counts as neither)
--   assisted_events   events done with help, every channel and outcome
--   completed_events  completed events, every channel
--   digital_take_up   completed digital (assisted included) / completed
--   self_service_rate completed digital and not assisted / completed
--   completion_rate   completed / (completed + abandoned + failed);
--                     unknown outcomes are left out of the denominator
--   mean_duration_*   duration_ms_sum / duration_events over digital or
--                     manual rows (events without a duration are not averaged)
-- A ratio whose denominator is 0 is NULL, never an error.
--
-- Each view aggregates usage_hourly itself, from sums of counts: averaging
-- daily ratios into a monthly one would weight quiet days like busy ones.

CREATE VIEW kanal.digital_adoption_daily AS
WITH cell AS (
    SELECT (u.bucket AT TIME ZONE 'Asia/Jakarta')::date AS day,
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
      FROM kanal.usage_hourly u
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

COMMENT ON VIEW kanal.digital_adoption_daily IS
    'Indicators per local (WIB) day, service_code and region_code as sent. Ratios NULL when the denominator is 0.';

CREATE VIEW kanal.digital_adoption_monthly AS
WITH cell AS (
    SELECT date_trunc('month', u.bucket AT TIME ZONE 'Asia/Jakarta')::date AS month,
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
      FROM kanal.usage_hourly u
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

COMMENT ON VIEW kanal.digital_adoption_monthly IS
    'Indicators per local (WIB) month (first day), service_code and region_code as sent.';

-- Open data: region codes rolled up to their kecamatan (first three parts,
-- 32.73.01.1001 -> 32.73.01). Codes with fewer parts (32, 32.73) name no
-- kecamatan and are left out. A cell (month, kecamatan, service) with fewer
-- than 10 events in all has every count and indicator NULL: small cells
-- could identify a household. The threshold is applied after the roll-up,
-- and there are no total rows, so a suppressed cell cannot be recovered by
-- subtracting the cells that are shown.
CREATE VIEW kanal.published_adoption_monthly AS
WITH cell AS (
    SELECT date_trunc('month', u.bucket AT TIME ZONE 'Asia/Jakarta')::date AS month,
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
      FROM kanal.usage_hourly u
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

COMMENT ON VIEW kanal.published_adoption_monthly IS
    'Open data per local month, kecamatan and service; cells under 10 events are suppressed (all counts and indicators NULL).';

-- The views run with their owner's rights, so the analyst reads them without
-- any grant on usage_hourly.
GRANT SELECT ON kanal.digital_adoption_daily,
                kanal.digital_adoption_monthly,
                kanal.published_adoption_monthly TO kanal_analyst;
