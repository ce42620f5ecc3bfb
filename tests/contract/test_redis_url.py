"""The Redis URL both sides read (contract/redis_url.py): its two forms, and the clear error a
wrong one gets from either settings class before anything connects."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from contract.redis_url import check_url, is_sentinel, parse_sentinel_url
from service.core.config import Settings
from worker.settings import WorkerSettings


def test_sentinel_url_names_every_sentinel_and_the_primarys_database_and_password():
    url = "sentinel://:s3cret@10.0.0.1:26379/2;sentinel://10.0.0.2;sentinel://h3:26380"
    parsed = parse_sentinel_url(url)
    assert parsed.sentinels == [("10.0.0.1", 26379), ("10.0.0.2", 26379), ("h3", 26380)]
    assert (parsed.db, parsed.password, parsed.username) == (2, "s3cret", None)
    assert is_sentinel(url) and not is_sentinel("redis://10.0.0.1:6379/0")


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("sentinel://a:26379;redis://b:6379/0", "every part of a Sentinel URL"),
        ("sentinel://:26379", "no host"),
        ("sentinel://a:port", "bad port"),
        ("sentinel://a:26379/zero", "the database must be a number"),
        ("http://a:6379/0", "redis://... or sentinel://..."),
    ],
)
def test_malformed_url_is_refused_with_what_is_wrong(url, error):
    with pytest.raises(ValueError, match=error):
        check_url(url, "srbvae")


def test_sentinel_url_needs_the_primarys_name():
    with pytest.raises(ValueError, match="needs the primary's name"):
        check_url("sentinel://a:26379", " ")


@pytest.mark.parametrize("settings_class", [Settings, WorkerSettings])
def test_both_settings_classes_refuse_a_bad_url(settings_class):
    with pytest.raises(ValidationError, match="every part of a Sentinel URL"):
        settings_class(redis_url="sentinel://a:26379;redis://b:6379/0")
    ok = settings_class(redis_url="sentinel://a:26379;sentinel://b:26379/0")
    assert ok.redis_master_name == "srbvae"


def test_replica_wait_must_end_before_the_redis_timeout():
    """WAIT holds its connection: a wait as long as the socket timeout would read as an
    outage."""
    with pytest.raises(ValidationError, match="shorter than redis_timeout_s"):
        Settings(redis_min_replicas=1, redis_replica_wait_s=2, redis_timeout_s=2)
    assert Settings(redis_replica_wait_s=2, redis_timeout_s=2).redis_min_replicas == 0
