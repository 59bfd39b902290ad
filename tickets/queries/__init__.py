"""Queries: each a function taking its dependencies (`tickets.deps.Deps`) and its arguments, reading in one unit
of work (`tickets.uow`)."""
