/* SPDX-License-Identifier: Apache-2.0 */
/*
 * retention: `kanalctl retention`, the operator's hand on the hourly tier
 * (schema/007_tiers.sql): makes the partitions of this month and the next
 * two, then drops the whole months of kanal.usage_hourly that ended
 * hourly_days or more ago (DETACH and DROP, never DELETE), through the
 * same SECURITY DEFINER functions kanald's daily run uses. The daily and
 * monthly tiers are never touched. --dry-run lists and changes nothing.
 */
#ifndef KANAL_RETENTION_H
#define KANAL_RETENTION_H

/* The subcommand: argv[0] is "retention". Exit 0, 1 failure, 2 usage. */
int retention_main(int argc, char **argv);

#endif
