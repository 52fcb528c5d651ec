import os

import pytest

from shop_cli import procfs


def test_a_process_that_burns_cpu_shows_more_cpu_time_and_memory_than_one_that_sleeps(children):
    burner, sleeper = children("burn"), children("sleep")
    before = {p.pid: procfs.cpu_seconds(p.pid) for p in (burner, sleeper)}
    burner.run_to_done()
    sleeper.run_to_done()
    spent = {p.pid: procfs.cpu_seconds(p.pid) - before[p.pid] for p in (burner, sleeper)}
    assert spent[burner.pid] > spent[sleeper.pid]
    assert procfs.resident_bytes(burner.pid) > procfs.resident_bytes(sleeper.pid)


def test_a_process_that_is_gone_cannot_be_read(children):
    child = children("sleep")
    child.end()
    assert not procfs.running(child.pid)
    with pytest.raises(ProcessLookupError):
        procfs.cpu_seconds(child.pid)
    with pytest.raises(ProcessLookupError):
        procfs.resident_bytes(child.pid)


def test_this_machine_is_described_by_its_cpu_count_and_model():
    machine = procfs.machine()
    assert machine.cpus == os.cpu_count()
    assert machine.usable == len(os.sched_getaffinity(0))
    assert machine.model != "unknown model"
    assert str(machine.cpus) in machine.describe()


def test_the_model_is_the_first_processors_and_every_processor_counts():
    cpuinfo = "".join(
        f"processor\t: {n}\nvendor_id\t: Acme\nmodel name\t: Acme Z9 @ 3.0GHz\n\n" for n in range(3)
    )
    machine = procfs.machine(cpuinfo)
    assert (machine.cpus, machine.model) == (3, "Acme Z9 @ 3.0GHz")
    arm = "processor\t: 0\nBogoMIPS\t: 50.00\n\nprocessor\t: 1\n\nHardware\t: Board X\n"
    assert (procfs.machine(arm).cpus, procfs.machine(arm).model) == (2, "Board X")
