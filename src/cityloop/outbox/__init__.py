"""The outbox: side effects (webhooks to partner platforms, pushes to other systems) written
in the same transaction as the change that causes them, and delivered by the worker after
commit, with retries, back-off and failures an administrator can see and retry."""
