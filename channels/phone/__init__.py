"""The phone channel: calls logged by a PBX or an agent, and Asterisk call detail records, become calls.

`cdr` streams a ``Master.csv`` into `CdrRow`s and per-row `CdrRejection`s; `entry` turns an API entry
or a CDR row into one `tickets.inbound.Inbound`; `importer` feeds a file to `TicketService.log_calls`
in batches; `handlers` serves ``POST /api/v1/calls``. No ORM here.
"""
