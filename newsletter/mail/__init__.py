"""One copy of an email: the message as data (message: Envelope, Recipient, Result), who
a refusal is about (failures: Cause), its MIME bytes spliced per recipient (mime), and the
signed tokens and links each copy carries (links).

May import: newsletter.errors, newsletter.settings, newsletter.store, newsletter.stories,
newsletter.render.
"""
