"""The supervisor of `citybrain run`: restarts with backoff, counted in Redis (no processes)."""

from __future__ import annotations

import itertools

from dashboard.supervisor import MAX_BACKOFF_S, STABLE_S, Supervisor, children_report

_pids = itertools.count(1000)


class FakeProcess:
    """A child whose death the test decides."""

    def __init__(self, command) -> None:
        self.command = list(command)
        self.pid = next(_pids)
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode

    def terminate(self) -> None:
        self.returncode = -15

    def kill(self) -> None:
        self.returncode = -9

    def wait(self, timeout: float | None = None) -> int:
        assert self.returncode is not None
        return self.returncode


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def supervised(client, settings):
    spawned: list[FakeProcess] = []

    def spawn(command):
        spawned.append(FakeProcess(command))
        return spawned[-1]

    clock = Clock()
    supervisor = Supervisor({"redis": lambda: spawn(["r"]), "worker": lambda: spawn(["w"]),
                             "web": lambda: spawn(["g"])}, client,
                            settings.state_prefix + "supervisor", stop_last=("redis",),
                            clock=clock, wall_ms=lambda: 1_000_000)
    return supervisor, spawned, clock


def restart_delay(supervisor, clock, name: str) -> float:
    """Kill the named child now; the seconds until the supervisor started it again."""
    child = next(c for c in supervisor.children if c.name == name)
    child.process.returncode = 1
    supervisor.check()
    died_at, old = clock.now, child.process
    while child.process is old:
        clock.now += 0.25
        supervisor.check()
    return clock.now - died_at


def test_sup001_backoff_doubles_to_the_cap_and_resets_after_a_stable_run(client, settings):
    supervisor, spawned, clock = supervised(client, settings)
    supervisor.start()
    assert [p.command for p in spawned] == [["r"], ["w"], ["g"]]
    delays = [restart_delay(supervisor, clock, "worker") for _ in range(7)]
    assert delays == [1, 2, 4, 8, 16, MAX_BACKOFF_S, MAX_BACKOFF_S]
    clock.now += STABLE_S  # it lived a minute: the next death is restarted after 1 s
    assert restart_delay(supervisor, clock, "worker") == 1
    children = children_report(client.hgetall(settings.state_prefix + "supervisor"))
    assert children["worker"] == {"state": "running", "restarts": 8, "deaths": 8,
                                  "pid": spawned[-1].pid, "last_exit": 1,
                                  "since_ms": 1_000_000}
    assert children["web"]["restarts"] == 0 and children["web"]["state"] == "running"


def test_sup002_a_dead_child_shows_as_restarting_until_it_is_back(client, settings):
    supervisor, spawned, clock = supervised(client, settings)
    supervisor.start()
    spawned[2].returncode = 3
    supervisor.check()
    key = settings.state_prefix + "supervisor"
    assert children_report(client.hgetall(key))["web"]["state"] == "restarting"
    clock.now += 1
    supervisor.check()
    web = children_report(client.hgetall(key))["web"]
    assert web["state"] == "running" and web["pid"] == spawned[3].pid and web["last_exit"] == 3


def test_sup003_stop_ends_every_child_redis_last_and_restarts_none(client, settings):
    supervisor, spawned, clock = supervised(client, settings)
    supervisor.start()
    ended: list[list[str]] = []
    for process in spawned:
        process.terminate = lambda p=process: (ended.append(p.command),
                                               setattr(p, "returncode", -15))
    supervisor.stop()
    spawned[1].returncode = -2  # died of the same Ctrl-C
    clock.now += 60
    supervisor.run()  # returns at once: stop was asked
    assert len(spawned) == 3
    assert all(p.returncode is not None for p in spawned)
    assert ended == [["g"], ["r"]]  # the web first, Redis after the others


def test_sup004_counts_of_an_earlier_run_are_cleared(client, settings):
    key = settings.state_prefix + "supervisor"
    client.hset(key, mapping={"worker:restarts": 9, "gone:restarts": 1})
    supervisor, _, _ = supervised(client, settings)
    supervisor.start()
    report = children_report(client.hgetall(key))
    assert sorted(report) == ["redis", "web", "worker"] and report["worker"]["restarts"] == 0


def test_sup005_a_child_that_cannot_be_started_is_tried_again(client, settings):
    supervisor, spawned, clock = supervised(client, settings)
    supervisor.start()
    worker = next(c for c in supervisor.children if c.name == "worker")
    real_start, failures = worker.start, [OSError(12, "Cannot allocate memory")]

    def start():
        if failures:
            raise failures.pop()
        return real_start()

    worker.start = start
    assert restart_delay(supervisor, clock, "worker") == 1  # the first restart fails...
    assert worker.process is None and worker.restart_at is not None
    clock.now += 2  # ...and the next one, after the doubled backoff, works
    supervisor.check()
    assert worker.process is spawned[-1] and worker.restarts == 2 and worker.deaths == 2
