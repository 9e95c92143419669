"""The story format: the text parser (parse, which hands JSON files to json_stories), a
story as plain data (data), and importing files into the store and reading a day back
(imports).

May import: newsletter.errors, newsletter.settings, newsletter.store.
"""
