"""Moves this Python process's wall clock by CITYBRAIN_TEST_CLOCK_SHIFT_S seconds.

`scripts/test-shifted` puts this folder on PYTHONPATH so that pytest and every
Python process it starts (workers, web, demo feed) see the same moved clock:
`time.time()` and `datetime.now()` move, the monotonic clock and sleeps do not.
It proves that no test depends on the day or the hour it runs.
"""

import os
import time

_shift = os.environ.get("CITYBRAIN_TEST_CLOCK_SHIFT_S")
if _shift:
    import time_machine

    time_machine.travel(time.time() + float(_shift), tick=True).start()
