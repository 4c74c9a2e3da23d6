"""facebench.progress: plain lines with percent, count, ETA and rate when stderr is not a terminal; nothing
for work that ends within the delay."""

from __future__ import annotations

import io
import re
import time

from facebench.progress import progress, track


def test_plain_lines_when_not_a_terminal():
    stream = io.StringIO()  # isatty() is False, as under CI or nohup
    with progress(20, "demo_verify: extract", interval=0.05, delay=0.0, stream=stream) as bar:
        for _ in range(20):
            time.sleep(0.01)
            bar.update(1)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue() and len(lines) >= 2
    pattern = re.compile(r"^demo_verify: extract: +(\d+)% (\d+)/20 \[\d\d:\d\d<(\d\d:\d\d|\?), ([\d.]+|\?) images/s\]$")
    counts = [int(pattern.match(line).group(2)) for line in lines]
    percents = [int(pattern.match(line).group(1)) for line in lines]
    assert counts == sorted(set(counts)) and counts[-1] == 20 and percents[-1] == 100
    assert all(p == int(100 * c / 20) for p, c in zip(percents, counts))
    assert re.search(r"<00:\d\d, [\d.]+ images/s\]$", lines[-1])  # ETA and rate once measured


def test_quick_work_and_disabled_counters_print_nothing():
    stream = io.StringIO()
    assert list(track(list(range(5)), "quick", "items", enabled=True)) == [0, 1, 2, 3, 4]
    with progress(5, "quick", delay=5.0, stream=stream) as bar:
        bar.update(5)
    with progress(5, "off", enabled=False, delay=0.0, stream=stream) as bar:
        bar.update(5)
    with progress(0, "empty", delay=0.0, stream=stream):
        pass
    assert stream.getvalue() == ""
