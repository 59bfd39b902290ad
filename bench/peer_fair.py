"""The peer bench (../shared/peer-bench/side_by_side.py) with each measurement window kept to its own system's work.

run.sh starts each wrk run once the ticket count settles; Switchboard's worker is then still sending the
acknowledgements and assignment notices of the run before (two mails a ticket, written to the mail sink), while
django-helpdesk renders its mails with a dummy backend inside the request. That backlog runs during
django-helpdesk's next window and takes its CPU. Here every window starts only once Switchboard's outbox is
empty and nothing is owed its dispatch, so each figure is the system alone; everything else is side_by_side.py's.

Usage (after run.sh has set everything up once, from the project root):
    SB=$(pwd) bash ../shared/peer-bench/sb_setup.sh && bash ../shared/peer-bench/dh_setup.sh
    /tmp/bench/dh/bin/python bench/peer_fair.py [--runs 3] [--seconds 20]
    SB=$(pwd) bash ../shared/peer-bench/sb_setup.sh stop; bash ../shared/peer-bench/dh_setup.sh stop
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "peer-bench"))

import side_by_side  # noqa: E402

_settle = side_by_side.settle
QUIET = ("SELECT (SELECT count(*) FROM outbox WHERE status IN ('queued', 'sending'))"
         " + (SELECT count(*) FROM tickets WHERE dispatch_owed_at IS NOT NULL)")


_calls = [0]


def settle(count, max_wait=120):
    """side_by_side's wrk() settles twice a run: before starting its clock, and after wrk (inside the clock). Before,
    Switchboard's background work also drains (at most 10 minutes); after, only the count settles, as in run.sh."""
    _settle(count, max_wait)
    _calls[0] += 1
    if _calls[0] % 2 == 1:
        end = time.time() + 600
        while int(side_by_side.sb_sql(QUIET)) and time.time() < end:
            time.sleep(1)


side_by_side.settle = settle

if __name__ == "__main__":
    side_by_side.main()
