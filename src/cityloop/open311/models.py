"""The Open311 adapter owns no tables: a service is a problem class, a service request is a
case, and the API key is a partner's (see `cityloop.partners.models`)."""
