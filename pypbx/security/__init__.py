"""Security building blocks (issue 9): bans, rate limits, scanner detection, toll-fraud check.

Every module here is pure: the time is an argument (``now``, seconds on any monotonic scale),
nothing reads a clock, opens a socket or draws random numbers; tables are bounded.
"""
