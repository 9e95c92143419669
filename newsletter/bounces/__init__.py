"""Bounces and complaints that come back by mail (issue 18): VERP tokens name the delivery
(newsletter.mail.verp), `read` tells what a message is, `apply` changes the store, `sources`
reads files, mboxes and maildirs, `imap` a mailbox, `process` ties them together.

Floor 6 beside newsletter.delivery (docs/ARCHITECTURE.md): may import floors 0-6.
"""
