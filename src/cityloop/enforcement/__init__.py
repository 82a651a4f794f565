"""Enforcement cases (行政执法案件, R-LE-1, R-LE-2, R-HD-5): the registers (laws and articles,
violations, discretion standards, parties, officers, squads and bureaus), the administrative
penalty procedure (普通程序 and 简易程序, 行政处罚法 2021) as flow "enforcement" of the one
workflow engine, its legal periods as data, the link to the case loop, and disclosure (执法公示).
"""
