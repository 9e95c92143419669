"""The pages a reader reaches from the site or from an email: sign-up and confirm (signup),
unsubscribe and preferences with the data download (manage, data), and the archive.

May import: newsletter (any floor), subscribers, subscribers.web.state.
"""
