"""Notifications: who is told of which event, in which words, on which channel.

Owns the rules (event × recipient → channels, template, urgency filter, quiet hours) and the
templates as data (`defaults.py` holds what a new city starts with), the in-app inbox and its
live stream, per-user preferences and contact addresses, and the channels (`channels.py`:
inbox, SMS, e-mail, WeChat template messages, signed department webhooks) as plug-ins behind
one interface, delivered by the worker through the one outbox (`cityloop.outbox`).
`subscriber.py` is the event stream's listener that turns a `DomainEvent` into inbox rows and
outbox rows, in the event's transaction."""
