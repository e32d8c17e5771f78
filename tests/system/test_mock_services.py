"""The recording downstream stand-in, as a real process."""

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
