"""The recording downstream stand-in, as a real process."""

import pytest
import requests

from tests.support import start_mock, stop


def test_records_requests_and_answers_ok():
    process, url = start_mock()
    try:
        response = requests.post(url + "/coupon", json={"coupon_code": "ABC"}, timeout=5)
        assert response.status_code == 200 and response.text == "OK"
        assert requests.put(url + "/x/y", timeout=5).status_code == 200
        received = requests.get(url + "/_received", timeout=5).json()
        assert [(r["method"], r["path"]) for r in received] == [
            ("POST", "/coupon"),
            ("PUT", "/x/y"),
        ]
        assert received[0]["body"] == {"coupon_code": "ABC"}
        requests.delete(url + "/_received", timeout=5)
        assert requests.get(url + "/_received", timeout=5).json() == []
    finally:
        stop(process)


def test_fail_answers_503_to_the_first_n():
    process, url = start_mock(fail=2)
    try:
        statuses = [
            requests.post(url + "/email", json={"n": i}, timeout=5).status_code for i in range(4)
        ]
        assert statuses == [503, 503, 200, 200]
        received = requests.get(url + "/_received", timeout=5).json()
        assert [r["answered"] for r in received] == [503, 503, 200, 200]
    finally:
        stop(process)


def test_fail_every_answers_503_to_every_kth():
    process, url = start_mock(fail_every=3)
    try:
        statuses = [requests.post(url + "/e", json={}, timeout=5).status_code for _ in range(7)]
        assert statuses == [200, 200, 503, 200, 200, 503, 200]
    finally:
        stop(process)


def test_hang_keeps_the_first_requests_waiting():
    process, url = start_mock(hang=1, hang_seconds=30)
    try:
        with pytest.raises(requests.Timeout):
            requests.post(url + "/e", json={"n": 1}, timeout=0.5)
        assert requests.post(url + "/e", json={"n": 2}, timeout=5).status_code == 200
        received = requests.get(url + "/_received", timeout=5).json()
        assert [r["body"]["n"] for r in received] == [1, 2]
    finally:
        stop(process)
