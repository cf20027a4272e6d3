"""What the tests share, one of each:

    markets    the fixed dates (MARKET_NOW, SESSIONS) and the hand-built markets written on them
    waiting    one bounded wait (`wait_until`) and the waits built on it (a job, a pipeline run)
    databases  one family of fresh databases: a server (PostgreSQL of the machine, embedded, or the
               reliability tests' controlled one), a template with every migration, a copy per test
    asgi       the API app in this process (`InProcessServer`); tests/live_server.py is the process
"""
