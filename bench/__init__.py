"""`make bench`: the service measured beside a bare baseline app (see run.py)."""
