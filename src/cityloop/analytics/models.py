"""Analytics owns no tables: it reads the evaluation rollups (`cityloop.evaluation.models`)
and the case rows."""
