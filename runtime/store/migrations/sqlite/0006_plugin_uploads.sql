-- relo store, schema version 6: who uploaded each plugin through the server, so that
-- nobody approves a plugin they uploaded (separation of duties). The first upload of a
-- digest is the one kept. Keep the SQLite and PostgreSQL files of this version in step.
CREATE TABLE plugin_uploads (
    digest      TEXT PRIMARY KEY REFERENCES plugins (digest),
    uploaded_by TEXT NOT NULL,
    uploaded_at TEXT NOT NULL
);
