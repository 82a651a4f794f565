"""Personal data's life cycle (《个人信息保护法》: minimum necessary, limited retention):
retention rules as data, the erasure of reporters' and callers' names and phones N months
after their case is archived (a keyed digest kept, so a citizen's request still finds their
cases), subject access and erasure requests, and the log of every staff view of a reporter's
unmasked contact. Masking itself is `kit.privacy`."""
