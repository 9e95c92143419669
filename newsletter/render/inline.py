"""MJML to email-ready HTML: mjml-python (MRML) for the layout, premailer for our CSS.

premailer with its defaults breaks this email (docs/ARCHITECTURE.md, "Rendering facts"): it
strips `!important` (killing dark mode and the column media queries), drops MRML's lowercase
`<!doctype html>` (quirks mode), and inlines MJML's resets into every element. So MJML's own
`<style>` blocks are marked `data-premailer="ignore"` and kept as they are, and only our
element rules (templates/email/email.css) are inlined.
"""

from __future__ import annotations

import functools
import logging
import re

from mjml import mjml2html
from premailer import Premailer

from newsletter.render.templates import templates_dir

_STYLE_TAG = re.compile(r"<style(?=[\s>])")
# Outlook (Word) ignores the CSS that wraps MJML's inline-block columns, and lays out its
# MSO table instead: where a template marks a row break, close that table and open another.
# MRML parses the inside of a conditional comment in mj-raw as markup and refuses these
# unbalanced tags, hence a marker replaced after it.
MSO_ROW_MARK = "<!--ds-mso-row-->"
MSO_ROW = ('<!--[if mso | IE]></tr></table><table border="0" cellpadding="0" cellspacing="0" '
           'role="presentation"><tr><![endif]-->')


class RenderError(RuntimeError):
    """A template produced something that is not a valid email: a bug, not user input."""


@functools.cache
def email_css() -> str:
    return (templates_dir() / "email" / "email.css").read_text(encoding="utf-8")


def mjml_to_html(mjml: str) -> str:
    html = mjml2html(mjml)
    # MRML does not validate: an unknown or misspelt tag passes through as is. Story text
    # is escaped, so a literal "<mj-" here can only come from a template.
    if "<mj-" in html:
        raise RenderError("MJML left an unknown tag: " + html[html.index("<mj-"):][:60])
    return html.replace(MSO_ROW_MARK, MSO_ROW)


def inline_css(html: str, css: str | None = None) -> str:
    """Inline `css` (default: email.css) into the elements; leave every <style> block."""
    # Only an upper-case doctype survives premailer (lxml), and without one the email
    # renders in quirks mode.
    if html[:15].lower() == "<!doctype html>":
        html = "<!DOCTYPE html>" + html[15:]
    html = _STYLE_TAG.sub('<style data-premailer="ignore"', html)
    out = Premailer(
        html, css_text=[email_css() if css is None else css], keep_style_tags=True,
        strip_important=False, remove_classes=False, disable_leftover_css=True,
        allow_network=False, cssutils_logging_level=logging.CRITICAL,
    ).transform(pretty_print=False)
    # premailer drops the marker where it parsed a block; the ones inside Outlook's
    # conditional comments are comment text to it, so drop those here.
    out = out.replace('<style data-premailer="ignore"', "<style")
    if not out.startswith("<!DOCTYPE html>"):
        raise RenderError("the doctype was lost while inlining CSS (quirks mode)")
    return out
