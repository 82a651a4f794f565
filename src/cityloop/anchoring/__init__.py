"""Audit anchors: the timelines' heads, signed outside the database (issue 20, part 3).

The hash chains find a changed row, but whoever can write the database can also rewrite a
whole tail, or delete a case, and recompute every hash. An anchor fixes what the chains were:
a Merkle root over every timeline's last link, signed with an Ed25519 key that is not in the
database, appended to a log that is not in the database either. `cityloop verify-audit
--anchors` compares the database against every anchor and names what differs.
"""
