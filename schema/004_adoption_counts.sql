-- SPDX-License-Identifier: Apache-2.0
--
-- 004_adoption_counts: the numerators and denominators behind
-- digital_adoption_monthly, so that its indicators can be rolled up over
-- services or regions exactly. A ratio cannot be averaged (a quiet service
-- would weigh as much as a busy one) and the mean durations cannot be
-- weighted without the count of events that carried a duration: sum these
-- columns over any grouping, then divide as the comments below say.
-- `kanalctl report` reads this view; analysts may too.
--
-- One row per local (WIB) month, service_code and region_code as sent, the
-- same rows as digital_adoption_monthly. Every column is a bigint count,
-- 0 rather than NULL when nothing matched:
--   digital_take_up    = completed_digital / completed_events
--   self_service_rate  = completed_self_service / completed_events
--   completion_rate    = completed_events / concluded_events
--   mean_duration_digital_ms = duration_digital_ms / duration_digital_events
--   mean_duration_manual_ms  = duration_manual_ms / duration_manual_events

CREATE VIEW kanal.adoption_counts_monthly AS
SELECT date_trunc('month', u.bucket AT TIME ZONE 'Asia/Jakarta')::date AS month,
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
  FROM kanal.usage_hourly u
  LEFT JOIN kanal.channel c ON c.code = u.channel
 GROUP BY 1, 2, 3;

COMMENT ON VIEW kanal.adoption_counts_monthly IS
    'Counts behind digital_adoption_monthly per local (WIB) month, service_code and region_code: sum over any grouping, then divide.';

GRANT SELECT ON kanal.adoption_counts_monthly TO kanal_analyst;
