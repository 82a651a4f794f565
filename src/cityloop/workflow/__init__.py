"""The one workflow engine: declared flows (states, transition rows, stage clocks, scopes, a
hash-chained timeline) and the engine that runs any of them.

`flow.py` holds the shapes of a flow's table (`Transition`, `Table`) and of its runtime hooks
(`Flow`); `engine.py` executes a row (`run`) and announces the step (`announce`, the one place);
`timeline.py` owns the hash chain every flow's timeline is written and verified with. The case
loop (`cases`) is flow "case"; the enforcement procedure (`enforcement`) is flow "enforcement".
This package imports no domain that runs a flow.
"""
