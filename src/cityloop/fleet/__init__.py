"""The field force on the map: vehicles and their JT/T 808 terminals (`gateway.py`, codec in
`jt808.py`), people's duty (上岗/下岗/请假/出格报备) and the out-of-grid alert, the one
positions table of every vehicle and person, stale terminals, rosters (排班), road segments and
sweepers' coverage, patrol figures, and the live stream the big screen listens to."""
