"""Subscribers: who gets the email, how they join and leave, and the web pages for it."""
