"""Message delivery: the outbox's dispatcher (queries, checks, retry, manager, loop), the
channel registry and its channels, and provider-neutral receipts.

Providers' callbacks reach `receipts` through the web app's `nudge_app.callbacks`.
"""
