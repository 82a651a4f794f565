"""Evaluation (综合评价), the seventh node of the loop (R-EV-1..4): the indicators of every
post, department and region, the rates the seeds publish, composite scores and grades, for
any period with 环比 / 同比, as JSON and as an Excel workbook.

It only reads. Every figure is a query over rows derived from the case timeline
(`case_events`) by `facts.derive`; nothing is a counter kept by hand. The worker keeps those
rows, and their monthly sums (`cube`), current (`rollup.refresh`); readers overlay the cases
changed since (`rollup.fact_source`), so figures are exact as of now.

Definitions (period P = [first day 00:00, day after the last 00:00) in the city's time zone;
a period still running is counted up to now):

- 结案 (closed): a `close` event in P. A case closed twice in P (reopened after an unsatisfied
  return visit) counts twice. 按期结案: its `close` payload says `on_time` (closed at or before
  the deadline then in force).
- 应结案 (due): closed in P, plus the cases whose handling deadline fell in P and that were
  still under it at the end of P — not closed, returned or suspended (超期未结案). The deadline
  is the `due_at` recorded by dispatch / rework / approve_postpone / resume / an unsatisfied
  return_visit (`Case.due_at` is the latest). A case due in P but closed before P began is
  not due again. So 应结案 = 结案 + 超期未结案, as the published bulletins count it.
- 结案率 = 结案 / 应结案; 按期结案率 = 按期结案 / 应结案 (the denominators of the 天门
  bulletin: 911 / 972 = 93.72 %, 737 / 972 = 75.82 %).
- 处置数 (handled): due cases whose result was submitted (`submit_result`) before the end of P;
  按期处置: the result before the close (or the first one, for cases still open) came at or
  before its deadline. 处置率 / 按期处置率 divide by 应结案.
- 返工 = `rework` events, 延期 = `approve_postpone` events, 回退 = `return` events in P (a
  return counts against the department that sent the case back); rates divide by 应结案.
- 立案 (filed): a case's first `file`, or a case born `filed` (leader's assignment), in P.
  立案率 = of the cases reported in P, filed / (filed + rejected); merged duplicates do not
  count.
- 有效反馈率 = results submitted in P that the desk approved / those it decided on (approved or
  sent back). 满意率 = satisfied return visits / return visits in P. 721: the method of the last
  result before each close in P (`submit_result` payload `method`).
- Departments are counted where the timeline puts the case: the department holding it at the
  close, or at the end of P for an open case (a case passed down counts for the unit it was
  passed to). A handler reads its own department and the units below it.
- Regions: the case's place (district, street, community, responsibility grid, unit grid).
  公众举报率 = filings from public sources (`scoring.DEFAULT_PUBLIC_SOURCES`: citizens and the
  channels that carry their complaints — editable) / filings.
- 监督员: 上报 = its own reports in P; 有效上报 = those filed (by now); 漏报 = public reports
  filed in P in its grids (`User.grid_codes` prefixes of the case's unit grid, responsibility
  grid, community or street); 漏报率 = 漏报 / filings in its grids. 按时核实: a verification
  sent (`send_to_verify`) in P answered by `verify` within the verify stage limit, in working
  time; a task the centre withdrew (reject / merge) before the limit ran out does not count,
  one still unanswered past its limit counts as late. 按时核查 likewise from `approve_result`
  to `report_check`.
- 受理员: 受理数 = cases on which it took its first acceptance decision (send_to_verify,
  file, reject, merge) in P; 核实按时派发率 = send_to_verify within the accept stage limit; the
  check dispatch of the notes has no counterpart here (the inspector gets the check when the
  dispatcher approves the result), so 按时结案办理率 (its `close` within the close stage limit)
  takes its place.
- 值班长: 按时立案率 = `file` within the limit of the stage it ended; 准确立案率 = (filed −
  voided) / filed, voided = later rejected or merged (cityloop's table cannot do that after
  filing, so it is 100 % unless the table changes); 按时结案率 = `close` within its limit.
- 派遣员: 按时派遣率 = `dispatch` within the dispatch stage limit; 准确派遣率 = dispatches the
  department did not return / dispatches.
- Stage limits are `taxonomy.service.stage_limits` (working minutes) and the handling deadline;
  working time comes from the working calendar (holidays, 调休 working weekends).
- Weights, count tables, grade bands (A 90–100 … E < 40), deductions for overdue cases (R-EV-2)
  and the public sources are editable data (`scoring`, `EvaluationSetting`); the choices made
  where the standards notes are silent are listed in `scoring`'s docstring.
"""
