-- SPDX-License-Identifier: Apache-2.0
--
-- 005_usage_local_hourly: the hourly counts for analysts, in local time.
--
-- The views of 003 are per day or month, service and region; they cannot
-- say "completion on the web versus at the counter" or "which hours are
-- busiest at the counters", and a group of their rows can only be
-- recombined through the denominators they show. This view is
-- kanal.usage_hourly itself with the hour given as WIB wall-clock time
-- (Asia/Jakarta, whatever the session's TimeZone), the local day and month
-- it falls in, and the channel's mode (digital, manual, or NULL for a
-- channel missing from kanal.channel). Every count is there, unsuppressed:
-- it is for the city's analysts (kanal_analyst), like the 003 views; open
-- data comes from published_adoption_monthly only.

CREATE VIEW kanal.usage_local_hourly AS
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

COMMENT ON VIEW kanal.usage_local_hourly IS
    'usage_hourly with the local (WIB) hour, day and month and the channel mode; unsuppressed counts for analysts.';
COMMENT ON COLUMN kanal.usage_local_hourly.local_hour IS
    'Start of the hour as WIB wall-clock time (timestamp without time zone).';

GRANT SELECT ON kanal.usage_local_hourly TO kanal_analyst;
