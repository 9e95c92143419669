"""Delivering an edition: freeze it with its audience (edition), the ledger of who has been
sent what (ledger), the send run in its steps (run starts the senders; claim, send,
record, report), what stops a run on its own (safety: circuit breaker, retry window),
test sends (testsend), and bounded growth (prune: old editions keep only their counts).

May import: every floor below it (errors, settings, store, stories, render, mail,
providers). Never subscribers/, jobs/ or the CLI.
"""
