-- What a sync run noticed besides its counts, e.g. a schema change.

ALTER TABLE sync_history ADD COLUMN notes VARCHAR;
