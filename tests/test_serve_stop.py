"""Stopping a server while a query runs: the query stops at once with a typed refusal."""

from __future__ import annotations

import signal
import subprocess
import threading
from pathlib import Path

import httpx

from tests.server_process import server_env, serving

# Runs for minutes (well past the query timeout set below, which it must not reach).
SLOW_SQL = "SELECT count(*) FROM range(1000000000000) a WHERE a.range % 7 = 3"


def test_a_query_running_when_the_server_stops_is_refused_server_stopping(
    tmp_path: Path,
) -> None:
    """SIGTERM during a query waited uvicorn's 5 s grace, then cancelled the request: the
    client got a bare text `500 Internal Server Error` and the log a traceback ("Exception
    in ASGI application"). The query is now interrupted as the stop begins and answered
    `503 server_stopping` with Retry-After, and the server exits 0."""
    data = tmp_path / "data"
    env = server_env(
        tmp_path, AGNES_QUERY_TIMEOUT_SECONDS="600", AGNES_SCAN_CAPS__CONCURRENT_QUERIES="1"
    )
    with serving(data, env, stderr=subprocess.PIPE) as (process, base_url, token):
        answers: list[httpx.Response] = []

        def query() -> None:
            answers.append(
                httpx.post(
                    f"{base_url}/api/query",
                    json={"sql": SLOW_SQL},
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=120,
                )
            )

        with httpx.Client(
            base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {token}"}
        ) as watcher:
            assert watcher.post("/api/query", json={"sql": "SELECT 1"}).status_code == 200
            asking = threading.Thread(target=query)
            asking.start()
            while True:  # the server's one query place is taken: the slow query runs
                probe = watcher.post("/api/query", json={"sql": "SELECT 1"})
                if probe.status_code == 429:
                    break
                if answers and answers[0].status_code == 429:  # a probe held the place
                    asking.join()  # as the slow query came: ask again
                    answers.clear()
                    asking = threading.Thread(target=query)
                    asking.start()
                    continue
                assert probe.status_code == 200 and not answers, (probe.text, answers)
        process.send_signal(signal.SIGTERM)
        asking.join(timeout=120)
        _, err = process.communicate(timeout=120)
    (answer,) = answers
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "server_stopping"
    assert answer.headers["Retry-After"] == "5"
    assert process.returncode == 0, err
    assert "Exception in ASGI application" not in err and "Traceback" not in err, err
