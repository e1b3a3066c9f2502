-- relo store, schema version 9, PostgreSQL: the frontier of each checkpoint. `frontier` holds
-- the roots of the perfect subtrees that cover the checkpoint's entries, largest first,
-- as relo-evidence's `Frontier::to_text` writes them (`v1 <size> <hex> ...`), so the
-- next checkpoint extends it with the entries after it instead of reading the whole log.
-- It is NULL in checkpoints stored before this version: the next checkpoint then reads
-- every entry, once. The store checks a frontier against its checkpoint's size and root
-- before extending it. Keep this file and ../sqlite/0009_checkpoint_frontier.sql in step.
ALTER TABLE checkpoints ADD COLUMN frontier TEXT;
