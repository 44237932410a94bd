"""Message delivery: channels (file, SMTP, GOV.UK Notify) and provider receipts.

Providers' callbacks reach `receipts` through the web app's `nudge_app.callbacks`.
"""
