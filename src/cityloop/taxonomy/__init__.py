"""The problem taxonomy: component (部件) and event/matter (事件/事项) classes of GB/T 47678.5-2026,
local extension classes, legacy GB/T 30428.2-era codes as aliases, and per class the editable
filing and closure standards, command-manual text, default urgency and handling limits
(R-AC-5, R-DX-2). Also the stage time limits that drive every case clock."""
