"""Analytics (R-AN-2, R-AN-3): heat maps and hot spots over h3 cells, high incidence by hour
and weekday, class, region and source, the time cases spend in each stage of the loop and
where they wait, trends per day / week / month, and the CSV export of cases.

Read-only, like evaluation: everything is counted from the fact rows that
`cityloop.evaluation.rollup` derives from the case timeline (the CSV export reads the case
rows themselves). The JSON feeds the console and the big screen.
"""
