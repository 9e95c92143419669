"""The story format: the text and JSON parsers (parse), a story as plain data (data), and
importing files into the store and reading a day back (imports).

May import: newsletter.errors, newsletter.settings, newsletter.store.
"""
