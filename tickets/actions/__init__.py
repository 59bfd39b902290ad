"""Commands: each a function taking its dependencies (`tickets.deps.Deps`) and its arguments, writing in one unit
of work (`tickets.uow`)."""
