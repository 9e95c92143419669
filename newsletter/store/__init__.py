"""The store: the engine and schema upgrades (db), the typed models and their Alembic
migrations, the audience of a day, send runs, and the suppression list.

May import: newsletter.errors, newsletter.settings. Nothing above it: every other floor
reads and writes through these models.
"""
