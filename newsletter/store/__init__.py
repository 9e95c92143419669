"""The store: the engine and schema upgrades (db, with read-only sessions that take no
write lock on SQLite), the schema as Core tables (tables) with the typed ORM models mapped
onto them (models) and their Alembic migrations, the audience of a day, send runs, the
suppression list, and leases on the database's clock (leases).

May import: newsletter.errors, newsletter.settings. Nothing above it: every other floor
reads and writes through these tables and models.
"""
