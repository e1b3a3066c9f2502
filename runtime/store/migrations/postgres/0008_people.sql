-- relo store, schema version 8, PostgreSQL: people's signing keys, and the revision of the
-- people directory. With the server, people and roles live in the store (DESIGN §5): the
-- users table holds their roles, this table their public keys, by key id. A key is never
-- deleted, only revoked, so a signature can be traced to the key that made it. The single
-- row of `people_directory` exists once `relo serve` has imported `[[people]]`; from then
-- on the store, not relo.toml, says whose signature counts. Its revision grows with every
-- change to a user's roles, state or keys, so an instance reloads people only when they
-- changed. Keep this file and ../sqlite/0008_people.sql in step.
CREATE TABLE person_keys (
    key_id     TEXT PRIMARY KEY,
    user_name  TEXT NOT NULL REFERENCES users (name),
    public_key TEXT NOT NULL,
    added_by   TEXT NOT NULL,
    added_at   TEXT NOT NULL,
    revoked_by TEXT,
    revoked_at TEXT
);
CREATE INDEX person_keys_by_user ON person_keys (user_name);

CREATE TABLE people_directory (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    revision BIGINT NOT NULL
);
