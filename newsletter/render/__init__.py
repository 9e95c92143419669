"""Rendering, once per email: the edition's HTML and text (edition), the Jinja2 -> MJML ->
inlined-HTML pipeline for any email (emails, inline, templates), story text shaped for
reading (prose: a long narrative's opening, the text part's 78 columns), the web edition's
page (web_edition), the per-recipient slots left open in the output (slots), Gmail's size
budget (size_budget), the confirmation email (confirmation) and pictures in headless
Chromium (screenshots).

May import: newsletter.errors, newsletter.settings, newsletter.store, newsletter.stories.
"""
