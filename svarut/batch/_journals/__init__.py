"""The journal's backends, side by side (as httpx2's ``_transports``):
:mod:`.schema` (states, tables, migrations, rows), :mod:`.writer` (the
group commit), :mod:`.base` (the operations, on any DB-API connection), and
the databases, :mod:`.sqlite` and :mod:`.postgres`. Nothing here imports the
modules above it: :func:`svarut.batch.journal.open_journal` picks a backend.
"""
