"""Delivering an edition: freeze it with its audience (edition), the ledger of who has been
sent what (ledger), the send run in its steps (run starts the workers; claim, worker,
record, report), and test sends (testsend).

May import: every floor below it (errors, settings, store, stories, render, mail,
providers). Never subscribers/, jobs/ or the CLI.
"""
