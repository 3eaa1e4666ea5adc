-- SPDX-License-Identifier: Apache-2.0
--
-- 006_batch_ledger: exactly once across a fleet of kanald instances.
--
-- Each kanald remembers the batches it took (its WAL and batches.idx), so a
-- retry that reaches the same instance is answered "duplicate" and not
-- counted again. Behind a load balancer a retry can reach another
-- instance, and a dead instance's WAL can be adopted by another
-- (`kanalctl wal adopt`). The ledger is the fleet's shared memory of what
-- was counted: every flush inserts one row per batch it carries, in the
-- same transaction as the counts and the checkpoint, and a batch whose row
-- another transaction already committed is taken out of that flush before
-- the counts are upserted (docs/fleet.md).
--
-- Expiry without DELETE. The ledger is a ring of four LIST partitions,
-- slot = epoch % 4. kanal.batch_ledger_epoch holds the current epoch; an
-- epoch lasts a third of kanald's dedup-window (8 h for the default 24 h),
-- so a row lives at least three whole epochs (the window) and at most four
-- before its slot comes round again and is emptied with TRUNCATE: no dead
-- rows, no vacuum debt, whatever the rate. Expiry never looks at
-- first_seen or collector_id, so a row stamped by a clock far in the
-- future, or by a collector that no longer exists, cannot hold it up.
--
-- Concurrency (a transaction-scoped advisory lock, key 0x6b616e616c4c4447,
-- "kanalLDG"): a flush takes it shared before it reads the epoch; the
-- epoch advance takes it exclusive, so it waits for every flush that may
-- have used the old slot to commit, and no flush starts on the new slot
-- until the old one is complete. Within a slot, the primary key makes a
-- second insert of the same digest wait for the first transaction and then
-- see it; across slots, each flush looks the digests up in the other three
-- slots, whose rows were all committed before its epoch began. Rows are
-- inserted in digest order, so two flushes never wait on each other in a
-- cycle.
--
-- Also: kanal.collector_checkpoint learns which collectors were retired
-- (their WAL adopted by another), so a retired collector_id cannot come
-- back and write again.

CREATE TABLE kanal.batch_ledger (
    slot         smallint    NOT NULL,
    digest       uuid        NOT NULL,
    source       text        NOT NULL,
    first_seen   timestamptz NOT NULL DEFAULT now(),
    collector_id text        NOT NULL,
    PRIMARY KEY (digest, slot)
) PARTITION BY LIST (slot);

CREATE TABLE kanal.batch_ledger_0 PARTITION OF kanal.batch_ledger FOR VALUES IN (0);
CREATE TABLE kanal.batch_ledger_1 PARTITION OF kanal.batch_ledger FOR VALUES IN (1);
CREATE TABLE kanal.batch_ledger_2 PARTITION OF kanal.batch_ledger FOR VALUES IN (2);
CREATE TABLE kanal.batch_ledger_3 PARTITION OF kanal.batch_ledger FOR VALUES IN (3);

COMMENT ON TABLE kanal.batch_ledger IS
    'Batches counted in usage_hourly, one row each, for as long as the dedup window: a ring of 4 partitions by slot = epoch % 4, emptied by TRUNCATE when their slot comes round.';
COMMENT ON COLUMN kanal.batch_ledger.digest IS
    'First 16 bytes of SHA-256(source, NUL, batch_id): the same digest as kanald''s own batch memory.';
COMMENT ON COLUMN kanal.batch_ledger.source IS 'The source (token name) that sent the batch.';
COMMENT ON COLUMN kanal.batch_ledger.first_seen IS 'When it was counted (the server''s clock); for people, never used for expiry.';
COMMENT ON COLUMN kanal.batch_ledger.collector_id IS 'The kanald instance (or kanalctl wal adopt) whose flush counted it.';

CREATE TABLE kanal.batch_ledger_epoch (
    only_row   boolean     PRIMARY KEY DEFAULT true CHECK (only_row),
    epoch      bigint      NOT NULL CHECK (epoch >= 0),
    started_at timestamptz NOT NULL
);
INSERT INTO kanal.batch_ledger_epoch (epoch, started_at) VALUES (0, now());

COMMENT ON TABLE kanal.batch_ledger_epoch IS
    'The ledger''s current epoch (slot = epoch % 4) and when it began; advanced by kanald once a third of its dedup window has passed.';

ALTER TABLE kanal.collector_checkpoint
    ADD COLUMN retired_at timestamptz,
    ADD COLUMN retired_by text;

COMMENT ON COLUMN kanal.collector_checkpoint.retired_at IS
    'Set by kanalctl wal adopt: the collector''s WAL was counted by another, and kanald refuses to run under this collector_id again.';
COMMENT ON COLUMN kanal.collector_checkpoint.retired_by IS
    'Who adopted the WAL (kanalctl wal adopt, with the host it ran on).';

-- kanald inserts ledger rows and reads them back; it advances the epoch
-- (UPDATE) and empties the slot it enters (TRUNCATE on the four partitions
-- only: a token holder who could run SQL as kanal_ingest could already add
-- counts, and emptying the ledger only lets retries count twice).
GRANT SELECT, INSERT ON kanal.batch_ledger TO kanal_ingest;
GRANT SELECT, INSERT ON kanal.batch_ledger_0, kanal.batch_ledger_1,
    kanal.batch_ledger_2, kanal.batch_ledger_3 TO kanal_ingest;
GRANT TRUNCATE ON kanal.batch_ledger_0, kanal.batch_ledger_1,
    kanal.batch_ledger_2, kanal.batch_ledger_3 TO kanal_ingest;
GRANT SELECT, UPDATE ON kanal.batch_ledger_epoch TO kanal_ingest;
