"""The phone channel: Asterisk call detail records (``cdr-csv`` ``Master.csv``) become call records.

`channels.phone.cdr.read_cdr` streams a CDR file into frozen `CdrRow` records and per-row
`CdrRejection`s; turning records into `tickets.inbound.Inbound` comes later. No ORM, no I/O
beyond `open_cdr`.
"""
