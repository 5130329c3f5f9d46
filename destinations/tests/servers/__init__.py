"""Real protocol servers on 127.0.0.1 for the destination tests (and the delivery bench).

Each server is a class that starts on a free port, stops, and starts again on the same
port, and tells where to reach it, with which credentials, and which folder on disk it
writes into. ``fixtures.py`` turns them into pytest fixtures. The modules need no pytest,
so a benchmark can start the same servers.
"""
