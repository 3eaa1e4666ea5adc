-- SPDX-License-Identifier: Apache-2.0
--
-- 009_drop_usage_monthly: the monthly cells (008) are the monthly tier.
--
-- Since 008 no view reads kanal.usage_monthly: the monthly views read
-- kanal.usage_monthly_cell, the daily view kanal.usage_daily. Yet every
-- flush still upserted usage_monthly at the full key (service, channel,
-- region, outcome, assisted), which in a flush of events from the last hour
-- is as many rows as the hourly and daily upserts each: bench/run (a) fell
-- from 1.54 M to 1.27 M acknowledged events/s with the four tier upserts
-- on the two cores that kanald ingests on, and the monthly one bought
-- nothing. A month at the full key is the sum of its days in usage_daily
-- (28 to 31 rows a key; kept for ever, like the cells), so nothing is lost.
--
-- kanal.usage_monthly_cell_from_tier, the cells as computed from a tier
-- (what 008 filled the cells with, what the tests compare them with, and an
-- operator's rebuild), now sums usage_daily by local month.

CREATE OR REPLACE VIEW kanal.usage_monthly_cell_from_tier AS
SELECT date_trunc('month', u.day::timestamp)::date AS month,
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
  FROM kanal.usage_daily u
  LEFT JOIN kanal.channel c ON c.code = u.channel
 GROUP BY 1, 2, 3
HAVING sum(u.events) > 0;

COMMENT ON TABLE kanal.usage_monthly_cell IS
    'Monthly indicator counts per local (WIB) month, service and region: usage_daily summed by month over channel, outcome and assisted, with the channel''s mode (kanal.channel) at writing. Written by kanald in the flush transaction; never dropped.';

DROP TABLE kanal.usage_monthly;
