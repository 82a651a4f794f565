"""The console's notification pages: the inbox (`/inbox`), one's preferences
(`/inbox/preferences`), and the administration of rules, templates, department webhooks,
the outbox and the demo SMS log (`/admin/notifications`). The badge and toasts of every page
are in the shell (`templates/base.html`, `static/js/notify.js`). Writes go through
`cityloop.notifications.service` and `cityloop.outbox.service`."""
